"""Twin of tokenlearner_jax.cpu_rewrites, empty: PyTorch's CPU kernels need none of its rewrites.

The JAX twin rewrites ops whose plain forms XLA's CPU backend runs slowly: N-d products, whose
backward it lays out with slow transposes (it multiplies on rows [R, C] instead), and
convolutions, the backward of strided ones most of all (it sums strided slices of the input,
one per kernel tap, instead, behind an optimization barrier where XLA would fuse the sum into
its consumers and recompute it). In PyTorch, on one CPU thread:
- nn.Linear already multiplies on rows: ATen folds the leading dims into one GEMM, forward and
  backward (a [16, 6, 8, 8, 32] @ [32, 128] product's gradient: 2.6 ms N-d, 2.5 ms on rows);
- every convolution the models run, strided and depthwise included, runs on oneDNN's kernels
  (the proxy video stem, 1x3x3 stride 2 on 16 clips, forward and backward: 3 ms; 237 ms as an
  XLA convolution);
- eager ops fuse nothing, so nothing is recomputed.
Attention (layers.attend) runs torch's fused kernel here on every device; the JAX twin's runs
its late-normalised form (cpu_rewrites.attend_late_normalised) on a CPU. The vector-attention
backward (mixers.channel_attention) is rewritten in both twins, each in its own way, so it
lives in that module.
"""
