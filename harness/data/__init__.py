"""Framework-neutral data (numpy): the proxy generators and the paper-scale loaders."""
import importlib
import pathlib
from typing import Optional, Type

from harness.data.base import Batch, Dataset

# source -> its Dataset class, imported on first use (the file loaders need PIL, the
# generators scikit-learn).
SOURCES = {"digits": "harness.data.digits:ClutteredDigits",
           "moving_digits": "harness.data.moving_digits:MovingDigits",
           "fashion_mnist": "harness.data.fashion_mnist:FashionMNIST",
           "moving_fashion": "harness.data.moving_fashion:MovingFashion",
           "imagenet": "harness.data.imagenet:ImageFolder",
           "charades": "harness.data.charades:Charades"}


def source(name: str) -> Type[Dataset]:
  if name not in SOURCES:
    raise ValueError(f"unknown data source {name!r}; known: {', '.join(SOURCES)}")
  module, cls = SOURCES[name].split(":")
  return getattr(importlib.import_module(module), cls)


def make(spec, seed: int, image_size: int, num_frames: int = 1) -> Dataset:
  """The data source a run's `data` config names, at the model's image size and clip length."""
  return source(spec.source)(spec, seed, image_size, num_frames)


def num_classes(spec) -> int:
  """How many classes (or labels) the source has, without loading it: checked against the
  model before a run is tracked."""
  return source(spec.source).count_classes(spec)


def check(spec, image_size: int, num_frames: int = 1, files: bool = True,
          stamp_dir: Optional[pathlib.Path] = None) -> None:
  """Refuses, before a run starts, data it would fail on or silently misread: fields no
  example can be made with and, with `files`, a dataset on disk that does not fit its
  layout or holds an image that does not open (checked once per listing: a stamp in
  `stamp_dir`). Raises ValueError, one line naming the field, file, row or video."""
  dataset = source(spec.source)
  dataset.check_spec(spec, image_size, num_frames)
  if files:
    dataset.check_files(spec, image_size, stamp_dir)


__all__ = ["Batch", "Dataset", "SOURCES", "check", "make", "num_classes", "source"]
