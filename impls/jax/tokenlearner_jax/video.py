"""The Table 2 video model: a small X(2+1)D-style backbone with one bottleneck transformer module.

Deviation from X3D: LayerNorm over channels instead of BatchNorm, so that the
model holds no running statistics and both frameworks stay stateless.
"""
import flax.linen as nn
import jax.numpy as jnp

from tokenlearner_jax.layers import Conv, DepthwiseConv, dense, gelu, in_float32, layer_norm
from tokenlearner_jax.mixers import MixerBlock
from tokenlearner_jax.tokenlearner import TokenFuser, TokenLearner
from tokenlearner_spec.config import VideoConfig
from tokenlearner_spec.pooling import pooling_regions

SPATIAL_PAD = ((0, 0), (1, 1), (1, 1))  # 1x3x3 convs, as torch's padding=(0, 1, 1).
TEMPORAL_PAD = ((1, 1), (0, 0), (0, 0))  # 3x1x1 convs, as torch's padding=(1, 0, 0).


def pool_positions(x, how: str):
  """Global pool of [B, T, H, W, C] over time and space -> [B, C]: 'mean' or 'max'.

  'max' gathers each channel at its first argmax, so the gradient flows to exactly
  that position in both twins. (A max reduction's own gradient finds the winner by
  comparing the input with the max for equality; XLA may recompute the input in
  another fusion with other rounding, and the jitted gradient then goes astray.)
  """
  if how == "mean":
    return in_float32(lambda t: jnp.mean(t, axis=(1, 2, 3)), x)
  b, c = x.shape[0], x.shape[-1]
  flat = x.reshape(b, -1, c)  # Shape: [B, T*H*W, C].
  winner = jnp.argmax(flat, axis=1)  # Shape: [B, C].
  return jnp.take_along_axis(flat, winner[:, None, :], axis=1)[:, 0, :]


class ResBlock(nn.Module):
  """(2+1)D inverted residual block on [B, T, H, W, C]: LN, 1x1x1 expand, GELU, depthwise 1x3x3,
  depthwise 3x1x1, GELU, 1x1x1 project, plus the input."""
  expansion: int
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    e = c * self.expansion
    h = gelu(dense(e, name="expand")(layer_norm("norm")(x)))
    h = DepthwiseConv((1, 3, 3), self.conv_impl, name="spatial")(h)
    h = DepthwiseConv((3, 1, 1), self.conv_impl, name="temporal")(h)
    return x + dense(c, name="project")(gelu(h))


class Stage(nn.Module):
  """Strided 1x3x3 conv halving H and W, then residual blocks. [B, T, H, W, C] -> [B, T, H/2, W/2, width]."""
  width: int
  num_blocks: int
  expansion: int
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    x = Conv(self.width, (1, 3, 3), (1, 2, 2), SPATIAL_PAD, impl=self.conv_impl, name="downsample")(x)
    for i in range(self.num_blocks):
      x = ResBlock(self.expansion, self.conv_impl, name=f"blocks_{i}")(x)
    return x


class BottleneckTransformer(nn.Module):
  """Inverted bottleneck: expand, per-frame Conv2D, tokenizer, mixer over all frames' tokens,
  fuser back to the per-frame grid, project, residual. [B, T, H, W, C] -> same.

  The projection starts at zero, so the module starts as the identity (the PyTorch twin says
  why)."""
  config: VideoConfig
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    cfg = self.config
    b, t, h, w, c = x.shape
    e, n, s = cfg.module_width, h * w, cfg.tokens_per_frame
    y = gelu(dense(e, name="expand")(layer_norm("norm")(x)))  # Shape: [B, T, H, W, E].
    y = Conv(e, (1, 3, 3), padding=SPATIAL_PAD, impl=self.conv_impl, name="conv2d")(y)
    frames = y.reshape(b * t, n, e)  # Shape: [B*T, N, E].

    if cfg.tokenizer == "all":
      tokens = frames
    elif cfg.tokenizer == "pool":
      regions = jnp.asarray(pooling_regions(h, s))  # Shape: [N, S].
      tokens = in_float32(lambda f: jnp.einsum("ns,bne->bse", regions / regions.sum(0), f), frames)
    else:
      tokens, _ = TokenLearner(s, self.conv_impl, name="tokenizer")(frames.reshape(b * t, h, w, e))  # [B*T, S, E].

    mixed = MixerBlock(cfg.mixer, cfg.num_heads, cfg.mlp_dim, num_tokens=t * s,
                       qk_dim=cfg.vectt_qk_dim, chunk_size=cfg.vectt_chunk_size,
                       name="mixer")(tokens.reshape(b, t * s, e))  # Shape: [B, T*S, E].
    mixed = mixed.reshape(b * t, s, e)

    if cfg.fuser == "none":
      fused = mixed
    elif cfg.fuser == "broadcast":
      regions = jnp.asarray(pooling_regions(h, s))  # Shape: [N, S].
      fused = frames + in_float32(lambda m: jnp.einsum("ns,bse->bne", regions, m), mixed)
    else:
      fuser = TokenFuser(cfg.bottleneck_dim, cfg.dropout_rate, name="fuser")
      fused = fuser(mixed, frames, deterministic)  # Shape: [B*T, N, E].
    project = dense(c, kernel_init=nn.initializers.zeros, name="project")
    return x + project(fused.reshape(b, t, h, w, e))


class VideoModel(nn.Module):
  """clips [B, T, H, W, C_in] -> (multi-label logits [B, classes], intermediates by name).

  conv_impl: how every convolution runs (cpu_rewrites.CONV_IMPLS); it changes the program
  XLA sees, not the function or the parameters.
  """
  config: VideoConfig
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, clips, train: bool = False):
    """train: dropout on (it draws from the 'dropout' rng)."""
    cfg = self.config
    out = {}
    conv = lambda kernel, strides, pads, name: Conv(cfg.stem_width, kernel, strides, pads,
                                                   impl=self.conv_impl, name=name)
    x = conv((1, 3, 3), (1, 2, 2), SPATIAL_PAD, "stem_spatial")(clips)
    x = gelu(conv((3, 1, 1), (1, 1, 1), TEMPORAL_PAD, "stem_temporal")(gelu(x)))
    out["stem"] = x
    for i, width in enumerate(cfg.stage_widths):
      x = out[f"stage{i}"] = Stage(width, cfg.blocks_per_stage, cfg.expansion, self.conv_impl,
                                      name=f"stages_{i}")(x)
    x = out["module"] = BottleneckTransformer(cfg, self.conv_impl, name="module")(x, not train)
    if cfg.head_norm == "layernorm":
      x = layer_norm("norm")(x)
    x = out["pre_logits"] = pool_positions(x, cfg.head_pool)  # Shape: [B, C].
    zeros = nn.initializers.zeros
    logits = dense(cfg.num_classes, kernel_init=zeros, bias_init=zeros, name="head")(x)
    out["logits"] = logits
    return logits, out
