"""Building blocks: convolutions, MLP, multi-head attention, the pre-LN encoder block.

Numerics shared with tokenlearner_torch: LayerNorm eps 1e-6, tanh-approximate
GELU, xavier-uniform kernels, normal(1e-6) MLP biases (Scenic's conventions).
"""
import functools
import itertools
from typing import Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

LN_EPS = 1e-6
xavier = nn.initializers.xavier_uniform()
tiny_normal = nn.initializers.normal(stddev=1e-6)


def layer_norm(name: str) -> nn.LayerNorm:
  # Two-pass variance, as torch computes it: Flax's default E[x^2] - E[x]^2 cancels
  # catastrophically on sum-pooled tokens, whose mean dwarfs their spread.
  return nn.LayerNorm(epsilon=LN_EPS, use_fast_variance=False, name=name)


def gelu(x):
  return nn.gelu(x, approximate=True)


def rows_matmul(x, kernel, precision=None):
  """x [..., C] @ kernel [C, F] -> [..., F], computed on x flattened to rows [R, C].

  The same numbers as the N-d product. Why: XLA's CPU backend lays out the backward of
  an N-d product with transposes it runs slowly; on rows it is 2-4x faster (a [16, 6, 8,
  8, 32] @ [32, 128] product's gradient: 5.6 ms N-d, 1.8 ms on rows).
  """
  y = jnp.matmul(x.reshape(-1, x.shape[-1]), kernel, precision=precision)  # Shape: [R, F].
  return y.reshape(*x.shape[:-1], kernel.shape[-1])  # Shape: [..., F].


def _rows_dot_general(x, kernel, dimension_numbers, precision=None):
  if dimension_numbers != (((x.ndim - 1,), (0,)), ((), ())):
    raise ValueError(f"expected nn.Dense's contraction, got {dimension_numbers}")
  return rows_matmul(x, kernel, precision)


def dense(features: int, **kwargs) -> nn.Dense:
  """nn.Dense (same parameters, same function) whose product runs on rows (rows_matmul)."""
  return nn.Dense(features, dot_general=_rows_dot_general, **kwargs)


# How a convolution runs. 'xla': XLA's convolution op. 'taps': the same sum written as
# strided slices of the padded input, one per kernel tap (a dense conv stacks them and
# does one matmul, a depthwise conv scales and adds them). On XLA's CPU backend 'taps'
# is several times faster, the backward of strided convs most of all (the proxy video
# stem, 1x3x3 stride 2 on 16 clips: 245 ms forward and backward as a convolution). 'auto':
# 'taps' on CPU, 'xla' elsewhere. The PyTorch twin needs no counterpart: its convolutions
# are fast on CPU. Both programs compute one function from the same parameters.
CONV_IMPLS = ("auto", "taps", "xla")
Padding = Union[str, Sequence[Tuple[int, int]]]


def _resolve(impl: str) -> str:
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv impl={impl!r} is not one of {CONV_IMPLS}")
  if impl == "auto":
    return "taps" if jax.default_backend() == "cpu" else "xla"
  return impl


def _explicit_padding(padding: Padding, sizes, kernel, strides):
  """'SAME' / 'VALID' / per-dim (low, high) pairs -> a tuple of per-dim pairs, as XLA resolves them."""
  if isinstance(padding, str):
    if padding not in ("SAME", "VALID"):
      raise ValueError(f"padding={padding!r}: expected 'SAME', 'VALID' or (low, high) per dim")
    return tuple(jax.lax.padtype_to_pads(sizes, kernel, strides, padding))
  return tuple(tuple(p) for p in padding)


def _xla_conv(x, kernel, strides, pads, groups: int = 1):
  """XLA's convolution, channels last: x [B, *S, C_in], kernel [*K, C_in / groups, C_out]."""
  rank = kernel.ndim - 2
  spec = "N" + "THW"[-rank:] + "C"  # Shape: e.g. NTHWC.
  return jax.lax.conv_general_dilated(x, kernel, strides, pads, feature_group_count=groups,
                                      dimension_numbers=(spec, "THW"[-rank:] + "IO", spec))


# The two tap programs below are jitted so that, run op by op (Flax's init, eager tests), a
# conv is one compiled program rather than one per slice shape; under jit they inline.
@functools.partial(jax.jit, static_argnums=(2, 3))
def conv_taps(x, kernel, strides, pads):
  """A conv (kernel [*K, C_in, C_out]) as one matmul over the stacked taps: [B, *S, C_in] ->
  [B, *S', C_out]."""
  patches = jnp.concatenate(kernel_taps(x, kernel.shape[:-2], strides, pads), axis=-1)
  return rows_matmul(patches, kernel.reshape(-1, kernel.shape[-1]))  # [B, *S', K*C_in] -> C_out.


@functools.partial(jax.jit, static_argnums=(2,))
def depthwise_taps(x, kernel, pads):
  """A depthwise conv (kernel [*K, 1, C], stride 1) as a sum of scaled taps: [B, *S, C] -> same.

  Behind an optimization barrier: XLA otherwise fuses the sum into each consumer's slices
  and recomputes it (two stacked depthwise convs, forward and backward: 32 ms; 9 ms with
  the barrier).
  """
  taps = kernel_taps(x, kernel.shape[:-2], (1,) * (kernel.ndim - 2), pads)
  scales = kernel.reshape(-1, kernel.shape[-1])  # Shape: [K, C].
  return jax.lax.optimization_barrier(sum(tap * w for tap, w in zip(taps, scales)))


def kernel_taps(x, kernel_size, strides, pads):
  """The input under each kernel tap: [B, *S, C] -> a list, in kernel order, of [B, *S', C]."""
  padded = jnp.pad(x, [(0, 0), *pads, (0, 0)])
  spatial = padded.shape[1:-1]
  out = [(n - k) // s + 1 for n, k, s in zip(spatial, kernel_size, strides)]
  return [padded[(slice(None), *(slice(o, o + s * (m - 1) + 1, s)
                                 for o, s, m in zip(offset, strides, out)))]
          for offset in itertools.product(*(range(k) for k in kernel_size))]


class Conv(nn.Module):
  """nn.Conv's parameters (kernel [*K, C_in, C_out], lecun-normal; bias zeros) and function,
  channels last, run as `impl` says (see CONV_IMPLS). [B, *S, C_in] -> [B, *S', features]."""
  features: int
  kernel_size: Tuple[int, ...]
  strides: Tuple[int, ...] = ()
  padding: Padding = "SAME"
  use_bias: bool = True
  impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    impl = _resolve(self.impl)
    rank, c_in = len(self.kernel_size), x.shape[-1]
    strides = tuple(self.strides) or (1,) * rank
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, c_in, self.features))
    pads = _explicit_padding(self.padding, x.shape[1:-1], self.kernel_size, strides)
    if impl == "xla":
      y = _xla_conv(x, kernel, strides, pads)
    else:
      y = conv_taps(x, kernel, strides, pads)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y


class DepthwiseConv(nn.Module):
  """Per-channel conv, stride 1, SAME padding; parameters as nn.Conv(feature_group_count=C),
  run as `impl` says (see CONV_IMPLS). [B, *S, C] -> same."""
  kernel_size: Tuple[int, ...]
  impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    impl = _resolve(self.impl)
    rank, c = len(self.kernel_size), x.shape[-1]
    if any(k % 2 == 0 for k in self.kernel_size):
      raise ValueError(f"DepthwiseConv pads k // 2 per side, SAME only for odd kernels: {self.kernel_size}")
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (*self.kernel_size, 1, c))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    pads = tuple((k // 2, k // 2) for k in self.kernel_size)
    if impl == "xla":
      out = _xla_conv(x, kernel, (1,) * rank, pads, groups=c)
    else:
      out = depthwise_taps(x, kernel, pads)
    return out + bias


class Mlp(nn.Module):
  """Dense -> GELU -> Dense. Input [..., C] -> output [..., out_dim or C]. With dropout_rate,
  dropout after the GELU and after the output Dense, as Scenic's MlpBlock (deterministic=False)."""
  hidden_dim: int
  out_dim: int = 0
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    out_dim = self.out_dim or x.shape[-1]
    dropout = lambda y: nn.Dropout(self.dropout_rate)(y, deterministic=deterministic)
    x = dense(self.hidden_dim, kernel_init=xavier, bias_init=tiny_normal, name="fc1")(x)
    x = dense(out_dim, kernel_init=xavier, bias_init=tiny_normal, name="fc2")(dropout(gelu(x)))
    return dropout(x)


class MultiHeadAttention(nn.Module):
  """Dot-product attention of queries [B, Mq, C] over keys/values [B, Mk, C]."""
  num_heads: int

  @nn.compact
  def __call__(self, x_q, x_kv):
    c = x_q.shape[-1]
    k_heads, d = self.num_heads, c // self.num_heads
    project = lambda name, bias=True: dense(c, use_bias=bias, kernel_init=xavier, name=name)
    q = project("query")(x_q).reshape(*x_q.shape[:-1], k_heads, d)  # Shape: [B, Mq, K, D].
    # No key bias: it shifts every logit of a query equally, which the softmax cancels.
    k = project("key", bias=False)(x_kv).reshape(*x_kv.shape[:-1], k_heads, d)  # [B, Mk, K, D].
    v = project("value")(x_kv).reshape(*x_kv.shape[:-1], k_heads, d)
    y = attend(q, k, v)  # Shape: [B, Mq, K, D].
    return project("out")(y.reshape(x_q.shape))  # Shape: [B, Mq, C].


def attend(q, k, v):
  """softmax(q k^T / sqrt(D)) v per head: q [B, Mq, K, D], k and v [B, Mk, K, D] -> [B, Mq, K, D].

  Normalised after the product with v (sum_m e_qm v_m / sum_m e_qm, e = exp(logit - max)),
  the same function as normalising the weights first, with one pass less over the [B, K,
  Mq, Mk] weights forward and backward, which XLA's CPU backend runs slowly.
  In bfloat16 the logits, their exponentials and the normaliser stay float32 (a softmax over
  hundreds of keys in bfloat16 loses the small weights); only the products run in bfloat16.
  """
  q, k, v = (t.swapaxes(1, 2) for t in (q, k, v))  # Shape: [B, K, M, D].
  stats = jnp.promote_types(q.dtype, jnp.float32)
  scale = jnp.sqrt(q.shape[-1]).astype(stats)
  logits = (q @ k.swapaxes(-1, -2)).astype(stats) / scale  # Shape: [B, K, Mq, Mk].
  e = jnp.exp(logits - jax.lax.stop_gradient(logits.max(-1, keepdims=True)))
  y = (e.astype(v.dtype) @ v) / e.sum(-1, keepdims=True).astype(v.dtype)  # Shape: [B, K, Mq, D].
  return y.swapaxes(1, 2)


class EncoderBlock(nn.Module):
  """Pre-LN transformer block: x + MHSA(LN(x)), then + MLP(LN(.)). [B, M, C] -> [B, M, C]."""
  num_heads: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x):
    h = layer_norm("norm1")(x)
    x = x + MultiHeadAttention(self.num_heads, name="attn")(h, h)
    h = layer_norm("norm2")(x)
    return x + Mlp(self.mlp_dim, name="mlp")(h)

