"""Plain model configs, field-for-field identical in tokenlearner_jax and tokenlearner_torch.

Shape letters used across the package: B batch, T frames, H, W grid, N positions
(H*W), S learned tokens, C channels, M mixer tokens, K heads, D head dim.
"""
import dataclasses
from typing import Tuple

# Name -> (hidden_size, num_layers, num_heads, mlp_dim), as in the ViT paper.
VIT_SIZES = {
    "Ti": (192, 12, 3, 768),
    "S": (384, 12, 6, 1536),
    "B": (768, 12, 12, 3072),
    "L": (1024, 24, 16, 4096),
    "H": (1280, 32, 16, 5120),
}

TOKEN_REDUCTIONS = ("none", "tokenlearner", "pool")
TOKENLEARNER_VERSIONS = ("1.0", "1.1")
IMAGE_FUSERS = ("none", "tokenfuser", "unpool", "reprojection")
VIDEO_TOKENIZERS = ("all", "pool", "tokenlearner")
VIDEO_MIXERS = ("mhsa", "vectt", "prior")
VIDEO_FUSERS = ("none", "broadcast", "tokenfuser")
VIDEO_HEAD_POOLS = ("mean", "max")


def _check_choice(field: str, value: str, choices: Tuple[str, ...]) -> None:
  if value not in choices:
    raise ValueError(f"{field}={value!r} is not one of {choices}")


@dataclasses.dataclass(frozen=True)
class ViTConfig:
  """A ViT (pre-LN, no class token, GAP head) with optional token reduction.

  token_reduction='tokenlearner' with fuser='none' is "k-TL at L" of paper
  Figure 4(a): the tokens are reduced to `num_tokens` before block
  `tokenlearner_at` (0-based) and stay reduced. With a fuser (Figure 4(b)), every
  block from `tokenlearner_at` on runs as TokenLearner -> block -> fuser, plus a
  residual. token_reduction='pool' average-pools the grid by `pool_window`
  before each block listed in `pool_at`.
  """
  num_classes: int = 1000
  image_size: int = 224
  in_channels: int = 3
  patch_size: int = 16
  hidden_size: int = 768
  num_layers: int = 12
  num_heads: int = 12
  mlp_dim: int = 3072
  token_reduction: str = "none"
  num_tokens: int = 8
  tokenlearner_at: int = 0
  tokenlearner_version: str = "1.0"
  bottleneck_dim: int = 64  # hidden width of the TokenLearner v1.1 / TokenFuser MLPs
  fuser: str = "none"
  pool_at: Tuple[int, ...] = ()
  pool_window: int = 2

  def __post_init__(self):
    _check_choice("token_reduction", self.token_reduction, TOKEN_REDUCTIONS)
    _check_choice("tokenlearner_version", self.tokenlearner_version, TOKENLEARNER_VERSIONS)
    _check_choice("fuser", self.fuser, IMAGE_FUSERS)
    if self.image_size % self.patch_size:
      raise ValueError(f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}")
    if self.hidden_size % self.num_heads:
      raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
    if self.token_reduction == "tokenlearner" and not 0 <= self.tokenlearner_at < self.num_layers:
      raise ValueError(f"tokenlearner_at={self.tokenlearner_at} is outside the {self.num_layers} blocks")
    if self.fuser != "none" and self.token_reduction != "tokenlearner":
      raise ValueError(f"fuser={self.fuser!r} needs token_reduction='tokenlearner'")
    if self.fuser == "unpool" and self.tokenlearner_version != "1.0":
      raise ValueError("fuser='unpool' spreads tokens back with TokenLearner v1.0 maps")
    object.__setattr__(self, "pool_at", tuple(self.pool_at))
    if self.token_reduction == "pool":
      if not self.pool_at:
        raise ValueError("token_reduction='pool' needs a non-empty pool_at")
      grid = self.grid_size
      for at in sorted(self.pool_at):
        if not 0 <= at < self.num_layers:
          raise ValueError(f"pool_at entry {at} is outside the {self.num_layers} blocks")
        if grid % self.pool_window:
          raise ValueError(f"grid {grid}x{grid} before block {at} is not divisible by pool_window={self.pool_window}")
        grid //= self.pool_window

  @property
  def grid_size(self) -> int:
    return self.image_size // self.patch_size


def vit_config(variant: str, **overrides) -> ViTConfig:
  """Expands a size string such as 'L/16' into a ViTConfig."""
  size, _, patch = variant.partition("/")
  if size not in VIT_SIZES or not patch.isdigit():
    raise ValueError(f"unknown ViT variant {variant!r}; expected one of {sorted(VIT_SIZES)} '/<patch>'")
  hidden, layers, heads, mlp = VIT_SIZES[size]
  fields = dict(hidden_size=hidden, num_layers=layers, num_heads=heads, mlp_dim=mlp,
                patch_size=int(patch))
  fields.update(overrides)
  return ViTConfig(**fields)


@dataclasses.dataclass(frozen=True)
class VideoConfig:
  """The Table 2 model: a small X(2+1)D-style backbone with one bottleneck module.

  Backbone: a (2+1)D stem (spatial conv, stride 2, then temporal conv), then one
  stage per entry of `stage_widths`, each a strided spatial downsampling conv
  and `blocks_per_stage` (2+1)D residual blocks. After the last stage the
  inverted-bottleneck module runs: 1x1x1 expand to `module_width`, a per-frame
  3x3 Conv2D, a tokenizer per frame, a token mixer over the tokens of all frames,
  a fuser back to the per-frame grid, 1x1x1 project, residual. Head: LayerNorm,
  global pool over time and space (`head_pool`: average as X3D, or max), Dense to
  `num_classes` multi-label logits.
  """
  num_classes: int = 157
  num_frames: int = 64
  image_size: int = 224
  in_channels: int = 3
  stem_width: int = 24
  stage_widths: Tuple[int, ...] = (48, 96, 128, 128)
  blocks_per_stage: int = 1
  expansion: int = 4
  module_width: int = 492
  tokenizer: str = "tokenlearner"
  mixer: str = "vectt"
  fuser: str = "tokenfuser"
  num_tokens: int = 8  # per frame, for tokenizer 'pool' and 'tokenlearner'
  num_heads: int = 4  # MHSA and prior-only attention
  mlp_dim: int = 492  # MLP of the mixer's transformer layer
  bottleneck_dim: int = 64  # TokenFuser MLP hidden width
  vectt_qk_dim: int = 0  # 0: q, k in module_width and gamma is the softmax alone
  vectt_chunk_size: int = 0  # 0: naive [M, M, C] attention; else queries per chunk
  head_pool: str = "mean"  # 'max' where the objects cover a small part of the frame

  def __post_init__(self):
    _check_choice("tokenizer", self.tokenizer, VIDEO_TOKENIZERS)
    _check_choice("mixer", self.mixer, VIDEO_MIXERS)
    _check_choice("fuser", self.fuser, VIDEO_FUSERS)
    _check_choice("head_pool", self.head_pool, VIDEO_HEAD_POOLS)
    object.__setattr__(self, "stage_widths", tuple(self.stage_widths))
    if self.image_size % self.spatial_stride:
      raise ValueError(f"image_size={self.image_size} is not a multiple of the backbone stride {self.spatial_stride}")
    if self.tokenizer == "all" and self.fuser != "none":
      raise ValueError("tokenizer='all' keeps every position; it needs fuser='none'")
    if self.tokenizer != "all" and self.fuser == "none":
      raise ValueError(f"tokenizer={self.tokenizer!r} reduces the tokens; it needs a fuser")
    if self.fuser == "broadcast" and self.tokenizer != "pool":
      raise ValueError("fuser='broadcast' spreads fixed pooling regions back; it needs tokenizer='pool'")
    if self.tokenizer == "pool" and self.num_tokens > self.grid_size ** 2:
      raise ValueError(f"num_tokens={self.num_tokens} exceeds the {self.grid_size}x{self.grid_size} grid")
    if self.mixer != "vectt" and self.module_width % self.num_heads:
      raise ValueError(f"module_width={self.module_width} is not divisible by num_heads={self.num_heads}")

  @property
  def spatial_stride(self) -> int:
    return 2 ** (1 + len(self.stage_widths))

  @property
  def grid_size(self) -> int:
    return self.image_size // self.spatial_stride

  @property
  def tokens_per_frame(self) -> int:
    return self.grid_size ** 2 if self.tokenizer == "all" else self.num_tokens
