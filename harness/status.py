"""The state of planned runs in MLflow: one record per row x framework x seed."""
import dataclasses
from typing import Any, Iterable, Iterator, List, Optional, Sequence

import pandas as pd

from harness import config, registry, tracking


@dataclasses.dataclass
class Planned:
  row: registry.Row
  framework: str
  seed: int
  cfg: Any  # The run's validated DictConfig.
  run: Optional[Any]  # Its mlflow.entities.Run, or None.


def planned(experiments: Sequence[str], frameworks: Sequence[str], seeds: Sequence[int],
            overrides: Sequence[str] = ()) -> Iterator[Planned]:
  """Every planned run with its MLflow run (the finished one if any, else the newest; None if
  never started), found by the hash of the config it would run with."""
  tracker = None
  for experiment in experiments:
    for row in registry.rows(experiment):
      for framework in frameworks:
        for seed in seeds:
          cfg = config.load([*overrides, f"experiment={experiment}", f"row={row.key}",
                             f"framework={framework}", f"seed={seed}"])
          tracker = tracker or tracking.Tracker(cfg.tracking)
          runs = tracker.runs(experiment, config.config_hash(cfg))
          finished = [r for r in runs if r.info.status == tracking.FINISHED]
          yield Planned(row, framework, seed, cfg, (finished or runs or [None])[0])


def metric_name(row: registry.Row) -> str:
  return "test_map" if row.kind == "video" else "test_top1"


def runs_table(planned_runs: Iterable[Planned]) -> pd.DataFrame:
  """Each planned run's status (FINISHED, RUNNING, FAILED, KILLED or 'not run') and metric."""
  records: List[dict] = []
  for p in planned_runs:
    metric, run = metric_name(p.row), p.run
    records.append(dict(
        experiment=p.row.experiment, row=p.row.key, framework=p.framework, seed=p.seed,
        scale=p.cfg.scale.name, status=run.info.status if run else "not run",
        metric=metric, value=run.data.metrics.get(metric) if run else None,
        wall_time_s=run.data.metrics.get("wall_time_s") if run else None))
  return pd.DataFrame.from_records(records)


def summary(table: pd.DataFrame) -> pd.DataFrame:
  """Per row and framework: finished runs of planned, and the metric's mean and std."""
  def agg(group):
    done = group[group.status == tracking.FINISHED]
    return pd.Series({"finished": f"{len(done)}/{len(group)}",
                      "mean": done.value.mean() if len(done) else None,
                      "std": done.value.std(ddof=1) if len(done) > 1 else None,
                      "metric": group.metric.iloc[0]})
  return table.groupby(["experiment", "row", "framework"], sort=False).apply(agg, include_groups=False)
