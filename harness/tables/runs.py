"""The runs behind the tables: exported from MLflow to results/runs-<scale>.csv.

One record per planned run (row x framework x seed at a scale), finished or not, so
that a table can say how many of the planned runs it rests on. The CSV is the only
input of the tables besides results/flops.csv.
"""
import datetime
import pathlib
from typing import Iterable

import pandas as pd

from harness import status, tracking

COLUMNS = ["experiment", "row", "framework", "seed", "scale", "status", "metric", "value",
           "gflops", "params", "wall_time_s", "train_examples_per_s", "run_id", "config_hash",
           "git_commit", "device", "machine", "start_time", "end_time", "failure"]
OPTIONAL = ("failure",)  # Absent from exports written before runs recorded why they failed.
VERSION_PREFIX = "version."


def csv_path(results_dir, scale: str) -> pathlib.Path:
  return pathlib.Path(results_dir) / f"runs-{scale}.csv"


def _utc(ms) -> str:
  if not ms:
    return ""
  return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(p: status.Planned) -> dict:
  run = p.run
  record = dict(experiment=p.row.experiment, row=p.row.key, framework=p.framework, seed=p.seed,
                scale=p.scale, status=p.status,
                metric=status.metric_name(p.row))
  if run is None:
    return record
  metrics, tags = run.data.metrics, run.data.tags
  finished = run.info.status == tracking.FINISHED
  record.update(
      value=metrics.get(record["metric"]) if finished else None,
      gflops=metrics.get("gflops"), params=metrics.get("params"),
      wall_time_s=metrics.get("wall_time_s"), train_examples_per_s=metrics.get("train_examples_per_s"),
      run_id=run.info.run_id, config_hash=tags.get("config_hash"), git_commit=tags.get("git_commit"),
      device=tags.get("device"), machine=tags.get("machine"),
      start_time=_utc(run.info.start_time), end_time=_utc(run.info.end_time),
      failure=tags.get(tracking.FAILURE_TAG))
  record.update({k: v for k, v in tags.items() if k.startswith(VERSION_PREFIX)})
  return record


def export(planned_runs: Iterable[status.Planned]) -> pd.DataFrame:
  """Planned runs (status.planned) as they stand in MLflow, one record each."""
  frame = pd.DataFrame.from_records([_record(p) for p in planned_runs])
  versions = sorted(c for c in frame.columns if c.startswith(VERSION_PREFIX))
  return frame.reindex(columns=COLUMNS + versions)


def write(frame: pd.DataFrame, path) -> None:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  frame.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


def read(path) -> pd.DataFrame:
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"no run export at {path}: run `python -m harness reproduce` first, "
                            "or build from MLflow without --offline")
  frame = pd.read_csv(path, dtype={"seed": int}, keep_default_na=False, na_values=[""])
  missing = [c for c in COLUMNS if c not in frame.columns and c not in OPTIONAL]
  if missing:
    raise ValueError(f"{path}: not a run export (missing columns {', '.join(missing)})")
  return frame


def finished(frame: pd.DataFrame) -> pd.DataFrame:
  return frame[frame.status == tracking.FINISHED]
