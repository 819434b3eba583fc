"""The train pipeline: a process's part of a batch is that block of the whole batch, and worker
processes (Grain) give the batches the calling process makes, stopping when closed early."""
import multiprocessing
import pathlib
import time
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness import data as datasets
from harness.configs.schema import DATA_SOURCES
from harness.data import imagenet, pipeline
from harness.testing import tiny_datasets

SIZE, FRAMES = 16, 4


def textured(root: pathlib.Path) -> pathlib.Path:
  """Every image under root redrawn as noise of its size, so that crops and flips show."""
  from PIL import Image
  rng = np.random.default_rng(0)
  for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png")):
    with Image.open(path) as image:
      size = image.size
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), np.uint8)).save(path)
  return root


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("pipeline")
  return {"imagenet": textured(tiny_datasets.imagenet(tmp / "imagenet")),
          "charades": textured(tiny_datasets.charades(tmp / "charades", frames=16)),
          "fashion_mnist": tiny_datasets.fashion_mnist(tmp / "fashion_mnist")}


def make(source: str, roots, seed: int = 0):
  fields = {"digits": dict(digit_size=6, clutter_size=3, test_size=4),
            "moving_digits": dict(digit_size=6, test_size=4),
            "imagenet": dict(root=str(roots.get("imagenet"))),
            "charades": dict(root=str(roots.get("charades")), fps_stride=2),
            "fashion_mnist": dict(root=str(roots.get("fashion_mnist")), validation_size=8),
            "moving_fashion": dict(root=str(roots.get("fashion_mnist")), validation_size=8, test_size=4,
                                   item_size=8)}[source]
  spec = OmegaConf.structured(DATA_SOURCES[source](**fields))
  size = 28 if source == "fashion_mnist" else SIZE  # Its images are 28 x 28.
  return datasets.make(spec, seed, size, FRAMES if source in ("moving_digits", "moving_fashion", "charades") else 1)


def assert_same(got, expected):
  assert len(got) == len(expected)
  for (x, y), (xe, ye) in zip(got, expected):
    assert type(x) is np.ndarray and x.dtype == xe.dtype and y.dtype == ye.dtype
    np.testing.assert_array_equal(x, xe)
    np.testing.assert_array_equal(y, ye)


@pytest.mark.parametrize("source", sorted(datasets.SOURCES))
def test_a_part_is_its_block_of_the_whole_batch(source, roots):
  data = make(source, roots, seed=3)
  for step in (0, 5):
    x, y = data.train_batch(step, 6)
    parts = [data.train_batch(step, 6, (i, 3)) for i in range(3)]
    assert_same(parts, [(x[2 * i:2 * i + 2], y[2 * i:2 * i + 2]) for i in range(3)])
  assert not np.array_equal(data.train_batch(1, 6)[0], x)


def test_a_part_that_does_not_exist_or_split_evenly_is_refused(roots):
  data = make("imagenet", roots)
  with pytest.raises(ValueError, match="batch_size 10 does not split into 3 equal parts"):
    data.train_batch(0, 10, (0, 3))
  with pytest.raises(ValueError, match="batch part 2 of 2 does not exist"):
    pipeline.train_batches(data, 0, 1, 4, (2, 2), workers=2)
  with pytest.raises(ValueError, match="workers=-1"):
    pipeline.train_batches(data, 0, 1, 4, workers=-1)


def test_a_process_decodes_only_its_part(roots, monkeypatch):
  data, decoded = make("imagenet", roots), []
  monkeypatch.setattr(imagenet, "inception_crop",
                      lambda path, *args: decoded.append(path) or np.zeros((SIZE, SIZE, 3)))
  data.train_batch(0, 8, (3, 4))
  assert len(decoded) == 2


def test_a_train_clip_is_cropped_and_flipped_alike_in_every_frame(tmp_path):
  """Frames that are the same image give the same cropped frame: one view of the clip."""
  from PIL import Image
  root = tiny_datasets.charades(tmp_path, frames=16)
  noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (14, 20, 3), np.uint8))
  for path in (root / "Charades_v1_rgb").rglob("*.jpg"):
    noise.save(path)
  data = make("charades", {"charades": root})
  clips, _ = data.train_batch(0, 8)
  assert all((clip == clip[0]).all() for clip in clips)
  assert len({clip[0].tobytes() for clip in clips}) > 1  # Crops still differ between clips.


@pytest.mark.parametrize("source", ["imagenet", "charades", "digits"])
def test_workers_give_the_batches_the_calling_process_makes(source, roots):
  data = make(source, roots)
  expected = list(pipeline.train_batches(data, 0, 3, 4, (1, 2)))
  assert_same(expected, [data.train_batch(step, 4, (1, 2)) for step in range(3)])
  assert_same(list(pipeline.train_batches(data, 0, 3, 4, (1, 2), workers=2)), expected)


def test_a_resume_gives_the_tail_of_an_uninterrupted_run(roots):
  data = make("imagenet", roots)
  uninterrupted = list(pipeline.train_batches(data, 0, 5, 6))  # Crosses epochs of the 9 images.
  assert_same(list(pipeline.train_batches(data, 3, 5, 6, workers=2)), uninterrupted[3:])
  assert_same(list(pipeline.train_batches(make("imagenet", roots), 3, 5, 6)), uninterrupted[3:])
  assert list(pipeline.train_batches(data, 5, 5, 6, workers=2)) == []


def test_each_process_predicts_an_equal_share_of_the_test_inputs_and_keeps_its_own():
  shares = [pipeline.test_share(10, (i, 4)) for i in range(4)]
  assert shares == [([0, 1, 2], 3), ([3, 4, 5], 3), ([6, 7, 8], 3), ([9, 9, 9], 1)]
  assert [i for indices, own in shares for i in indices[:own]] == list(range(10))
  assert pipeline.test_share(2, (3, 4)) == ([1], 0)  # Nothing of its own: it pads with the last.


@pytest.mark.parametrize("source", ["imagenet", "charades", "fashion_mnist"])
def test_workers_decode_the_test_batches_the_calling_process_makes(source, roots):
  data = make(source, roots)
  indices = list(range(data.test_size))[1:] + [data.test_size - 1]
  expected = [data.test_inputs(indices[i:i + 2]) for i in range(0, len(indices), 2)]
  assert_same(list(pipeline.test_batches(data, indices, 2)), expected)
  assert_same(list(pipeline.test_batches(data, indices, 2, workers=2)), expected)


def test_a_group_s_evaluation_is_one_process_s(roots):
  """Four processes (threads here, gathering through a barrier), each predicting its share of
  Charades' test clips, give the metrics of one process predicting them all: a video's clips
  that two shares split are merged after the gather, and a process with no clip of its own
  adds nothing."""
  import threading

  from harness.run import train
  data = make("charades", roots)
  data.test = data.test * 2
  assert data.test_size == 6  # 3 clips a video: shares [0, 1], [2, 3], [4, 5] and none.
  weights = np.random.default_rng(0).normal(size=(int(np.prod(data.test_inputs([0])[0].shape[1:])), 157))
  runner = SimpleNamespace(predict=lambda x: x.reshape(len(x), -1).astype(np.float32) @ weights)
  whole = train.evaluate(runner, data, 2)

  barrier, boxes, results = threading.Barrier(4), [None] * 4, [None] * 4
  class Thread:
    def __init__(self, index):
      self.part, self.index = (index, 4), index
    def gather(self, value):
      boxes[self.index] = value
      barrier.wait()
      return list(boxes)
  def evaluate(index):
    results[index] = train.evaluate(runner, data, 2, Thread(index))
  threads = [threading.Thread(target=evaluate, args=(i,)) for i in range(4)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  for metrics, replicates in results:
    assert metrics == whole[0]
    np.testing.assert_array_equal(replicates, whole[1])


def new_children(before):
  """Child processes started since `before` (another test's pool may outlive it)."""
  return set(multiprocessing.active_children()) - before


def test_closing_early_leaves_no_worker_processes(roots):
  data, before = make("charades", roots), set(multiprocessing.active_children())
  batches = pipeline.train_batches(data, 0, 1000, 4, workers=2)
  next(batches)
  workers = new_children(before)
  assert len(workers) == 2
  start = time.monotonic()
  batches.close()
  assert not new_children(before) and not any(w.is_alive() for w in workers)
  assert time.monotonic() - start < 20


def test_a_file_that_fails_in_a_worker_fails_the_caller_naming_it(tmp_path):
  root = tiny_datasets.imagenet(tmp_path)
  broken = root / "train" / "n02" / "n02_1.JPEG"
  broken.write_bytes(broken.read_bytes()[:40])  # Cut short in its header: does not decode.
  before = set(multiprocessing.active_children())
  batches = pipeline.train_batches(make("imagenet", {"imagenet": root}), 0, 2, 9, workers=2)
  with pytest.raises(OSError, match=f"image {broken} does not decode"):
    list(batches)
  assert not new_children(before)


def test_the_bench_measures_decoding_at_the_paper_sizes_and_renders_it_per_worker():
  import pandas as pd
  from harness.bench import probe, report
  from harness.bench.__main__ import paper_inputs
  assert paper_inputs() == [("charades", 224, 64), ("imagenet", 384, 1), ("imagenet", 512, 1)]
  speed = probe.data_throughput("charades", SIZE, FRAMES, 0, 1, 2)  # Small: its own fixture.
  assert speed["examples_per_s"] > 0 and speed["examples_per_s_per_worker"] == speed["examples_per_s"]
  data = pd.DataFrame({"source": ["imagenet"] * 2, "image_size": [384] * 2, "frames": [1] * 2,
                       "workers": [0, 2], "batch_size": [8] * 2, "steps": [10] * 2,
                       "examples_per_s": [50.0, 90.0], "examples_per_s_per_worker": [50.0, 45.0],
                       "first_batch_s": [0.1, 3.0], "date": ["d"] * 2, "commit": ["c"] * 2,
                       "machine": ["m"] * 2})
  text = "\n".join(report.data_markdown(data))
  assert "in process    2 workers" in text
  assert any(line.startswith("imagenet 384 px") and "50.0" in line and "45.0" in line
             for line in text.splitlines())
