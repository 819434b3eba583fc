"""A training run in JAX: Flax model, optax optimizer, the jitted steps of tokenlearner_jax.

The initial weights are a start file's (harness/starts.py), converted to Flax's tree,
or Flax's own initialisers. Nothing here imports torch.
"""
import functools
import pathlib
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from harness import backends, convert
from harness.runners import Weights
from tokenlearner_jax import train_step


@functools.lru_cache(maxsize=None)
def _logits_fn(model):
  """Jitted forward, shared by every run of one model config in the process."""
  return jax.jit(lambda params, x: model.apply(params, x)[0])


def enable_compilation_cache(directory: pathlib.Path) -> None:
  """Keeps compiled programs on disk, so that seeds and reruns of a row compile once."""
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def initial_params(model, kind: str, seed: int, start: Optional[Weights]):
  """Flax params from a start (PyTorch state-dict layout), or from Flax's init with `seed`."""
  example = jax.ShapeDtypeStruct(backends.input_shape(kind, model.config, batch=1), jnp.float32)
  if start is None:
    return jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.zeros(example.shape, example.dtype))
  template = jax.eval_shape(model.init, jax.random.PRNGKey(0), example)
  return jax.tree.map(jnp.asarray, convert.torch_to_jax(start, template))


class JaxRunner:
  def __init__(self, kind: str, fields, optim: train_step.OptimizerConfig, multilabel: bool, seed: int,
               start: Optional[Weights] = None):
    self.model = backends.build("jax", kind, fields)
    self.params = initial_params(self.model, kind, seed, start)
    tx, self._step = train_step.make_train_step(self.model, optim, multilabel)
    self._dropout_key = jax.random.PRNGKey(seed)
    self.opt_state = tx.init(self.params)
    self._logits = _logits_fn(self.model)
    self.num_params = backends.count_params("jax", self.params)

  def train_step(self, step: int, x: np.ndarray, y: np.ndarray) -> float:
    key = jax.random.fold_in(self._dropout_key, step)  # A function of (seed, step): resumable.
    self.params, self.opt_state, loss = self._step(self.params, self.opt_state, x, y, key)
    return float(loss)

  def predict(self, x: np.ndarray) -> np.ndarray:
    return np.asarray(self._logits(self.params, x))

  def save(self, path: pathlib.Path) -> None:
    path.write_bytes(serialization.to_bytes({"params": self.params, "opt_state": self.opt_state}))

  def load(self, path: pathlib.Path) -> None:
    """All or nothing, as the state is assigned only once whole."""
    template = {"params": self.params, "opt_state": self.opt_state}
    state = serialization.from_bytes(template, path.read_bytes())
    self.params, self.opt_state = state["params"], state["opt_state"]

  def device(self) -> str:
    device = jax.devices()[0]
    return f"jax:{device.platform}:{device.device_kind}"
