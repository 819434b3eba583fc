"""Transformer building blocks: MLP, multi-head attention, the pre-LN encoder block.

Numerics shared with tokenlearner_torch: LayerNorm eps 1e-6, tanh-approximate
GELU, xavier-uniform kernels, normal(1e-6) MLP biases (Scenic's conventions).
"""
import flax.linen as nn
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
    x = nn.Dense(self.hidden_dim, kernel_init=xavier, bias_init=tiny_normal, name="fc1")(x)
    x = nn.Dense(out_dim, kernel_init=xavier, bias_init=tiny_normal, name="fc2")(dropout(gelu(x)))
    return dropout(x)


class MultiHeadAttention(nn.Module):
  """Dot-product attention of queries [B, Mq, C] over keys/values [B, Mk, C]."""
  num_heads: int

  @nn.compact
  def __call__(self, x_q, x_kv):
    c = x_q.shape[-1]
    k_heads, d = self.num_heads, c // self.num_heads
    dense = lambda name, bias=True: nn.Dense(c, use_bias=bias, kernel_init=xavier, name=name)
    q = dense("query")(x_q).reshape(*x_q.shape[:-1], k_heads, d)  # Shape: [B, Mq, K, D].
    # No key bias: it shifts every logit of a query equally, which the softmax cancels.
    k = dense("key", bias=False)(x_kv).reshape(*x_kv.shape[:-1], k_heads, d)  # [B, Mk, K, D].
    v = dense("value")(x_kv).reshape(*x_kv.shape[:-1], k_heads, d)
    logits = jnp.einsum("bqkd,bmkd->bkqm", q, k) / jnp.sqrt(d).astype(q.dtype)
    weights = nn.softmax(logits, axis=-1)  # Shape: [B, K, Mq, Mk].
    y = jnp.einsum("bkqm,bmkd->bqkd", weights, v).reshape(x_q.shape)  # Shape: [B, Mq, C].
    return dense("out")(y)


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

