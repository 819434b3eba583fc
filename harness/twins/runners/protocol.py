"""What the training loop needs of a framework: the Runner protocol, and weights as they travel
between frameworks."""
import pathlib
from typing import Mapping, Protocol

import numpy as np

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
