"""Fashion-MNIST (Zalando Research, MIT licence): 60,000 train and 10,000 test 28x28 grayscale
images of ten kinds of clothing, read from the four IDX files its authors publish.

Where the files are read from: `data.root` when given (gzipped or not); else Debian's copy
(`apt-get install dataset-fashion-mnist`); else the user cache, where they are downloaded from
the authors' location the first time a run needs them, each checked against the SHA-256 of
its content.

The training set is split once, the same way for every run: `validation_size` images, drawn
with a fixed seed, are held out to choose the protocol on; runs train on the others and are
scored on `eval_split` (validation, or the test set; its first `test_size` images if not 0). An image sits at the centre of the
model's canvas, on background.
"""
import functools
import pathlib
from typing import Dict, Optional, Tuple

import numpy as np

from harness.data import download, files, idx
from harness.data.base import (BACKGROUND, TARGET, WHOLE, Batch, Dataset, Part, part_bounds,
                               require_at_least, unit_range)
from harness.data.files import epoch_index

BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# name -> SHA-256 of its IDX content (gunzipped): the authors publish MD5s of their .gz files;
# these are of the data itself, as Debian's dataset-fashion-mnist ships it.
FILES = {"train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
         "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
         "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
         "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}
PARTS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")  # dpkg -L dataset-fashion-mnist
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
SIDE = 28
SPLIT_SEED = 20_170_825  # Which train images are held out for validation: the same for every run.
EVAL_SPLITS = ("validation", "test")


def cache_dir() -> pathlib.Path:
  return files.cache_dir("fashion-mnist")


def _file(folder: pathlib.Path, stem: str) -> Optional[pathlib.Path]:
  """The IDX file `stem` in `folder`, gzipped or not; None if neither is there."""
  return next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)


def _missing(folder: pathlib.Path):
  return [stem for stems in PARTS.values() for stem in stems if _file(folder, stem) is None]


def locate(root: str = "", base_url: str = BASE_URL, files=None) -> pathlib.Path:
  """The folder holding the four files: `root`, Debian's copy, or the user cache (downloaded
  into it when missing: `files`, name -> SHA-256, from `base_url`). ValueError, one line, when
  `root` lacks a file or nothing can be found or fetched."""
  if root:
    folder = pathlib.Path(root).expanduser()
    missing = _missing(folder)
    if missing:
      raise ValueError(f"data.root={root}: no {', '.join(missing)} (Fashion-MNIST's IDX files, "
                       "gzipped or not)")
    return folder
  cache = cache_dir()
  for folder in (DEBIAN_DIR, cache):
    if not _missing(folder):
      return folder
  try:
    download.fetch_all(base_url, FILES if files is None else files, cache)
  except download.DownloadError as error:
    raise ValueError(f"Fashion-MNIST is neither in {DEBIAN_DIR} nor in {cache}, and downloading it "
                     f"failed ({error}): `apt-get install dataset-fashion-mnist`, or put its four "
                     "IDX files in a folder and pass data.root=<folder>") from None
  return cache


@functools.lru_cache(maxsize=2)
def load(folder: pathlib.Path) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """part -> (images uint8 [N, 28, 28], labels uint8 [N]); ValueError naming a file that does
  not hold what Fashion-MNIST's does."""
  out = {}
  for part, (image_stem, label_stem) in PARTS.items():
    image_path, label_path = _file(folder, image_stem), _file(folder, label_stem)
    images, labels = idx.read(image_path), idx.read(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
      raise ValueError(f"{image_path}: holds {images.dtype} {images.shape}, not uint8 [N, {SIDE}, {SIDE}]")
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
      raise ValueError(f"{label_path}: holds {labels.dtype} {labels.shape}, not uint8 "
                       f"[{len(images)}] for {image_path.name}")
    if labels.size and labels.max() >= len(CLASSES):
      raise ValueError(f"{label_path}: label {labels.max()} is not one of the {len(CLASSES)} classes")
    out[part] = images, labels
  return out


def validation_indices(count: int, size: int) -> np.ndarray:
  """The train images held out for validation, sorted: the same `size` of `count` for every run."""
  return np.sort(np.random.default_rng(SPLIT_SEED).permutation(count)[:size])


def splits(spec) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]:
  """(train images, labels) without the validation split, and (images, labels) of
  `spec.eval_split`: the held-out train images, or the test set."""
  parts = load(locate(spec.root))
  images, labels = parts["train"]
  held_out = validation_indices(len(labels), spec.validation_size)
  kept = np.setdiff1d(np.arange(len(labels)), held_out)
  evaluated = (images[held_out], labels[held_out]) if spec.eval_split == "validation" else parts["test"]
  return (images[kept], labels[kept]), evaluated


def check_split(spec) -> None:
  """Refuses an eval_split that is not one, or a validation split that leaves nothing to train on."""
  if spec.eval_split not in EVAL_SPLITS:
    raise ValueError(f"data.eval_split={spec.eval_split!r} is not one of {', '.join(EVAL_SPLITS)}")


def check_validation_size(spec) -> None:
  train = len(load(locate(spec.root))["train"][1])
  if spec.validation_size >= train:
    raise ValueError(f"data.validation_size={spec.validation_size} leaves none of the {train} "
                     "train images to train on")


class FashionMNIST(Dataset):
  """Train batches in epochs of the train images the validation split leaves (a fresh order per
  epoch and seed); the evaluation split as the test set."""
  multilabel = False
  num_classes = len(CLASSES)
  draws_layers = True

  def __init__(self, spec, seed: int, canvas_size: int, num_frames: int = 1):
    self.spec, self.seed, self.canvas_size = spec, seed, canvas_size
    (self.train_images, self.train_labels), (self.eval_images, self.eval_labels) = splits(spec)
    if spec.test_size:
      self.eval_images, self.eval_labels = self.eval_images[:spec.test_size], self.eval_labels[:spec.test_size]

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    require_at_least(spec, {"validation_size": 1, "test_size": 0})
    check_split(spec)
    if image_size < SIDE:
      raise ValueError(f"a {SIDE}x{SIDE} Fashion-MNIST image does not fit the model's "
                       f"image_size={image_size}")

  @classmethod
  def check_files(cls, spec, image_size: int, stamp_dir: Optional[pathlib.Path] = None) -> None:
    """Finds (or downloads) the files and reads them: a bad file fails here, named."""
    check_validation_size(spec)

  def _canvas(self, images: np.ndarray) -> np.ndarray:
    """[N, 28, 28] uint8 -> [N, S, S, 1] float32 in [-1, 1], centred on background (-1)."""
    pad = self.canvas_size - SIDE
    before = pad // 2
    canvas = np.pad(images, ((0, 0), (before, pad - before), (before, pad - before)))
    return unit_range(canvas)[..., None]  # Shape: [N, S, S, 1].

  def train_batch(self, step: int, batch_size: int, part: Part = WHOLE) -> Batch:
    start, stop = part_bounds(batch_size, part)
    n = len(self.train_labels)
    picked = [epoch_index(self.seed, step * batch_size + i, n) for i in range(start, stop)]
    return self._canvas(self.train_images[picked]), self.train_labels[picked].astype(np.int32)

  @functools.cached_property
  def test_set(self) -> Batch:
    return self._canvas(self.eval_images), self.eval_labels.astype(np.int32)

  def test_layers(self, count: int) -> np.ndarray:
    """What each pixel of the first `count` evaluation images shows [count, S, S]: the item
    where it is not black, else background."""
    canvas = self._canvas(self.eval_images[:count])[..., 0]
    return np.where(canvas > -1.0, np.int8(TARGET), np.int8(BACKGROUND))
