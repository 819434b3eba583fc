"""The planned runs and their state in MLflow: one record per row x framework x seed.

The plan comes from the registry and one composed config per experiment; runs are
found by the tags every run carries (one search per experiment), and a planned run
is matched by its config hash, so a run trained with other overrides never stands
in for it.
"""
import dataclasses
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import pandas as pd

from harness.configs import compose, registry
from harness.data import metrics
from harness.store import leases, tracking

NOT_RUN = "not run"
DEAD = "DEAD"  # RUNNING in MLflow, but its process died (no live claim): rerun to resume it.
PREEMPTED = "PREEMPTED"  # KILLED at a cluster's signal, checkpointed: rerun (or requeue) to resume it.


@dataclasses.dataclass
class Planned:
  row: registry.Row
  framework: str
  seed: int
  scale: str
  config_hash: str
  run: Optional[Any] = None  # Its mlflow.entities.Run: the finished one, else the newest.
  trainer_alive: bool = False  # Whether a live process holds its claim (harness/store/leases.py).

  @property
  def status(self) -> str:
    """MLflow's status, except that a RUNNING run nobody trains any more is DEAD and a KILLED
    one that a cluster's signal stopped is PREEMPTED."""
    if self.run is None:
      return NOT_RUN
    if self.run.info.status == tracking.RUNNING and not self.trainer_alive:
      return DEAD
    if self.run.info.status == tracking.KILLED and tracking.PREEMPTED_TAG in self.run.data.tags:
      return PREEMPTED
    return self.run.info.status


# One list for all, or framework -> experiment -> row -> seeds (seed_plan.seeds_by_framework).
Seeds = Union[Sequence[int], Mapping[str, Mapping[str, Mapping[str, Sequence[int]]]]]


def seeds_of(seeds: Seeds, framework: str, row: registry.Row) -> Sequence[int]:
  return seeds[framework][row.experiment][row.key] if isinstance(seeds, Mapping) else seeds


def plan(experiments: Sequence[str], frameworks: Sequence[str], seeds: Seeds,
         overrides: Sequence[str] = ()) -> List[Planned]:
  """Every planned run with the config hash it would run under, composing once per experiment."""
  planned = []
  for experiment in experiments:
    rows = registry.rows(experiment)
    base = compose.compose_config([*overrides, f"experiment={experiment}", f"row={rows[0].key}"])
    for row in rows:
      for framework in frameworks:
        for seed in seeds_of(seeds, framework, row):
          cfg = compose.for_run(base, row.key, framework, seed, data_files=False)
          planned.append(Planned(row, framework, seed, cfg.scale.name, compose.config_hash(cfg)))
  return planned


def _pick(runs: List) -> Optional[Any]:
  finished = [r for r in runs if r.info.status == tracking.FINISHED]
  return (finished or runs or [None])[0]


def planned(experiments: Sequence[str], frameworks: Sequence[str], seeds: Seeds,
            overrides: Sequence[str] = ()) -> Iterator[Planned]:
  """The plan with each run's MLflow run (None if never started, or if there is no store yet:
  reading a local store that does not exist would create it)."""
  runs = plan(experiments, frameworks, seeds, overrides)
  spec = compose.compose_config(overrides).tracking
  if not runs or not tracking.store_exists(spec):
    yield from runs
    return
  tracker = tracking.Tracker(spec)
  by_hash: Dict[tuple, List] = {}
  for experiment in dict.fromkeys(p.row.experiment for p in runs):
    scales = {p.scale for p in runs if p.row.experiment == experiment}
    for scale in scales:
      for found in tracker.runs(experiment, scale=scale):  # Newest first.
        by_hash.setdefault((experiment, found.data.tags.get("config_hash")), []).append(found)
  for p in runs:
    p.run = _pick(by_hash.get((p.row.experiment, p.config_hash), []))
  if any(p.run is not None and p.run.info.status == tracking.RUNNING for p in runs):
    holders = leases.Ledger(tracker).states()
    for p in runs:
      p.trainer_alive = p.config_hash in holders and holders[p.config_hash].alive()
  yield from runs


CHANCE = metrics.CHANCE


def metric_name(row: registry.Row) -> str:
  return "test_map" if row.kind == "video" else "test_top1"


def runs_table(planned_runs: Iterable[Planned]) -> pd.DataFrame:
  """Each planned run's status (FINISHED, RUNNING, DEAD, PREEMPTED, FAILED, KILLED or 'not run'), its
  metric, and why it failed where it did."""
  records: List[dict] = []
  for p in planned_runs:
    metric, run = metric_name(p.row), p.run
    records.append(dict(
        experiment=p.row.experiment, row=p.row.key, framework=p.framework, seed=p.seed,
        scale=p.scale, status=p.status,
        metric=metric, value=run.data.metrics.get(metric) if run else None,
        wall_time_s=run.data.metrics.get("wall_time_s") if run else None,
        failure=run.data.tags.get(tracking.FAILURE_TAG) if run else None))
  return pd.DataFrame.from_records(records)


def summary(table: pd.DataFrame) -> pd.DataFrame:
  """Per row and framework: finished runs of planned, and the metric's mean and std (None
  where there are too few finished runs)."""
  def agg(group):
    done = group[group.status == tracking.FINISHED]
    return pd.Series({"finished": f"{len(done)}/{len(group)}",
                      "mean": done.value.mean() if len(done) else None,
                      "std": done.value.std(ddof=1) if len(done) > 1 else None,
                      "metric": group.metric.iloc[0]}, dtype=object)
  out = table.groupby(["experiment", "row", "framework"], sort=False).apply(agg, include_groups=False)
  return out.astype(object).where(out.notna(), None)
