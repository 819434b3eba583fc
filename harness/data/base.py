"""What every data source gives the trainer: numpy batches, identical in both frameworks.

A train batch is a pure function of (seed, step), so a resumed run sees exactly
the batches an uninterrupted one would; the test set does not depend on the seed.
A data-parallel process takes its part of each batch (a contiguous block), and the
parts of all processes together are the batch one process would take whole.
"""
import functools
import pathlib
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

# Inputs are channels last: float32 in [-1, 1] (the drawn proxy sources), or the decoded uint8
# pixels of the file sources, which travel as bytes (a quarter of float32's) and are mapped to
# [-1, 1] on the runner's device by looking each up in PIXEL_VALUES: a table, so that both
# frameworks get the same bits (XLA turns a division by a constant into a multiplication).
Batch = Tuple[np.ndarray, np.ndarray]  # inputs, labels


def unit_range(pixels: np.ndarray) -> np.ndarray:
  """uint8 pixels in [-1, 1] (float32): p / 127.5 - 1."""
  return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1)


PIXEL_VALUES = unit_range(np.arange(256, dtype=np.uint8))  # [256] float32
PIXEL_VALUES.flags.writeable = False


# What a test pixel shows, for measuring where a model looks (harness/maps/token_maps.py).
BACKGROUND, CLUTTER, TARGET = 0, 1, 2
LAYER_NAMES = ("background", "clutter", "target")

Part = Tuple[int, int]  # (this process's index, the number of processes)
WHOLE: Part = (0, 1)


def batch_rng(seed: int, step: int) -> np.random.Generator:
  return np.random.default_rng([seed, step])


def example_rng(seed: int, step: int, index: int) -> np.random.Generator:
  """The generator of the example at `index` of a global batch: its own, so that a process
  makes its part's examples without drawing those of the other parts first."""
  return np.random.default_rng([seed, step, index])


def part_bounds(batch_size: int, part: Sequence[int]) -> Tuple[int, int]:
  """[start, stop) of process part[0]'s block of a global batch split in part[1] equal blocks."""
  index, count = part
  if count < 1 or not 0 <= index < count:
    raise ValueError(f"batch part {index} of {count} does not exist")
  if batch_size % count:
    raise ValueError(f"batch_size {batch_size} does not split into {count} equal parts")
  size = batch_size // count
  return index * size, (index + 1) * size


def require_at_least(spec, minimums: Mapping[str, int]) -> None:
  """Each named integer field of a data config is at least its minimum."""
  for field, minimum in minimums.items():
    if spec[field] < minimum:
      raise ValueError(f"data.{field}={spec[field]} is below {minimum}")


class Dataset:
  """A data source. Constructed as cls(spec, seed, image_size, num_frames) from its `data`
  config; the class methods check that config, and what it points to on disk, before a
  run starts, so that a run does not fail, or train on the wrong data, midway."""
  multilabel: bool  # labels are multi-hot [B, K] floats, else class indices [B]
  draws_layers = False  # whether test_layers says what each test pixel shows (drawn data does)
  num_classes: int
  # Multi-label sources whose labels ask different questions name them, so that each group is
  # also scored alone (a mean over all labels can hide a group that is not learned at all).
  label_groups: Mapping[str, slice] = {}

  @classmethod
  def count_classes(cls, spec) -> int:
    """How many classes (or labels) the source has, without loading it."""
    return cls.num_classes

  @classmethod
  def check_spec(cls, spec, image_size: int, num_frames: int) -> None:
    """Refuses fields no example can be made with (ValueError naming the field)."""

  @classmethod
  def check_files(cls, spec, image_size: int, stamp_dir: Optional[pathlib.Path] = None) -> None:
    """Refuses a dataset on disk the loader would fail on, naming the file, row or video.
    A check costly enough to remember leaves a stamp in `stamp_dir`."""

  def train_batch(self, step: int, batch_size: int, part: Part = WHOLE) -> Batch:
    """Process part[0]'s block of the global batch of `step` (see part_bounds)."""
    raise NotImplementedError

  def train_pieces(self, batch_size: int, part: Part = WHOLE) -> int:
    """How many pieces a worker makes a batch part in: one, the part itself, unless the
    source makes its examples one by one."""
    return 1

  def train_piece(self, step: int, batch_size: int, part: Part, piece: int) -> Batch:
    """Piece `piece` of a batch part, with a leading batch axis: the pieces in order,
    concatenated, are the part."""
    return self.train_batch(step, batch_size, part)

  @property
  def test_set(self) -> Batch:
    """The whole test split in memory (proxy data); loaders over files decode test_inputs."""
    raise NotImplementedError

  def test_layers(self, count: int) -> np.ndarray:
    """What each pixel of the first `count` test examples shows (harness/data/digits.py's
    BACKGROUND, CLUTTER, TARGET): known only where the data was drawn, as the proxy's is."""
    raise NotImplementedError(f"{type(self).__name__} does not know what its pixels show; "
                              "only the proxy data (digits, moving_digits) does")

  @property
  def test_size(self) -> int:
    """How many test inputs there are (more than test examples where merge_test merges)."""
    return len(self.test_set[1])

  def test_inputs(self, indices: Sequence[int]) -> Batch:
    """Test inputs `indices`, with their labels (harness/data/pipeline.py's test_batches
    decodes them, in worker processes if asked)."""
    x, y = self.test_set
    return x[list(indices)], y[list(indices)]

  def merge_test(self, logits: np.ndarray, labels: np.ndarray) -> Batch:
    """The test examples' outputs and labels from those of every test input, in order:
    the same, unless a source evaluates an example as several inputs (a video's clips)."""
    return logits, labels


class Rendered(Dataset):
  """A task rendered from sprites in memory: train batches drawn afresh for each (seed, step),
  a fixed test set (drawn with `test_seed`, whatever the run's seed), and what each test pixel
  shows. Subclasses set `train_sources` and `test_sources` and say how a batch is rendered
  (_render)."""
  draws_layers = True
  test_seed: int
  spec: object
  seed: int
  train_sources: tuple
  test_sources: tuple

  def _render(self, rng, sources, count: int, with_layers: bool = False):
    """(inputs, labels), plus the layers of each pixel if asked, of `count` examples."""
    raise NotImplementedError

  def train_batch(self, step: int, batch_size: int, part: Part = WHOLE) -> Batch:
    """The whole batch from one generator, whatever the part, and this part sliced from it:
    rendering costs little, and a batch is the same however many processes share it."""
    start, stop = part_bounds(batch_size, part)
    x, y = self._render(batch_rng(self.seed, step), self.train_sources, batch_size)
    return x[start:stop], y[start:stop]

  @functools.cached_property
  def test_set(self) -> Batch:
    return self._render(np.random.default_rng(self.test_seed), self.test_sources, self.spec.test_size)

  def test_layers(self, count: int) -> np.ndarray:
    """What each pixel of the first `count` test examples shows [count, (T,) S, S]."""
    rng = np.random.default_rng(self.test_seed)
    return self._render(rng, self.test_sources, self.spec.test_size, with_layers=True)[2][:count]


class Examples(Dataset):
  """A source that makes each train example alone (decoding files is costly): a process
  decodes only its part, a worker one example at a time. An example depends on (seed, step,
  its index in the global batch) only, through example_rng."""

  def train_example(self, step: int, batch_size: int, index: int) -> Tuple[np.ndarray, np.ndarray]:
    """The input and label of the example at `index` of the global batch of `step`."""
    raise NotImplementedError

  def train_batch(self, step: int, batch_size: int, part: Part = WHOLE) -> Batch:
    examples = [self.train_example(step, batch_size, i) for i in range(*part_bounds(batch_size, part))]
    return np.stack([x for x, _ in examples]), np.stack([y for _, y in examples])

  def train_pieces(self, batch_size: int, part: Part = WHOLE) -> int:
    start, stop = part_bounds(batch_size, part)
    return stop - start

  def train_piece(self, step: int, batch_size: int, part: Part, piece: int) -> Batch:
    x, y = self.train_example(step, batch_size, part_bounds(batch_size, part)[0] + piece)
    return x[None], y[None]  # [1, ...]: a batch of one.
