"""Proxy data: deterministic per (seed, step), disjoint train/test sources, correct labels."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from harness import data as datasets
from harness.configs.schema import DATA_SOURCES
from harness.data import digits, moving_digits


def spec(source, **fields):
  return OmegaConf.structured(DATA_SOURCES[source](**fields))


SPECS = {
    "digits": spec(source="digits", test_size=50),
    "moving_digits": spec(source="moving_digits", digit_size=12, test_size=20),
}
FRAMES = {"digits": 1, "moving_digits": 6
}


@pytest.mark.parametrize("source", sorted(SPECS))
def test_batches_are_a_function_of_seed_and_step(source):
  data = datasets.make(SPECS[source], seed=3, image_size=32, num_frames=FRAMES[source])
  x1, y1 = data.train_batch(7, 4)
  x2, y2 = datasets.make(SPECS[source], seed=3, image_size=32, num_frames=FRAMES[source]).train_batch(7, 4)
  np.testing.assert_array_equal(x1, x2)
  np.testing.assert_array_equal(y1, y2)
  assert not np.array_equal(data.train_batch(8, 4)[0], x1)
  assert not np.array_equal(datasets.make(SPECS[source], seed=4, image_size=32, num_frames=FRAMES[source]).train_batch(7, 4)[0], x1)
  assert x1.dtype == np.float32 and x1.min() >= -1 and x1.max() <= 1


@pytest.mark.parametrize("source", sorted(SPECS))
def test_test_set_does_not_depend_on_the_run_seed(source):
  a = datasets.make(SPECS[source], seed=0, image_size=32, num_frames=FRAMES[source]).test_set
  b = datasets.make(SPECS[source], seed=1, image_size=32, num_frames=FRAMES[source]).test_set
  np.testing.assert_array_equal(a[0], b[0])


def test_train_and_test_source_digits_are_disjoint():
  train, _ = digits.source_digits("train", 8)
  test, _ = digits.source_digits("test", 8)
  train_rows = {row.tobytes() for row in train.reshape(len(train), -1)}
  shared = sum(row.tobytes() in train_rows for row in test.reshape(len(test), -1))
  # The scikit-learn set holds a few identical images; each split still comes from its own indices.
  assert shared <= 5, shared
  assert len(train) + len(test) == 1797


def fake_sources(size: int):
  """Ten solid squares, class k drawn with value (k + 1) / 10, so a pixel names its digit."""
  images = np.stack([np.full((size, size), (k + 1) / 10, np.float32) for k in range(10)])
  return images, np.arange(10, dtype=np.int32)


def test_digit_label_is_the_digit_on_the_canvas():
  images, labels = fake_sources(6)
  x, y = digits.render(np.random.default_rng(0), images, labels, 64, 20, clutter=0, clutter_size=3)
  values = (x[..., 0] + 1) / 2  # Back to [0, 1].
  np.testing.assert_allclose(np.round(values.max(axis=(1, 2)) * 10) - 1, y)
  assert (np.isclose(values, 0) | np.isclose(values, values.max(axis=(1, 2), keepdims=True))).all()


def test_clutter_comes_from_other_pixels_than_the_digit():
  images, labels = fake_sources(6)
  x, _ = digits.render(np.random.default_rng(0), images, labels, 16, 24, clutter=4, clutter_size=3)
  covered = (x[..., 0] > -1).reshape(16, -1).sum(1)
  assert (covered > 36).any()  # Fragments land beside the 6x6 digit.


def render_one_draw_at_a_time(rng, images, labels, count, canvas_size, clutter, clutter_size):
  """digits.render as a loop over canvases and pieces, one generator call per draw: the order
  the proxy's batches were first drawn in, which the batched render must keep."""
  n, size, _ = images.shape
  canvases = np.zeros((count, canvas_size, canvas_size), np.float32)
  layers = np.zeros(canvases.shape, np.int8)
  picks = rng.integers(0, n, count)
  for i, pick in enumerate(picks):
    for _ in range(clutter):
      donor = images[rng.integers(0, n)]
      fy, fx = rng.integers(0, size - clutter_size + 1, 2)
      y, x = rng.integers(0, canvas_size - clutter_size + 1, 2)
      fragment = donor[fy:fy + clutter_size, fx:fx + clutter_size]
      digits.paste(canvases[i], fragment, y, x, layers[i], digits.CLUTTER)
    y, x = rng.integers(0, canvas_size - size + 1, 2)
    digits.paste(canvases[i], images[pick], y, x, layers[i], digits.TARGET)
  return canvases[..., None] * 2.0 - 1.0, labels[picks], layers


@pytest.mark.parametrize("split, digit_size, canvas_size, clutter, clutter_size",
                         [("train", 28, 32, 6, 5), ("test", 16, 32, 3, 4), ("train", 12, 20, 4, 12),
                          ("test", 5, 40, 9, 1), ("train", 8, 8, 0, 1)])
def test_batched_render_draws_what_one_draw_at_a_time_draws(split, digit_size, canvas_size, clutter,
                                                            clutter_size):
  images, labels = digits.source_digits(split, digit_size)
  for seed in range(5):
    want = render_one_draw_at_a_time(np.random.default_rng([seed, 9]), images, labels, 40,
                                     canvas_size, clutter, clutter_size)
    got = digits.render(np.random.default_rng([seed, 9]), images, labels, 40, canvas_size,
                        clutter, clutter_size, with_layers=True)
    for a, b in zip(got, want):
      assert a.dtype == b.dtype
      np.testing.assert_array_equal(a, b)


def test_moving_digit_labels_name_the_digit_and_its_direction():
  images, labels = fake_sources(4)
  x, y = moving_digits.render(np.random.default_rng(1), images, labels, 64, num_frames=4,
                              canvas_size=16, max_sprites=1)
  assert y.shape == (64, 50) and (y.sum(1) == 2).all()
  for clip, target in zip(x[..., 0], y):
    mass = [np.argwhere(frame > -1).mean(0) for frame in clip]
    motion = np.sign(mass[-1] - mass[0])  # (dy, dx)
    value = (clip.max() + 1) / 2
    digit = int(round(value * 10)) - 1
    assert target[digit] == 1
    direction = next(d for d in range(4) if target[moving_digits.motion_label(digit, d)] == 1)
    np.testing.assert_array_equal(motion, moving_digits.DIRECTIONS[direction])


def test_every_digit_in_a_clip_is_labelled():
  images, labels = fake_sources(4)
  x, y = moving_digits.render(np.random.default_rng(2), images, labels, 64, num_frames=4,
                              canvas_size=16, max_sprites=3)
  for clip, target in zip(x[..., 0], y):
    present = {int(round((v + 1) / 2 * 10)) - 1 for v in np.unique(clip) if v > -1}
    assert present <= set(np.flatnonzero(target[:10]))
    assert 1 <= target[10:].sum() <= 3
    moving = {(label - 10) // 4 for label in np.flatnonzero(target[10:]) + 10}
    assert moving == set(np.flatnonzero(target[:10]))  # Each digit present moves one way.


def test_geometry_that_does_not_fit_is_refused():
  images, labels = fake_sources(12)
  with pytest.raises(ValueError, match="does not fit canvas_size=16"):
    moving_digits.render(np.random.default_rng(0), images, labels, 1, 8, 16, 1)
  with pytest.raises(ValueError, match="must fit canvas_size=8"):
    digits.render(np.random.default_rng(0), images, labels, 1, 8, 1, 3)
