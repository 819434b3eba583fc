"""TokenLearner (v1.0, v1.1), the fusers that undo it, and fixed spatial pooling.

Every fuser maps (tokens [B, S, C], original [B, N, C]) to the next full-resolution
tokens [B, N, C], residual included, so that the ViT can swap them freely.
"""
import torch
from torch import nn
from torch.nn import functional as F

from tokenlearner_torch.layers import Mlp, MultiHeadAttention, gelu, in_float32, layer_norm, lecun_normal_


class TokenLearner(nn.Module):
  """TokenLearner v1.0 (the paper's): conv attention maps, sigmoid, sum pooling.

  LayerNorm, three bias-free 3x3 convs with S channels each followed by GELU, a
  fourth such conv; each of the S maps is a sigmoid over the positions and token
  s is the sum over positions of map_s * x (the un-normalised input).
  """

  def __init__(self, dim: int, num_tokens: int):
    super().__init__()
    self.norm = layer_norm(dim)
    # Not layers.conv: all four are built before any is initialised, the order in which the
    # seeded initial weights are drawn.
    self.convs = nn.ModuleList(
        nn.Conv2d(dim if i == 0 else num_tokens, num_tokens, 3, padding=1, bias=False)
        for i in range(4))
    for conv in self.convs:
      lecun_normal_(conv.weight)

  def forward(self, x):
    """x: [B, H, W, C] -> (tokens [B, S, C], maps [B, S, N])."""
    b, h, w, c = x.shape
    a = self.norm(x).permute(0, 3, 1, 2)  # Shape: [B, C, H, W].
    for i, conv in enumerate(self.convs):
      a = gelu(conv(a)) if i < 3 else conv(a)  # Shape: [B, S, H, W].
    # The maps and the sum they weigh in float32 (tokenlearner_spec.precision).
    maps = torch.sigmoid(a.reshape(b, -1, h * w).float())  # Shape: [B, S, N].
    tokens = torch.einsum("bsn,bnc->bsc", maps, x.reshape(b, h * w, c).float())  # Shape: [B, S, C].
    return tokens.to(x.dtype), maps


class TokenLearnerV11(nn.Module):
  """TokenLearner v1.1: LayerNorm, MLP (hidden `bottleneck_dim`, dropout inside), softmax over
  positions."""

  def __init__(self, dim: int, num_tokens: int, bottleneck_dim: int = 64, dropout_rate: float = 0.0):
    super().__init__()
    self.norm = layer_norm(dim)
    self.mlp = Mlp(dim, bottleneck_dim, num_tokens, dropout_rate)

  def forward(self, x):
    """x: [B, H, W, C] -> (tokens [B, S, C], maps [B, S, N])."""
    b, h, w, c = x.shape
    x = x.reshape(b, h * w, c)  # Shape: [B, N, C].
    logits = self.mlp(self.norm(x))
    maps = torch.softmax(logits.transpose(1, 2).float(), dim=-1)  # Shape: [B, S, N].
    return torch.einsum("bsn,bnc->bsc", maps, x.float()).to(x.dtype), maps


class TokenFuser(nn.Module):
  """TokenFuser: mixes the S tokens, then spreads them back with maps computed from `original`.

  LayerNorm, Dense over the token axis (S -> S, zero-init kernel, no bias), LayerNorm;
  mixing weights sigmoid(MLP(LayerNorm(original))) of shape [B, N, S]; with dropout_rate,
  dropout inside the MLP and on the fused tokens before the residual.
  """

  def __init__(self, dim: int, num_tokens: int, bottleneck_dim: int = 64, dropout_rate: float = 0.0):
    super().__init__()
    self.norm_tokens = layer_norm(dim)
    # No bias: a per-token constant is removed by the LayerNorm that follows.
    self.token_mix = nn.Linear(num_tokens, num_tokens, bias=False)
    nn.init.zeros_(self.token_mix.weight)
    self.norm_mixed = layer_norm(dim)
    self.norm_original = layer_norm(dim)
    self.mlp = Mlp(dim, bottleneck_dim, num_tokens, dropout_rate)
    self.dropout = nn.Dropout(dropout_rate)

  def forward(self, tokens, original):
    """tokens [B, S, C], original [B, N, C] -> [B, N, C]."""
    y = self.norm_tokens(tokens).transpose(1, 2)  # Shape: [B, C, S].
    # In float32: the LayerNorm after it magnifies its rounding (tokenlearner_spec.precision).
    y = in_float32(F.linear, y, self.token_mix.weight).transpose(1, 2)
    y = self.norm_mixed(y)  # Shape: [B, S, C].
    mix = self.mlp(self.norm_original(original))  # Shape: [B, N, S].
    fused = in_float32(lambda m, t: torch.einsum("bns,bsc->bnc", torch.sigmoid(m), t), mix, y)
    return original + self.dropout(fused)


def unpool_fuse(tokens, original, maps):
  """Unpool fuser: tokens spread back with the TokenLearner maps, maps^T @ tokens, plus residual.

  tokens [B, S, C], original [B, N, C], maps [B, S, N] -> [B, N, C].
  """
  return original + in_float32(lambda t, m: torch.einsum("bsn,bsc->bnc", m, t), tokens, maps)


class ReprojectionFuser(nn.Module):
  """Re-projection fuser: cross-attention from the full-resolution tokens (queries) to the
  learned ones (keys/values), restoring the original token count.

  Pre-LN and residual: original + MHA(LN(original), LN(tokens)). No MLP: the
  attention alone is what reproduces the paper's re-projection GFLOPs (about
  +4.1 over TokenFuser at B/16, 384, one per block from 6 on; a full
  transformer layer per block would add ~16 more).
  """

  def __init__(self, dim: int, num_heads: int):
    super().__init__()
    self.norm_original = layer_norm(dim)
    self.norm_tokens = layer_norm(dim)
    self.attn = MultiHeadAttention(dim, num_heads)

  def forward(self, tokens, original):
    """tokens [B, S, C], original [B, N, C] -> [B, N, C]."""
    return original + self.attn(self.norm_original(original), self.norm_tokens(tokens))


def spatial_pool(x, grid: int, window: int):
  """Average-pools tokens on their grid: [B, grid*grid, C] -> [B, (grid/window)^2, C]."""
  b, _, c = x.shape
  g = grid // window
  x = x.reshape(b, g, window, g, window, c)  # Shape: [B, H', wh, W', ww, C].
  return in_float32(lambda t: t.mean(dim=(2, 4)), x).reshape(b, g * g, c)
