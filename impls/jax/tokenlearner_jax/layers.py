"""Building blocks: dense layers, convolutions, MLP, multi-head attention, the pre-LN encoder block.

Numerics shared with tokenlearner_torch: LayerNorm eps 1e-6, tanh-approximate
GELU, xavier-uniform kernels, normal(1e-6) MLP biases (Scenic's conventions), and the
bfloat16 policy of tokenlearner_spec.precision (in_float32 marks its float32 ops).
Dense products and convolutions run as cpu_rewrites writes them for XLA's CPU backend.
"""
from typing import Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from tokenlearner_jax.cpu_rewrites import (Padding, attend_late_normalised, convolve, convolve_depthwise,
                                          rows_dot_general)

LN_EPS = 1e-6
xavier = nn.initializers.xavier_uniform()
tiny_normal = nn.initializers.normal(stddev=1e-6)


def in_float32(fn, *xs):
  """fn on float32 copies of xs, its result in the dtype of xs[0]: an op the bfloat16 policy
  (tokenlearner_spec.precision) computes in float32. In float32, fn(*xs)."""
  return fn(*(x.astype(jnp.float32) for x in xs)).astype(xs[0].dtype)


def layer_norm(name: str):
  """nn.LayerNorm's parameters under `name`, computed in float32 (in_float32)."""
  # Two-pass variance, as torch computes it: Flax's default E[x^2] - E[x]^2 cancels
  # catastrophically on sum-pooled tokens, whose mean dwarfs their spread.
  norm = nn.LayerNorm(epsilon=LN_EPS, use_fast_variance=False, name=name)
  return lambda x: in_float32(norm, x)


def gelu(x):
  return in_float32(lambda y: nn.gelu(y, approximate=True), x)


def dense(features: int, **kwargs) -> nn.Dense:
  """nn.Dense (same parameters, same function) whose product runs on rows (cpu_rewrites.rows_matmul)."""
  return nn.Dense(features, dot_general=rows_dot_general, **kwargs)


class Conv(nn.Module):
  """nn.Conv's parameters (kernel [*K, C_in, C_out], lecun-normal; bias zeros) and function,
  channels last, run as `impl` says (cpu_rewrites.CONV_IMPLS). [B, *S, C_in] -> [B, *S', features]."""
  features: int
  kernel_size: Tuple[int, ...]
  strides: Tuple[int, ...] = ()
  padding: Padding = "SAME"
  use_bias: bool = True
  impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    strides = tuple(self.strides) or (1,) * len(self.kernel_size)
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features))
    y = convolve(x, kernel, strides, self.padding, self.impl)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y


class DepthwiseConv(nn.Module):
  """Per-channel conv, stride 1, SAME padding; parameters as nn.Conv(feature_group_count=C),
  run as `impl` says (cpu_rewrites.CONV_IMPLS). [B, *S, C] -> same."""
  kernel_size: Tuple[int, ...]
  impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    if any(k % 2 == 0 for k in self.kernel_size):
      raise ValueError(f"DepthwiseConv pads k // 2 per side, SAME only for odd kernels: {self.kernel_size}")
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (*self.kernel_size, 1, c))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    pads = tuple((k // 2, k // 2) for k in self.kernel_size)
    return convolve_depthwise(x, kernel, pads, self.impl) + bias


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


ATTEND_IMPLS = ("auto", "late", "fused")


def attend(q, k, v, impl: str = "auto"):
  """softmax(q k^T / sqrt(D)) v per head: q [B, Mq, K, D], k and v [B, Mk, K, D] -> [B, Mq, K, D].

  impl 'late' (cpu_rewrites.attend_late_normalised): the form XLA's CPU backend runs fastest.
  'fused': jax.nn.dot_product_attention, on a GPU in bfloat16 or float16 cuDNN's flash
  attention, one kernel that does not hold the [B, K, Mq, Mk] weights for the backward (it
  takes head widths that are multiples of 8 up to 128: every paper model's 64); elsewhere
  XLA's softmax-first program. 'auto': 'late' on a CPU, 'fused' elsewhere. The same function.
  """
  if impl not in ATTEND_IMPLS:
    raise ValueError(f"attention impl {impl!r} is not one of {ATTEND_IMPLS}")
  if impl == "late" or (impl == "auto" and jax.default_backend() == "cpu"):
    return attend_late_normalised(q, k, v)
  head_width = q.shape[-1]
  flash = (jax.default_backend() == "gpu" and q.dtype in (jnp.bfloat16, jnp.float16)
           and head_width % 8 == 0 and head_width <= 128)
  return jax.nn.dot_product_attention(q, k, v, implementation="cudnn" if flash else "xla")


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

