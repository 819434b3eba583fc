"""Initial weights: one start file per model config and seed, shared by both runners; a JAX run
reads it without importing torch, or draws Flax's own weights with train.init=native."""
import pathlib

import jax
import numpy as np
import pytest

from harness.configs import compose
from harness.run import initial_weights
from harness.twins import convert, runners
from harness.twins.runners.protocol import step_on
from tokenlearner_spec import OptimizerConfig
from tests.processes import python

ROW = ["experiment=table1", "row=tl16_at_12", "scale=smoke"]


def row_fields():
  cfg = compose.load(ROW)
  return cfg.experiment.model, compose.model_fields(cfg)


def test_a_start_is_written_once_and_both_runners_start_from_it_exactly(tmp_path):
  kind, fields = row_fields()
  start = initial_weights.ensure(tmp_path, kind, fields, seed=3)
  path = initial_weights.path(tmp_path, kind, fields, seed=3)
  written = path.stat().st_mtime_ns
  again = initial_weights.ensure(tmp_path, kind, fields, seed=3)
  assert path.stat().st_mtime_ns == written and again.keys() == start.keys()
  assert initial_weights.path(tmp_path, kind, fields, seed=4) != path
  other_seed = initial_weights.ensure(tmp_path, kind, fields, seed=4)
  assert any(not np.array_equal(start[k], other_seed[k]) for k in start)

  optim = OptimizerConfig()
  torch_runner = runners.make("torch", kind, fields, optim, False, 3, start)
  for key, value in torch_runner.model.state_dict().items():
    np.testing.assert_array_equal(value.numpy(), start[key], err_msg=key)
  jax_runner = runners.make("jax", kind, fields, optim, False, 3, start)
  back = convert.jax_to_torch(jax.device_get(jax_runner.params), start)
  for key in start:
    np.testing.assert_array_equal(back[key], start[key], err_msg=key)


def _truncate(path):
  path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


def _flip_a_byte(path):
  data = bytearray(path.read_bytes())
  data[-100] ^= 0xFF
  path.write_bytes(bytes(data))


def _drop_checksum(path):
  path.with_name(path.name + ".sha256").unlink()


START_DAMAGES = {"cut in half": (_truncate, "does not match its checksum"),
                 "one byte flipped": (_flip_a_byte, "does not match its checksum"),
                 "checksum file lost": (_drop_checksum, "has no checksum file")}


@pytest.mark.parametrize("damage", START_DAMAGES)
def test_a_damaged_start_is_rebuilt_from_its_seed_with_one_warning(tmp_path, capsys, fault, damage):
  fault.done(f"start file (results/starts/*.npz) {damage}, then the run's start asked for")
  kind, fields = row_fields()
  start = initial_weights.ensure(tmp_path, kind, fields, seed=3)
  path = initial_weights.path(tmp_path, kind, fields, seed=3)
  damage_it, reason = START_DAMAGES[damage]
  damage_it(path)
  capsys.readouterr()
  again = initial_weights.ensure(tmp_path, kind, fields, seed=3)
  warning = capsys.readouterr().err.splitlines()
  assert len(warning) == 1 and warning[0].startswith(f"warning: start file {path} is unusable (it {reason}")
  assert warning[0].endswith("; rebuilt from seed 3")
  assert again.keys() == start.keys() and all(np.array_equal(again[k], start[k]) for k in start)
  assert initial_weights.ensure(tmp_path, kind, fields, seed=3).keys() == start.keys()
  assert not capsys.readouterr().err  # Rebuilt once: it matches its checksum again.
  assert sorted(p.name for p in path.parent.iterdir()) == sorted(
      [path.name, path.name + ".sha256", path.with_suffix(".lock").name])  # No temporary left.
  fault.happened("one warning line naming the file and why; rebuilt from the seed, the same weights "
                 "as before; no temporary file")


def test_native_init_draws_each_frameworks_own_weights_from_the_seed():
  kind, fields = row_fields()
  optim = OptimizerConfig()
  first, second, other = (runners.make("jax", kind, fields, optim, False, seed, None)
                          for seed in (0, 0, 1))
  leaves = lambda r: jax.tree.leaves(jax.device_get(r.params))
  assert all(np.array_equal(a, b) for a, b in zip(leaves(first), leaves(second)))
  assert not all(np.array_equal(a, b) for a, b in zip(leaves(first), leaves(other)))


def jax_run_imports(results: pathlib.Path, *extra: str) -> str:
  code = ("import sys; from harness.cli import main; code = main(sys.argv[1:]); "
          "print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(code)")
  done = python("-c", code, "run", *ROW, "framework=jax", f"tracking.results_dir={results}", *extra)
  assert done.returncode == 0, done.stderr[-2000:]
  return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("init", ["shared", pytest.param("native", marks=pytest.mark.slow)])
def test_a_jax_run_imports_no_torch(tmp_path, init):
  if init == "shared":  # The start is there (a PyTorch run, or another JAX run, wrote it).
    initial_weights.ensure(tmp_path, *row_fields(), seed=0)
  assert jax_run_imports(tmp_path, f"train.init={init}") == "no torch"


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_training_with_dropout_is_a_function_of_seed_and_step(framework, tmp_path):
  """What makes a resumed run with dropout repeat an uninterrupted one: the same step of
  the same seed draws the same masks, whatever ran before it in the process."""
  cfg = compose.load(["experiment=figure1", "row=tokenfuser_tl8", "scale=smoke",
                     "++experiment.rows.tokenfuser_tl8.proxy.dropout_rate=0.3"])
  kind, fields = cfg.experiment.model, compose.model_fields(cfg)
  start = dict(initial_weights.ensure(tmp_path, kind, fields, seed=0))
  rng = np.random.RandomState(0)
  for key in start:  # The head and TokenFuser's token mixing are zero at init, hiding dropout.
    if key == "head.weight" or "token_mix" in key:
      start[key] = rng.randn(*start[key].shape).astype(np.float32)
  x, y = rng.randn(4, 32, 32, 1).astype(np.float32), rng.randint(0, 10, 4)

  def loss_at(step):  # A fresh runner's loss at `step`: from the same weights, only the masks vary.
    return step_on(runners.make(framework, kind, fields, OptimizerConfig(), False, 0, start), step, x, y)

  step_2_first = loss_at(2)
  loss_at(0), loss_at(1)  # Other steps drawn in this process before step 2 is drawn again.
  assert loss_at(2) == step_2_first
  assert loss_at(0) != loss_at(1)  # Other steps, other masks.


def test_pixels_become_on_the_device_the_floats_the_data_would_give(tmp_path):
  """The file sources ship uint8 pixels; each runner maps them to [-1, 1] where the model runs,
  to the bits data.base.unit_range gives, so that both frameworks see the same input."""
  from harness.data.base import unit_range
  kind, fields = row_fields()
  start = initial_weights.ensure(tmp_path, kind, fields, seed=0)
  size, channels = fields["image_size"], fields["in_channels"]
  pixels = np.random.default_rng(0).integers(0, 256, (2, size, size, channels), np.uint8)
  for framework in ("jax", "torch"):
    runner = runners.make(framework, kind, fields, OptimizerConfig(), False, 0, start)
    np.testing.assert_array_equal(runner.predict(pixels), runner.predict(unit_range(pixels)))
