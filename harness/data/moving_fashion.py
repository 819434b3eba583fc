"""Proxy video: clips of Fashion-MNIST items moving in straight lines (Moving MNIST with real
sprites).

Each clip holds `num_items` items, each scaled to item_size and moving (moving_digits.render) in one of 4 directions
(moving_digits.DIRECTIONS) at 1 or 2 pixels a frame; where two overlap, the brighter pixel
shows. The labels are moving_digits': which kinds of item appear (10) and which kind moves
which way (10 x 4), 50 labels scored by mAP.

Train clips are drawn afresh for each (seed, step) from the train items that the validation
split leaves (fashion_mnist.splits); the evaluation clips are fixed, drawn from the
validation items or the test items, so no evaluated item is ever seen in training.
"""
import numpy as np

from harness.data import fashion_mnist, moving_digits
from harness.data.base import Rendered, require_at_least
from harness.data.digits import resize
from harness.data.moving_digits import KINDS, NUM_LABELS

EVAL_CLIPS_SEED = 2_000_003  # The evaluation clips are the same for every run seed.


def scaled(split, item_size: int):
  """(images [N, item_size, item_size] in [0, 1], labels [N]) of one split."""
  images, labels = split
  return resize(images.astype(np.float32) / 255.0, item_size), labels.astype(np.int32)


class MovingFashion(Rendered):
  """Clips of `num_items` moving Fashion-MNIST items; multi-label: which kinds appear, and which
  kind moves which way."""
  multilabel = True
  num_classes = NUM_LABELS
  test_seed = EVAL_CLIPS_SEED
  label_groups = {"items": slice(0, KINDS), "motions": slice(KINDS, NUM_LABELS)}

  def __init__(self, spec, seed: int, canvas_size: int, num_frames: int = 1):
    self.spec, self.seed = spec, seed
    self.canvas_size, self.num_frames = canvas_size, num_frames
    self.train_sources, self.test_sources = (scaled(split, spec.item_size)
                                             for split in fashion_mnist.splits(spec))

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    require_at_least(spec, {"item_size": 1, "num_items": 1, "validation_size": 1, "test_size": 1})
    fashion_mnist.check_split(spec)
    moving_digits.check_fit(spec.item_size, image_size, num_frames, "data.item_size", "the model's image_size")

  @classmethod
  def check_files(cls, spec, image_size: int, stamp_dir=None) -> None:
    fashion_mnist.check_validation_size(spec)

  def _render(self, rng, sources, count: int, with_layers: bool = False):
    return moving_digits.render(rng, *sources, count, self.num_frames, self.canvas_size, self.spec.num_items,
                                with_layers, fixed=True)
