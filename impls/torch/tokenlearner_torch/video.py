"""The Table 2 video model: a small X(2+1)D-style backbone with one bottleneck transformer module.

Deviation from X3D: LayerNorm over channels instead of BatchNorm, so that the
model holds no running statistics and both frameworks stay stateless.
"""
import torch
from torch import nn

from tokenlearner_spec.config import VideoConfig
from tokenlearner_spec.pooling import pooling_regions
from tokenlearner_torch.layers import channels_last, conv, dense, gelu, in_float32, layer_norm, lecun_normal_
from tokenlearner_torch.mixers import MixerBlock
from tokenlearner_torch.tokenlearner import TokenFuser, TokenLearner

SPATIAL_PAD = (0, 1, 1)  # 1x3x3 convs, as Flax's ((0, 0), (1, 1), (1, 1)).
TEMPORAL_PAD = (1, 0, 0)  # 3x1x1 convs, as Flax's ((1, 1), (0, 0), (0, 0)).


def pool_positions(x, how: str):
  """Global pool of [B, T, H, W, C] over time and space -> [B, C]: 'mean' or 'max'.

  'max' gathers each channel at its first argmax, so the gradient flows to exactly
  that position in both twins. (A max reduction's own gradient finds the winner by
  comparing the input with the max for equality; XLA may recompute the input in
  another fusion with other rounding, and the jitted gradient then goes astray.)
  """
  if how == "mean":
    return in_float32(lambda t: t.mean(dim=(1, 2, 3)), x)
  b, c = x.shape[0], x.shape[-1]
  flat = x.reshape(b, -1, c)  # Shape: [B, T*H*W, C].
  winner = flat.argmax(dim=1, keepdim=True)  # Shape: [B, 1, C].
  return flat.gather(1, winner)[:, 0, :]


class ResBlock(nn.Module):
  """(2+1)D inverted residual block on [B, T, H, W, C]: LN, 1x1x1 expand, GELU, depthwise 1x3x3,
  depthwise 3x1x1, GELU, 1x1x1 project, plus the input."""

  def __init__(self, dim: int, expansion: int):
    super().__init__()
    e = dim * expansion
    self.norm = layer_norm(dim)
    self.expand = dense(dim, e, kernel_init=lecun_normal_)
    self.spatial = conv(e, e, (1, 3, 3), padding=SPATIAL_PAD, groups=e)
    self.temporal = conv(e, e, (3, 1, 1), padding=TEMPORAL_PAD, groups=e)
    self.project = dense(e, dim, kernel_init=lecun_normal_)

  def forward(self, x):
    h = gelu(self.expand(self.norm(x)))
    h = channels_last(self.temporal, channels_last(self.spatial, h))
    return x + self.project(gelu(h))


class Stage(nn.Module):
  """Strided 1x3x3 conv halving H and W, then residual blocks. [B, T, H, W, C] -> [B, T, H/2, W/2, width]."""

  def __init__(self, in_dim: int, width: int, num_blocks: int, expansion: int):
    super().__init__()
    self.downsample = conv(in_dim, width, (1, 3, 3), stride=(1, 2, 2), padding=SPATIAL_PAD)
    self.blocks = nn.ModuleList(ResBlock(width, expansion) for _ in range(num_blocks))

  def forward(self, x):
    x = channels_last(self.downsample, x)
    for block in self.blocks:
      x = block(x)
    return x


class BottleneckTransformer(nn.Module):
  """Inverted bottleneck: expand, per-frame Conv2D, tokenizer, mixer over all frames' tokens,
  fuser back to the per-frame grid, project, residual. [B, T, H, W, C] -> same.

  The projection starts at zero, so the module starts as the identity: at its default init its
  output had 2.5x the spread of the backbone features it is added to, which, training from
  scratch, slowed the digits' learning in the proxy (a probe on one-digit clips, sigmoid loss,
  head_norm 'none': 19% digit accuracy at 500 steps, 53% with the zero start, 63% with no
  module at all)."""

  def __init__(self, dim: int, config: VideoConfig):
    super().__init__()
    cfg = self.config = config
    e, s = cfg.module_width, cfg.tokens_per_frame
    self.norm = layer_norm(dim)
    self.expand = dense(dim, e, kernel_init=lecun_normal_)
    self.conv2d = conv(e, e, (1, 3, 3), padding=SPATIAL_PAD)
    if cfg.tokenizer == "tokenlearner":
      self.tokenizer = TokenLearner(e, s)
    if cfg.tokenizer == "pool":
      self.register_buffer("regions", torch.from_numpy(pooling_regions(cfg.grid_size, s)),
                           persistent=False)
    self.mixer = MixerBlock(e, cfg.mixer, cfg.num_heads, cfg.mlp_dim, num_tokens=cfg.num_frames * s,
                            qk_dim=cfg.vectt_qk_dim, chunk_size=cfg.vectt_chunk_size)
    if cfg.fuser == "tokenfuser":
      self.fuser = TokenFuser(e, s, cfg.bottleneck_dim, cfg.dropout_rate)
    self.project = dense(e, dim, kernel_init=nn.init.zeros_)

  def forward(self, x):
    cfg = self.config
    b, t, h, w, c = x.shape
    e, n, s = cfg.module_width, h * w, cfg.tokens_per_frame
    y = gelu(self.expand(self.norm(x)))  # Shape: [B, T, H, W, E].
    y = channels_last(self.conv2d, y)
    frames = y.reshape(b * t, n, e)  # Shape: [B*T, N, E].

    if cfg.tokenizer == "all":
      tokens = frames
    elif cfg.tokenizer == "pool":
      tokens = in_float32(lambda f: torch.einsum("ns,bne->bse", self.regions / self.regions.sum(0), f), frames)
    else:
      tokens, _ = self.tokenizer(frames.reshape(b * t, h, w, e))  # Shape: [B*T, S, E].

    mixed = self.mixer(tokens.reshape(b, t * s, e))  # Shape: [B, T*S, E].
    mixed = mixed.reshape(b * t, s, e)

    if cfg.fuser == "none":
      fused = mixed
    elif cfg.fuser == "broadcast":
      fused = frames + in_float32(lambda m: torch.einsum("ns,bse->bne", self.regions, m), mixed)
    else:
      fused = self.fuser(mixed, frames)  # Shape: [B*T, N, E].
    return x + self.project(fused.reshape(b, t, h, w, e))


class VideoModel(nn.Module):
  """clips [B, T, H, W, C_in] -> (multi-label logits [B, classes], intermediates by name)."""

  def __init__(self, config: VideoConfig):
    super().__init__()
    cfg = self.config = config
    self.stem_spatial = conv(cfg.in_channels, cfg.stem_width, (1, 3, 3), stride=(1, 2, 2),
                               padding=SPATIAL_PAD)
    self.stem_temporal = conv(cfg.stem_width, cfg.stem_width, (3, 1, 1), padding=TEMPORAL_PAD)
    widths = (cfg.stem_width,) + cfg.stage_widths
    self.stages = nn.ModuleList(Stage(widths[i], widths[i + 1], cfg.blocks_per_stage, cfg.expansion)
                                for i in range(len(cfg.stage_widths)))
    self.module = BottleneckTransformer(widths[-1], cfg)
    self.norm = layer_norm(widths[-1]) if cfg.head_norm == "layernorm" else nn.Identity()
    self.head = nn.Linear(widths[-1], cfg.num_classes)
    nn.init.zeros_(self.head.weight)
    nn.init.zeros_(self.head.bias)

  def forward(self, clips):
    out = {}
    x = gelu(channels_last(self.stem_spatial, clips))
    x = gelu(channels_last(self.stem_temporal, x))
    out["stem"] = x
    for i, stage in enumerate(self.stages):
      x = out[f"stage{i}"] = stage(x)
    x = out["module"] = self.module(x)
    x = out["pre_logits"] = pool_positions(self.norm(x), self.config.head_pool)  # Shape: [B, C].
    logits = out["logits"] = self.head(x)
    return logits, out
