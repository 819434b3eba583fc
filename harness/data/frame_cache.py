"""Charades' frames decoded once, as the loader resizes them, kept as uint8 arrays (data.frame_cache).

A 64-frame clip costs 64 JPEG decodes and resizes, a few hundred CPU cores per GPU at the
paper's rate. From the cache a clip is 64 slices of a memory-mapped array, cropped: the same
pixels, since each frame is stored exactly as the loader's resize leaves it, before its crop.
One array per video and resize, <cache>/short<S>/<video id>.npy, [frames, H, W, 3] uint8 with
the shorter side S: size * 8 / 7 for training clips (then a random crop), size for test clips
(a centre crop). At the paper's 224 px that is 256 x 455 x 3 and 224 x 398 x 3 bytes per frame
of a 16:9 video: about 2.4 TB and 1.9 TB for Charades' 7M frames, on a disk that reads some
22 MB per training clip as fast as the accelerators take clips. `python -m harness.data.charades
cache` builds it; a run with data.frame_cache set reads only the cache and refuses to start
while a video of its splits is missing from it.
"""
import pathlib
from typing import Callable, Sequence

import numpy as np

from harness.data.files import replace_whole, resized_shorter, shorter_side


def short_sides(size: int) -> tuple:
  """The resizes a run at `size` reads: its training clips', then its test clips'."""
  return shorter_side(size, train=True), shorter_side(size, train=False)


def path(cache, short: int, video_id: str) -> pathlib.Path:
  return pathlib.Path(cache) / f"short{short}" / f"{video_id}.npy"


def build_video(cache, short: int, video_id: str, frame_paths: Sequence[pathlib.Path]) -> bool:
  """Writes a video's frames, resized to `short`, whole or not at all; False if already there."""
  target = path(cache, short, video_id)
  if target.exists():
    return False

  def write(temporary: pathlib.Path) -> None:
    first = resized_shorter(frame_paths[0], short)
    out = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8,
                                    shape=(len(frame_paths), *first.shape))  # [F, H, W, 3].
    out[0] = first
    for i, frame in enumerate(frame_paths[1:], 1):
      pixels = resized_shorter(frame, short)
      if pixels.shape != first.shape:
        raise ValueError(f"frame {frame} is {pixels.shape[1]}x{pixels.shape[0]} after the resize, "
                         f"not {first.shape[1]}x{first.shape[0]} as the video's first")
      out[i] = pixels
    out.flush()

  replace_whole(target, write)
  return True


def frames(cache, short: int, video_id: str, frame_count: int) -> np.ndarray:
  """A video's cached frames, memory-mapped: [frame_count, H, W, 3] uint8. ValueError naming
  the file when it is missing or holds another number of frames."""
  where = path(cache, short, video_id)
  try:
    array = np.load(where, mmap_mode="r")
  except (OSError, ValueError) as error:
    raise ValueError(f"no cached frames for Charades video {video_id} at {where} ({error.__class__.__name__}): "
                     "build the cache with `python -m harness.data.charades cache`") from None
  if array.ndim != 4 or array.shape[0] != frame_count or array.dtype != np.uint8:
    raise ValueError(f"cached frames {where} hold {array.shape} {array.dtype}, not {frame_count} uint8 frames "
                     "(the video changed since the cache was built: remove the file and build again)")
  return array


def build(cache, size: int, videos: Sequence, progress: Callable[[str], None] = print) -> int:
  """Caches every video (id, frame_count, frame(i)) at both resizes of `size`; returns how many
  arrays it wrote (those already there are kept)."""
  written, total = 0, len(videos) * 2
  for done, (video, short) in enumerate(((v, s) for v in videos for s in short_sides(size)), 1):
    written += build_video(cache, short, video.id, [video.frame(i) for i in range(video.frame_count)])
    if done % 100 == 0 or done == total:
      progress(f"frame cache: {done}/{total} arrays ({written} written) in {cache}")
  return written
