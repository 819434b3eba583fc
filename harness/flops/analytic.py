"""Analytic multiply-add counts of every model, from its config alone.

The paper's GFLOPs count one multiply-add as one FLOP. This counter counts the
multiply-adds of matrix products and convolutions (every kernel position,
padding included, as torch's counter does) and nothing elementwise: norms,
activations, softmaxes, residual adds, pooling averages and VectT's q * k
products are left to the XLA counter's separate elementwise column.

It is written from the architecture (the supplementary's descriptions), not from the
two implementations, so that agreeing with both framework counters checks all
three. Counts are per example; each model returns them by component.
"""
from collections import Counter
from typing import Dict

# --- Building blocks. n: positions or tokens; c: channels. -----------------------


def dense(n: int, c_in: int, c_out: int) -> int:
  return n * c_in * c_out


def conv(out_positions: int, kernel_volume: int, c_in: int, c_out: int, groups: int = 1) -> int:
  return out_positions * kernel_volume * (c_in // groups) * c_out


def mlp(n: int, c: int, hidden: int, c_out: int = 0) -> int:
  return dense(n, c, hidden) + dense(n, hidden, c_out or c)


def attention(n_q: int, n_kv: int, c: int) -> int:
  """Multi-head attention: q, k, v, out projections, q.k logits and the weighted sum of v."""
  return 2 * dense(n_q, c, c) + 2 * dense(n_kv, c, c) + 2 * n_q * n_kv * c


def encoder_block(n: int, c: int, mlp_dim: int) -> int:
  return attention(n, n, c) + mlp(n, c, mlp_dim)


def tokenlearner_v10(grid: int, c: int, s: int) -> int:
  """Four 3x3 convs (C -> S, then S -> S), then S weighted sums over the positions."""
  n = grid * grid
  return conv(n, 9, c, s) + 3 * conv(n, 9, s, s) + n * s * c


def tokenlearner_v11(n: int, c: int, s: int, bottleneck: int) -> int:
  return mlp(n, c, bottleneck, s) + n * s * c


def tokenfuser(n: int, c: int, s: int, bottleneck: int) -> int:
  """Dense over the token axis (S -> S per channel), the MLP giving [N, S] weights, their sum."""
  return c * s * s + mlp(n, c, bottleneck, s) + n * s * c


def reprojection(n: int, c: int, s: int) -> int:
  """Cross-attention from the N full-resolution tokens to the S learned ones."""
  return attention(n, s, c)


# --- Models. --------------------------------------------------------------------


def vit(cfg) -> Dict[str, int]:
  """Multiply-adds of a ViTConfig, by component."""
  c, s = cfg.hidden_size, cfg.num_tokens
  grid = cfg.grid_size
  n = grid * grid
  macs = Counter(embedding=conv(n, cfg.patch_size ** 2, cfg.in_channels, c))
  learn = cfg.token_reduction == "tokenlearner"
  for i in range(cfg.num_layers):
    if cfg.token_reduction == "pool" and i in cfg.pool_at:
      grid //= cfg.pool_window
      n = grid * grid
    if learn and i >= cfg.tokenlearner_at and (cfg.fuser != "none" or i == cfg.tokenlearner_at):
      if cfg.tokenlearner_version == "1.0":
        macs["tokenlearner"] += tokenlearner_v10(grid, c, s)
      else:
        macs["tokenlearner"] += tokenlearner_v11(n, c, s, cfg.bottleneck_dim)
    if learn and i >= cfg.tokenlearner_at:
      macs["blocks"] += encoder_block(s, c, cfg.mlp_dim)
      if cfg.fuser == "tokenfuser":
        macs["fuser"] += tokenfuser(n, c, s, cfg.bottleneck_dim)
      elif cfg.fuser == "unpool":
        macs["fuser"] += n * s * c
      elif cfg.fuser == "reprojection":
        macs["fuser"] += reprojection(n, c, s)
    else:
      macs["blocks"] += encoder_block(n, c, cfg.mlp_dim)
  macs["head"] = dense(1, c, cfg.num_classes)
  return dict(macs)


def video(cfg) -> Dict[str, int]:
  """Multiply-adds of a VideoConfig, by component (the module split into its parts)."""
  t, size = cfg.num_frames, cfg.image_size // 2
  positions = t * size * size
  macs = Counter()
  macs["stem"] = conv(positions, 9, cfg.in_channels, cfg.stem_width) + conv(
      positions, 3, cfg.stem_width, cfg.stem_width)
  width = cfg.stem_width
  for stage_width in cfg.stage_widths:
    size //= 2
    positions = t * size * size
    macs["backbone"] += conv(positions, 9, width, stage_width)
    width, e = stage_width, stage_width * cfg.expansion
    per_block = dense(positions, width, e) + conv(positions, 9, e, e, groups=e) + conv(
        positions, 3, e, e, groups=e) + dense(positions, e, width)
    macs["backbone"] += cfg.blocks_per_stage * per_block

  e, n, s = cfg.module_width, size * size, cfg.tokens_per_frame
  m = t * s  # Tokens the mixer sees.
  macs["module_expand"] = dense(t * n, width, e)
  macs["module_conv2d"] = conv(t * n, 9, e, e)
  if cfg.tokenizer == "pool":
    macs["module_tokenizer"] = t * n * s * e
  elif cfg.tokenizer == "tokenlearner":
    macs["module_tokenizer"] = t * tokenlearner_v10(size, e, s)
  if cfg.mixer == "mhsa":
    mix = attention(m, m, e)
  elif cfg.mixer == "vectt":
    dk = cfg.vectt_qk_dim or e
    gamma = m * m * dk * e if cfg.vectt_qk_dim else 0
    mix = 2 * dense(m, e, dk) + 2 * dense(m, e, e) + gamma + m * m * e
  else:  # Prior-only: value and out projections, softmax(P) @ V per head.
    mix = 2 * dense(m, e, e) + m * m * e
  macs["module_mixer"] = mix + mlp(m, e, cfg.mlp_dim)
  if cfg.fuser == "broadcast":
    macs["module_fuser"] = t * n * s * e
  elif cfg.fuser == "tokenfuser":
    macs["module_fuser"] = t * tokenfuser(n, e, s, cfg.bottleneck_dim)
  macs["module_project"] = dense(t * n, e, width)
  macs["head"] = dense(1, width, cfg.num_classes)
  return dict(macs)


def count(kind: str, cfg) -> Dict[str, int]:
  if kind == "vit":
    return vit(cfg)
  if kind == "video":
    return video(cfg)
  raise ValueError(f"unknown model kind {kind!r}")
