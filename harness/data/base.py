"""What every data source gives the trainer: numpy batches, identical in both frameworks.

A train batch is a pure function of (seed, step), so a resumed run sees exactly
the batches an uninterrupted one would; the test set does not depend on the seed.
"""
from typing import Iterator, Tuple

import numpy as np

Batch = Tuple[np.ndarray, np.ndarray]  # inputs (channels last, float32), labels


def batch_rng(seed: int, step: int) -> np.random.Generator:
  return np.random.default_rng([seed, step])


class Dataset:
  multilabel: bool  # labels are multi-hot [B, K] floats, else class indices [B]
  num_classes: int

  def train_batch(self, step: int, batch_size: int) -> Batch:
    raise NotImplementedError

  @property
  def test_set(self) -> Batch:
    """The whole test split in memory (proxy data); loaders over files use test_batches."""
    raise NotImplementedError

  def test_batches(self, batch_size: int) -> Iterator[Batch]:
    x, y = self.test_set
    for start in range(0, len(x), batch_size):
      yield x[start:start + batch_size], y[start:start + batch_size]
