"""Token mixers of the Table 2 ablation: vector attention (VectT), prior-only attention, and the
transformer layer that hosts any of them (or multi-head self-attention)."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from tokenlearner_jax.cpu_rewrites import rows_matmul
from tokenlearner_jax.layers import Mlp, MultiHeadAttention, dense, in_float32, layer_norm, xavier


@jax.custom_vjp
def _channel_attention(q, k, v):
  """y_i = sum_j a_ij v_j with a_ij = softmax_j(q_i k_j), one row per channel: q [N, Q],
  k and v [N, M] -> [N, Q]; the backward is tokenlearner_spec.channel_attention.backward
  (derived there) in JAX, several times faster than autodiff's.
  """
  return _channel_attention_forward(q, k, v)[0]


def _channel_attention_forward(q, k, v):
  weights = jax.nn.softmax(q[:, :, None] * k[:, None, :], axis=-1)  # Shape: [N, Q, M].
  y = jnp.einsum("nqm,nm->nq", weights, v)
  return y, (q, k, v, weights, y)


def _channel_attention_backward(saved, g):
  q, k, v, weights, y = saved
  by_query = jnp.einsum("nqm,nmj->nqj", weights, jnp.stack([v * k, k], axis=-1))  # [N, Q, 2].
  gq = g * q
  by_key = jnp.einsum("nqm,nqj->nmj", weights, jnp.stack([g, gq, gq * y], axis=-1))  # [N, M, 3].
  dq = g * (by_query[..., 0] - y * by_query[..., 1])
  dk = v * by_key[..., 1] - by_key[..., 2]
  return dq, dk, by_key[..., 0]


_channel_attention.defvjp(_channel_attention_forward, _channel_attention_backward)


def channel_attention(q, k, v):
  """Vector attention without gamma: q [B, Q, C], k and v [B, M, C] -> [B, Q, C]."""
  b, _, c = k.shape
  rows = lambda t: t.transpose(0, 2, 1).reshape(b * c, t.shape[1])  # [B, L, C] -> [B*C, L].
  y = _channel_attention(rows(q), rows(k), rows(v))  # Shape: [B*C, Q].
  return y.reshape(b, c, -1).transpose(0, 2, 1)  # Shape: [B, Q, C].


class VectorAttention(nn.Module):
  """Vector attention of supplementary A.1: one attention weight per channel.

  y_i = sum_j softmax_j(gamma(q_i * k_j)) * v_j, an attention tensor [M, M, C].
  With qk_dim 0, q and k have C channels and gamma is the softmax alone; else they
  have qk_dim channels and gamma is a Dense qk_dim -> C before the softmax.
  chunk_size > 0 evaluates the queries chunk by chunk (rematerialised in the
  backward pass), bounding memory by [chunk, M, C] with the same numbers.
  Without gamma it runs as channel_attention, per channel with a written-out backward.
  """
  qk_dim: int = 0
  chunk_size: int = 0

  @nn.compact
  def __call__(self, x):
    """x: [B, M, C] -> [B, M, C]."""
    b, m, c = x.shape
    dk = self.qk_dim or c
    q = dense(dk, kernel_init=xavier, name="query")(x)  # Shape: [B, M, dk].
    # No key bias: q_i * b is the same for every key j, which the softmax over j cancels.
    k = dense(dk, use_bias=False, kernel_init=xavier, name="key")(x)
    v = dense(c, kernel_init=xavier, name="value")(x)  # Shape: [B, M, C].
    gamma = None
    if self.qk_dim:
      # No bias: it is the same for every key j, which the softmax over j cancels.
      gamma_layer = dense(c, use_bias=False, kernel_init=xavier, name="gamma")
      gamma_layer(jnp.zeros((1, dk), x.dtype))  # Creates the params; the pure function below uses them.
      gamma = gamma_layer.variables["params"]

    def attend(q_chunk):  # Shape: [B, Q, dk] -> [B, Q, C].
      if gamma is None:
        return in_float32(channel_attention, q_chunk, k, v)
      rel = q_chunk[:, :, None, :] * k[:, None, :, :]  # Shape: [B, Q, M, dk].
      rel = rows_matmul(rel, gamma["kernel"])  # Shape: [B, Q, M, C].
      # Softmax over the keys j, per channel.
      return in_float32(lambda r, t: jnp.einsum("bqmc,bmc->bqc", jax.nn.softmax(r, axis=2), t), rel, v)

    if not self.chunk_size or self.chunk_size >= m:
      y = attend(q)
    else:
      n = -(-m // self.chunk_size)
      padded = jnp.pad(q, ((0, 0), (0, n * self.chunk_size - m), (0, 0)))
      chunks = padded.reshape(b, n, self.chunk_size, dk).transpose(1, 0, 2, 3)  # [n, B, Q, dk].
      y = jax.lax.map(jax.checkpoint(attend), chunks)  # Shape: [n, B, Q, C].
      y = y.transpose(1, 0, 2, 3).reshape(b, n * self.chunk_size, c)[:, :m]
    return dense(c, kernel_init=xavier, name="out")(y)


class PriorOnlyAttention(nn.Module):
  """Attention with learned weights and no query-key term: y = softmax(P) @ V per head.

  P [K, M, M] is a parameter, so the number of tokens M is fixed by the config.
  """
  num_heads: int
  num_tokens: int

  @nn.compact
  def __call__(self, x):
    """x: [B, M, C] -> [B, M, C]."""
    b, m, c = x.shape
    if m != self.num_tokens:
      raise ValueError(f"PriorOnlyAttention was built for {self.num_tokens} tokens, got {m}")
    k_heads, d = self.num_heads, c // self.num_heads
    prior = self.param("prior_logits", nn.initializers.normal(0.02),
                       (k_heads, self.num_tokens, self.num_tokens))
    v = dense(c, kernel_init=xavier, name="value")(x).reshape(b, m, k_heads, d)
    weights = jax.nn.softmax(prior.astype(jnp.float32), axis=-1)  # Shape: [K, M, M].
    y = in_float32(lambda t: jnp.einsum("kqm,bmkd->bqkd", weights, t), v).reshape(b, m, c)
    return dense(c, kernel_init=xavier, name="out")(y)


class MixerBlock(nn.Module):
  """Pre-LN transformer layer over [B, M, C] with a chosen attention: 'mhsa', 'vectt' or 'prior'."""
  mixer: str
  num_heads: int
  mlp_dim: int
  num_tokens: int = 0  # needed by 'prior'
  qk_dim: int = 0  # 'vectt'
  chunk_size: int = 0  # 'vectt'

  @nn.compact
  def __call__(self, x):
    h = layer_norm("norm1")(x)
    if self.mixer == "mhsa":
      h = MultiHeadAttention(self.num_heads, name="attn")(h, h)
    elif self.mixer == "vectt":
      h = VectorAttention(self.qk_dim, self.chunk_size, name="attn")(h)
    elif self.mixer == "prior":
      h = PriorOnlyAttention(self.num_heads, self.num_tokens, name="attn")(h)
    else:
      raise ValueError(f"unknown mixer {self.mixer!r}")
    x = x + h
    return x + Mlp(self.mlp_dim, name="mlp")(layer_norm("norm2")(x))
