"""Framework-neutral data (numpy): the proxy generators and the paper-scale loaders."""
from harness.data.base import Batch, Dataset


def make(spec, seed: int, image_size: int, num_frames: int = 1) -> Dataset:
  """The data source a run's `data` config names, at the model's image size and clip length."""
  if spec.source == "digits":
    from harness.data.digits import ClutteredDigits
    return ClutteredDigits(spec, seed, image_size)
  if spec.source == "moving_digits":
    from harness.data.moving_digits import MovingDigits
    return MovingDigits(spec, seed, image_size, num_frames)
  if spec.source == "imagenet":
    from harness.data.imagenet import ImageFolder
    return ImageFolder(spec, seed, image_size)
  if spec.source == "charades":
    from harness.data.charades import Charades
    return Charades(spec, seed, image_size, num_frames)
  raise ValueError(f"unknown data source {spec.source!r}; expected digits, moving_digits, imagenet or charades")


def num_classes(spec) -> int:
  """How many classes (or labels) the source has, without loading it: checked against the
  model before a run is tracked."""
  if spec.source == "digits":
    from harness.data.digits import ClutteredDigits
    return ClutteredDigits.num_classes
  if spec.source == "moving_digits":
    from harness.data.moving_digits import MovingDigits
    return MovingDigits.num_classes
  if spec.source == "imagenet":
    from harness.data.imagenet import class_names
    return len(class_names(spec.root))
  if spec.source == "charades":
    from harness.data.charades import Charades
    return Charades.num_classes
  raise ValueError(f"unknown data source {spec.source!r}; expected digits, moving_digits, imagenet or charades")


__all__ = ["Batch", "Dataset", "make", "num_classes"]
