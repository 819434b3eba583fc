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


__all__ = ["Batch", "Dataset", "make"]
