"""Token mixers of the Table 2 ablation: vector attention (VectT), prior-only attention, and the
transformer layer that hosts any of them (or multi-head self-attention)."""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from tokenlearner_torch.layers import Mlp, MultiHeadAttention, dense, in_float32, layer_norm


class _ChannelAttention(torch.autograd.Function):
  """y_i = sum_j a_ij v_j with a_ij = softmax_j(q_i k_j), one row per channel: q [N, Q],
  k and v [N, M] -> [N, Q]; the backward is tokenlearner_spec.channel_attention.backward
  (derived there) in PyTorch, several times faster than autograd's.
  """

  @staticmethod
  def forward(ctx, q, k, v):
    weights = torch.softmax(q[:, :, None] * k[:, None, :], dim=-1)  # Shape: [N, Q, M].
    y = torch.bmm(weights, v[:, :, None])[..., 0]  # Shape: [N, Q].
    ctx.save_for_backward(q, k, v, weights, y)
    return y

  @staticmethod
  def backward(ctx, g):
    q, k, v, weights, y = ctx.saved_tensors
    by_query = torch.bmm(weights, torch.stack([v * k, k], dim=-1))  # Shape: [N, Q, 2].
    gq = g * q
    by_key = torch.bmm(weights.transpose(1, 2), torch.stack([g, gq, gq * y], dim=-1))  # [N, M, 3].
    dq = g * (by_query[..., 0] - y * by_query[..., 1])
    dk = v * by_key[..., 1] - by_key[..., 2]
    return dq, dk, by_key[..., 0]


def channel_attention(q, k, v):
  """Vector attention without gamma: q [B, Q, C], k and v [B, M, C] -> [B, Q, C]."""
  b, _, c = k.shape
  rows = lambda t: t.transpose(1, 2).reshape(b * c, t.shape[1])  # Shape: [B, L, C] -> [B*C, L].
  y = _ChannelAttention.apply(rows(q), rows(k), rows(v))  # Shape: [B*C, Q].
  return y.reshape(b, c, -1).transpose(1, 2)  # Shape: [B, Q, C].


class VectorAttention(nn.Module):
  """Vector attention of supplementary A.1: one attention weight per channel.

  y_i = sum_j softmax_j(gamma(q_i * k_j)) * v_j, an attention tensor [M, M, C].
  With qk_dim 0, q and k have C channels and gamma is the softmax alone; else they
  have qk_dim channels and gamma is a Dense qk_dim -> C before the softmax.
  chunk_size > 0 evaluates the queries chunk by chunk (rematerialised in the
  backward pass), bounding memory by [chunk, M, C] with the same numbers.
  Without gamma it runs as channel_attention, per channel with a written-out backward.
  """

  def __init__(self, dim: int, qk_dim: int = 0, chunk_size: int = 0):
    super().__init__()
    dk = qk_dim or dim
    self.chunk_size = chunk_size
    self.query = dense(dim, dk)
    # No key bias: q_i * b is the same for every key j, which the softmax over j cancels.
    self.key = dense(dim, dk, bias=False)
    self.value = dense(dim, dim)
    # No gamma bias: it is the same for every key j, which the softmax over j cancels.
    self.gamma = dense(dk, dim, bias=False) if qk_dim else None
    self.out = dense(dim, dim)

  def _attend(self, q_chunk, k, v, gamma=None):  # Shape: [B, Q, dk] -> [B, Q, C].
    """gamma: the gamma kernel, passed in rather than read from the module, so that a
    checkpointed chunk recomputes with the tensor its forward used (in bfloat16, the copy
    train_step.in_precision swaps in for the call only)."""
    if gamma is None:
      return in_float32(channel_attention, q_chunk, k, v)
    rel = F.linear(q_chunk[:, :, None, :] * k[:, None, :, :], gamma)  # [B, Q, M, dk] -> [B, Q, M, C].
    # Softmax over the keys j, per channel.
    return in_float32(lambda r, t: torch.einsum("bqmc,bmc->bqc", torch.softmax(r, dim=2), t), rel, v)

  def forward(self, x):
    """x: [B, M, C] -> [B, M, C]."""
    q, k, v = self.query(x), self.key(x), self.value(x)
    gamma = None if self.gamma is None else self.gamma.weight
    if not self.chunk_size or self.chunk_size >= x.shape[1]:
      y = self._attend(q, k, v, gamma)
    else:
      y = torch.cat([checkpoint(self._attend, chunk, k, v, gamma, use_reentrant=False)
                     for chunk in q.split(self.chunk_size, dim=1)], dim=1)
    return self.out(y)


class PriorOnlyAttention(nn.Module):
  """Attention with learned weights and no query-key term: y = softmax(P) @ V per head.

  P [K, M, M] is a parameter, so the number of tokens M is fixed by the config.
  """

  def __init__(self, dim: int, num_heads: int, num_tokens: int):
    super().__init__()
    self.num_heads, self.num_tokens = num_heads, num_tokens
    self.prior_logits = nn.Parameter(torch.randn(num_heads, num_tokens, num_tokens) * 0.02)
    self.value, self.out = dense(dim, dim), dense(dim, dim)

  def forward(self, x):
    """x: [B, M, C] -> [B, M, C]."""
    b, m, c = x.shape
    if m != self.num_tokens:
      raise ValueError(f"PriorOnlyAttention was built for {self.num_tokens} tokens, got {m}")
    k_heads, d = self.num_heads, c // self.num_heads
    v = self.value(x).reshape(b, m, k_heads, d)
    weights = torch.softmax(self.prior_logits.float(), dim=-1)  # Shape: [K, M, M].
    y = in_float32(lambda t: torch.einsum("kqm,bmkd->bqkd", weights, t), v).reshape(b, m, c)
    return self.out(y)


class MixerBlock(nn.Module):
  """Pre-LN transformer layer over [B, M, C] with a chosen attention: 'mhsa', 'vectt' or 'prior'."""

  def __init__(self, dim: int, mixer: str, num_heads: int, mlp_dim: int, num_tokens: int = 0,
               qk_dim: int = 0, chunk_size: int = 0):
    super().__init__()
    self.norm1 = layer_norm(dim)
    if mixer == "mhsa":
      self.attn = MultiHeadAttention(dim, num_heads)
    elif mixer == "vectt":
      self.attn = VectorAttention(dim, qk_dim, chunk_size)
    elif mixer == "prior":
      self.attn = PriorOnlyAttention(dim, num_heads, num_tokens)
    else:
      raise ValueError(f"unknown mixer {mixer!r}")
    self.self_attention = mixer == "mhsa"
    self.norm2 = layer_norm(dim)
    self.mlp = Mlp(dim, mlp_dim)

  def forward(self, x):
    h = self.norm1(x)
    x = x + (self.attn(h, h) if self.self_attention else self.attn(h))
    return x + self.mlp(self.norm2(x))
