"""The model and optimizer configs both twins build from, validated completely on construction.

A config that constructs is one both frameworks can build and train: every size
is a positive integer, heads divide widths, token counts fit the positions they
reduce, pooling windows divide the grid. A bad value raises ValueError with one
line naming the field and the value, before any model exists.

Shape letters used across the twins: B batch, T frames, H, W grid, N positions
(H*W), S learned tokens, C channels, M mixer tokens, K heads, D head dim.
"""
import dataclasses
import math
import numbers
from typing import Any, Mapping, Optional, Tuple

from tokenlearner_spec.pooling import region_layout
from tokenlearner_spec.precision import PRECISIONS

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
VIDEO_HEAD_NORMS = ("layernorm", "none")
OPTIMIZERS = ("sgd", "adamw")
MODEL_KINDS = ("vit", "video")
# A run's seeds: JAX's PRNGKey keeps only the low 32 bits of a seed (64-bit types off), so two
# seeds that differ above them would draw the same JAX weights and dropout; torch.manual_seed
# and numpy's generators take this range too.
MAX_SEED = 2**32 - 1


def check_step(precision: str, micro_batches: int, batch_size: Optional[int] = None) -> None:
  """What both twins' make_train_step accept: a known precision, and (with batch_size) a batch
  that splits into `micro_batches` equal parts (unequal parts would weigh examples unequally)."""
  if precision not in PRECISIONS:
    raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
  if micro_batches < 1 or (batch_size is not None and batch_size % micro_batches):
    raise ValueError(f"a batch of {batch_size} does not split into {micro_batches} equal micro-batches"
                     if batch_size is not None else f"micro_batches={micro_batches} must be >= 1")


def check_seed(seed) -> None:
  """A run's seed is an integer in [0, MAX_SEED], the range both twins' generators tell apart."""
  if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
    raise ValueError(f"seed={seed!r} is not an integer in [0, {MAX_SEED}] (2**32 - 1: JAX keys keep 32 bits)")


def _set(config, field: str, value) -> None:
  object.__setattr__(config, field, value)  # Normalising a frozen dataclass's own field.


def _integer(config, field: str, minimum: int) -> None:
  """The field is an integer >= minimum (bool and 2.5 are not); stored as a plain int."""
  value = getattr(config, field)
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
    raise ValueError(f"{field}={value!r} is not an integer >= {minimum}")
  _set(config, field, int(value))


def _integers(config, field: str, minimum: int) -> None:
  """A sequence of integers >= minimum, stored as a tuple."""
  values = getattr(config, field)
  if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
    raise ValueError(f"{field}={values!r} is not a list of integers")
  values = tuple(values)
  for v in values:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
      raise ValueError(f"{field}={list(values)!r} holds {v!r}, not an integer >= {minimum}")
  _set(config, field, tuple(int(v) for v in values))


def _choice(config, field: str, choices: Tuple[str, ...]) -> None:
  """The field is one of `choices`; a number that reads as one (1.1 typed on a command
  line for '1.1') is taken as it."""
  value = getattr(config, field)
  if isinstance(value, numbers.Real) and not isinstance(value, bool) and str(value) in choices:
    value = str(value)
  if not isinstance(value, str) or value not in choices:
    raise ValueError(f"{field}={value!r} is not one of {choices}")
  _set(config, field, value)


def _number(config, field: str, minimum: float, positive: bool = False) -> None:
  """The field is a finite number >= minimum (> minimum if `positive`); stored as a float."""
  value = getattr(config, field)
  if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
      or not value >= minimum or (positive and value == minimum)):
    raise ValueError(f"{field}={value!r} is not a finite number {'>' if positive else '>='} {minimum}")
  _set(config, field, float(value))


def _rate(config, field: str) -> None:
  """A number in [0, 1): a dropout rate, a momentum, a decay of Adam's moments, a smoothing."""
  _number(config, field, 0.0)
  if not getattr(config, field) < 1.0:
    raise ValueError(f"{field}={getattr(config, field)!r} is not below 1")


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
  dropout_rate: float = 0.0  # TokenLearner v1.1 and TokenFuser, where the official modules drop
  fuser: str = "none"
  pool_at: Tuple[int, ...] = ()
  pool_window: int = 2

  def __post_init__(self):
    _choice(self, "token_reduction", TOKEN_REDUCTIONS)
    _choice(self, "tokenlearner_version", TOKENLEARNER_VERSIONS)
    _choice(self, "fuser", IMAGE_FUSERS)
    for field in ("num_classes", "image_size", "in_channels", "patch_size", "hidden_size",
                  "num_layers", "num_heads", "mlp_dim", "num_tokens", "bottleneck_dim",
                  "pool_window"):
      _integer(self, field, 1)
    _integer(self, "tokenlearner_at", 0)
    _integers(self, "pool_at", 0)
    _rate(self, "dropout_rate")
    if self.image_size % self.patch_size:
      raise ValueError(f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}")
    if self.hidden_size % self.num_heads:
      raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
    if self.fuser != "none" and self.token_reduction != "tokenlearner":
      raise ValueError(f"fuser={self.fuser!r} needs token_reduction='tokenlearner'")
    if self.token_reduction == "tokenlearner":
      if self.tokenlearner_at >= self.num_layers:
        raise ValueError(f"tokenlearner_at={self.tokenlearner_at} is outside the {self.num_layers} blocks")
      positions = self.grid_size ** 2
      if self.num_tokens > positions:
        raise ValueError(f"num_tokens={self.num_tokens} exceeds the {positions} positions it reduces")
    if self.fuser == "unpool" and self.tokenlearner_version != "1.0":
      raise ValueError("fuser='unpool' spreads tokens back with TokenLearner v1.0 maps; "
                       f"tokenlearner_version={self.tokenlearner_version!r}")
    if self.token_reduction != "pool" and self.pool_at:
      raise ValueError(f"pool_at={list(self.pool_at)} needs token_reduction='pool'")
    if self.token_reduction == "pool":
      self._check_pooling()

  def _check_pooling(self) -> None:
    if not self.pool_at:
      raise ValueError("token_reduction='pool' needs a non-empty pool_at")
    if len(set(self.pool_at)) != len(self.pool_at):
      raise ValueError(f"pool_at={list(self.pool_at)} lists a block twice")
    grid = self.grid_size
    for at in sorted(self.pool_at):
      if at >= self.num_layers:
        raise ValueError(f"pool_at entry {at} is outside the {self.num_layers} blocks")
      if grid % self.pool_window:
        raise ValueError(f"grid {grid}x{grid} before block {at} is not divisible by pool_window={self.pool_window}")
      grid //= self.pool_window

  @property
  def grid_size(self) -> int:
    return self.image_size // self.patch_size


def vit_config(variant: str, **overrides) -> ViTConfig:
  """Expands a size string such as 'L/16' into a ViTConfig."""
  size, _, patch = str(variant).partition("/")
  if size not in VIT_SIZES or not patch.isdigit():
    raise ValueError(f"variant={variant!r} is not a ViT variant; expected one of {sorted(VIT_SIZES)} '/<patch>'")
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
  LayerNorm (`head_norm`), global pool over time and space (`head_pool`: average as X3D, or max), Dense to
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
  dropout_rate: float = 0.0  # TokenFuser, where the official module drops
  vectt_qk_dim: int = 0  # 0: q, k in module_width and gamma is the softmax alone
  vectt_chunk_size: int = 0  # 0: naive [M, M, C] attention; else queries per chunk
  head_pool: str = "mean"  # 'max' where the objects cover a small part of the frame
  head_norm: str = "layernorm"  # 'none': no LayerNorm before the pool (see the proxy's table2.yaml)

  def __post_init__(self):
    _choice(self, "tokenizer", VIDEO_TOKENIZERS)
    _choice(self, "mixer", VIDEO_MIXERS)
    _choice(self, "fuser", VIDEO_FUSERS)
    _choice(self, "head_pool", VIDEO_HEAD_POOLS)
    _choice(self, "head_norm", VIDEO_HEAD_NORMS)
    for field in ("num_classes", "num_frames", "image_size", "in_channels", "stem_width",
                  "expansion", "module_width", "num_tokens", "num_heads", "mlp_dim",
                  "bottleneck_dim"):
      _integer(self, field, 1)
    for field in ("blocks_per_stage", "vectt_qk_dim", "vectt_chunk_size"):
      _integer(self, field, 0)
    _rate(self, "dropout_rate")
    _integers(self, "stage_widths", 1)
    if self.image_size % self.spatial_stride:
      raise ValueError(f"image_size={self.image_size} is not a multiple of the backbone stride {self.spatial_stride}")
    if self.tokenizer == "all" and self.fuser != "none":
      raise ValueError("tokenizer='all' keeps every position; it needs fuser='none'")
    if self.tokenizer != "all" and self.fuser == "none":
      raise ValueError(f"tokenizer={self.tokenizer!r} reduces the tokens; it needs a fuser")
    if self.fuser == "broadcast" and self.tokenizer != "pool":
      raise ValueError("fuser='broadcast' spreads fixed pooling regions back; it needs tokenizer='pool'")
    positions = self.grid_size ** 2
    if self.tokenizer != "all" and self.num_tokens > positions:
      raise ValueError(f"num_tokens={self.num_tokens} exceeds the {self.grid_size}x{self.grid_size} grid")
    if self.tokenizer == "pool":
      region_layout(self.grid_size, self.num_tokens)
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


def model_config(kind: str, fields: Mapping[str, Any]):
  """A plain field dict -> ViTConfig (kind 'vit'; a 'variant' such as 'B/16' is expanded)
  or VideoConfig (kind 'video'). An unknown field is a ValueError naming it."""
  if kind not in MODEL_KINDS:
    raise ValueError(f"model kind {kind!r} is not one of {MODEL_KINDS}")
  fields = dict(fields)
  cls = ViTConfig if kind == "vit" else VideoConfig
  known = {f.name for f in dataclasses.fields(cls)} | ({"variant"} if kind == "vit" else set())
  unknown = sorted(set(fields) - known)
  if unknown:
    raise ValueError(f"{cls.__name__} has no field {', '.join(unknown)}")
  variant = fields.pop("variant", None)
  return vit_config(variant, **fields) if variant else cls(**fields)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """SGD with momentum or AdamW, linear warm-up then cosine decay (total_steps 0: constant)."""
  name: str = "adamw"
  learning_rate: float = 1e-3
  momentum: float = 0.9  # sgd
  b1: float = 0.9  # adamw
  b2: float = 0.999
  eps: float = 1e-8
  weight_decay: float = 0.0  # decoupled for adamw, added to the gradient for sgd
  warmup_steps: int = 0
  total_steps: int = 0
  grad_clip_norm: float = 0.0  # 0: no clipping
  label_smoothing: float = 0.0

  def __post_init__(self):
    _choice(self, "name", OPTIMIZERS)
    for field in ("learning_rate", "eps"):
      _number(self, field, 0.0, positive=True)
    for field in ("weight_decay", "grad_clip_norm"):
      _number(self, field, 0.0)
    for field in ("momentum", "b1", "b2", "label_smoothing"):
      _rate(self, field)
    _integer(self, "warmup_steps", 0)
    _integer(self, "total_steps", 0)
