"""How `reproduce` splits a per-row seed plan into multiruns, each a product of its axes, and
how many worker processes a multirun starts."""
import contextlib

import pytest

from harness.configs import compose, registry, seed_plan
from harness.machine import host
from harness.run import sweep


def test_reproduce_runs_each_planned_run_once_in_products(monkeypatch):
  calls = []
  monkeypatch.setattr(sweep, "multirun", lambda experiment, axes, *_, **__: calls.append((experiment, axes)))
  seeds = seed_plan.seeds_by_framework(compose.compose_config(["scale=proxy"]).scale, ["jax", "torch"])
  sweep.reproduce(list(registry.EXPERIMENTS), seeds, 2, ["scale=proxy"])
  swept = [(e, row, fw, seed) for e, axes in calls
           for row in axes["row"] for fw in axes["framework"] for seed in axes["seed"]]
  planned = [(e, row, fw, seed) for fw, per_experiment in seeds.items()
             for e, per_row in per_experiment.items() for row, its in per_row.items() for seed in its]
  assert sorted(swept) == sorted(planned) and len(set(swept)) == len(swept)
  # A multirun sweeps a product: rows with the same seeds share one, and so do frameworks that
  # run the same rows and seeds. Figure 1 and Table 2 run every row in both frameworks (one each);
  # Table 1 runs two rows in PyTorch alone, so JAX's three rows and PyTorch's five make two.
  assert sorted(e for e, _ in calls) == ["figure1", "table1", "table1", "table2"]
  assert {tuple(axes["framework"]) for e, axes in calls if e != "table1"} == {("jax", "torch")}


def test_a_multirun_starts_no_more_workers_than_runs_left_or_cores(monkeypatch, capsys):
  commands = []

  @contextlib.contextmanager
  def hydra_command(argv, raise_errors):
    commands.append(argv)
    yield
  monkeypatch.setattr(sweep, "_hydra_command", hydra_command)
  monkeypatch.setattr(sweep, "_job", lambda: None)
  monkeypatch.setattr(host, "cores", lambda: 2)
  rows = {"row": ["base", "tl16_at_12", "pool_4x4_at_12"], "framework": ["torch"], "seed": [0]}
  # (--jobs, runs in the multirun, runs not finished yet, workers)
  for jobs, runs, left, workers in ((1000, 3, 3, 2), (2, 1, 1, 1), (2, 3, 3, 2), (1, 3, 3, 1),
                                    (2, 3, 1, 1), (2, 3, 0, 1)):
    sweep.multirun("table1", {**rows, "row": rows["row"][:runs]}, jobs, ["scale=smoke"], left=left)
    assert f"hydra.launcher.n_jobs={workers}" in commands[-1], (jobs, runs)
    assert ("runtime.threads=1" in commands[-1]) == (workers > 1)
    assert (f"not --jobs {jobs}" in capsys.readouterr().err) == (workers < jobs)


def test_a_multirun_starts_no_workers_for_runs_found_finished(monkeypatch, capsys):
  calls = []
  monkeypatch.setattr(sweep, "multirun", lambda experiment, axes, *args: calls.append((axes, args[-1])))
  seeds = {"torch": {"table1": {row.key: [0, 1] if row.key == "base" else [] for row in registry.rows("table1")}}}
  sweep.reproduce(["table1"], seeds, 2, ["scale=smoke"], finished={("table1", "base", "torch", 0)})
  assert calls == [({"row": ["base"], "framework": ["torch"], "seed": [0, 1]}, 1)]


def test_a_cluster_sweep_keeps_its_stop_file_where_every_job_sees_it(monkeypatch, tmp_path):
  """A cluster's jobs share the results directory, not this machine's memory: a job whose run
  could not reach the store stops the sweep there, and the next multirun is not attempted."""
  stops = []

  def multirun(experiment, axes, jobs, overrides, offset, total, stop, left):
    stops.append(stop)
    stop.write_text("table1/base torch seed 0: the tracking server stopped answering\n")
  monkeypatch.setattr(sweep, "multirun", multirun)
  seeds = {fw: {"table1": {row.key: [0] if row.key == "base" else [] for row in registry.rows("table1")}}
           for fw in ("jax", "torch")}
  overrides = ["scale=smoke", "hydra/launcher=slurm", f"tracking.results_dir={tmp_path}"]
  with pytest.raises(sweep.SweepStopped, match=r"1 run\(s\) not attempted: table1/base torch seed 0: the tracking"):
    sweep.reproduce(["table1"], seeds, 2, overrides)
  assert len(stops) == 1 and stops[0].parent == tmp_path  # JAX's multirun came first; torch's never ran.
  assert not stops[0].exists()


def test_an_empty_stop_file_does_not_stop_the_sweep(monkeypatch, tmp_path):
  """A full disk may leave the stop file empty (created, its line refused): that says nothing,
  to the parent as to the jobs, and each later run meets the disk on its own."""
  calls = []

  def multirun(experiment, axes, jobs, overrides, offset, total, stop, left):
    calls.append(axes["framework"])
    stop.touch()
  monkeypatch.setattr(sweep, "multirun", multirun)
  seeds = {fw: {"table1": {row.key: [0] if row.key == "base" else [] for row in registry.rows("table1")}}
           for fw in ("jax", "torch")}
  sweep.reproduce(["table1"], seeds, 2, ["scale=smoke", "hydra/launcher=slurm", f"tracking.results_dir={tmp_path}"])
  assert calls == [["jax"], ["torch"]]
