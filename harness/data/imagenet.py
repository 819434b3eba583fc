"""ImageNet (or any image classification set) in the class-folder layout:
<root>/train/<class>/<image> and <root>/val/<class>/<image>; classes are the sorted
train folder names."""
import os
import pathlib
from typing import List, Optional, Sequence, Tuple

import numpy as np

from harness.data.base import Batch, Examples, example_rng
from harness.data.files import (CROPS, IMAGE_SUFFIXES, cached_listing, check_images, epoch_index,
                                inception_crop, load_image, require_root, resize_whole)

Labelled = List[Tuple[pathlib.Path, int]]


def class_names(data_root: str) -> List[str]:
  """The class folders of <root>/train, checked: both splits exist."""
  root = require_root(data_root, "imagenet")
  for split in ("train", "val"):
    if not (root / split).is_dir():
      raise ValueError(f"{root} has no {split}/ folder (expected <root>/{split}/<class>/<image>)")
  return sorted(d.name for d in (root / "train").iterdir() if d.is_dir())


def _split(folder: pathlib.Path, classes: List[str]) -> Labelled:
  """A split's images and labels in class order. A class folder without images would leave
  a class no example has (train/) or that no example tests (val/): refused, as is a val/
  class that train/ lacks. The file names are listed once and kept in the user cache, keyed by
  the class folders' modification times (adding or removing an image changes its folder's)."""
  labels = {name: label for label, name in enumerate(classes)}
  class_folders = sorted(d for d in folder.iterdir() if d.is_dir())
  unknown = [d.name for d in class_folders if d.name not in labels]
  if unknown:
    raise ValueError(f"{folder} has classes that train/ lacks: {', '.join(unknown[:5])}")
  key = "\n".join([str(folder), *(f"{d.name}\t{d.stat().st_mtime_ns}" for d in class_folders)])
  names = cached_listing("imagenet-files", key, lambda: {d.name: _images(d) for d in class_folders})
  found = []
  for class_folder in class_folders:
    if not names[class_folder.name]:
      raise ValueError(f"class folder {class_folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
    found += [(class_folder / name, labels[class_folder.name]) for name in names[class_folder.name]]
  if not found:
    raise ValueError(f"no images found under {folder}")
  return found


def _images(class_folder: pathlib.Path) -> List[str]:
  """The image files' names, sorted; hidden files (say, macOS's ._ copies) are not images."""
  return sorted(n for n in os.listdir(class_folder)
                if not n.startswith(".") and pathlib.Path(n).suffix.lower() in IMAGE_SUFFIXES)


def read_splits(data_root: str) -> Tuple[List[str], Labelled, Labelled]:
  """The classes, and the train and val images with their labels."""
  root, classes = require_root(data_root, "imagenet"), class_names(data_root)
  return classes, _split(root / "train", classes), _split(root / "val", classes)


class ImageFolder(Examples):
  multilabel = False

  def __init__(self, spec, seed: int, image_size: int, num_frames: int = 1):
    self.classes, self.train, self.val = read_splits(spec.root)
    self.num_classes = len(self.classes)
    self.spec, self.seed, self.image_size = spec, seed, image_size

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    for split in ("train", "eval"):
      if spec[f"{split}_crop"] not in CROPS[split]:
        raise ValueError(f"data.{split}_crop={spec[f'{split}_crop']!r} is not one of {CROPS[split]}")

  @classmethod
  def count_classes(cls, spec) -> int:
    return len(class_names(spec.root))

  @classmethod
  def check_files(cls, spec, image_size: int, stamp_dir: Optional[pathlib.Path] = None) -> None:
    _, train, val = read_splits(spec.root)
    check_images([path for path, _ in train + val], stamp_dir)

  def train_example(self, step: int, batch_size: int, index: int) -> Tuple[np.ndarray, np.ndarray]:
    path, label = self.train[epoch_index(self.seed, step * batch_size + index, len(self.train))]
    crop = inception_crop if self.spec.train_crop == "inception" else load_image
    return crop(path, self.image_size, example_rng(self.seed, step, index)), np.int32(label)

  @property
  def test_size(self) -> int:
    return len(self.val)

  def test_inputs(self, indices: Sequence[int]) -> Batch:
    load = resize_whole if self.spec.eval_crop == "resize" else load_image
    return (np.stack([load(self.val[i][0], self.image_size) for i in indices]),
            np.array([self.val[i][1] for i in indices], np.int32))