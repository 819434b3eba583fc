"""TokenLearner (v1.0, v1.1), the fusers that undo it, and fixed spatial pooling.

Every fuser maps (tokens [B, S, C], original [B, N, C]) to the next full-resolution
tokens [B, N, C], residual included, so that the ViT can swap them freely.
"""
import flax.linen as nn
import jax.numpy as jnp

from tokenlearner_jax.layers import Conv, Mlp, MultiHeadAttention, dense, gelu, in_float32, layer_norm


class TokenLearner(nn.Module):
  """TokenLearner v1.0 (the paper's): conv attention maps, sigmoid, sum pooling.

  LayerNorm, three bias-free 3x3 convs with S channels each followed by GELU, a
  fourth such conv; each of the S maps is a sigmoid over the positions and token
  s is the sum over positions of map_s * x (the un-normalised input). conv_impl: how
  the convs run (cpu_rewrites.CONV_IMPLS), the same function either way.
  """
  num_tokens: int
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    """x: [B, H, W, C] -> (tokens [B, S, C], maps [B, S, N])."""
    b, h, w, c = x.shape
    a = layer_norm("norm")(x)
    for i in range(4):
      a = Conv(self.num_tokens, (3, 3), use_bias=False, impl=self.conv_impl, name=f"convs_{i}")(a)
      a = gelu(a) if i < 3 else a  # Shape: [B, H, W, S].
    # The maps and the sum they weigh in float32 (tokenlearner_spec.precision).
    a = a.reshape(b, h * w, self.num_tokens).transpose(0, 2, 1)  # Shape: [B, S, N].
    maps = nn.sigmoid(a.astype(jnp.float32))
    tokens = jnp.einsum("bsn,bnc->bsc", maps, x.reshape(b, h * w, c).astype(jnp.float32))  # [B, S, C].
    return tokens.astype(x.dtype), maps


class TokenLearnerV11(nn.Module):
  """TokenLearner v1.1: LayerNorm, MLP (hidden `bottleneck_dim`, dropout inside), softmax over
  positions."""
  num_tokens: int
  bottleneck_dim: int = 64
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    """x: [B, H, W, C] -> (tokens [B, S, C], maps [B, S, N])."""
    b, h, w, c = x.shape
    x = x.reshape(b, h * w, c)  # Shape: [B, N, C].
    mlp = Mlp(self.bottleneck_dim, self.num_tokens, self.dropout_rate, name="mlp")
    logits = mlp(layer_norm("norm")(x), deterministic)
    maps = nn.softmax(logits.transpose(0, 2, 1).astype(jnp.float32), axis=-1)  # Shape: [B, S, N].
    return jnp.einsum("bsn,bnc->bsc", maps, x.astype(jnp.float32)).astype(x.dtype), maps


class TokenFuser(nn.Module):
  """TokenFuser: mixes the S tokens, then spreads them back with maps computed from `original`.

  LayerNorm, Dense over the token axis (S -> S, zero-init kernel, no bias), LayerNorm;
  mixing weights sigmoid(MLP(LayerNorm(original))) of shape [B, N, S]; with dropout_rate,
  dropout inside the MLP and on the fused tokens before the residual.
  """
  bottleneck_dim: int = 64
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, tokens, original, deterministic: bool = True):
    """tokens [B, S, C], original [B, N, C] -> [B, N, C]."""
    s = tokens.shape[1]
    y = layer_norm("norm_tokens")(tokens).transpose(0, 2, 1)  # Shape: [B, C, S].
    # No bias: a per-token constant is removed by the LayerNorm that follows.
    token_mix = dense(s, use_bias=False, kernel_init=nn.initializers.zeros, name="token_mix")
    # In float32: the LayerNorm after it magnifies its rounding (tokenlearner_spec.precision).
    y = in_float32(token_mix, y).transpose(0, 2, 1)
    y = layer_norm("norm_mixed")(y)  # Shape: [B, S, C].
    mlp = Mlp(self.bottleneck_dim, s, self.dropout_rate, name="mlp")
    mix = mlp(layer_norm("norm_original")(original), deterministic)  # Shape: [B, N, S].
    fused = in_float32(lambda m, t: jnp.einsum("bns,bsc->bnc", nn.sigmoid(m), t), mix, y)
    return original + nn.Dropout(self.dropout_rate)(fused, deterministic=deterministic)


def unpool_fuse(tokens, original, maps):
  """Unpool fuser: tokens spread back with the TokenLearner maps, maps^T @ tokens, plus residual.

  tokens [B, S, C], original [B, N, C], maps [B, S, N] -> [B, N, C].
  """
  return original + in_float32(lambda t, m: jnp.einsum("bsn,bsc->bnc", m, t), tokens, maps)


class ReprojectionFuser(nn.Module):
  """Re-projection fuser: cross-attention from the full-resolution tokens (queries) to the
  learned ones (keys/values), restoring the original token count.

  Pre-LN and residual: original + MHA(LN(original), LN(tokens)). No MLP: the
  attention alone is what reproduces the paper's re-projection GFLOPs (about
  +4.1 over TokenFuser at B/16, 384, one per block from 6 on; a full
  transformer layer per block would add ~16 more).
  """
  num_heads: int

  @nn.compact
  def __call__(self, tokens, original):
    """tokens [B, S, C], original [B, N, C] -> [B, N, C]."""
    queries = layer_norm("norm_original")(original)
    context = layer_norm("norm_tokens")(tokens)
    return original + MultiHeadAttention(self.num_heads, name="attn")(queries, context)


def spatial_pool(x, grid: int, window: int):
  """Average-pools tokens on their grid: [B, grid*grid, C] -> [B, (grid/window)^2, C]."""
  b, _, c = x.shape
  g = grid // window
  x = x.reshape(b, g, window, g, window, c)  # Shape: [B, H', wh, W', ww, C].
  return in_float32(lambda t: t.mean(axis=(2, 4)), x).reshape(b, g * g, c)
