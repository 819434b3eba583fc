"""The only harness module that imports both implementations: builds a registered row's
model in either framework and moves weights between them."""
import importlib
from typing import Dict, Mapping

import numpy as np
from tokenlearner_spec import FRAMEWORKS, model_config


def _impl(framework: str):
  if framework == "jax":
    import tokenlearner_jax as impl
  elif framework == "torch":
    import tokenlearner_torch as impl
  else:
    raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")
  return impl


def train_step_module(framework: str):
  """That framework's train_step module (OptimizerConfig, make_train_step, losses)."""
  return importlib.import_module(f"{_impl(framework).__name__}.train_step")


def make_config(kind: str, fields: Mapping):
  """Plain field dict -> the ViTConfig or VideoConfig both frameworks build from, validated."""
  return model_config(kind, fields)


def build(framework: str, kind: str, fields: Mapping):
  """Builds the (uninitialised Flax / freshly initialised torch) model of a config."""
  return _impl(framework).build_model(make_config(kind, fields))


def input_shape(kind: str, config, batch: int = 2):
  if kind == "vit":
    return (batch, config.image_size, config.image_size, config.in_channels)
  return (batch, config.num_frames, config.image_size, config.image_size, config.in_channels)


def count_params(framework: str, model_or_params) -> int:
  if framework == "torch":
    return sum(p.numel() for p in model_or_params.parameters())
  import jax
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(model_or_params))


def torch_state_numpy(model) -> Dict[str, np.ndarray]:
  return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def flax_shapes(kind: str, fields: Mapping):
  """The Flax variables of a config as shapes only (jax.eval_shape), allocating nothing: a
  template to convert weights into."""
  import jax

  flax_model = build("jax", kind, fields)
  shape = input_shape(kind, flax_model.config, batch=1)
  return jax.eval_shape(flax_model.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct(shape, "float32"))


def param_counts(kind: str, fields: Mapping) -> Dict[str, int]:
  """Both frameworks' parameter counts of a config, without allocating any weights
  (jax.eval_shape; torch on the meta device), so paper-size models cost nothing."""
  import torch

  with torch.device("meta"):
    torch_model = build("torch", kind, fields)
  return {"jax": count_params("jax", flax_shapes(kind, fields)), "torch": count_params("torch", torch_model)}
