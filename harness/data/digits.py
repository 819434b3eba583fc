"""Proxy images: cluttered handwritten digits (a Cluttered-MNIST-style task).

Each canvas holds one scikit-learn digit (8x8, scaled up) at a random place among
fragments cut from other digits, so that where to look matters. The 1797 source
digits are split once into train and test sources; clutter comes from the same
split as the digit, so no test digit is ever seen in training.
"""
import functools
from typing import Optional, Tuple

import numpy as np

from harness.data.base import CLUTTER, TARGET, Rendered, require_at_least

SOURCE_SPLIT_SEED = 0  # Fixes which source digits are train and which are test, for every run.
TEST_FRACTION = 0.3
TEST_SET_SEED = 1_000_003  # The test canvases are the same for every run seed.
# A canvas pixel shows (base.LAYER_NAMES) the source that drew its value, where that value is
# ink (above INK of the [0, 1] range).
INK = 0.25


@functools.lru_cache(maxsize=None)
def source_digits(split: str, size: int) -> Tuple[np.ndarray, np.ndarray]:
  """The train or test source digits scaled to size x size, values in [0, 1], and labels."""
  from sklearn.datasets import load_digits
  digits = load_digits()
  order = np.random.RandomState(SOURCE_SPLIT_SEED).permutation(len(digits.target))
  n_test = int(len(order) * TEST_FRACTION)
  index = order[n_test:] if split == "train" else order[:n_test]
  images = digits.images[index].astype(np.float32) / 16.0
  return resize(images, size), digits.target[index].astype(np.int32)


def resize(images: np.ndarray, size: int) -> np.ndarray:
  """Bilinear resize of [N, h, w] images to [N, size, size] (align-corners sampling)."""
  n, h, w = images.shape
  ys, xs = np.linspace(0, h - 1, size), np.linspace(0, w - 1, size)
  y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
  y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
  wy, wx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
  top = images[:, y0][:, :, x0] * (1 - wx) + images[:, y0][:, :, x1] * wx
  bottom = images[:, y1][:, :, x0] * (1 - wx) + images[:, y1][:, :, x1] * wx
  return (top * (1 - wy) + bottom * wy).astype(np.float32)


def paste(canvas: np.ndarray, piece: np.ndarray, y: int, x: int, layers: Optional[np.ndarray] = None,
          layer: int = TARGET) -> None:
  """Draws `piece` onto `canvas` at (y, x), keeping the brighter pixel; `layers` (the canvas's
  shape) marks `layer` where the piece's ink is what the pixel shows."""
  h, w = piece.shape
  if layers is not None:
    layers[y:y + h, x:x + w][_shown(piece, canvas[y:y + h, x:x + w])] = layer
  np.maximum(canvas[y:y + h, x:x + w], piece, out=canvas[y:y + h, x:x + w])


def _shown(piece: np.ndarray, under: np.ndarray) -> np.ndarray:
  """Where a piece pasted over `under` is what the pixel shows: its ink, at least as bright."""
  return (piece >= under) & (piece > INK)


def check_fit(digit_size: int, canvas_size: int, clutter_size: int) -> None:
  if digit_size > canvas_size or clutter_size > digit_size:
    raise ValueError(f"digit_size={digit_size} must fit canvas_size={canvas_size} and hold "
                     f"clutter_size={clutter_size}")


def render(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, count: int,
           canvas_size: int, clutter: int, clutter_size: int, with_layers: bool = False):
  """`count` canvases [count, S, S, 1] in [-1, 1] and their digit labels; with_layers, also
  what each pixel shows [count, S, S] (BACKGROUND, CLUTTER or TARGET), from the same draws.

  The draws are those of drawing canvas after canvas: each canvas's digit, then for each
  fragment its donor, its corner in the donor (y, x) and its place (y, x), then the digit's
  place. One call with an upper bound per draw gives the same numbers as one call per draw
  (each is a bounded draw from the generator's next 32 bits), so a batch costs one call."""
  n, size, _ = images.shape
  check_fit(size, canvas_size, clutter_size)
  fragment_highs = [n, size - clutter_size + 1, size - clutter_size + 1,
                    canvas_size - clutter_size + 1, canvas_size - clutter_size + 1]
  digit_highs = [canvas_size - size + 1] * 2
  picks = rng.integers(0, n, count)
  per_canvas = np.tile(fragment_highs * clutter + digit_highs, count)
  draws = rng.integers(0, per_canvas).reshape(count, -1)  # [count, 5 * clutter + 2]
  fragments = draws[:, :5 * clutter].reshape(count, clutter, 5)  # donor, fy, fx, y, x
  canvases = np.zeros((count, canvas_size, canvas_size), np.float32)
  layers = np.zeros(canvases.shape, np.int8) if with_layers else None
  # Pieces in drawing order, each pasted into all canvases at once (one piece per canvas, so no
  # two writes meet): fragments of other digits first, the digit on top.
  for f in range(clutter):
    donor, fy, fx, y, x = fragments[:, f].T
    pieces = _crops(images[donor], fy, fx, clutter_size)
    _paste_all(canvases, pieces, y, x, layers, CLUTTER)
  _paste_all(canvases, images[picks], draws[:, -2], draws[:, -1], layers, TARGET)
  batch = canvases[..., None] * 2.0 - 1.0, labels[picks]
  return (*batch, layers) if with_layers else batch


def _windows(y: np.ndarray, x: np.ndarray, h: int, w: int):
  """Row and column indices of the h x w window at each corner (y[i], x[i])."""
  rows = (y[:, None] + np.arange(h))[:, :, None]  # [N, h, 1]
  cols = (x[:, None] + np.arange(w))[:, None, :]  # [N, 1, w]
  return rows, cols


def _crops(images: np.ndarray, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
  """The size x size crop of each image [N, h, w] at its own corner (y[i], x[i])."""
  return images[(np.arange(len(images))[:, None, None], *_windows(y, x, size, size))]


def _paste_all(canvases: np.ndarray, pieces: np.ndarray, y: np.ndarray, x: np.ndarray,
               layers: Optional[np.ndarray], layer: int) -> None:
  """paste() of pieces[i] onto canvases[i] at (y[i], x[i]) for every i at once."""
  index = (np.arange(len(canvases))[:, None, None], *_windows(y, x, *pieces.shape[1:]))
  under = canvases[index]
  if layers is not None:
    layers[index] = np.where(_shown(pieces, under), np.int8(layer), layers[index])
  canvases[index] = np.maximum(under, pieces)


class RenderedDigits(Rendered):
  """A task rendered from the handwritten digits (base.Rendered): the train and test source
  digits scaled to digit_size."""
  test_seed = TEST_SET_SEED

  def __init__(self, spec, seed: int, canvas_size: int, num_frames: int = 1):
    self.spec, self.seed = spec, seed
    self.canvas_size, self.num_frames = canvas_size, num_frames
    self.train_sources = source_digits("train", spec.digit_size)
    self.test_sources = source_digits("test", spec.digit_size)


class ClutteredDigits(RenderedDigits):
  """One digit per canvas among clutter fragments of other digits; 10 classes."""
  multilabel = False
  num_classes = 10

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    require_at_least(spec, {"digit_size": 1, "clutter": 0, "clutter_size": 1, "test_size": 1})
    check_fit(spec.digit_size, image_size, spec.clutter_size)

  def _render(self, rng, sources, count, with_layers: bool = False):
    s = self.spec
    return render(rng, *sources, count, self.canvas_size, s.clutter, s.clutter_size, with_layers)
