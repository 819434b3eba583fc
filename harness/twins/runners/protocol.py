"""What the training loop needs of a framework: the Runner protocol, and weights as they travel
between frameworks."""
import pathlib
from typing import Any, List, Mapping, Protocol, Sequence

import numpy as np

Weights = Mapping[str, np.ndarray]  # By PyTorch state-dict key: the converter's layout.
DeviceBatch = Any  # A train batch where the model runs, as the runner's put made it.
Loss = Any  # A step's loss where the model runs, not yet waited for.


class Runner(Protocol):
  """What the training loop needs of a framework. Built from (kind, model fields,
  OptimizerConfig, multilabel, seed, start, precision, micro_batches, compiled): `start` is the
  initial weights, or None for the framework's own initialisers seeded by `seed`; precision the
  compute dtype of training and prediction; micro_batches the parts a step's batch is split
  into (gradient accumulation); compiled: the step compiled whole (make_train_step's)."""
  num_params: int

  def put(self, x: np.ndarray, y: np.ndarray) -> DeviceBatch:
    """Starts copying a train batch (inputs channels last) to where the model runs and returns
    without waiting, so that it travels while the step before it computes."""

  def train_step(self, step: int, batch: DeviceBatch) -> Loss:
    """Optimizer step `step` on a batch that `put` made; its loss, not waited for, so that the
    host runs ahead of the device. Any randomness in it (dropout) is a function of (seed,
    step), so a resumed run repeats."""

  def fetch(self, losses: Sequence[Loss]) -> List[float]:
    """The losses that train_step returned, as floats: waits for their steps, in one transfer."""

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


def step_on(runner: Runner, step: int, x: np.ndarray, y: np.ndarray) -> float:
  """Trains step `step` on a host batch and waits for its loss: for callers that need each
  step finished before the next (tests, step timing), not for the training loop."""
  return runner.fetch([runner.train_step(step, runner.put(x, y))])[0]
