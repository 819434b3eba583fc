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


def reproduce_argv(results: pathlib.Path):
  """`reproduce` of Table 1's five rows in PyTorch, one job, its tables under results/tables."""
  return ["reproduce", "--experiments", "table1", "--frameworks", "torch", "--jobs", "1",
          "--out", str(results / "tables"), "--flops", str(ROOT / "results" / "flops.csv"),
          *overrides(results)]


def _process_env(env):
  return {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}


def harness(*argv, env=None, timeout=900, launcher=("-m", "harness")):
  """`python -m harness <argv>` in a fresh process, to its end; `launcher` replaces
  `-m harness` (e.g. with torchrun's arguments, ending in `-m harness`)."""
  return subprocess.run([sys.executable, *launcher, *argv], cwd=ROOT, env=_process_env(env),
                        capture_output=True, text=True, timeout=timeout)


def harness_at_once(*argvs, timeout=900):
  """Several `python -m harness` processes started together; each one's (returncode, stdout,
  stderr)."""
  jobs = [subprocess.Popen([sys.executable, "-m", "harness", *argv], cwd=ROOT, env=_process_env(None),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in argvs]
  outputs = [job.communicate(timeout=timeout) for job in jobs]
  return [(job.returncode, out, err) for job, (out, err) in zip(jobs, outputs)]


def run_cli(results: pathlib.Path, *extra, env=None):
  """`python -m harness run` in a fresh process, as a killed or parallel job would be."""
  return harness("run", *overrides(results, *extra), env=env, timeout=600)
