"""Per row: the published numbers, the measured GFLOPs, and the reproduced metric per framework
(mean and t interval over seeds), with a JAX-vs-PyTorch agreement test."""
import math
import pathlib
from typing import Dict, Sequence

import pandas as pd

from harness import published, registry
from harness.flops import report as flops_report
from harness.tables import runs as run_export, spec, stats

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


def _per_seed_gap(a: pd.DataFrame, b: pd.DataFrame) -> float:
  """Largest |a - b| over the seeds both have; nan if none."""
  joined = a.set_index("seed").value.to_frame("a").join(b.set_index("seed").value.to_frame("b"), how="inner")
  return float((joined.a - joined.b).abs().max()) if len(joined) else math.nan


def build(runs: pd.DataFrame, experiment: str, frameworks: Sequence[str],
          gflops_paper: Dict[str, Dict[str, float]]) -> pd.DataFrame:
  """One record per registered row of `experiment`, in paper order."""
  conf, confidence = spec.experiment(experiment), spec.load()["confidence"]
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
      a, b = (by_framework[fw] for fw in frameworks)
      d = stats.welch(a.value.tolist(), b.value.tolist(), confidence)
      record.update(gap_mean=d.estimate if d else math.nan, gap_low=d.low if d else math.nan,
                    gap_high=d.high if d else math.nan, gap_max_per_seed=_per_seed_gap(a, b))
    records.append(record)
  return pd.DataFrame.from_records(records)


def agreement(record) -> str:
  """Do the two frameworks differ by more than seed noise? Welch interval for JAX - PyTorch."""
  if math.isnan(record.get("gap_mean", math.nan)):
    return "n/a (fewer than 2 seeds)"
  low, high, worst = record["gap_low"], record["gap_high"], record["gap_max_per_seed"]
  if worst == 0:
    return "identical per seed"
  within = low <= 0 <= high
  return (f"{'agree' if within else 'DIFFER'}: {record['gap_mean']:+.2f} "
          f"[{low:+.2f}, {high:+.2f}], max per-seed {worst:.2f}")
