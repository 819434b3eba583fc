"""The runs behind the tables: exported from MLflow to results/runs-<scale>.csv, and each
finished run's metric on the shared resamples of its test items to
results/replicates-<scale>.csv (harness/data/metrics.py: item_replicates).

One record per planned run (row x framework x seed at a scale), finished or not, so
that a table can say how many of the planned runs it rests on. The two CSVs are the only
inputs of the tables besides results/flops.csv.
"""
import datetime
import pathlib
from typing import Callable, Iterable, List

import pandas as pd

from harness.data.metrics import REPLICATE
from harness.machine import durable
from harness.store import run_status, tracking

COLUMNS = ["experiment", "row", "framework", "seed", "scale", "status", "metric", "value",
           "chance", "gflops", "params", "wall_time_s", "train_examples_per_s", "run_id",
           "config_hash", "git_commit", "device", "machine", "start_time", "end_time", "failure"]
# Absent from exports written before runs recorded why they failed, or their chance level.
OPTIONAL = ("failure", "chance")
GROUP_PREFIXES = ("value_", "chance_")  # value_<group>, chance_<group>: a label group scored alone.
VERSION_PREFIX = "version."


def csv_path(results_dir, scale: str) -> pathlib.Path:
  return pathlib.Path(results_dir) / f"runs-{scale}.csv"


def replicates_csv_path(results_dir, scale: str) -> pathlib.Path:
  return pathlib.Path(results_dir) / f"replicates-{scale}.csv"


def curves_csv_path(results_dir, scale: str, experiment: str) -> pathlib.Path:
  """A budget study's runs (python -m harness curves), one record per run."""
  return pathlib.Path(results_dir) / f"curves-{scale}-{experiment}.csv"


def _utc(ms) -> str:
  if not ms:
    return ""
  return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def group_names(frame: pd.DataFrame) -> List[str]:
  """The label groups a frame's runs scored alone: its value_<group> columns that hold a value."""
  return [c[len("value_"):] for c in frame.columns if c.startswith("value_") and frame[c].notna().any()]


def label_groups(metrics: dict, metric: str) -> dict:
  """value_<group> and chance_<group> of each label group a run scored alone (test_map_<group>,
  test_chance_<group>)."""
  out = {}
  for name, value in sorted(metrics.items()):
    if name.startswith(f"{metric}_"):
      group = name[len(metric) + 1:]
      out[f"value_{group}"] = value
      out[f"chance_{group}"] = metrics.get(f"{run_status.CHANCE}_{group}")
  return out


def _record(p: run_status.Planned) -> dict:
  run = p.run
  record = dict(experiment=p.row.experiment, row=p.row.key, framework=p.framework, seed=p.seed,
                scale=p.scale, status=p.status,
                metric=run_status.metric_name(p.row))
  if run is None:
    return record
  metrics, tags = run.data.metrics, run.data.tags
  finished = run.info.status == tracking.FINISHED
  record.update(
      value=metrics.get(record["metric"]) if finished else None,
      chance=metrics.get(run_status.CHANCE) if finished else None,
      gflops=metrics.get("gflops"), params=metrics.get("params"),
      wall_time_s=metrics.get("wall_time_s"), train_examples_per_s=metrics.get("train_examples_per_s"),
      run_id=run.info.run_id, config_hash=tags.get("config_hash"), git_commit=tags.get("git_commit"),
      device=tags.get("device"), machine=tags.get("machine"),
      start_time=_utc(run.info.start_time), end_time=_utc(run.info.end_time),
      failure=tags.get(tracking.FAILURE_TAG))
  if finished:
    record.update(label_groups(metrics, record["metric"]))
  record.update({k: v for k, v in tags.items() if k.startswith(VERSION_PREFIX)})
  return record


def export(planned_runs: Iterable[run_status.Planned]) -> pd.DataFrame:
  """Planned runs (run_status.planned) as they stand in MLflow, one record each."""
  frame = pd.DataFrame.from_records([_record(p) for p in planned_runs])
  groups = sorted(c for c in frame.columns if c.startswith(GROUP_PREFIXES))
  versions = sorted(c for c in frame.columns if c.startswith(VERSION_PREFIX))
  return frame.reindex(columns=COLUMNS + groups + versions)


def replicates(tracker: tracking.Tracker, frame: pd.DataFrame) -> pd.DataFrame:
  """run_id -> its metric on each resample of the test items (columns r0, r1, ...), for the
  finished runs of an export that logged them whole (one value at each step 0..R-1)."""
  rows = {}
  for run_id in finished(frame).run_id:
    by_step = {m.step: m.value for m in tracking.retry(tracker.client.get_metric_history, run_id, REPLICATE)}
    if by_step and sorted(by_step) == list(range(len(by_step))):  # Whole, each resample once.
      rows[run_id] = [by_step[b] for b in range(len(by_step))]
  table = pd.DataFrame.from_dict(rows, orient="index")
  table.columns = [f"r{b}" for b in table.columns]
  return table.rename_axis("run_id").sort_index()


def read_replicates(path) -> pd.DataFrame:
  """run_id -> replicates [R] (results/replicates-<scale>.csv); empty where there is no file."""
  path = pathlib.Path(path)
  if not path.exists():
    return pd.DataFrame()
  return pd.read_csv(path, index_col="run_id")


def write(frame: pd.DataFrame, path) -> None:
  durable.write_file(path, lambda out: frame.to_csv(out, index=False, float_format="%.10g", lineterminator="\n"),
                     "the runs' export")


def write_replicates(table: pd.DataFrame, path) -> None:
  durable.write_file(path, lambda out: table.to_csv(out, float_format="%.6g", lineterminator="\n"),
                     "the replicates' export")


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


def refresh(cfg, plan: Callable[[], Iterable[run_status.Planned]], force: bool = False) -> pathlib.Path:
  """Writes results/runs-<scale>.csv from the planned runs `plan()` finds in MLflow, unless that
  would drop finished runs the current export holds (say, a fresh store on a clone whose
  export came from a full run). `plan` is only called when there is a store to read."""
  path = csv_path(cfg.tracking.results_dir, cfg.scale.name)
  if not tracking.store_exists(cfg.tracking):
    print(f"tables: no MLflow store at {tracking.tracking_uri(cfg.tracking)}; using {path}")
    return path
  fresh = export(plan())
  now = len(finished(fresh))
  before = len(finished(read(path))) if path.exists() else 0
  if now < before and not force:
    print(f"tables: MLflow holds {now} finished {cfg.scale.name} runs, {path} {before}; "
          f"keeping {path} (--force-export replaces it)")
    return path
  write(fresh, path)
  replicated = replicates(tracking.Tracker(cfg.tracking), fresh)
  write_replicates(replicated, replicates_csv_path(cfg.tracking.results_dir, cfg.scale.name))
  print(f"tables: exported {now} finished of {len(fresh)} planned runs to {path}, the resamples "
        f"of {len(replicated)} of them beside it")
  return path
