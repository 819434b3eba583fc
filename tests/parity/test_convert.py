"""Weight conversion refuses a missing, unexpected or wrongly shaped weight, naming it."""
import jax
import numpy as np
import pytest

from harness.twins import backends
from harness.configs import registry
from harness.twins.convert import ConversionError, jax_to_torch, torch_key, torch_to_jax

FIELDS = registry.model_fields("figure1", "tokenfuser_tl8", "proxy")


@pytest.fixture(scope="module")
def models():
  flax_model = backends.build("jax", "vit", FIELDS)
  torch_model = backends.build("torch", "vit", FIELDS)
  x = np.zeros(backends.input_shape("vit", flax_model.config, 1), np.float32)
  params = flax_model.init(jax.random.PRNGKey(0), x)
  return params, torch_model


def test_leaf_rules():
  assert torch_key(("blocks_3", "attn", "query", "kernel"), 2) == ("blocks.3.attn.query.weight", (1, 0))
  assert torch_key(("embedding", "kernel"), 4) == ("embedding.weight", (3, 2, 0, 1))
  assert torch_key(("stem_temporal", "kernel"), 5) == ("stem_temporal.weight", (4, 3, 0, 1, 2))
  assert torch_key(("encoder_norm", "scale"), 1) == ("encoder_norm.weight", None)
  assert torch_key(("pos_embedding",), 3) == ("pos_embedding", None)


def test_jax_to_torch_missing(models):
  params, torch_model = models
  inner = dict(params["params"])
  del inner["head"]
  with pytest.raises(ConversionError, match=r"missing weight: torch head\.(bias|weight)"):
    jax_to_torch({"params": inner}, torch_model.state_dict())


def test_jax_to_torch_unexpected(models):
  params, torch_model = models
  inner = {**params["params"], "extra_layer": {"kernel": np.zeros((2, 2), np.float32)}}
  with pytest.raises(ConversionError, match=r"unexpected weight: Flax extra_layer/kernel"):
    jax_to_torch({"params": inner}, torch_model.state_dict())


def test_jax_to_torch_wrong_shape(models):
  params, torch_model = models
  inner = dict(params["params"])
  inner["head"] = {**inner["head"], "kernel": np.zeros((3, 10), np.float32)}
  with pytest.raises(ConversionError, match=r"wrong shape: Flax head/kernel \(3, 10\)"):
    jax_to_torch({"params": inner}, torch_model.state_dict())


def test_torch_to_jax_missing(models):
  params, torch_model = models
  state = dict(torch_model.state_dict())
  del state["blocks.4.mlp.fc1.weight"]
  with pytest.raises(ConversionError, match=r"missing weight: Flax blocks_4/mlp/fc1/kernel needs torch blocks\.4\.mlp\.fc1\.weight"):
    torch_to_jax(state, params)


def test_torch_to_jax_unexpected(models):
  params, torch_model = models
  state = {**torch_model.state_dict(), "fusers.9.norm.weight": np.ones(3, np.float32)}
  with pytest.raises(ConversionError, match=r"unexpected weight: torch fusers\.9\.norm\.weight"):
    torch_to_jax(state, params)


def test_torch_to_jax_wrong_shape(models):
  params, torch_model = models
  state = {**torch_model.state_dict(), "pos_embedding": np.zeros((1, 3, 64), np.float32)}
  with pytest.raises(ConversionError, match=r"wrong shape: torch pos_embedding"):
    torch_to_jax(state, params)
