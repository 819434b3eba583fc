"""What every data source gives the trainer: numpy batches, identical in both frameworks.

A train batch is a pure function of (seed, step), so a resumed run sees exactly
the batches an uninterrupted one would; the test set does not depend on the seed.
"""
import pathlib
from typing import Iterator, Mapping, Optional, Tuple

import numpy as np

Batch = Tuple[np.ndarray, np.ndarray]  # inputs (channels last, float32), labels


def batch_rng(seed: int, step: int) -> np.random.Generator:
  return np.random.default_rng([seed, step])


def require_at_least(spec, minimums: Mapping[str, int]) -> None:
  """Each named integer field of a data config is at least its minimum."""
  for field, minimum in minimums.items():
    if spec[field] < minimum:
      raise ValueError(f"data.{field}={spec[field]} is below {minimum}")


class Dataset:
  """A data source. Constructed as cls(spec, seed, image_size, num_frames) from its `data`
  config; the class methods check that config, and what it points to on disk, before a
  run starts, so that a run does not fail, or train on the wrong data, midway."""
  multilabel: bool  # labels are multi-hot [B, K] floats, else class indices [B]
  num_classes: int
  # Multi-label sources whose labels ask different questions name them, so that each group is
  # also scored alone (a mean over all labels can hide a group that is not learned at all).
  label_groups: Mapping[str, slice] = {}

  @classmethod
  def count_classes(cls, spec) -> int:
    """How many classes (or labels) the source has, without loading it."""
    return cls.num_classes

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    """Refuses fields no example can be made with (ValueError naming the field)."""

  @classmethod
  def check_files(cls, spec, stamp_dir: Optional[pathlib.Path] = None) -> None:
    """Refuses a dataset on disk the loader would fail on, naming the file, row or video.
    A check costly enough to remember leaves a stamp in `stamp_dir`."""

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
