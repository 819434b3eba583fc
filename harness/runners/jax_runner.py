"""A training run in JAX: Flax model, optax optimizer, the jitted steps of tokenlearner_jax."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from harness import backends
from tokenlearner_jax import train_step


class JaxRunner:
  def __init__(self, kind: str, fields, optim: train_step.OptimizerConfig, multilabel: bool, seed: int):
    self.model = backends.build("jax", kind, fields)
    dummy = jnp.zeros(backends.input_shape(kind, self.model.config, batch=1), jnp.float32)
    self.params = jax.jit(self.model.init)(jax.random.PRNGKey(seed), dummy)
    tx, self._step = train_step.make_train_step(self.model, optim, multilabel)
    self.opt_state = tx.init(self.params)
    self._logits = jax.jit(lambda params, x: self.model.apply(params, x)[0])
    self.num_params = backends.count_params("jax", self.params)

  def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
    self.params, self.opt_state, loss = self._step(self.params, self.opt_state, x, y)
    return float(loss)

  def predict(self, x: np.ndarray) -> np.ndarray:
    return np.asarray(self._logits(self.params, x))

  def save(self, path: pathlib.Path) -> None:
    path.write_bytes(serialization.to_bytes({"params": self.params, "opt_state": self.opt_state}))

  def load(self, path: pathlib.Path) -> None:
    template = {"params": self.params, "opt_state": self.opt_state}
    state = serialization.from_bytes(template, path.read_bytes())
    self.params, self.opt_state = state["params"], state["opt_state"]

  def device(self) -> str:
    device = jax.devices()[0]
    return f"jax:{device.platform}:{device.device_kind}"
