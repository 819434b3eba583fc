"""Shared by the loaders of real datasets: image decoding, cropping, epoch order, and the
check that every image opens before a run starts."""
import functools
import hashlib
import json
import os
import pathlib
import uuid
from typing import Optional, Sequence

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def cache_dir(name: str) -> pathlib.Path:
  """The user cache's folder `name` (XDG_CACHE_HOME, else ~/.cache): what the harness builds
  from a dataset once and keeps between runs."""
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base) / "tokenlearner-harness" / name


def replace_whole(target: pathlib.Path, write) -> None:
  """write(temporary) fills a temporary beside `target`, renamed onto it once whole, whoever
  writes it at the same time; removed if writing fails (a full disk leaves nothing half
  written). For what data builds from a dataset; the results take harness/machine/durable.py."""
  target.parent.mkdir(parents=True, exist_ok=True)
  temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}{target.suffix}")
  try:
    write(temporary)
    os.replace(temporary, target)
  finally:
    temporary.unlink(missing_ok=True)


def cached_listing(name: str, key: str, build):
  """build()'s JSON-able result, kept in the user cache under `name` and the digest of `key`
  (say, the folders listed and their modification times): listing a dataset's files costs a
  stat per file, which every process of every run would otherwise pay. A cache that cannot be
  read or written is rebuilt or skipped: nothing depends on it but the time."""
  path = cache_dir(name) / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    pass
  listing = build()
  try:
    replace_whole(path, lambda temporary: temporary.write_text(json.dumps(listing)))
  except OSError:
    pass
  return listing
IMAGE_CHECK_VERSION = 1  # Part of a stamp's name: raise it when check_images checks more.


def require_root(root: str, source: str) -> pathlib.Path:
  if not root:
    raise ValueError(f"data.root is empty: set data.root=/path/to/{source}")
  path = pathlib.Path(root).expanduser().resolve()  # Absolute: check_images' stamps name paths.
  if not path.is_dir():
    raise ValueError(f"data.root={root!r} is not a directory")
  return path


def check_images(paths: Sequence[pathlib.Path], stamp_dir: Optional[pathlib.Path] = None) -> None:
  """Refuses an image that does not open, naming it, before a run reads it mid-training.

  PIL reads each header and verifies what the format allows without decoding pixels
  (PNG's checksums): 0.03 ms for a 500x375 JPEG, which takes 1.3 ms to decode (measured
  here). A JPEG cut short inside its compressed data passes, and fails when read. A pass
  leaves an empty stamp in `stamp_dir` named by the digest of the files' paths, sizes and
  modification times, so the same files are checked once, not once per run.
  """
  stamp = stamp_dir / f"images-{_listing_digest(paths)}" if stamp_dir is not None else None
  if stamp is not None and stamp.exists():
    return
  for path in paths:
    _check_image(path)
  if stamp is not None:
    try:
      stamp.parent.mkdir(parents=True, exist_ok=True)
      stamp.touch()
    except OSError:
      pass  # Without a stamp the next run checks again; nothing else depends on it.


def _listing_digest(paths: Sequence[pathlib.Path]) -> str:
  digest = hashlib.sha256(f"check_images v{IMAGE_CHECK_VERSION}\n".encode())
  for path in paths:
    stat = path.stat()
    digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
  return digest.hexdigest()[:16]


def _check_image(path: pathlib.Path) -> None:
  from PIL import Image
  try:
    with Image.open(path) as image:
      image.verify()
  except Exception as error:  # By format, PIL raises OSError, SyntaxError, struct.error, ...
    detail = str(error).replace(f" '{path}'", "")  # Some of PIL's messages repeat the path.
    raise ValueError(f"image {path} does not open: {detail}") from None


# ViT fine-tuning's inception crop: the share of the image's area and the aspect ratio drawn,
# and how many draws may miss the image before the whole image is taken.
INCEPTION_AREA, INCEPTION_ASPECT, INCEPTION_TRIES = (0.05, 1.0), (3 / 4, 4 / 3), 10
CROPS = {"train": ("inception", "resize_crop"), "eval": ("resize", "center_crop")}


def _decoded(path):
  """The image at `path` in RGB, decoded; a file check_images let through (a truncated
  JPEG) named when it fails."""
  from PIL import Image
  try:
    with Image.open(path) as image:
      image.load()
      return image if image.mode == "RGB" else image.convert("RGB")  # convert would copy an RGB one.
  except OSError as error:
    raise OSError(f"image {path} does not decode: {error}") from None


def _flipped(array: np.ndarray, rng: Optional[np.random.Generator]) -> np.ndarray:
  """The pixels, flipped left to right half of the time in training; contiguous uint8."""
  if rng is not None and rng.random() < 0.5:
    array = array[:, ::-1]
  return np.ascontiguousarray(array, np.uint8)


def load_image(path, size: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
  """Decodes an image to [size, size, 3] uint8: the shorter side resized to size (train: to
  8/7 of it, then a random crop and flip), then a center crop."""
  return crop_square(resized_shorter(path, shorter_side(size, rng is not None)), size, rng)


def shorter_side(size: int, train: bool) -> int:
  """What load_image resizes the shorter side to before it crops `size`: 8/7 of it in training."""
  return size * 8 // 7 if train else size


def resized_shorter(path, short: int) -> np.ndarray:
  """The image at `path`, decoded, its shorter side resized to `short` (bilinear): [H, W, 3] uint8."""
  from PIL import Image
  image = _decoded(path)
  scale = short / min(image.size)
  w, h = max(short, round(image.width * scale)), max(short, round(image.height * scale))
  return np.asarray(image.resize((w, h), Image.BILINEAR))


def crop_square(array: np.ndarray, size: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
  """[size, size, 3] of [H, W, 3]: the centre, or (given `rng`) a random square flipped half of
  the time. Contiguous uint8."""
  h, w = array.shape[:2]
  if rng is None:
    top, left = (h - size) // 2, (w - size) // 2
  else:
    top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
  return _flipped(array[top:top + size, left:left + size], rng)


def inception_crop(path, size: int, rng: np.random.Generator) -> np.ndarray:
  """A random box of INCEPTION_AREA of the image's area at an aspect in INCEPTION_ASPECT (log-
  uniform), resized to [size, size, 3], flipped half of the time; the whole image when
  INCEPTION_TRIES draws do not fit. Uint8."""
  from PIL import Image
  image = _decoded(path)
  width, height = image.size
  box = (0, 0, width, height)
  for _ in range(INCEPTION_TRIES):
    area = rng.uniform(*INCEPTION_AREA) * width * height
    aspect = np.exp(rng.uniform(*np.log(INCEPTION_ASPECT)))
    w, h = round(np.sqrt(area * aspect)), round(np.sqrt(area / aspect))
    if 0 < w <= width and 0 < h <= height:
      left, top = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
      box = (left, top, left + w, top + h)
      break
  return _flipped(np.asarray(image.resize((size, size), Image.BILINEAR, box=box)), rng)


def resize_whole(path, size: int) -> np.ndarray:
  """The whole image resized to [size, size, 3] (its aspect not kept), uint8."""
  from PIL import Image
  return _flipped(np.asarray(_decoded(path).resize((size, size), Image.BILINEAR)), None)


def epoch_index(seed: int, position: int, n: int) -> int:
  """The example at `position` of the run's sequence of train examples (step * batch_size +
  index in the batch): epoch after epoch, each a fresh permutation of the n examples."""
  epoch, offset = divmod(position, n)
  return int(_permutation(seed, epoch, n)[offset])


@functools.lru_cache(maxsize=2)  # The epoch at hand and the next: a step can span both.
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """Drawn once per epoch, not once per example: a permutation of ImageNet's 1.28M images
  takes tens of milliseconds, the time of some 30 image decodes."""
  order = np.random.default_rng([seed, epoch]).permutation(n)
  order.flags.writeable = False  # Shared by every caller.
  return order
