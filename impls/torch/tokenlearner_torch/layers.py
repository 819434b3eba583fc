"""Building blocks: dense layers, convolutions, MLP, multi-head attention, the pre-LN encoder block.

Numerics shared with tokenlearner_jax: LayerNorm eps 1e-6, tanh-approximate
GELU, xavier-uniform kernels, normal(1e-6) MLP biases (Scenic's conventions), and the
bfloat16 policy of tokenlearner_spec.precision (in_float32 marks its float32 ops).
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

LN_EPS = 1e-6


def in_float32(fn, *xs):
  """fn on float32 copies of xs, its result in the dtype of xs[0]: an op the bfloat16 policy
  (tokenlearner_spec.precision) computes in float32. In float32, fn(*xs)."""
  return fn(*(x.float() for x in xs)).to(xs[0].dtype)


class LayerNorm(nn.LayerNorm):
  """nn.LayerNorm (same parameters) computed in float32 (in_float32)."""

  def forward(self, x):
    return in_float32(lambda y, w, b: F.layer_norm(y, self.normalized_shape, w, b, self.eps),
                      x, self.weight, self.bias)


def layer_norm(dim: int) -> LayerNorm:
  return LayerNorm(dim, eps=LN_EPS)


def gelu(x):
  return in_float32(lambda y: F.gelu(y, approximate="tanh"), x)


def lecun_normal_(weight: torch.Tensor) -> torch.Tensor:
  """Flax's default kernel init: truncated normal with variance 1 / fan_in."""
  fan_in = weight[0].numel()
  std = math.sqrt(1.0 / fan_in) / 0.87962566103423978  # Corrects for the truncation at 2 std.
  return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def dense(in_dim: int, out_dim: int, bias_std: float = 0.0, bias: bool = True,
          kernel_init=nn.init.xavier_uniform_) -> nn.Linear:
  """Linear initialised as the Flax twin's Dense: `kernel_init` (Scenic's xavier-uniform, or
  lecun_normal_ where the twin keeps Flax's default), zero (or tiny normal) bias."""
  layer = nn.Linear(in_dim, out_dim, bias=bias)
  kernel_init(layer.weight)
  if bias:
    nn.init.normal_(layer.bias, std=bias_std) if bias_std else nn.init.zeros_(layer.bias)
  return layer


def conv(in_dim: int, out_dim: int, kernel_size, stride=1, padding=0, groups: int = 1,
         bias: bool = True) -> nn.Module:
  """nn.Conv2d or nn.Conv3d (by len(kernel_size)) initialised as the Flax twin's Conv:
  lecun-normal kernel, zero bias."""
  conv_class = {2: nn.Conv2d, 3: nn.Conv3d}[len(kernel_size)]
  layer = conv_class(in_dim, out_dim, kernel_size, stride=stride, padding=padding, groups=groups,
                     bias=bias)
  lecun_normal_(layer.weight)
  if bias:
    nn.init.zeros_(layer.bias)
  return layer


def channels_last(layer: nn.Module, x):
  """Applies a channels-first conv to channels-last activations: [B, *S, C_in] -> [B, *S', C_out]."""
  spatial = range(1, x.ndim - 1)
  y = layer(x.permute(0, x.ndim - 1, *spatial))  # Shape: [B, C_out, *S'].
  return y.permute(0, *(d + 1 for d in spatial), 1)  # Shape: [B, *S', C_out].


class Mlp(nn.Module):
  """Dense -> GELU -> Dense. Input [..., C] -> output [..., out_dim or C]. With dropout_rate,
  dropout after the GELU and after the output Dense, as Scenic's MlpBlock (training mode)."""

  def __init__(self, in_dim: int, hidden_dim: int, out_dim: int = 0, dropout_rate: float = 0.0):
    super().__init__()
    self.fc1 = dense(in_dim, hidden_dim, bias_std=1e-6)
    self.fc2 = dense(hidden_dim, out_dim or in_dim, bias_std=1e-6)
    self.dropout = nn.Dropout(dropout_rate)

  def forward(self, x):
    return self.dropout(self.fc2(self.dropout(gelu(self.fc1(x)))))


class MultiHeadAttention(nn.Module):
  """Dot-product attention of queries [B, Mq, C] over keys/values [B, Mk, C]."""

  def __init__(self, dim: int, num_heads: int):
    super().__init__()
    self.num_heads = num_heads
    self.query = dense(dim, dim)
    # No key bias: it shifts every logit of a query equally, which the softmax cancels.
    self.key = dense(dim, dim, bias=False)
    self.value, self.out = dense(dim, dim), dense(dim, dim)

  def forward(self, x_q, x_kv):
    c = x_q.shape[-1]
    k_heads, d = self.num_heads, c // self.num_heads
    q = self.query(x_q).reshape(*x_q.shape[:-1], k_heads, d)  # Shape: [B, Mq, K, D].
    k = self.key(x_kv).reshape(*x_kv.shape[:-1], k_heads, d)  # Shape: [B, Mk, K, D].
    v = self.value(x_kv).reshape(*x_kv.shape[:-1], k_heads, d)
    y = attend(q, k, v)  # Shape: [B, Mq, K, D].
    return self.out(y.reshape(x_q.shape))  # Shape: [B, Mq, C].


def attend(q, k, v):
  """softmax(q k^T / sqrt(D)) v per head: q [B, Mq, K, D], k and v [B, Mk, K, D] -> [B, Mq, K, D].

  torch's fused scaled_dot_product_attention, the same function as the softmax-weights-first
  formulation without materialising the [B, K, Mq, Mk] weights for the backward.
  """
  q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # Shape: [B, K, M, D].
  return F.scaled_dot_product_attention(q, k, v).transpose(1, 2)


class EncoderBlock(nn.Module):
  """Pre-LN transformer block: x + MHSA(LN(x)), then + MLP(LN(.)). [B, M, C] -> [B, M, C]."""

  def __init__(self, dim: int, num_heads: int, mlp_dim: int):
    super().__init__()
    self.norm1 = layer_norm(dim)
    self.attn = MultiHeadAttention(dim, num_heads)
    self.norm2 = layer_norm(dim)
    self.mlp = Mlp(dim, mlp_dim)

  def forward(self, x):
    h = self.norm1(x)
    x = x + self.attn(h, h)
    return x + self.mlp(self.norm2(x))

