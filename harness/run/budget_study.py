"""`curves`: one row trained at several budgets over a few seeds, the evidence behind a recipe's
training length (harness/conf/curves.yaml).

Each budget is a run of its own (`train.steps=N`, the recipe's warm-up, then a cosine schedule
that ends at N), tracked, resumed and skipped like any run, so a point of the curve is what a
run of that length reaches, not the mid-schedule accuracy of one long run; the budget the recipe
uses is such a run too, and `reproduce` finds it finished. The curve goes to
results/curves-<scale>-<experiment>.csv, one record per run, with the chance level of the test
set its evaluation logged, which harness/report/learning_curves.py draws and judges.
"""
import dataclasses
from typing import List, Sequence

import pandas as pd

from harness.configs import compose, conf_schemas, registry
from harness.run import sweep
from harness.store import export as run_export, run_status, tracking

# Overrides that are not the curve's task: row= names the curve, the scale its CSV, the rest
# leave results alone.
NOT_TASK = ("row=", "scale=", "tracking.", "runtime.", "hydra.")


def task_overrides(overrides: Sequence[str]) -> str:
  """The overrides that change what the curve measures (e.g. 'data.digit_size=24'), recorded
  beside it: the recipe's task unless this says otherwise."""
  return " ".join(o for o in overrides if not o.startswith(NOT_TASK))


@dataclasses.dataclass(frozen=True)
class Study:
  experiment: str
  row: str
  budget: int  # the recipe's train.steps
  batch_size: int
  steps: List[int]
  frameworks: List[str]
  seeds: List[int]

  def multiple(self, steps: int) -> float:
    return steps / self.budget


def study(experiment: str, overrides: Sequence[str], frameworks=None, seeds=None,
          multiples=None) -> Study:
  """The runs of a curve: the row named by a `row=` override (else the experiment's first), at
  each multiple of the recipe's train.steps (rounded to whole steps, at least the warm-up)."""
  conf = conf_schemas.curves()
  chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("row=")]
  row = chosen[-1] if chosen else registry.rows(experiment)[0].key
  cfg = compose.load([*overrides, f"experiment={experiment}", f"row={row}"])
  budget = cfg.train.steps
  steps = sorted({max(int(round(m * budget)), cfg.optim.warmup_steps, 1)
                  for m in (multiples or conf["multiples"])})
  return Study(experiment, row, budget, cfg.train.batch_size, steps,
               list(frameworks or conf["frameworks"]), list(seeds or conf["seeds"]))


def train(s: Study, jobs: int, overrides: Sequence[str]) -> None:
  sweep.multirun(s.experiment, {"row": [s.row], "framework": s.frameworks, "seed": s.seeds,
                                "train.steps": s.steps}, jobs, overrides)


def collect(s: Study, overrides: Sequence[str]) -> pd.DataFrame:
  """One record per run of the study, as MLflow holds it (value empty unless FINISHED), with the
  chance level its evaluation logged; multi-label sources add value_<group> and chance_<group>
  per label group."""
  records = []
  for steps in s.steps:
    plan = run_status.planned([s.experiment], s.frameworks, s.seeds, [*overrides, f"train.steps={steps}"])
    for p in plan:
      if p.row.key != s.row:
        continue
      metric = run_status.metric_name(p.row)
      finished = p.run is not None and p.run.info.status == tracking.FINISHED
      metrics = p.run.data.metrics if finished else {}
      record = dict(experiment=s.experiment, row=s.row, overrides=task_overrides(overrides),
                    framework=p.framework, seed=p.seed,
                    steps=steps, multiple=s.multiple(steps), batch_size=s.batch_size,
                    examples=steps * s.batch_size, status=p.status, metric=metric,
                    value=metrics.get(metric), chance=metrics.get(run_status.CHANCE))
      record.update(run_export.label_groups(metrics, metric))
      records.append(record)
  return pd.DataFrame.from_records(records)


def merged(frame: pd.DataFrame, path) -> pd.DataFrame:
  """The study's records in place of the earlier records of the same study (row and task
  overrides) in the experiment's curve CSV, whose other studies stay."""
  if not path.exists():
    return frame
  old = pd.read_csv(path, keep_default_na=False, na_values=[""])
  same = (old.row == frame.row.iloc[0]) & (old.overrides.fillna("") == frame.overrides.fillna("").iloc[0])
  return pd.concat([old[~same], frame], ignore_index=True)


def run(experiments: Sequence[str], overrides: Sequence[str], jobs: int, frameworks=None, seeds=None,
        multiples=None) -> int:
  """Trains what is missing of each experiment's curve, then writes its CSV; returns how many of
  the planned runs are not finished."""
  # The results store and scale, from the overrides less row=, which names a row of `experiments`.
  cfg = compose.load([o for o in overrides if not o.startswith("row=")])
  unfinished = 0
  for experiment in experiments:
    s = study(experiment, overrides, frameworks, seeds, multiples)
    print(f"curves: {experiment}/{s.row}, steps {', '.join(map(str, s.steps))} "
          f"(recipe {s.budget}), {', '.join(s.frameworks)}, seeds {', '.join(map(str, s.seeds))}",
          flush=True)
    train(s, jobs, overrides)
    frame = collect(s, overrides)
    path = run_export.curves_csv_path(cfg.tracking.results_dir, cfg.scale.name, experiment)
    run_export.write(merged(frame, path), path)
    left = int((frame.status != tracking.FINISHED).sum())
    unfinished += left
    print(f"curves: wrote {path} ({len(frame) - left} of {len(frame)} runs finished)")
  return unfinished
