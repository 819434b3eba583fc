"""Runs end to end at smoke scale: recorded in MLflow with every field, skipped when finished,
resumed after a kill with the same result, identical on a rerun (the faults they survive:
test_faults.py)."""
import math

import pytest

from harness.cli import main
from harness.configs import compose, run_spec
from harness.run import train
from harness.testing import killpoints
from harness.testing.parity_log import TRAIN_LOSS_RTOL

from tests.harness.smoke import (FAST_ROW, all_runs, client, overrides, reproduce_argv, run_cli,
                                 train_losses)


def test_the_loop_waits_for_the_device_only_where_it_reads_the_losses(tmp_path, monkeypatch):
  """Every step's loss is logged, read in one transfer per log interval: the host otherwise
  runs ahead of the device, with the next batches already put."""
  from harness.twins import runners
  events, make = [], runners.make
  def counted(*args, **kwargs):
    runner = make(*args, **kwargs)
    put, step, fetch = runner.put, runner.train_step, runner.fetch
    runner.put = lambda x, y: events.append("put") or put(x, y)
    runner.train_step = lambda n, batch: events.append(f"step {n}") or step(n, batch)
    runner.fetch = lambda losses: events.append(f"read {len(losses)}") or fetch(losses)
    return runner
  monkeypatch.setattr(runners, "make", counted)
  cfg = compose.load(overrides(tmp_path, *FAST_ROW, "framework=torch", "train.steps=7",
                               "runtime.log_every=3", "runtime.checkpoint_every=0"))
  run_id = train.run(run_spec.of(cfg)).run_id
  # Step 0 waited for alone (its time is the compile's), then steps 0-2, 3-5 and 6 read and logged.
  assert [e for e in events if e.startswith("read")] == ["read 1", "read 3", "read 3", "read 1"]
  assert events[:4] == ["put", "put", "put", "step 0"]  # Two batches on the device beyond step 0's.
  assert sorted(train_losses(tmp_path, run_id)) == list(range(7))


def test_a_run_is_recorded_with_every_field_and_a_rerun_trains_nothing(tmp_path):
  cfg = compose.load(overrides(tmp_path, *FAST_ROW, "framework=torch"))
  outcome = train.run(run_spec.of(cfg))
  assert outcome.status == "finished"
  (run,) = all_runs(tmp_path)
  assert run.info.status == "FINISHED"
  tags = run.data.tags
  for key in ("config_hash", "row", "framework", "scale", "seed", "git_commit", "device",
              "version.torch", "version.jax", "version.python"):
    assert tags.get(key), key
  assert tags["config_hash"] == compose.config_hash(cfg) and tags["scale"] == "smoke"
  params = run.data.params
  assert params["optim.name"] == "adamw" and params["model.pool_window"] == "4"
  assert params["data.source"] == "digits" and params["seed"] == "0"
  for metric in ("test_top1", "gflops", "params", "wall_time_s", "train_loss", "learning_rate"):
    assert metric in run.data.metrics, metric
  history = client(tmp_path).get_metric_history(run.info.run_id, "train_loss")
  assert sorted(m.step for m in history) == [0, 1, 2, 3]
  assert not (tmp_path / "checkpoints" / tags["config_hash"]).exists()

  again = train.run(run_spec.load(overrides(tmp_path, *FAST_ROW, "framework=torch")))
  assert again.status == "skipped" and again.run_id == run.info.run_id
  assert len(all_runs(tmp_path)) == 1


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_same_seed_same_framework_gives_identical_metrics(tmp_path, framework):
  results = [train.run(run_spec.load(overrides(tmp_path / name, *FAST_ROW, f"framework={framework}")))
             for name in ("first", "second")]
  assert results[0].metrics["test_top1"] == results[1].metrics["test_top1"]
  losses = [train_losses(tmp_path / name, r.run_id) for name, r in zip(("first", "second"), results)]
  assert losses[0] == losses[1]


# PyTorch runs killed and resumed: test_faults.py's share in the default session.
@pytest.mark.parametrize("framework", ["jax", pytest.param("torch", marks=pytest.mark.slow)])
def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path, framework):
  extra = [*FAST_ROW, f"framework={framework}", "train.steps=6", "runtime.checkpoint_every=2"]
  killed = run_cli(tmp_path / "killed", *extra, env={killpoints.KILL_ENV: "step:2"})
  assert killed.returncode == 137, killed.stderr[-2000:]
  (run,) = all_runs(tmp_path / "killed")
  assert run.info.status == "RUNNING"

  resumed = train.run(run_spec.load(overrides(tmp_path / "killed", *extra)))
  assert resumed.status == "finished" and resumed.run_id == run.info.run_id
  whole = train.run(run_spec.load(overrides(tmp_path / "whole", *extra)))
  assert resumed.metrics["test_top1"] == whole.metrics["test_top1"]
  final = [client(tmp_path / name).get_metric_history(r.run_id, "train_loss")
           for name, r in (("killed", resumed), ("whole", whole))]
  last = [max(history, key=lambda m: m.step) for history in final]
  assert last[0].step == last[1].step == 5 and last[0].value == last[1].value
  (run,) = all_runs(tmp_path / "killed")
  assert run.info.status == "FINISHED"


def test_a_failed_run_is_recorded_and_redone(tmp_path, monkeypatch):
  from harness.twins.runners import torch_runner
  real_step = torch_runner.TorchRunner.train_step

  def failing(self, step, batch):
    raise RuntimeError("simulated failure")

  monkeypatch.setattr(torch_runner.TorchRunner, "train_step", failing)
  with pytest.raises(RuntimeError, match="simulated failure"):
    train.run(run_spec.load(overrides(tmp_path, *FAST_ROW, "framework=torch")))
  assert [r.info.status for r in all_runs(tmp_path)] == ["FAILED"]
  monkeypatch.setattr(torch_runner.TorchRunner, "train_step", real_step)
  assert train.run(run_spec.load(overrides(tmp_path, *FAST_ROW, "framework=torch"))).status == "finished"
  assert sorted(r.info.status for r in all_runs(tmp_path)) == ["FAILED", "FINISHED"]


def test_reproduce_sweeps_rows_and_frameworks_then_skips_them(tmp_path, capsys):
  args = reproduce_argv(tmp_path)
  assert main(args) == 0
  runs = all_runs(tmp_path)
  assert sorted(r.data.tags["row"] for r in runs) == sorted(
      ["base", "pool_2x2_at_9_18", "pool_2x2_at_12_18", "pool_4x4_at_12", "tl16_at_12"])
  assert {r.info.status for r in runs} == {"FINISHED"}
  # Its last step exported the runs and built the tables of the scale it ran.
  export = (tmp_path / "runs-smoke.csv").read_text()
  assert export.count(",FINISHED,") == 5
  table1 = (tmp_path / "tables" / "smoke" / "table1.md").read_text()
  assert "- **Scale:** smoke" in table1 and table1.count("(n=1)") == 5
  assert (tmp_path / "tables" / "smoke" / "claims.md").exists()
  capsys.readouterr()
  assert main(args) == 0
  output = capsys.readouterr()
  assert output.err.count("skipped, already finished") == 5
  assert "5 of 5 runs finished" in output.out
  assert len(all_runs(tmp_path)) == 5


@pytest.mark.slow  # Two Table 2 JAX runs, each compiled at full optimisation once.
def test_fast_compile_changes_compile_time_only(tmp_path):
  """The smoke recipe's fast_compile lowers XLA's optimisation level; the Table 2 JAX run
  (max-pooled head, the row that once diverged there) trains to the same losses at both
  levels the harness uses."""
  losses = {}
  for fast in ("true", "false"):
    results = tmp_path / f"fast_{fast}"
    done = run_cli(results, "experiment=table2", "row=mhsa", "framework=jax",
                   f"runtime.fast_compile={fast}")
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = all_runs(results, "table2")
    losses[fast] = list(train_losses(results, run.info.run_id).values())
  assert len(losses["true"]) == 4 and all(math.isfinite(v) for v in losses["true"])
  assert losses["true"] == pytest.approx(losses["false"], rel=TRAIN_LOSS_RTOL)
