"""Proxy video: clips of Fashion-MNIST items moving in straight lines (Moving MNIST with real
sprites).

Each clip holds `num_items` items, each scaled to item_size and moving in one of 4 directions
(moving_digits.DIRECTIONS) at 1 or 2 pixels a frame; where two overlap, the brighter pixel
shows. The labels are moving_digits': which kinds of item appear (10) and which kind moves
which way (10 x 4), 50 labels scored by mAP.

Train clips are drawn afresh for each (seed, step) from the train items that the validation
split leaves (fashion_mnist.splits); the evaluation clips are fixed, drawn from the
validation items or the test items, so no evaluated item is ever seen in training.
"""
import functools

import numpy as np

from harness.data import fashion_mnist
from harness.data.base import TARGET, WHOLE, Batch, Dataset, Part, batch_rng, part_bounds, require_at_least
from harness.data.digits import paste, resize
from harness.data.moving_digits import DIRECTIONS, KINDS, MAX_SPEED, NUM_LABELS, motion_label

EVAL_CLIPS_SEED = 2_000_003  # The evaluation clips are the same for every run seed.


def check_fit(item_size: int, canvas_size: int, num_frames: int) -> None:
  travel = MAX_SPEED * (num_frames - 1)
  if item_size + travel > canvas_size:
    raise ValueError(f"data.item_size={item_size} moving up to {travel} px does not fit the "
                     f"model's image_size={canvas_size}")


def render(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, count: int,
           num_frames: int, canvas_size: int, items: int, with_layers: bool = False):
  """`count` clips [count, T, S, S, 1] in [-1, 1] and multi-hot targets [count, 50] from item
  images [N, s, s] in [0, 1]; with_layers, also what each pixel shows [count, T, S, S]
  (TARGET where an item's ink shows, else BACKGROUND)."""
  size = images.shape[1]
  check_fit(size, canvas_size, num_frames)
  clips = np.zeros((count, num_frames, canvas_size, canvas_size), np.float32)
  layers = np.zeros(clips.shape, np.int8) if with_layers else None
  targets = np.zeros((count, NUM_LABELS), np.float32)
  for i in range(count):
    for _ in range(items):
      pick, direction = rng.integers(0, len(labels)), rng.integers(0, len(DIRECTIONS))
      velocity = DIRECTIONS[direction] * rng.integers(1, MAX_SPEED + 1)
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


def scaled(split, item_size: int):
  """(images [N, item_size, item_size] in [0, 1], labels [N]) of one split."""
  images, labels = split
  return resize(images.astype(np.float32) / 255.0, item_size), labels.astype(np.int32)


class MovingFashion(Dataset):
  """Clips of `num_items` moving Fashion-MNIST items; multi-label: which kinds appear, and which
  kind moves which way."""
  multilabel = True
  draws_layers = True
  num_classes = NUM_LABELS
  label_groups = {"items": slice(0, KINDS), "motions": slice(KINDS, NUM_LABELS)}

  def __init__(self, spec, seed: int, canvas_size: int, num_frames: int = 1):
    self.spec, self.seed = spec, seed
    self.canvas_size, self.num_frames = canvas_size, num_frames
    self.train_items, self.eval_items = (scaled(split, spec.item_size)
                                         for split in fashion_mnist.splits(spec))

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    require_at_least(spec, {"item_size": 1, "num_items": 1, "validation_size": 1, "test_size": 1})
    fashion_mnist.check_split(spec)
    check_fit(spec.item_size, image_size, num_frames)

  @classmethod
  def check_files(cls, spec, stamp_dir=None) -> None:
    fashion_mnist.check_validation_size(spec)

  def _render(self, rng, items, count: int, with_layers: bool = False):
    return render(rng, *items, count, self.num_frames, self.canvas_size, self.spec.num_items, with_layers)

  def train_batch(self, step: int, batch_size: int, part: Part = WHOLE) -> Batch:
    """The whole batch from one generator, whatever the part, and this part sliced from it, so
    that a batch is the same however many processes share it."""
    start, stop = part_bounds(batch_size, part)
    x, y = self._render(batch_rng(self.seed, step), self.train_items, batch_size)
    return x[start:stop], y[start:stop]

  @functools.cached_property
  def test_set(self) -> Batch:
    return self._render(np.random.default_rng(EVAL_CLIPS_SEED), self.eval_items, self.spec.test_size)

  def test_layers(self, count: int) -> np.ndarray:
    """What each pixel of the first `count` evaluation clips shows [count, T, S, S]."""
    rng = np.random.default_rng(EVAL_CLIPS_SEED)
    return self._render(rng, self.eval_items, self.spec.test_size, with_layers=True)[2][:count]
