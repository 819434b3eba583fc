"""The compute dtypes of a train step, and the one bfloat16 policy both twins implement.

float32: every op in float32.

bfloat16 (paper-scale training on accelerators):
- Parameters, their gradients and the optimizer state stay float32. The differentiated
  function runs the model on bfloat16 copies of the parameters and inputs, made inside it, so
  the gradients come back through the casts in float32 (JAX: the tree cast in
  train_step.in_precision; PyTorch: torch.func.functional_call on the copies, not autocast,
  which picks each op's dtype by a list of its own).
- Products compute in bfloat16: every dense layer, convolution (the depthwise ones included)
  and attention product takes bfloat16 operands, sums in float32 inside the kernel and returns
  bfloat16. So do the ops between them: residual additions, dropout.
- These compute in float32 from their bfloat16 inputs, and return bfloat16:
  - LayerNorm: statistics, normalisation, scale and shift;
  - GELU;
  - attention's logits and softmax (the weights meet the values in bfloat16, and the
    normaliser divides in float32), and the mixers' attention weights with their weighted
    sums (vector attention, prior-only attention);
  - the TokenLearner maps (sigmoid, softmax over positions) and what they weigh: the sum over
    positions that makes the tokens, and the fusers' spreading back (TokenFuser, unpooling);
  - TokenFuser's token mix, an S x S product whose outputs nearly cancel (its kernel starts at
    zero) before a LayerNorm scales them up: in bfloat16 that LayerNorm's output at 16 tokens
    was 10-20% off float32 in either twin, and the twins 25% apart;
  - means over positions: fixed pooling, the global-average-pool head, the video head's pool.
  The maps a TokenLearner returns (for Figure 2) stay float32.
- The logits meet the loss in float32.
- The policy fixes where results are rounded to bfloat16, not a kernel's inner order, and the
  frameworks' kernels differ by a rounding in two places: a dense layer's or convolution's bias
  is added inside PyTorch's kernel, before its output is rounded, and to JAX's rounded product;
  on a GPU each framework runs its own fused attention kernel.

A twin implements a float32 op as `in_float32`: its inputs cast up, the op, its result cast
back; in float32 the casts do nothing, so the float32 program is unchanged.
"""
# A train step's compute dtype (the policy above for bfloat16).
PRECISIONS = ("float32", "bfloat16")
