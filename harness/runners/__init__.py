"""One training run's model and optimizer in one framework, behind the Runner protocol."""
import pathlib
from typing import Mapping, Optional, Protocol

import numpy as np

from tokenlearner_spec import FRAMEWORKS

Weights = Mapping[str, np.ndarray]  # By PyTorch state-dict key: the converter's layout.


class Runner(Protocol):
  """What the training loop needs of a framework. Built from (kind, model fields,
  OptimizerConfig, multilabel, seed, start, precision, micro_batches): `start` is the initial
  weights, or None for the framework's own initialisers seeded by `seed`; precision the
  compute dtype of training and prediction; micro_batches the parts a step's batch is split
  into (gradient accumulation)."""
  num_params: int

  def train_step(self, step: int, x: np.ndarray, y: np.ndarray) -> float:
    """Optimizer step `step` on a batch (inputs channels last); the batch's loss. Any
    randomness in it (dropout) is a function of (seed, step), so a resumed run repeats."""

  def predict(self, x: np.ndarray) -> np.ndarray:
    """Logits of a batch, in evaluation mode."""

  def save(self, path: pathlib.Path) -> None:
    """Writes the whole training state (weights, optimizer, schedule) to `path`."""

  def load(self, path: pathlib.Path) -> None:
    """Restores what `save` wrote."""

  def weights(self) -> Weights:
    """The model's current weights in the converter's layout (float32 numpy), e.g. to keep."""

  def device(self) -> str:
    """Where it runs, e.g. 'jax:cpu:cpu' or 'torch:cuda:NVIDIA H100'."""


def make(framework: str, kind: str, fields, optim, multilabel: bool, seed: int,
         start: Optional[Weights] = None, cache_dir=None, precision: str = "float32",
         micro_batches: int = 1) -> Runner:
  """The runner of a framework; cache_dir keeps JAX's compiled programs between processes."""
  if framework == "jax":
    from harness.runners.jax_runner import JaxRunner as framework_runner, enable_compilation_cache
    if cache_dir is not None:
      enable_compilation_cache(cache_dir)
  elif framework == "torch":
    from harness.runners.torch_runner import TorchRunner as framework_runner
  else:
    raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")
  return framework_runner(kind, fields, optim, multilabel, seed, start, precision, micro_batches)
