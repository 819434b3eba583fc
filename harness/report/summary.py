"""Per row: the published numbers, the measured GFLOPs, and the reproduced metric per framework
(mean and t interval over seeds), with a JAX-vs-PyTorch agreement test paired by seed."""
import math
import pathlib
from typing import Dict, Sequence

import pandas as pd

from harness.configs import published, registry, tables_conf
from harness.flops import report as flops_report
from harness.report import stats
from harness.store import export as run_export

FRAMEWORK_NAMES = {"jax": "JAX", "torch": "PyTorch"}


def paper_gflops(flops_csv) -> Dict[str, Dict[str, float]]:
  """experiment -> row -> analytic GFLOPs at paper scale, from results/flops.csv."""
  path = pathlib.Path(flops_csv)
  if not path.exists():
    raise FileNotFoundError(f"no FLOP counts at {path}: run `nox -s flops` first")
  frame = flops_report.read_csv(path).reset_index()
  rows = frame[(frame.entry == "row") & (frame.scale == "paper")]
  out: Dict[str, Dict[str, float]] = {}
  for r in rows.itertuples():
    out.setdefault(r.experiment, {})[r.row] = float(r.analytic_gflops)
  return out


def shared_seeds(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
  """Columns a, b: the values of the seeds both sets of runs finished, by seed.

  Both frameworks start a seed from the same weights and batches, so a row's JAX and
  PyTorch runs of one seed are a pair."""
  return a.set_index("seed").value.to_frame("a").join(b.set_index("seed").value.to_frame("b"), how="inner")


def framework_gap(a: pd.DataFrame, b: pd.DataFrame, confidence: float) -> Dict[str, float]:
  """A row's a - b over its shared seeds: n, mean, paired t interval (nan for n < 2), largest |a - b|."""
  pairs = shared_seeds(a, b)
  d = stats.paired(pairs.a, pairs.b, confidence)
  gaps = pairs.a - pairs.b
  return dict(gap_n=len(pairs), gap_mean=float(gaps.mean()) if len(pairs) else math.nan,
              gap_low=d.low if d else math.nan, gap_high=d.high if d else math.nan,
              gap_max_per_seed=float(gaps.abs().max()) if len(pairs) else math.nan)


def build(runs: pd.DataFrame, experiment: str, frameworks: Sequence[str],
          gflops_paper: Dict[str, Dict[str, float]]) -> pd.DataFrame:
  """One record per registered row of `experiment`, in paper order."""
  conf, confidence = tables_conf.experiment(experiment), tables_conf.load()["confidence"]
  mine = runs[runs.experiment == experiment]
  done = run_export.finished(mine)
  records = []
  for row in registry.rows(experiment):
    paper_metric = published.row(experiment, row.key, conf["published_metric"])
    paper_cost = published.row(experiment, row.key, "gflops")
    proxy_cost = done[done.row == row.key].gflops.dropna()
    record = dict(row=row.key, label=row.label, series=row.series,
                  published=paper_metric.value if paper_metric else math.nan,
                  published_gflops=paper_cost.value if paper_cost else math.nan,
                  gflops_paper_scale=gflops_paper.get(experiment, {}).get(row.key, math.nan),
                  gflops_run_scale=float(proxy_cost.iloc[0]) if len(proxy_cost) else math.nan)
    by_framework = {}
    for fw in frameworks:
      planned = mine[(mine.row == row.key) & (mine.framework == fw)]
      got = done[(done.row == row.key) & (done.framework == fw)].sort_values("seed")
      by_framework[fw] = got
      e = stats.estimate(got.value.tolist(), confidence)
      record.update({f"{fw}_planned": len(planned), f"{fw}_n": e.n, f"{fw}_mean": e.mean,
                     f"{fw}_std": e.std, f"{fw}_ci": e.half_width})
    if len(frameworks) == 2:
      record.update(framework_gap(*(by_framework[fw] for fw in frameworks), confidence))
    records.append(record)
  return pd.DataFrame.from_records(records)


def by_label_group(runs: pd.DataFrame, experiment: str, frameworks: Sequence[str]) -> pd.DataFrame:
  """Per row, framework and label group: the group's mAP over seeds (mean, t half-width, n) and
  its chance level (the mean prevalence of its labels), so a reader sees whether each group was
  learned and the overall mAP does not hide one that was not."""
  confidence = tables_conf.load()["confidence"]
  mine = runs[runs.experiment == experiment]
  done, groups = run_export.finished(mine), run_export.group_names(mine)
  records = []
  for row in registry.rows(experiment):
    for fw in frameworks:
      got = done[(done.row == row.key) & (done.framework == fw)]
      for group in groups:
        e = stats.estimate(got[f"value_{group}"].dropna().tolist(), confidence)
        records.append(dict(row=row.key, label=row.label, framework=fw, group=group, n=e.n,
                            mean=e.mean, ci=e.half_width, chance=got[f"chance_{group}"].mean()))
  return pd.DataFrame.from_records(records)


def agreement(record, frameworks: Sequence[str]) -> str:
  """Do the two frameworks differ by more than seed noise? JAX - PyTorch over the seeds both
  ran, with its paired t interval: 'agree' when it holds 0."""
  n = int(record.get("gap_n", 0))
  if n == 0 and any(record.get(f"{fw}_planned") == 0 for fw in frameworks):
    return "n/a (not planned in both)"
  if n == 0:
    return "n/a (no seed finished in both)"
  mean, worst = record["gap_mean"], record["gap_max_per_seed"]
  if worst == 0:
    return f"identical per seed (n={n})"
  if n == 1:
    return f"{mean:+.2f} (n=1, no interval)"
  low, high = record["gap_low"], record["gap_high"]
  return (f"{'agree' if low <= 0 <= high else 'DIFFER'}: {mean:+.2f} [{low:+.2f}, {high:+.2f}] "
          f"(n={n}), max per-seed {worst:.2f}")


def framework_pairs(runs: pd.DataFrame, experiments: Sequence[str],
                    frameworks: Sequence[str]) -> pd.DataFrame:
  """Columns experiment, row, seed, a, b: every finished seed both frameworks ran of a row."""
  done = run_export.finished(runs[runs.experiment.isin(experiments)])
  key = ["experiment", "row", "seed"]
  a, b = (done[done.framework == fw].set_index(key).value for fw in frameworks)
  return pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").reset_index()


def pooled_agreement(runs: pd.DataFrame, experiments: Sequence[str], frameworks: Sequence[str],
                     confidence: float) -> dict:
  """JAX - PyTorch pooled over every row and shared seed of `experiments`: n pairs, the mean
  with its t interval (pairs taken as independent), the sd of the differences, and beside
  it the seed-to-seed sd within a row (pooled over rows) of the framework with more
  finished runs. Two frameworks whose runs of a seed were as unrelated as two seeds would
  differ with an sd of about sqrt(2) times the seed-to-seed sd."""
  pairs = framework_pairs(runs, experiments, frameworks)
  gap = stats.estimate((pairs.a - pairs.b).tolist(), confidence)
  done = run_export.finished(runs[runs.experiment.isin(experiments) & runs.framework.isin(frameworks)])
  counts = done.framework.value_counts()
  seeds_from = max(frameworks, key=lambda fw: counts.get(fw, 0))  # First listed on a tie.
  mine = done[done.framework == seeds_from]
  seed_sd = stats.pooled_sd([g.value.tolist() for _, g in mine.groupby(["experiment", "row"])])
  return dict(n=gap.n, mean=gap.mean, low=gap.low, high=gap.high, sd=gap.std, seed_sd=seed_sd,
              seed_sd_framework=seeds_from)
