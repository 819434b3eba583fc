"""Shared by the loaders of real datasets: image decoding, cropping, epoch order."""
import pathlib
from typing import Optional

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def require_root(root: str, source: str) -> pathlib.Path:
  if not root:
    raise ValueError(f"data.root is empty: set data.root=/path/to/{source}")
  path = pathlib.Path(root).expanduser()
  if not path.is_dir():
    raise ValueError(f"data.root={root!r} is not a directory")
  return path


def load_image(path, size: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
  """Decodes an image to [size, size, 3] float32 in [-1, 1]: the shorter side resized to
  size (train: to 8/7 of it, then a random crop and flip), then a center crop."""
  from PIL import Image
  with Image.open(path) as image:
    image = image.convert("RGB")
    scale = (size * 8 // 7 if rng is not None else size) / min(image.size)
    w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((w, h), Image.BILINEAR)
    array = np.asarray(image, np.float32)
  if rng is None:
    top, left = (h - size) // 2, (w - size) // 2
  else:
    top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
  array = array[top:top + size, left:left + size]
  if rng is not None and rng.random() < 0.5:
    array = array[:, ::-1]
  return array / 127.5 - 1.0


def epoch_indices(seed: int, step: int, batch_size: int, n: int) -> np.ndarray:
  """The example indices of a train step: consecutive slices of a fresh permutation per epoch."""
  positions = np.arange(step * batch_size, (step + 1) * batch_size)
  epochs, offsets = positions // n, positions % n
  return np.array([np.random.default_rng([seed, e]).permutation(n)[o] for e, o in zip(epochs, offsets)])
