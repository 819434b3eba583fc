"""Train and test batches made in worker processes ahead of the trainer, with Grain: the paper's runs
were bound by data loading, and decoding a batch's images one after another in the training
process leaves the accelerator waiting.

The run's train examples are one sequence of pieces (Dataset.train_pieces: an example for
the file sources, a whole batch part for the generated ones), piece p of step s at index
s * pieces + p. Grain deals the indices out to the workers in turn and gives the results
back in index order; this process concatenates a step's pieces into its batch. A piece is a
pure function of its index, so the batches are train_batch's, whatever the worker count.
Test batches are made alike, a piece per test input.
Grain imports no torch (it uses jax's tree utilities when jax is installed).
"""
import functools
import math
import signal
from typing import Iterator, List, Sequence, Tuple

import numpy as np

from harness.data.base import Batch, Dataset, Examples, Part, part_bounds, WHOLE

# Small arrays (labels) travel pickled; shared memory costs a file per array.
MIN_SHARED_BYTES = 1 << 16


class _Piece:
  """Index -> piece, sent to each worker (spawned: it pickles the dataset, not a closure)."""

  def __init__(self, dataset: Dataset, batch_size: int, part: Part, pieces: int):
    self.dataset, self.batch_size, self.part, self.pieces = dataset, batch_size, tuple(part), pieces

  def __call__(self, index: int) -> Batch:
    step, piece = divmod(index, self.pieces)
    return self.dataset.train_piece(step, self.batch_size, self.part, piece)


def train_batches(dataset: Dataset, first_step: int, steps: int, batch_size: int, part: Part = WHOLE,
                  workers: int = 0, workers_ignore: Sequence[int] = ()) -> Iterator[Batch]:
  """dataset.train_batch(step, batch_size, part) for step in [first_step, steps), in order. With
  `workers`, made that many worker processes ahead of the caller, so that decoding overlaps
  training; without, in this process, one batch at a time. The workers ignore the signals in
  `workers_ignore`: those the caller handles itself and stops the workers on."""
  part_bounds(batch_size, part)  # Refused here, not in a worker.
  _check(workers)
  if workers == 0:
    return (dataset.train_batch(step, batch_size, part) for step in range(first_step, steps))
  pieces = dataset.train_pieces(batch_size, part)
  return _in_workers(_Piece(dataset, batch_size, part, pieces),
                     range(first_step * pieces, max(steps, first_step) * pieces),
                     [pieces] * max(steps - first_step, 0), workers, tuple(workers_ignore))


def test_share(size: int, part: Part) -> Tuple[List[int], int]:
  """The test inputs that process part[0] of part[1] predicts: a block of ceil(size / count),
  padded at the end with repeats of its last input (the first blocks are full), so that every
  process predicts the same batches, as JAX's multi-process programs need; and how many of
  them are its own, to keep."""
  index, count = part
  share = -(-size // count)
  own = list(range(min(index * share, size), min((index + 1) * share, size)))
  return own + [own[-1] if own else size - 1] * (share - len(own)), len(own)


def test_batches(dataset: Dataset, indices: Sequence[int], batch_size: int, workers: int = 0,
                 workers_ignore: Sequence[int] = ()) -> Iterator[Batch]:
  """dataset.test_inputs of `indices`, `batch_size` at a time, decoded by `workers` processes
  ahead of the caller if asked (as train_batches) where the source reads files."""
  _check(workers)
  batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
  if workers == 0 or not isinstance(dataset, Examples):  # Held in memory: nothing to decode.
    return (dataset.test_inputs(batch) for batch in batches)
  return _in_workers(_TestInput(dataset), indices, [len(b) for b in batches], workers,
                     tuple(workers_ignore))


class _TestInput:
  def __init__(self, dataset: Dataset):
    self.dataset = dataset

  def __call__(self, index: int) -> Batch:
    return self.dataset.test_inputs([index])


def _check(workers: int) -> None:
  if workers < 0:
    raise ValueError(f"workers={workers} is negative")


def _in_workers(make_piece, indices: Sequence[int], pieces: Sequence[int], workers: int,
                workers_ignore: Tuple[int, ...]) -> Iterator[Batch]:
  """make_piece(i) for i in `indices`, in `workers` worker processes; yields batch b as the
  concatenation of the next pieces[b] pieces. Each worker makes its pieces one at a time and
  keeps up to a batch's share of them ready; closing the generator stops the workers."""
  import grain
  _allow_unparsed_flags()
  ready = math.ceil(max(pieces, default=1) / workers)
  loader = (grain.MapDataset.source(indices).map(make_piece)
            # One decoding thread per worker: `workers` is the number of cores decoding.
            .to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=1)))
  loader = grain.experimental.WithOptionsIterDataset(
      loader, grain.experimental.DatasetOptions(min_shm_size=MIN_SHARED_BYTES))
  loader = loader.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                           per_worker_buffer_size=ready),
                              worker_init_fn=functools.partial(_ignore, workers_ignore))
  iterator = iter(loader)
  try:
    for count in pieces:
      got = [next(iterator) for _ in range(count)]
      batch = tuple(np.concatenate(leaves) for leaves in zip(*got))  # Copies out of shared memory.
      del got  # Frees the shared memory before the trainer holds the batch.
      yield batch
  finally:
    iterator.close()  # Stops and joins the workers, also when the caller stops early.


def _ignore(signals: Tuple[int, ...], worker_index: int, worker_count: int) -> None:
  """A cluster signals every process of a job: a worker leaves a preemption to the trainer, which
  stops the workers once it has checkpointed at its next step."""
  for signum in signals:
    signal.signal(signum, signal.SIG_IGN)


def _allow_unparsed_flags() -> None:
  """Grain 0.2.18 reads an Abseil flag when it starts a worker and fails if no absl.app parsed
  the command line (google/grain#1355, fixed after it): take the flags' defaults then."""
  from absl import flags
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
