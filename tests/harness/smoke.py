"""Smoke-scale runs in a results folder of a test's own: its overrides, its MLflow store, and
`python -m harness run` in a fresh process (as a killed or parallel job would be)."""
import pathlib
from typing import Dict

from mlflow.tracking import MlflowClient

from tests.processes import ROOT, all_at_once, python

FAST_ROW = ["experiment=table1", "row=pool_4x4_at_12"]


def overrides(results: pathlib.Path, *extra):
  return ["scale=smoke", f"tracking.results_dir={results}", f"tracking.uri=sqlite:///{results}/mlflow.db",
          *extra]


def client(results: pathlib.Path) -> MlflowClient:
  return MlflowClient(tracking_uri=f"sqlite:///{results}/mlflow.db")


def all_runs(results: pathlib.Path, artifact: str = "table1"):
  c = client(results)
  experiment = c.get_experiment_by_name(artifact)
  return c.search_runs([experiment.experiment_id]) if experiment else []


def train_losses(results: pathlib.Path, run_id: str) -> Dict[int, float]:
  """A run's train_loss history, {step: value} in step order; fails on a step logged twice."""
  history = client(results).get_metric_history(run_id, "train_loss")
  steps = [m.step for m in history]
  assert len(steps) == len(set(steps)), f"steps logged twice: {sorted(steps)}"
  return {m.step: m.value for m in sorted(history, key=lambda m: m.step)}


def reproduce_argv(results: pathlib.Path):
  """`reproduce` of Table 1's five rows in PyTorch, one job, its tables under results/tables."""
  return ["reproduce", "--experiments", "table1", "--frameworks", "torch", "--jobs", "1",
          "--out", str(results / "tables"), "--flops", str(ROOT / "results" / "flops.csv"),
          *overrides(results)]


def harness(*argv, env=None, timeout=900, launcher=("-m", "harness")):
  """`python -m harness <argv>` in a fresh process, to its end; `launcher` replaces
  `-m harness` (e.g. with torchrun's arguments, ending in `-m harness`)."""
  return python(*launcher, *argv, env=env, timeout=timeout)


def harness_at_once(*argvs, env=None, timeout=900):
  """Several `python -m harness` processes started together; each one's (returncode, stdout,
  stderr)."""
  return all_at_once([["-m", "harness", *argv] for argv in argvs], env=env, timeout=timeout)


def run_cli(results: pathlib.Path, *extra, env=None):
  """`python -m harness run` in a fresh process, as a killed or parallel job would be."""
  return harness("run", *overrides(results, *extra), env=env, timeout=600)
