"""Charades: the official CSV annotations and frames extracted at 24 fps.

<root>/Charades_v1_train.csv and Charades_v1_test.csv (columns include `id`,
`actions` = "c092 11.90 21.20;c147 0.00 12.60" and `length` in seconds) and
<root>/Charades_v1_rgb/<id>/<id>-000001.jpg, ... A train clip is `num_frames`
frames every `fps_stride`-th frame (24 / 4 = the paper's 6 fps setting) from a
random start, labelled with the actions that overlap it. A test video is
labelled with all of its actions (Charades' video-level mAP) and evaluated, as
in the paper, on the clips that cover it end to end (the last one flush with its
end), their outputs merged by the maximum per label: an action the video holds
in any of its segments (`eval_clips: segments`); or on its centre clip alone
(`eval_clips: centre`). With `frame_cache` set, frames come decoded and resized from
harness/data/frame_cache.py's arrays instead of the JPEGs: the same pixels.
"""
import csv
import dataclasses
import functools
import os
import pathlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from harness.data import files, frame_cache
from harness.data.base import Batch, Examples, example_rng, require_at_least
from harness.data.files import check_images, crop_square, epoch_index, load_image, require_root, shorter_side

NUM_CLASSES = 157
FPS = 24
SPLITS = ("train", "test")
FRAMES_FOLDER = "Charades_v1_rgb"
EVAL_CLIPS = ("segments", "centre")


@dataclasses.dataclass(frozen=True)
class Video:
  """A video's frames are <folder>/<id>-000001.jpg, ... numbered without gaps (as Charades'
  RGB-frames archive has them): a count stands for their paths, a few bytes instead of some
  280 per frame (7M frames)."""
  id: str
  folder: pathlib.Path
  frame_count: int
  actions: Tuple[Tuple[int, float, float], ...]  # (class, start s, end s)

  def frame(self, index: int) -> pathlib.Path:
    """Frame `index`, counted from 0."""
    return self.folder / frame_name(self.id, index)


def frame_name(video_id: str, index: int) -> str:
  return f"{video_id}-{index + 1:06d}.jpg"


def parse_actions(text: str) -> Tuple[Tuple[int, float, float], ...]:
  """'c092 11.90 21.20;c147 0.00 12.60' -> ((92, 11.9, 21.2), (147, 0.0, 12.6))."""
  actions = []
  for item in filter(None, (part.strip() for part in (text or "").split(";"))):
    try:
      name, start, end = item.split()
      start, end = float(start), float(end)
    except ValueError:
      raise ValueError(f"action {item!r} is not '<class> <start s> <end s>'") from None
    if not (name.startswith("c") and name[1:].isdigit() and int(name[1:]) < NUM_CLASSES):
      raise ValueError(f"unknown Charades action {name!r}")
    actions.append((int(name[1:]), start, end))
  return tuple(actions)


def read_split(root: pathlib.Path, split: str) -> List[Video]:
  """A split's videos, each with its parsed actions and its extracted frames."""
  path = root / f"Charades_v1_{split}.csv"
  if not path.is_file():
    raise ValueError(f"missing Charades annotations {path}")
  # Only the ASCII columns id and actions are read: free text elsewhere (a script saved as
  # cp1252, say) is no reason to refuse the file, whatever the locale's encoding.
  with open(path, newline="", encoding="utf-8", errors="replace") as f:
    reader = csv.DictReader(f)
    missing = sorted({"id", "actions"} - set(reader.fieldnames or ()))
    if missing:
      raise ValueError(f"{path} has no {' or '.join(missing)} column")
    records = [(record, f"{path} line {reader.line_num}") for record in reader]
  if not records:
    raise ValueError(f"{path} lists no videos")
  counts = frame_counts(root, [record["id"] for record, _ in records])
  return [_video(root, record, where, counts[record["id"]]) for record, where in records]


def frame_counts(root: pathlib.Path, ids: List[str]) -> Dict[str, int]:
  """How many frames each video's folder holds, listed once and kept in the user cache, keyed
  by the folders' modification times (adding or removing a frame changes its folder's)."""
  folders = root / FRAMES_FOLDER
  stamps = []
  for video_id in ids:
    try:
      stamps.append(f"{video_id}\t{(folders / video_id).stat().st_mtime_ns}")
    except OSError:
      stamps.append(f"{video_id}\t-")
  return files.cached_listing("charades-frames", "\n".join([str(root), *stamps]),
                              lambda: {v: _count_frames(folders / v, v) for v in ids})


def _count_frames(folder: pathlib.Path, video_id: str) -> int:
  """The frames <id>-000001.jpg ... <id>-<n>.jpg in `folder`: n; 0 when there are none. A gap
  in the numbering is refused, naming the first missing frame."""
  try:
    names = {n for n in os.listdir(folder) if n.startswith(f"{video_id}-") and n.endswith(".jpg")}
  except OSError:
    return 0
  for index in range(len(names)):
    if frame_name(video_id, index) not in names:
      raise ValueError(f"Charades video {video_id} has {len(names)} frames in {folder} but not "
                       f"{frame_name(video_id, index)} (frames are numbered from 000001 without gaps)")
  return len(names)


def _video(root: pathlib.Path, record: dict, where: str, frame_count: int) -> Video:
  """One CSV record's video; `where` (file and line) names it in an error."""
  try:
    actions = parse_actions(record["actions"])
  except ValueError as error:
    raise ValueError(f"{where}, video {record['id']}: {error}") from None
  folder = root / FRAMES_FOLDER / record["id"]
  if not frame_count:
    raise ValueError(f"no extracted frames for Charades video {record['id']} in {folder} ({where})")
  return Video(record["id"], folder, frame_count, actions)


class Charades(Examples):
  multilabel = True
  num_classes = NUM_CLASSES

  def __init__(self, spec, seed: int, image_size: int, num_frames: int):
    root = require_root(spec.root, "charades")
    self.train, self.test = (read_split(root, split) for split in SPLITS)
    self.spec, self.seed, self.image_size, self.num_frames = spec, seed, image_size, num_frames

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    require_at_least(spec, {"fps_stride": 1})
    if spec.eval_clips not in EVAL_CLIPS:
      raise ValueError(f"data.eval_clips={spec.eval_clips!r} is not one of {EVAL_CLIPS}")

  @classmethod
  def check_files(cls, spec, image_size: int, stamp_dir: Optional[pathlib.Path] = None) -> None:
    root = require_root(spec.root, "charades")
    videos = [video for split in SPLITS for video in read_split(root, split)]
    if not spec.frame_cache:
      check_images([video.frame(i) for video in videos for i in range(video.frame_count)], stamp_dir)
    else:  # Opening each array reads its header only.
      for video in videos:
        for short in frame_cache.short_sides(image_size):
          frame_cache.frames(spec.frame_cache, short, video.id, video.frame_count)

  def _clip(self, video: Video, start: int, crop: Optional[int] = None) -> np.ndarray:
    """[T, S, S, 3] from frame `start` on. A train clip (`crop`: a seed) has one random crop
    and flip for all its frames: each frame draws them from a generator in the same state, so
    that the motion across frames is the video's."""
    span = self.spec.fps_stride
    index = [min(start + span * t, video.frame_count - 1) for t in range(self.num_frames)]
    rng = lambda: None if crop is None else np.random.default_rng(crop)
    if not self.spec.frame_cache:
      return np.stack([load_image(video.frame(i), self.image_size, rng()) for i in index])
    short = shorter_side(self.image_size, train=crop is not None)
    cached = frame_cache.frames(self.spec.frame_cache, short, video.id, video.frame_count)
    return np.stack([crop_square(cached[i], self.image_size, rng()) for i in index])

  def _labels(self, video: Video, start: float = 0.0, end: float = float("inf")) -> np.ndarray:
    labels = np.zeros(NUM_CLASSES, np.float32)
    for label, a_start, a_end in video.actions:
      if a_start <= end and a_end >= start:
        labels[label] = 1.0
    return labels

  def train_example(self, step: int, batch_size: int, index: int) -> Tuple[np.ndarray, np.ndarray]:
    video = self.train[epoch_index(self.seed, step * batch_size + index, len(self.train))]
    rng = example_rng(self.seed, step, index)
    length = self.spec.fps_stride * (self.num_frames - 1) + 1
    start = int(rng.integers(0, max(video.frame_count - length, 0) + 1))
    clip = self._clip(video, start, crop=int(rng.integers(2**63)))
    return clip, self._labels(video, start / FPS, (start + length - 1) / FPS)

  @functools.cached_property
  def test_clips(self) -> List[Tuple[int, int]]:
    """(video index, first frame) of every test clip, a video's clips in a row; listed once,
    from `test` as it is then."""
    length = self.spec.fps_stride * (self.num_frames - 1) + 1
    clips = []
    for index, video in enumerate(self.test):
      last = max(video.frame_count - length, 0)  # The first frame of a clip flush with the end.
      starts = [last // 2] if self.spec.eval_clips == "centre" else list(range(0, last + 1, length))
      if starts[-1] != last and self.spec.eval_clips == "segments":
        starts.append(last)
      clips += [(index, start) for start in starts]
    return clips

  @property
  def test_size(self) -> int:
    return len(self.test_clips)

  def test_inputs(self, indices: Sequence[int]) -> Batch:
    clips = self.test_clips
    return (np.stack([self._clip(self.test[clips[i][0]], clips[i][1]) for i in indices]),
            np.stack([self._labels(self.test[clips[i][0]]) for i in indices]))

  def merge_test(self, logits: np.ndarray, labels: np.ndarray) -> Batch:
    """A video's output: the maximum over its clips, per label."""
    owners = np.array([v for v, _ in self.test_clips])
    firsts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])  # Each video's first clip.
    return np.maximum.reduceat(logits, firsts, axis=0), labels[firsts]


def main(argv=None) -> None:
  """python -m harness.data.charades cache: builds data.frame_cache for both splits."""
  import argparse
  parser = argparse.ArgumentParser(prog="python -m harness.data.charades", description=frame_cache.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("command", choices=["cache"])
  parser.add_argument("--root", required=True, help="the dataset (data.root)")
  parser.add_argument("--cache", required=True, help="where the arrays go (data.frame_cache)")
  parser.add_argument("--image-size", type=int, default=224, help="the runs' clip size (default 224)")
  args = parser.parse_args(argv)
  try:
    root = require_root(args.root, "charades")
    videos = [video for split in SPLITS for video in read_split(root, split)]
    written = frame_cache.build(args.cache, args.image_size, videos)
  except (ValueError, OSError) as error:
    parser.exit(2, f"error: {error}\n")
  print(f"frame cache: {written} arrays written, {2 * len(videos) - written} already there, in {args.cache}")


if __name__ == "__main__":
  main()
