"""ImageNet (or any image classification set) in the class-folder layout:
<root>/train/<class>/<image> and <root>/val/<class>/<image>; classes are the sorted
train folder names."""
import pathlib
from typing import Iterator, List, Tuple

import numpy as np

from harness.data.base import Batch, Dataset, batch_rng
from harness.data.files import IMAGE_SUFFIXES, epoch_indices, load_image, require_root


def _listing(folder: pathlib.Path, classes: List[str]) -> List[Tuple[pathlib.Path, int]]:
  found = []
  for label, name in enumerate(classes):
    found += [(path, label) for path in sorted((folder / name).glob("*"))
              if path.suffix.lower() in IMAGE_SUFFIXES]
  return found


def class_names(data_root: str) -> List[str]:
  """The class folders of <root>/train, checked: both splits exist."""
  root = require_root(data_root, "imagenet")
  for split in ("train", "val"):
    if not (root / split).is_dir():
      raise ValueError(f"{root} has no {split}/ folder (expected <root>/{split}/<class>/<image>)")
  return sorted(d.name for d in (root / "train").iterdir() if d.is_dir())


class ImageFolder(Dataset):
  multilabel = False

  def __init__(self, spec, seed: int, image_size: int):
    root = require_root(spec.root, "imagenet")
    self.classes = class_names(spec.root)
    unknown = sorted(d.name for d in (root / "val").iterdir() if d.is_dir() and d.name not in self.classes)
    if unknown:
      raise ValueError(f"val/ has classes that train/ lacks: {', '.join(unknown[:5])}")
    self.num_classes = len(self.classes)
    self.train = _listing(root / "train", self.classes)
    self.val = _listing(root / "val", [c for c in self.classes])
    if not self.train or not self.val:
      raise ValueError(f"no images found under {root}/train or {root}/val")
    self.seed, self.image_size = seed, image_size

  def train_batch(self, step: int, batch_size: int) -> Batch:
    rng = batch_rng(self.seed, step)
    picks = [self.train[i] for i in epoch_indices(self.seed, step, batch_size, len(self.train))]
    images = np.stack([load_image(path, self.image_size, rng) for path, _ in picks])
    return images, np.array([label for _, label in picks], np.int32)

  def test_batches(self, batch_size: int) -> Iterator[Batch]:
    for start in range(0, len(self.val), batch_size):
      picks = self.val[start:start + batch_size]
      images = np.stack([load_image(path, self.image_size) for path, _ in picks])
      yield images, np.array([label for _, label in picks], np.int32)
