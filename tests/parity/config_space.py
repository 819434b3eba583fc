"""A seeded generator over both model families' config space: valid configs, and invalid ones.

`valid(seed)` draws a small ViT or video config (every token reduction, fuser,
TokenLearner version, tokenizer/mixer/fuser wiring, head pool, odd token counts,
chunk sizes that need not divide the token count). `invalid(seed)` draws a valid
config and breaks it in one drawn way, naming the field the error must name. A
seed always gives the same config, so a CI run never meets a new draw.

A hand-written generator rather than hypothesis: every draw costs a JAX
compilation, so the suite wants a fixed, small, enumerable set of cases (one
pytest id and one results/parity.csv row each), not a search that shrinks.
"""
import random
from typing import Callable, Dict, List, Optional, Tuple

from tokenlearner_spec import config as spec
from tokenlearner_spec.pooling import region_layout

Fields = Dict[str, object]
# LayerNorm over C channels divides by their standard deviation, which over few channels
# comes close to zero (for C = 2 it is |x1 - x2| / 2): such a model is ill-conditioned
# and amplifies float32 round-off. Measured: a 2-wide video stage gave a forward
# difference of 5x the tolerance (and JAX disagreed with itself between jit and op by
# op); 4-wide ViTs gave 1.1-1.3x, where float32 JAX and float32 PyTorch were each
# ~1e-5 from a float64 evaluation of the same weights. Widths that a LayerNorm
# normalises are drawn from MIN_NORMED_WIDTH up.
MIN_NORMED_WIDTH = 8


def _width(rng: random.Random, heads: int) -> int:
  """A multiple of `heads`, at least MIN_NORMED_WIDTH, at most 4 channels per head beyond it."""
  least = -(-MIN_NORMED_WIDTH // heads)  # Ceiling division.
  return heads * rng.randint(least, least + 3)


def _vit(rng: random.Random) -> Fields:
  grid, patch = rng.choice([2, 3, 4]), rng.choice([1, 2, 4])
  heads = rng.randint(1, 12) if rng.random() < 0.2 else rng.randint(1, 4)
  layers = rng.randint(1, 4)
  fields = dict(num_classes=rng.randint(1, 6), image_size=grid * patch, patch_size=patch,
                in_channels=rng.randint(1, 3), hidden_size=_width(rng, heads),
                num_layers=layers, num_heads=heads, mlp_dim=rng.randint(1, 12),
                token_reduction=rng.choice(spec.TOKEN_REDUCTIONS))
  if fields["token_reduction"] == "tokenlearner":
    version = rng.choice(spec.TOKENLEARNER_VERSIONS)
    fuser = rng.choice([f for f in spec.IMAGE_FUSERS if version == "1.0" or f != "unpool"])
    fields.update(tokenlearner_version=version, fuser=fuser, num_tokens=rng.randint(1, grid * grid),
                  tokenlearner_at=rng.choice([0, layers - 1, rng.randrange(layers)]),
                  bottleneck_dim=rng.randint(1, 8))
  elif fields["token_reduction"] == "pool":
    window = rng.choice([w for w in (2, 3, 4) if grid % w == 0])
    pools, g = 0, grid
    while g % window == 0:
      pools, g = pools + 1, g // window
    count = rng.randint(1, min(pools, layers))
    fields.update(pool_window=window, pool_at=tuple(sorted(rng.sample(range(layers), count))))
  return fields


def _video(rng: random.Random) -> Fields:
  stages = rng.choice([0, 0, 1, 1, 2])
  grid = rng.choice([1, 2, 2, 3])
  heads = rng.randint(1, 3)
  tokenizer = rng.choice(spec.VIDEO_TOKENIZERS)
  if tokenizer == "all":
    fuser = "none"
  elif tokenizer == "pool":
    fuser = rng.choice(["broadcast", "tokenfuser"])
  else:
    fuser = "tokenfuser"
  if tokenizer == "pool":
    tokens = rng.choice([s for s in range(1, grid * grid + 1) if _fits(grid, s)])
  else:
    tokens = rng.randint(1, grid * grid)
  frames = rng.randint(1, 3)
  mixer_tokens = frames * (grid * grid if tokenizer == "all" else tokens)
  return dict(
      num_classes=rng.randint(1, 4), num_frames=frames, image_size=grid * 2 ** (1 + stages),
      in_channels=rng.randint(1, 2), stem_width=rng.randint(MIN_NORMED_WIDTH, MIN_NORMED_WIDTH + 4),
      stage_widths=tuple(rng.randint(MIN_NORMED_WIDTH, MIN_NORMED_WIDTH + 4) for _ in range(stages)),
      blocks_per_stage=rng.randint(0, 2), expansion=rng.randint(1, 2),
      module_width=_width(rng, heads), tokenizer=tokenizer,
      mixer=rng.choice(spec.VIDEO_MIXERS), fuser=fuser, num_tokens=tokens, num_heads=heads,
      mlp_dim=rng.randint(1, 8), bottleneck_dim=rng.randint(1, 4),
      vectt_qk_dim=rng.choice([0, 0, rng.randint(1, 4)]),
      vectt_chunk_size=rng.choice([0, rng.randint(1, mixer_tokens)]),
      head_pool=rng.choice(["max", "max", "mean"]), head_norm=rng.choice(spec.VIDEO_HEAD_NORMS))


def _fits(grid: int, tokens: int) -> bool:
  try:
    region_layout(grid, tokens)
    return True
  except ValueError:
    return False


def valid(seed: int, kind: Optional[str] = None) -> Tuple[str, Fields]:
  """(kind, fields) of a config that both twins must build and agree on."""
  rng = random.Random(seed)
  kind = kind or rng.choice(spec.MODEL_KINDS)
  fields = _vit(rng) if kind == "vit" else _video(rng)
  spec.model_config(kind, fields)  # A draw the spec refuses is a bug of this generator.
  return kind, fields


# Ways to break a config: (kind or None for both, name, fn(fields, rng) -> (changes, field the
# error must name) or None where the way does not apply to the drawn config).
Breaker = Callable[[Fields, random.Random], Optional[Tuple[Fields, str]]]

SIZE_FIELDS = {
    "vit": ("num_classes", "image_size", "in_channels", "patch_size", "hidden_size", "num_layers",
            "num_heads", "mlp_dim", "num_tokens", "bottleneck_dim", "pool_window"),
    "video": ("num_classes", "num_frames", "image_size", "in_channels", "stem_width", "expansion",
              "module_width", "num_tokens", "num_heads", "mlp_dim", "bottleneck_dim"),
}
CHOICE_FIELDS = {
    "vit": ("token_reduction", "tokenlearner_version", "fuser"),
    "video": ("tokenizer", "mixer", "fuser", "head_pool", "head_norm"),
}


def _size(kind: str, bad: Callable[[random.Random], object]) -> Breaker:
  def breaker(fields, rng):
    field = rng.choice(SIZE_FIELDS[kind])
    return {field: bad(rng)}, field
  return breaker


def _unknown_choice(kind: str) -> Breaker:
  def breaker(fields, rng):
    field = rng.choice(CHOICE_FIELDS[kind])
    return {field: "nonsense"}, field
  return breaker


def _when(predicate, changes: Callable[[Fields, random.Random], Tuple[Fields, str]]) -> Breaker:
  return lambda fields, rng: changes(fields, rng) if predicate(fields) else None


def _vit_positions(f):
  return (f["image_size"] // f["patch_size"]) ** 2


def _video_grid(f):
  return f["image_size"] // 2 ** (1 + len(f["stage_widths"]))


BREAKERS: List[Tuple[str, str, Breaker]] = [
    *[(kind, name, _size(kind, bad)) for kind in ("vit", "video") for name, bad in (
        ("zero size", lambda rng: 0),
        ("negative size", lambda rng: -rng.randint(1, 5)),
        ("fractional size", lambda rng: rng.randint(1, 5) + 0.5),
        ("boolean size", lambda rng: True),
        ("text size", lambda rng: "four"))],
    *[(kind, "unknown choice", _unknown_choice(kind)) for kind in ("vit", "video")],
    ("vit", "heads do not divide the width", lambda f, rng: (
        {"num_heads": f["hidden_size"] + 1}, "num_heads")),
    ("vit", "image not a multiple of the patch", _when(
        lambda f: f["patch_size"] > 1, lambda f, rng: ({"image_size": f["image_size"] + 1}, "image_size"))),
    ("vit", "TokenLearner past the last block", _when(
        lambda f: f["token_reduction"] == "tokenlearner",
        lambda f, rng: ({"tokenlearner_at": f["num_layers"] + rng.randint(0, 2)}, "tokenlearner_at"))),
    ("vit", "more tokens than positions", _when(
        lambda f: f["token_reduction"] == "tokenlearner",
        lambda f, rng: ({"num_tokens": _vit_positions(f) + rng.randint(1, 3)}, "num_tokens"))),
    ("vit", "negative TokenLearner block", _when(
        lambda f: f["token_reduction"] == "tokenlearner",
        lambda f, rng: ({"tokenlearner_at": -1}, "tokenlearner_at"))),
    ("vit", "fuser without TokenLearner", lambda f, rng: (
        {"token_reduction": "none", "fuser": "tokenfuser", "pool_at": ()}, "fuser")),
    ("vit", "unpool with TokenLearner v1.1", lambda f, rng: (
        {"token_reduction": "tokenlearner", "fuser": "unpool", "tokenlearner_version": "1.1",
         "num_tokens": 1, "tokenlearner_at": 0, "pool_at": ()}, "unpool")),
    ("vit", "a block pooled twice", _when(
        lambda f: f["token_reduction"] == "pool",
        lambda f, rng: ({"pool_at": (f["pool_at"][0], f["pool_at"][0])}, "pool_at"))),
    ("vit", "pooling past the last block", _when(
        lambda f: f["token_reduction"] == "pool",
        lambda f, rng: ({"pool_at": (f["num_layers"],)}, "pool_at"))),
    ("vit", "pooling window not dividing the grid", _when(
        lambda f: f["token_reduction"] == "pool",
        lambda f, rng: ({"pool_window": f["image_size"] // f["patch_size"] + 1}, "pool_window"))),
    ("vit", "pooling without token_reduction='pool'", lambda f, rng: (
        {"token_reduction": "none", "fuser": "none", "pool_at": (0,)}, "pool_at")),
    ("vit", "pool_at not a list", _when(
        lambda f: f["token_reduction"] == "pool", lambda f, rng: ({"pool_at": 0}, "pool_at"))),
    ("video", "image not a multiple of the stride", lambda f, rng: (
        {"image_size": f["image_size"] + 1}, "image_size")),
    ("video", "heads do not divide the module width", lambda f, rng: (
        {"mixer": rng.choice(["mhsa", "prior"]), "num_heads": f["module_width"] + 1}, "num_heads")),
    ("video", "more tokens than positions", _when(
        lambda f: f["tokenizer"] != "all",
        lambda f, rng: ({"num_tokens": _video_grid(f) ** 2 + rng.randint(1, 3)}, "num_tokens"))),
    ("video", "pooling regions wider than the grid", lambda f, rng: (
        {"tokenizer": "pool", "fuser": "broadcast", "image_size": 3 * 2 ** (1 + len(f["stage_widths"])),
         "num_tokens": 7}, "num_tokens")),
    ("video", "a reducing tokenizer without a fuser", lambda f, rng: (
        {"tokenizer": rng.choice(["pool", "tokenlearner"]), "fuser": "none"}, "fuser")),
    ("video", "every position with a fuser", lambda f, rng: (
        {"tokenizer": "all", "fuser": rng.choice(["broadcast", "tokenfuser"])}, "fuser")),
    ("video", "broadcast without pooling", lambda f, rng: (
        {"tokenizer": "tokenlearner", "fuser": "broadcast"}, "broadcast")),
    ("video", "negative chunk size", lambda f, rng: ({"vectt_chunk_size": -rng.randint(1, 4)},
                                                     "vectt_chunk_size")),
    ("video", "negative VectT q/k width", lambda f, rng: ({"vectt_qk_dim": -1}, "vectt_qk_dim")),
    ("video", "negative blocks per stage", lambda f, rng: ({"blocks_per_stage": -1}, "blocks_per_stage")),
    ("video", "a stage of width zero", lambda f, rng: (
        {"stage_widths": tuple(f["stage_widths"]) + (0,)}, "stage_widths")),
]


def invalid(seed: int) -> Tuple[str, Fields, str, str]:
  """(kind, fields, field the error must name, the way it was broken) of a refused config."""
  rng = random.Random(10 ** 6 + seed)
  while True:
    kind, fields = valid(rng.randrange(10 ** 9))
    breakers = [(name, b) for k, name, b in BREAKERS if k == kind]
    name, breaker = rng.choice(breakers)
    broken = breaker(fields, rng)
    if broken is not None:
      changes, named = broken
      return kind, {**fields, **changes}, named, name
