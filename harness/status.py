"""The state of planned runs in MLflow: one record per row x framework x seed."""
from typing import List, Sequence

import pandas as pd

from harness import config, registry, tracking


def runs_table(experiments: Sequence[str], frameworks: Sequence[str], seeds: Sequence[int],
               overrides: Sequence[str] = ()) -> pd.DataFrame:
  """Each planned run's status (FINISHED, RUNNING, FAILED, KILLED or 'not run') and metric,
  found by the hash of the config it would run with."""
  records: List[dict] = []
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
          run = (finished or runs or [None])[0]
          metric = "test_map" if row.kind == "video" else "test_top1"
          records.append(dict(
              experiment=experiment, row=row.key, framework=framework, seed=seed,
              scale=cfg.scale.name, status=run.info.status if run else "not run",
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
