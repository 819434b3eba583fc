"""Paper-scale loaders on tiny fixtures written in the real datasets' formats."""
import pathlib

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness import data as datasets
from harness.configs.schema import CharadesData, ImageNetData
from harness.testing import tiny_datasets
from harness.testing.tiny_datasets import CHARADES_CSV_HEADER as CSV_HEADER


@pytest.fixture
def imagenet(tmp_path):
  """Class folders: 3 classes, 3 train and 1 val image each; class k's pixels are 40 * (k + 1)."""
  return tiny_datasets.imagenet(tmp_path)


def test_imagenet_folders_give_labelled_resized_images(imagenet):
  data = datasets.make(OmegaConf.structured(ImageNetData(root=str(imagenet))), 0, 8)
  assert data.num_classes == 3 and not data.multilabel
  x, y = data.train_batch(0, 5)
  assert x.shape == (5, 8, 8, 3) and x.dtype == np.uint8  # Mapped to [-1, 1] on the device.
  np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 40 * (y + 1), atol=2)
  again = datasets.make(OmegaConf.structured(ImageNetData(root=str(imagenet))), 0, 8)
  np.testing.assert_array_equal(again.train_batch(0, 5)[1], y)
  # Steps 0 and 1 of batch 5 cover epoch 0's 9 images once, then epoch 1 begins.
  first_epoch = np.concatenate([data.train_batch(0, 5)[1], data.train_batch(1, 5)[1][:4]])
  assert sorted(first_epoch) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
  xv, yv = data.test_inputs(range(data.test_size))
  assert list(yv) == [0, 1, 2] and xv.shape == (3, 8, 8, 3)


def test_imagenet_files_are_listed_once_and_kept_in_the_user_cache(imagenet, monkeypatch):
  from harness.data import imagenet as source
  spec = OmegaConf.structured(ImageNetData(root=str(imagenet)))
  before = datasets.make(spec, 0, 8).train
  listdir = source.os.listdir

  def splits_only(folder):  # The split folders' class folders are listed; a class's images not.
    assert pathlib.Path(folder).name in ("train", "val"), f"{folder} listed again"
    return listdir(folder)
  with monkeypatch.context() as patched:
    patched.setattr(source.os, "listdir", splits_only)
    assert datasets.make(spec, 0, 8).train == before
  tiny_datasets.write_image(imagenet / "train" / "n01" / "n01_9.png", 9)
  (imagenet / "train" / "n01" / "._n01_8.png").write_bytes(b"")  # Not an image: hidden.
  assert len(datasets.make(spec, 0, 8).train) == len(before) + 1


def test_imagenet_errors_name_the_problem(tmp_path):
  with pytest.raises(ValueError, match="data.root is empty"):
    datasets.make(OmegaConf.structured(ImageNetData(root="")), 0, 8)
  with pytest.raises(ValueError, match="has no train/ folder"):
    datasets.make(OmegaConf.structured(ImageNetData(root=str(tmp_path))), 0, 8)


@pytest.fixture
def charades(tmp_path):
  """Two train videos and one test video; 48 frames (2 s at 24 fps) each."""
  return tiny_datasets.charades(tmp_path)


def charades_spec(root):
  return OmegaConf.structured(CharadesData(root=str(root), fps_stride=4))


def test_charades_clips_have_the_actions_they_overlap(charades):
  data = datasets.make(charades_spec(charades), 0, 8, 4)
  assert data.multilabel and data.num_classes == 157
  x, y = data.train_batch(0, 2)
  assert x.shape == (2, 4, 8, 8, 3) and y.shape == (2, 157)
  for clip, labels in zip(x, y):
    first = _frame_number(clip[0])
    last = _frame_number(clip[-1])
    assert last - first == 12  # 4 frames every 4th.
    start, end = (first - 1) / 24, (last - 1) / 24
    if labels[156]:  # Video BBBBB: one action over the whole video.
      assert labels.sum() == 1
    else:
      assert labels[1] == (start <= 0.5) and labels[10] == (end >= 1.5)
  centre = datasets.make(OmegaConf.structured(CharadesData(root=str(charades), eval_clips="centre")), 0, 8, 4)
  xt, yt = centre.test_inputs(range(centre.test_size))
  assert xt.shape == (1, 4, 8, 8, 3) and np.flatnonzero(yt[0]).tolist() == [2]
  assert _frame_number(xt[0, 0]) == 1 + 35 // 2  # Of the 36 first frames a 13-frame clip can have.


def _frame_number(frame) -> int:
  return int(round(frame.mean() / 5))  # tiny_datasets.charades: frame f's pixels are 5 f.


def test_charades_test_videos_are_covered_by_segments_whose_outputs_are_merged(charades):
  """The paper's evaluation: a 48-frame video in 13-frame clips (4 frames, every 4th) from
  frames 1, 14 and 27, and one flush with its end (36); a video's output is the maximum of
  its clips', per label."""
  data = datasets.make(charades_spec(charades), 0, 8, 4)
  x, y = data.test_inputs(range(data.test_size))
  assert [_frame_number(clip[0]) for clip in x] == [1, 14, 27, 36]
  assert [_frame_number(clip[-1]) for clip in x] == [13, 26, 39, 48]
  assert (y == y[0]).all() and np.flatnonzero(y[0]).tolist() == [2]

  data = datasets.make(charades_spec(charades), 0, 8, 4)
  data.test = data.test * 2  # Two videos: clips 0-3 are the first's, 4-7 the second's.
  logits = np.random.default_rng(0).normal(size=(8, 157))
  merged, labels = data.merge_test(logits, np.repeat(y[:1], 8, axis=0))
  np.testing.assert_array_equal(merged, np.stack([logits[:4].max(0), logits[4:].max(0)]))
  assert labels.shape == (2, 157)
  with pytest.raises(ValueError, match="data.eval_clips='all'"):
    datasets.check(OmegaConf.structured(CharadesData(root=str(charades), eval_clips="all")), 8, 4, files=False)


def test_imagenet_trains_on_inception_crops_and_evaluates_whole_images(tmp_path):
  """A 200x100 image whose red channel is its column and green its row: a crop shows a
  range of each. Training sees 5-100% of the area at aspect 3/4-4/3 (ViT fine-tuning's
  inception crop); evaluation sees every column and row (resized, not cropped)."""
  from PIL import Image

  from harness.data import files
  columns, rows = np.meshgrid(np.linspace(0, 255, 200), np.linspace(0, 255, 100))
  path = tmp_path / "gradient.png"
  Image.fromarray(np.stack([columns, rows, 0 * rows], -1).astype(np.uint8)).save(path)
  spans = []
  for seed in range(30):
    crop = files.inception_crop(path, 32, np.random.default_rng(seed)).astype(float)
    width = np.ptp(crop[..., 0]) / 255 * 200
    height = np.ptp(crop[..., 1]) / 255 * 100
    spans.append((width, height))
    assert 0.04 <= width * height / 20000 <= 1.0
  assert len(set(spans)) > 20  # Drawn afresh for each example.
  whole = files.resize_whole(path, 32).astype(float)
  assert np.ptp(whole[..., 0]) > 240 and np.ptp(whole[..., 1]) > 240
  centre = files.load_image(path, 32).astype(float)  # The other choice: the middle square.
  assert np.ptp(centre[..., 0]) < 140
  with pytest.raises(ValueError, match="data.train_crop='random'"):
    datasets.check(OmegaConf.structured(ImageNetData(root=str(tmp_path), train_crop="random")), 8, files=False)


def test_charades_clips_from_the_frame_cache_are_the_jpegs_pixels(charades, tmp_path, monkeypatch, capsys):
  from PIL import Image
  from harness.data import charades as source, files
  rng = np.random.default_rng(0)
  for frame in sorted((charades / "Charades_v1_rgb").rglob("*.jpg")):  # Textured: crops differ.
    Image.fromarray(rng.integers(0, 256, (14, 20, 3), np.uint8)).save(frame)
  from_jpegs = datasets.make(charades_spec(charades), 0, 8, 4)
  everything = range(from_jpegs.test_size)
  want = [from_jpegs.train_batch(step, 2) for step in range(3)] + [from_jpegs.test_inputs(everything)]
  cache = tmp_path / "cache"
  source.main(["cache", "--root", str(charades), "--cache", str(cache), "--image-size", "8"])
  assert "6 arrays written" in capsys.readouterr().out  # 3 videos, at 9 (train) and 8 (test) px.
  spec = OmegaConf.structured(CharadesData(root=str(charades), fps_stride=4, frame_cache=str(cache)))
  datasets.check(spec, 8, 4)
  monkeypatch.setattr(files, "_decoded", lambda path: pytest.fail(f"decoded {path}"))
  from_cache = datasets.make(spec, 0, 8, 4)
  got = [from_cache.train_batch(step, 2) for step in range(3)] + [from_cache.test_inputs(everything)]
  for (x, y), (x_want, y_want) in zip(got, want):  # Clips and labels, bit for bit.
    np.testing.assert_array_equal(x, x_want)
    np.testing.assert_array_equal(y, y_want)
  source.main(["cache", "--root", str(charades), "--cache", str(cache), "--image-size", "8"])
  assert "0 arrays written, 6 already there" in capsys.readouterr().out
  (cache / "short8" / "CCCCC.npy").unlink()
  with pytest.raises(ValueError, match=r"no cached frames for Charades video CCCCC at .*short8/CCCCC.npy"):
    datasets.check(spec, 8, 4)
  assert not [p for p in cache.rglob("*") if p.name.startswith(".")]  # No temporaries left.


def test_charades_errors_name_the_problem(charades):
  (charades / "Charades_v1_test.csv").write_text(CSV_HEADER + 'DDDDD,S,K,5,5,Yes,s,o,d,"c999 0 1",1\n')
  with pytest.raises(ValueError, match="no extracted frames for Charades video DDDDD|unknown Charades action"):
    datasets.make(charades_spec(charades), 0, 8, 4)


def test_charades_annotations_saved_in_another_encoding_still_read(charades, fault):
  """The columns the harness reads are ASCII; the free text around them may be in any encoding."""
  fault.done("Charades_v1_test.csv saved as cp1252, with a curly quote and an accent in its script")
  path = charades / "Charades_v1_test.csv"
  path.write_bytes(path.read_text().replace(",script,", ",A person\u2019s caf\u00e9 script,").encode("cp1252"))
  with pytest.raises(UnicodeDecodeError):
    path.read_text(encoding="utf-8")
  data = datasets.make(charades_spec(charades), 0, 8, 4)
  assert [video.id for video in data.test] == list(tiny_datasets.CHARADES_VIDEOS["test"])
  fault.happened("read: the id and actions columns as written, the script's bytes replaced")


def test_charades_frames_are_counted_once_and_kept_in_the_user_cache(charades, monkeypatch):
  """A video holds a frame count, not 48 paths; the counts are listed once and read back from
  the cache while no folder changes; a frame added is seen; a gap in the numbering is refused."""
  from harness.data import charades as source
  data = datasets.make(charades_spec(charades), 0, 8, 4)
  video = data.test[0]
  assert video.frame_count == 48 and video.frame(0).name == f"{video.id}-000001.jpg"
  assert video.frame(47).is_file() and not hasattr(video, "frames")

  def no_listing(folder):
    raise AssertionError(f"{folder} listed again")
  with monkeypatch.context() as patched:
    patched.setattr(source.os, "listdir", no_listing)
    assert datasets.make(charades_spec(charades), 0, 8, 4).test[0].frame_count == 48
  tiny_datasets.write_image(video.frame(48), 0)  # Frame 49: its folder changes.
  assert datasets.make(charades_spec(charades), 0, 8, 4).test[0].frame_count == 49
  video.frame(10).unlink()
  with pytest.raises(ValueError, match=f"not {video.id}-000011.jpg"):
    datasets.make(charades_spec(charades), 0, 8, 4)
