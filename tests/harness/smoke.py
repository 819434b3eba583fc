"""Smoke-scale runs in a results folder of a test's own: its overrides, its MLflow store, and
`python -m harness run` in a fresh process (as a killed or parallel job would be)."""
import os
import pathlib
import subprocess
import sys

from mlflow.tracking import MlflowClient

ROOT = pathlib.Path(__file__).parents[2]
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


def run_cli(results: pathlib.Path, *extra, env=None):
  """`python -m harness run` in a fresh process, as a killed or parallel job would be."""
  env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
  return subprocess.run([sys.executable, "-m", "harness", "run", *overrides(results, *extra)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
