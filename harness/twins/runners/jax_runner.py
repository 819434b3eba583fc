"""A training run in JAX: Flax model, optax optimizer, the jitted steps of tokenlearner_jax.

The initial weights are a start file's (harness/run/initial_weights.py), converted to Flax's tree,
or Flax's own initialisers. Nothing here imports torch.

On more than one device (every device of every host, where jax.distributed is initialised)
the run is data-parallel: parameters and optimizer state replicated, each batch split along
its first axis over a one-axis mesh, and XLA's partitioner adds the gradient all-reduce to
the same jitted steps. A checkpoint holds the replicated state once, so it resumes on any
device count.
"""
import functools
import pathlib
from typing import List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from harness.data.base import PIXEL_VALUES
from harness.twins import backends, convert
from harness.twins.runners.protocol import Weights
from tokenlearner_jax import train_step


@functools.lru_cache(maxsize=None)
def _logits_fn(model, precision: str):
  """Jitted forward in `precision`, float32 logits; shared by every run of one model config."""
  return jax.jit(lambda params, x: model.apply(*train_step.in_precision((params, x), precision))[0]
                 .astype(jnp.float32))


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


class DataParallel:
  """Where a data-parallel run's arrays live: state replicated, batches split over 'data'."""

  def __init__(self, devices):
    mesh = Mesh(np.array(devices), ("data",))
    self.count = len(devices)
    self.replicated = NamedSharding(mesh, PartitionSpec())
    self.split = NamedSharding(mesh, PartitionSpec("data"))

  def state(self, tree):
    return jax.device_put(tree, self.replicated)

  def batch(self, array: np.ndarray, micro_batches: int):
    """A train batch, of which `array` is this process's part (all of it on one host), split
    over the devices; each micro-batch must split too."""
    size = len(array) * jax.process_count()
    if size % (self.count * micro_batches):
      raise ValueError(f"a batch of {size} does not split into {micro_batches} micro-batch(es) "
                       f"over {self.count} devices")
    return jax.make_array_from_process_local_data(self.split, array)

  def per_process(self, fn, array: np.ndarray) -> np.ndarray:
    """fn of the global batch of every process's `array` (evaluation's shares: equal lengths in
    every process), split over all devices, each process's padded to a multiple of its own
    devices; this process's rows of the result."""
    pad = -len(array) % jax.local_device_count()
    padded = np.concatenate([array, np.repeat(array[-1:], pad, axis=0)]) if pad else array
    out = jax.device_put(fn(jax.make_array_from_process_local_data(self.split, padded)), self.split)
    shards = sorted(out.addressable_shards, key=lambda shard: shard.index[0].start or 0)
    return np.concatenate([np.asarray(shard.data) for shard in shards])[:len(array)]


@jax.jit
def _unit_range(pixels):
  return jnp.asarray(PIXEL_VALUES)[pixels]


def _inputs(x):
  """uint8 pixels (the file sources') mapped to [-1, 1] on the devices that hold them
  (data.base.PIXEL_VALUES); float inputs as they are."""
  return _unit_range(x) if x.dtype == np.uint8 else x


class JaxRunner:
  def __init__(self, kind: str, fields, optim: train_step.OptimizerConfig, multilabel: bool, seed: int,
               start: Optional[Weights] = None, precision: str = "float32", micro_batches: int = 1,
               compiled: bool = False):
    self.model = backends.build("jax", kind, fields)
    self.params = initial_params(self.model, kind, seed, start)
    tx, self._step = train_step.make_train_step(self.model, optim, multilabel, precision, micro_batches,
                                                compiled)
    self._dropout_key = jax.random.PRNGKey(seed)
    self.opt_state = tx.init(self.params)
    self._parallel = DataParallel(jax.devices()) if jax.device_count() > 1 else None
    self._micro_batches = micro_batches
    if self._parallel:
      self.params, self.opt_state = self._parallel.state((self.params, self.opt_state))
    self._logits = _logits_fn(self.model, precision)
    self.num_params = backends.count_params("jax", self.params)

  def put(self, x: np.ndarray, y: np.ndarray):
    """jax.device_put returns at once; the copy runs while the device computes."""
    if self._parallel:
      return self._parallel.batch(x, self._micro_batches), self._parallel.batch(y, self._micro_batches)
    return jax.device_put(x), jax.device_put(y)

  def train_step(self, step: int, batch) -> jax.Array:
    key = jax.random.fold_in(self._dropout_key, step)  # A function of (seed, step): resumable.
    x, y = batch
    self.params, self.opt_state, loss = self._step(self.params, self.opt_state, _inputs(x), y, key)
    return loss

  def fetch(self, losses: Sequence[jax.Array]) -> List[float]:
    return [float(loss) for loss in jax.device_get(list(losses))]

  def predict(self, x: np.ndarray) -> np.ndarray:
    if self._parallel:
      return self._parallel.per_process(lambda batch: self._logits(self.params, _inputs(batch)), x)
    return np.asarray(self._logits(self.params, _inputs(x)))

  def save(self, path: pathlib.Path) -> None:
    path.write_bytes(serialization.to_bytes({"params": self.params, "opt_state": self.opt_state}))

  def load(self, path: pathlib.Path) -> None:
    """All or nothing, as the state is assigned only once whole."""
    template = {"params": self.params, "opt_state": self.opt_state}
    state = serialization.from_bytes(template, path.read_bytes())
    self.params, self.opt_state = state["params"], state["opt_state"]
    if self._parallel:
      self.params, self.opt_state = self._parallel.state((self.params, self.opt_state))

  def weights(self) -> Weights:
    return convert.torch_layout(jax.device_get(self.params))

  def device(self) -> str:
    """e.g. 'jax:gpu:NVIDIA H100 80GB HBM3', with ' x8' when the run is data-parallel."""
    device = jax.devices()[0]
    count = f" x{jax.device_count()}" if jax.device_count() > 1 else ""
    return f"jax:{device.platform}:{device.device_kind}{count}"
