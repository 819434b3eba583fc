"""The twin configs: identical fields, and a clear error for each impossible value."""
import pytest

import tokenlearner_jax as tj
import tokenlearner_spec as spec
import tokenlearner_torch as tt
from tokenlearner_spec import FRAMEWORKS

from harness.configs import registry
from harness.twins import backends
from tokenlearner_jax import train_step as train_jax
from tokenlearner_torch import train_step as train_torch


def test_twins_build_from_the_one_spec():
  """Both twins take their configs from tokenlearner_spec: one definition, one validation."""
  for name in ("ViTConfig", "VideoConfig", "vit_config"):
    assert getattr(tj, name) is getattr(tt, name) is getattr(spec, name)
  assert train_jax.OptimizerConfig is train_torch.OptimizerConfig is spec.OptimizerConfig


BAD_VIT = [
    (dict(token_reduction="tokenlearner", tokenlearner_at=12, num_layers=12), "tokenlearner_at=12 is outside the 12 blocks"),
    (dict(token_reduction="learned"), "token_reduction='learned' is not one of"),
    (dict(fuser="tokenfuser"), "fuser='tokenfuser' needs token_reduction='tokenlearner'"),
    (dict(image_size=100, patch_size=16), "image_size=100 is not a multiple of patch_size=16"),
    (dict(token_reduction="pool", pool_at=(3,), pool_window=5), "not divisible by pool_window=5"),
    (dict(token_reduction="pool", pool_at=()), "needs a non-empty pool_at"),
    (dict(token_reduction="tokenlearner", fuser="unpool", tokenlearner_version="1.1"), "unpool"),
]


@pytest.mark.parametrize("impl", [tj, tt], ids=["jax", "torch"])
@pytest.mark.parametrize("fields,message", BAD_VIT, ids=[m for _, m in BAD_VIT])
def test_vit_config_rejects(impl, fields, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    impl.ViTConfig(**fields)


BAD_VIDEO = [
    (dict(tokenizer="all", fuser="tokenfuser"), "tokenizer='all' keeps every position"),
    (dict(tokenizer="pool", fuser="none"), "reduces the tokens; it needs a fuser"),
    (dict(tokenizer="tokenlearner", fuser="broadcast"), "needs tokenizer='pool'"),
    (dict(mixer="conv"), "mixer='conv' is not one of"),
    (dict(image_size=100), "not a multiple of the backbone stride 32"),
]


@pytest.mark.parametrize("impl", [tj, tt], ids=["jax", "torch"])
@pytest.mark.parametrize("fields,message", BAD_VIDEO, ids=[m for _, m in BAD_VIDEO])
def test_video_config_rejects(impl, fields, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    impl.VideoConfig(**fields)


def test_vit_variant_expansion():
  cfg = tj.vit_config("L/16", image_size=512)
  assert (cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.mlp_dim, cfg.patch_size) == (1024, 24, 16, 4096, 16)
  with pytest.raises(ValueError, match="variant='X/16' is not a ViT variant"):
    tj.vit_config("X/16")


def test_registry_names_every_paper_row():
  counts = {e: len(registry.rows(e)) for e in registry.EXPERIMENTS}
  assert counts == {"table1": 5, "figure1": 6, "table2": 7}
  for row in registry.rows():
    for scale in ("paper", "proxy"):
      fields = registry.model_fields(row.experiment, row.key, scale)
      for framework in FRAMEWORKS:
        backends.make_config(row.kind, fields)  # Validates.


def test_registry_paper_architectures():
  t1 = backends.make_config("vit", registry.model_fields("table1", "tl16_at_12", "paper"))
  assert (t1.num_layers, t1.hidden_size, t1.image_size, t1.num_tokens, t1.tokenlearner_at) == (24, 1024, 512, 16, 12)
  f1 = backends.make_config("vit", registry.model_fields("figure1", "unpool_tl8", "paper"))
  assert (f1.num_layers, f1.hidden_size, f1.image_size, f1.num_tokens, f1.fuser) == (12, 768, 384, 8, "unpool")
  t2 = backends.make_config("video", registry.model_fields("table2", "tl_vectt_tokenfuser", "paper"))
  assert (t2.num_frames, t2.grid_size, t2.stage_widths[-1], t2.module_width, t2.num_tokens) == (64, 7, 128, 492, 8)


def test_registry_unknown_names():
  with pytest.raises(KeyError, match="unknown experiment 'table9'"):
    registry.rows("table9")
  with pytest.raises(KeyError, match="unknown row 'nope' of table1"):
    registry.model_fields("table1", "nope", "proxy")
  with pytest.raises(KeyError, match="unknown scale 'huge'"):
    registry.model_fields("table1", "base", "huge")


def test_values_are_normalised_to_plain_types():
  """numpy integers and lists (from YAML) become ints and tuples; a number that reads as a
  choice becomes that choice; the config then hashes and compares as plain data."""
  import numpy as np
  cfg = spec.ViTConfig(num_layers=np.int64(4), token_reduction="pool", pool_at=[1, np.int32(2)],
                       image_size=32, patch_size=4, pool_window=2, tokenlearner_version=1.0)
  assert type(cfg.num_layers) is int and cfg.pool_at == (1, 2) and cfg.tokenlearner_version == "1.0"
  assert cfg == spec.ViTConfig(num_layers=4, token_reduction="pool", pool_at=(1, 2), image_size=32,
                               patch_size=4, pool_window=2)


@pytest.mark.parametrize("fields,message", [
    (dict(name="lamb"), "name='lamb' is not one of"),
    (dict(learning_rate=-1.0), "learning_rate=-1.0 is not a finite number > 0"),
    (dict(learning_rate=0), "learning_rate=0 is not a finite number > 0"),
    (dict(learning_rate=float("inf")), "learning_rate=inf is not a finite number > 0"),
    (dict(warmup_steps=2.5), "warmup_steps=2.5 is not an integer >= 0"),
    (dict(eps=float("nan")), "eps=nan is not a finite number > 0"),
    (dict(weight_decay=float("inf")), "weight_decay=inf is not a finite number >= 0"),
    (dict(momentum=1.0), "momentum=1.0 is not below 1"),
    (dict(b1=1.5), "b1=1.5 is not below 1"),
    (dict(b2=-0.1), "b2=-0.1 is not a finite number >= 0"),
    (dict(label_smoothing=5), "label_smoothing=5.0 is not below 1"),
])
def test_optimizer_config_rejects(fields, message):
  with pytest.raises(ValueError, match=message):
    spec.OptimizerConfig(**fields)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64, 1.5, True])
def test_seeds_are_those_both_generators_tell_apart(seed):
  with pytest.raises(ValueError, match=r"is not an integer in \[0, 4294967295\]"):
    spec.check_seed(seed)
  spec.check_seed(spec.MAX_SEED)


def test_model_config_names_an_unknown_field():
  with pytest.raises(ValueError, match="VideoConfig has no field num_layers"):
    spec.model_config("video", dict(num_layers=3))
  with pytest.raises(ValueError, match="model kind 'audio' is not one of"):
    spec.model_config("audio", {})


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.2"])
def test_dropout_rate_is_a_probability_below_one(rate):
  for cls, fields in ((spec.ViTConfig, {}), (spec.VideoConfig, {})):
    with pytest.raises(ValueError, match="dropout_rate"):
      cls(dropout_rate=rate, **fields)
