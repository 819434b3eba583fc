"""Proxy video: clips of several handwritten digits moving in straight lines.

Multi-label targets, as Charades has: which of the 10 digits appear (10 labels) and which
digit moves in which of 4 directions (right, left, down, up; 40 labels, which need what a
digit is and where it goes bound together, as Charades' verb-object classes do), scored by
mAP. Digits come from the disjoint train/test sources of the image proxy.
"""
import numpy as np

from harness.data.base import require_at_least
from harness.data.digits import TARGET, RenderedDigits, paste

DIRECTIONS = np.array([(0, 1), (0, -1), (1, 0), (-1, 0)])  # (dy, dx): right, left, down, up.
MAX_SPEED = 2  # pixels per frame
KINDS = 10  # of sprite: digits, or kinds of clothing
NUM_LABELS = KINDS * (1 + len(DIRECTIONS))


def motion_label(kind: int, direction: int) -> int:
  """Index of the label 'a sprite of `kind` moves in `direction`', after the KINDS labels of
  which sprites appear."""
  return KINDS + kind * len(DIRECTIONS) + direction


def check_fit(size: int, canvas_size: int, num_frames: int, size_name: str = "digit_size",
              canvas_name: str = "canvas_size") -> None:
  travel = MAX_SPEED * (num_frames - 1)
  if size + travel > canvas_size:
    raise ValueError(f"{size_name}={size} moving up to {travel} px does not fit {canvas_name}={canvas_size}")


def render(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, count: int,
           num_frames: int, canvas_size: int, max_sprites: int, with_layers: bool = False,
           fixed: bool = False):
  """`count` clips [count, T, S, S, 1] in [-1, 1] of 1 to max_sprites sprites (images [N, s, s]
  in [0, 1]; `fixed`: max_sprites in every clip, no count drawn), each moving in a straight line,
  and multi-hot targets [count, 50]; with_layers, also what each pixel shows [count, T, S, S]
  (TARGET where a sprite's ink shows, the rest background)."""
  size = images.shape[1]
  check_fit(size, canvas_size, num_frames)
  clips = np.zeros((count, num_frames, canvas_size, canvas_size), np.float32)
  layers = np.zeros(clips.shape, np.int8) if with_layers else None
  targets = np.zeros((count, NUM_LABELS), np.float32)
  for i in range(count):
    for _ in range(max_sprites if fixed else rng.integers(1, max_sprites + 1)):
      pick, direction = rng.integers(0, len(labels)), rng.integers(0, len(DIRECTIONS))
      speed = rng.integers(1, MAX_SPEED + 1)
      velocity = DIRECTIONS[direction] * speed
      # Start where the whole path stays on the canvas.
      low = np.where(velocity < 0, -velocity * (num_frames - 1), 0)
      high = canvas_size - size - np.where(velocity > 0, velocity * (num_frames - 1), 0)
      start = np.array([rng.integers(low[a], high[a] + 1) for a in range(2)])
      for t in range(num_frames):
        y, x = start + velocity * t
        paste(clips[i, t], images[pick], y, x, layers[i, t] if with_layers else None, TARGET)
      targets[i, labels[pick]] = 1.0
      targets[i, motion_label(labels[pick], direction)] = 1.0
  batch = clips[..., None] * 2.0 - 1.0, targets  # Shape: [count, T, S, S] -> [count, T, S, S, 1].
  return (*batch, layers) if with_layers else batch


class MovingDigits(RenderedDigits):
  """Clips of 1 to max_digits digits moving in straight lines; multi-label: which digits appear,
  and which digit moves which way."""
  multilabel = True
  num_classes = NUM_LABELS
  label_groups = {"digits": slice(0, KINDS), "motions": slice(KINDS, NUM_LABELS)}

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    require_at_least(spec, {"digit_size": 1, "max_digits": 1, "test_size": 1})
    check_fit(spec.digit_size, image_size, num_frames)

  def _render(self, rng, sources, count, with_layers: bool = False):
    s = self.spec
    return render(rng, *sources, count, self.num_frames, self.canvas_size, s.max_digits, with_layers)
