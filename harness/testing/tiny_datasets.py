"""Tiny datasets in the real ones' formats, written in well under a second: ImageNet's class
folders, Charades' CSVs and frame folders, Fashion-MNIST's IDX files. Every pixel of an
ImageNet or Charades image holds one value, so a test can tell from a batch which file it came
from."""
import pathlib
from typing import Dict

import numpy as np

CHARADES_CSV_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
# split -> video id -> actions: two train videos and one test video.
CHARADES_VIDEOS = {"train": {"AAAAA": "c001 0.00 0.50;c010 1.50 2.00", "BBBBB": "c156 0.00 2.00"},
                   "test": {"CCCCC": "c002 0.20 0.40"}}


def write_image(path: pathlib.Path, value: int, size=(20, 14)) -> None:
  """A (width, height) image of one gray value; its format follows the suffix."""
  from PIL import Image
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def imagenet(root: pathlib.Path, classes=("n01", "n02", "n03")) -> pathlib.Path:
  """<root>/train/<class>/: 3 JPEGs per class, <root>/val/<class>/: 1 PNG; class k's pixels
  are 40 * (k + 1)."""
  for k, name in enumerate(classes):
    for i in range(3):
      write_image(root / "train" / name / f"{name}_{i}.JPEG", 40 * (k + 1))
    write_image(root / "val" / name / f"val_{k}.png", 40 * (k + 1))
  return root


def charades_csv(root: pathlib.Path, split: str, actions: Dict[str, str]) -> None:
  """Charades_v1_<split>.csv with one 2 s video per entry of `actions` (id -> actions)."""
  lines = [f'{vid},S,Kitchen,5,5,Yes,script,obj,desc,"{text}",2.0\n' for vid, text in actions.items()]
  (root / f"Charades_v1_{split}.csv").write_text(CHARADES_CSV_HEADER + "".join(lines))


def charades(root: pathlib.Path, frames: int = 48) -> pathlib.Path:
  """CHARADES_VIDEOS with `frames` frames each (48: 2 s at 24 fps); frame f's pixels are 5 * f (mod 256)."""
  root.mkdir(parents=True, exist_ok=True)
  for split, videos in CHARADES_VIDEOS.items():
    charades_csv(root, split, videos)
    for vid in videos:
      for f in range(1, frames + 1):
        write_image(root / "Charades_v1_rgb" / vid / f"{vid}-{f:06d}.jpg", 5 * f % 256)
  return root


def fashion_mnist(root: pathlib.Path, train: int = 40, test: int = 12, gz: bool = True,
                  seed: int = 0) -> pathlib.Path:
  """Fashion-MNIST's four IDX files (gzipped or not) of `train` and `test` noise images, their
  labels cycling through the ten classes."""
  from harness.data import fashion_mnist as source, idx
  rng = np.random.default_rng(seed)
  root.mkdir(parents=True, exist_ok=True)
  for part, count in (("train", train), ("test", test)):
    image_stem, label_stem = source.PARTS[part]
    suffix = ".gz" if gz else ""
    idx.write(root / f"{image_stem}{suffix}", rng.integers(0, 256, (count, source.SIDE, source.SIDE), np.uint8))
    idx.write(root / f"{label_stem}{suffix}", (np.arange(count) % len(source.CLASSES)).astype(np.uint8))
  return root
