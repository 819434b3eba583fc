"""Verdicts on the paper's claims, judged against the paper's own effect sizes (conf/tables.yaml).

A comparison (row against other) is measured on the log-odds scale: logit of the row's mean
metric minus logit of the other's, the means taken over every run both rows finished, in
every judging framework. A seed's runs are one unit of evidence in both frameworks (they
start from the same weights and batches), so the frameworks are a block: each seed's runs are
resampled together. The uncertainty comes from a paired two-way bootstrap over seeds and test
items (harness/report/bootstrap.py); the test is a t test of the gap against a threshold (0 for
'superior', -margin for 'noninferior'), with the Welch-Satterthwaite degrees of freedom of the
seeds' part (n - 1 for n seeds) and the items' part (taken as known), and Holm's correction over every comparison holds the family-wise error rate at 1 - confidence.

The paper's effect is the same log-odds gap between the two rows' published numbers. A
comparison is
  supported     Holm rejects the threshold and the estimate lies on the claimed side;
  contradicted  Holm rejects it and the estimate lies on the other side (and always when a
                `fewer_flops` row does not cost fewer GFLOPs, measured);
  smaller than the paper's effect
                not rejected, and the simultaneous interval ends short of the paper's effect;
  consistent with the paper's effect
                not rejected, the interval holds the paper's effect and is no wider than the
                paper's effect is far from the threshold (an estimate at the paper's effect
                would have been rejected);
  inconclusive  otherwise, with the seeds a comparison like it would need for `power` at the
                paper's effect.
A claim is contradicted if any comparison is, supported if all are, smaller (or consistent)
if every comparison is supported or smaller (consistent), inconclusive otherwise.
"""
import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as distributions

from harness.configs import tables_conf
from harness.report import bootstrap, stats
from harness.store import export as run_export

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
SMALLER, CONSISTENT = "smaller than the paper's effect", "consistent with the paper's effect"
MAX_SEEDS = 10_000  # Seeds needed beyond this read as 'more than'.


@dataclasses.dataclass(frozen=True)
class Comparison:
  row: str
  other: str
  test: str
  threshold: float  # log-odds
  paper: float  # the paper's effect, log-odds
  paper_points: float  # the paper's effect at the proxy's level of `other`, in metric points
  spread: Optional[bootstrap.Spread]  # pooled over the judging frameworks; None: no seed in both rows
  low: float  # the simultaneous interval
  high: float
  p: float
  p_holm: float
  by_framework: Dict[str, float]  # each judging framework's own estimate
  seeds_needed: float  # for `power` at the paper's effect; inf when the test items alone forbid it
  verdict: str
  reason: str


@dataclasses.dataclass(frozen=True)
class Verdict:
  claim: dict
  verdict: str
  comparisons: List[Comparison]


def threshold(test: dict) -> float:
  return 0.0 if test["test"] == "superior" else -float(test["margin"])


def paper_effect(experiment: str, test: dict, metric: str) -> float:
  """The log-odds gap between the two rows' published numbers."""
  return tables_conf.paper_gap(experiment, test["row"], test["other"], metric)


def judging_frameworks(listed: Sequence[str], frameworks: Sequence[str], runs: pd.DataFrame) -> List[str]:
  """The listed frameworks that the tables cover and the runs include, in listed order."""
  present = set(runs.framework)
  return [f for f in listed if f in frameworks and f in present]


def _values(runs: pd.DataFrame, replicates: pd.DataFrame, row: str) -> Dict[Tuple[str, int], tuple]:
  """(framework, seed) -> (the run's value, its values on the item resamples, whether it recorded
  them), as fractions; a run that recorded none has its value on each (no item variance)."""
  width = max(replicates.shape[1], 1)
  out = {}
  for (framework, seed), record in runs[runs.row == row].set_index(["framework", "seed"]).iterrows():
    value = record.value / 100
    recorded = record.run_id in replicates.index
    items = replicates.loc[record.run_id].to_numpy(float) / 100 if recorded else np.full(width, value)
    out[framework, seed] = value, items, recorded
  return out


def _paired(a: dict, b: dict, units_a: list, units_b: list, seeds: list, scale: float = 1.0) -> bootstrap.Paired:
  unresampled = sum(not (a[ua][2] and b[ub][2]) for ua, ub in zip(units_a, units_b))
  return bootstrap.Paired(scale * np.array([a[u][0] for u in units_a]), scale * np.array([b[u][0] for u in units_b]),
                          scale * np.stack([a[u][1] for u in units_a]), scale * np.stack([b[u][1] for u in units_b]),
                          np.array(seeds), unresampled)


def paired(runs: pd.DataFrame, replicates: pd.DataFrame, experiment: str, test: dict,
           frameworks: Sequence[str]) -> Optional[bootstrap.Paired]:
  """The units (framework, seed) both rows finished, in the judging frameworks."""
  done = run_export.finished(runs)
  done = done[(done.experiment == experiment) & done.framework.isin(frameworks)]
  a, b = _values(done, replicates, test["row"]), _values(done, replicates, test["other"])
  units = sorted(set(a) & set(b))
  if not units:
    return None
  return _paired(a, b, units, units, [seed for _, seed in units])


def seeds_needed(spread: bootstrap.Spread, distance: float, alpha: float, power: float) -> float:
  """Seeds for which a comparison with this spread's per-seed noise and item variance, at a true
  gap `distance` from the threshold, is rejected at level alpha with probability `power`
  (normal power with the t quantile at the Welch-Satterthwaite degrees of freedom); inf when the
  test items alone make that impossible, MAX_SEEDS + 1 when it takes more than MAX_SEEDS."""
  sigma2, items = spread.seed_variance_per_seed, spread.item_variance
  z = distributions.norm.ppf
  if items > 0 and abs(distance) / math.sqrt(items) - z(1 - alpha / 2) < z(power):
    return math.inf
  for n in range(2, MAX_SEEDS + 1):
    se = math.sqrt(sigma2 / n + items)
    dof = bootstrap.satterthwaite(sigma2 / n, items, n)
    if se == 0 or distributions.norm.cdf(abs(distance) / se - distributions.t.ppf(1 - alpha / 2, dof)) >= power:
      return float(n)
  return float(MAX_SEEDS + 1)


def decide(c: dict, alpha: float) -> Tuple[str, str]:
  """A comparison's verdict and why, from its Holm decision and its interval (module doc)."""
  s, t, paper = c["spread"], c["threshold"], c["paper"]
  held = f"the paper's {paper:+.3f} is {'inside' if c['low'] <= paper <= c['high'] else 'outside'} the interval"
  if c["p_holm"] < alpha:
    above = s.estimate > t
    return (SUPPORTED if above else CONTRADICTED), (
        f"Holm p {format_p(c['p_holm'])} < {alpha:g}, estimate {'above' if above else 'below'} {t:g}; {held}")
  why = f"Holm p {format_p(c['p_holm'])}"
  if paper > t and c["high"] < paper:
    return SMALLER, f"{why}; upper limit {c['high']:+.3f} < the paper's {paper:+.3f}"
  if c["low"] <= paper <= c["high"] and (c["high"] - c["low"]) / 2 <= abs(paper - t):
    return CONSISTENT, f"{why}; {held}, half-width {(c['high'] - c['low']) / 2:.3f} <= {abs(paper - t):.3f}"
  return INCONCLUSIVE, f"{why}; {held}"


def check_flops(test: dict, verdict: str, reason: str, gflops: Dict[str, float]) -> Tuple[str, str]:
  """A `fewer_flops` comparison is contradicted outright when the row does not cost fewer GFLOPs."""
  if not test.get("fewer_flops"):
    return verdict, reason
  mine, theirs = gflops[test["row"]], gflops[test["other"]]
  if mine >= theirs:
    return CONTRADICTED, f"not fewer GFLOPs ({mine:.4g} vs {theirs:.4g})"
  return verdict, f"{reason}; GFLOPs {mine:.4g} < {theirs:.4g}"


def combine(verdicts: List[str]) -> str:
  if CONTRADICTED in verdicts:
    return CONTRADICTED
  if verdicts and all(v == SUPPORTED for v in verdicts):
    return SUPPORTED
  for partial in (SMALLER, CONSISTENT):
    if verdicts and all(v in (SUPPORTED, partial) for v in verdicts):
      return partial
  return INCONCLUSIVE


def format_p(p: float) -> str:
  return "<0.001" if p < 0.001 else f"{p:.3f}"


def family(settings: dict) -> List[Tuple[dict, dict]]:
  """Holm's family: (claim, comparison) for every comparison of every claim."""
  return [(claim, test) for claim in settings["claims"] for test in claim["comparisons"]]


def _measure(runs, replicates, claim, test, judged, metric, confidence, m) -> dict:
  pairs = paired(runs, replicates, claim["experiment"], test, judged)
  t, paper = threshold(test), paper_effect(claim["experiment"], test, metric)
  out = dict(threshold=t, paper=paper, spread=None, low=math.nan, high=math.nan, p=1.0,
             by_framework={}, paper_points=math.nan, unresampled=0, units=0)
  if pairs is None:
    return out
  out.update(unresampled=pairs.unresampled, units=len(pairs.a))
  s = out["spread"] = bootstrap.spread(pairs)
  level = 1 - (1 - confidence) / (2 * m)
  other = pairs.b.mean()
  out["paper_points"] = 100 * float(special.expit(bootstrap.log_odds(other) + paper) - other)
  if s.num_seeds >= 2 and s.se > 0:
    half = float(distributions.t.ppf(level, s.dof) * s.se)
    out.update(low=s.estimate - half, high=s.estimate + half,
               p=float(2 * distributions.t.sf(abs(s.estimate - t) / s.se, s.dof)))
  elif s.num_seeds >= 2 and s.se == 0:  # Every seed and item gives the same gap: known exactly.
    out.update(low=s.estimate, high=s.estimate, p=float(s.estimate == t))
  done = run_export.finished(runs)
  for framework in judged:
    mine = paired(done[done.framework == framework], replicates, claim["experiment"], test, [framework])
    if mine is not None:
      out["by_framework"][framework] = float(bootstrap.log_odds_gap(mine.a.mean(), mine.b.mean()))
  return out


def judge(runs: pd.DataFrame, replicates: pd.DataFrame, frameworks: Sequence[str],
          gflops: Dict[str, Dict[str, float]], settings: Optional[dict] = None) -> List[Verdict]:
  """Every claim, with Holm's correction over the whole family (module doc).

  `replicates`: run_id -> the run's metric on each resample of its test items
  (results/replicates-<scale>.csv). `gflops`: experiment -> row -> paper-scale GFLOPs.
  `settings`: conf/tables.yaml as loaded (the default), or a variant of it. A comparison with
  fewer than two seeds stays in the family with p = 1: it was planned, so it counts in m."""
  settings = settings or tables_conf.load()
  confidence, power = settings["confidence"], settings["power"]
  alpha = 1 - confidence
  judged = judging_frameworks(settings["judge_frameworks"], frameworks, runs)
  tests = family(settings)
  m = len(tests)
  measured = [_measure(runs, replicates, claim, test, judged,
                       settings["experiments"][claim["experiment"]]["published_metric"], confidence, m)
              for claim, test in tests]
  adjusted, _ = stats.holm([c["p"] for c in measured], alpha)
  comparisons = []
  for (claim, test), c, p_holm in zip(tests, measured, adjusted):
    c["p_holm"] = float(p_holm)
    if c["spread"] is None or c["spread"].num_seeds < 2:
      verdict, reason, needed = INCONCLUSIVE, "fewer than 2 seeds finished in both rows", math.nan
    elif math.isnan(c["low"]):
      verdict, reason, needed = INCONCLUSIVE, "a run's value or item resamples are missing", math.nan
    else:
      verdict, reason = decide(c, alpha)
      needed = seeds_needed(c["spread"], c["paper"] - c["threshold"], alpha / m, power)
    if c["unresampled"]:
      reason += (f"; {c['unresampled']} of {c['units']} seed-framework pairs recorded no item "
                 "resamples (their test items count as fixed)")
    verdict, reason = check_flops(test, verdict, reason, gflops.get(claim["experiment"], {}))
    comparisons.append(Comparison(test["row"], test["other"], test["test"], c["threshold"], c["paper"],
                                  c["paper_points"], c["spread"], c["low"], c["high"], c["p"],
                                  c["p_holm"], c["by_framework"], needed, verdict, reason))
  out, start = [], 0
  for claim in settings["claims"]:
    mine = comparisons[start:start + len(claim["comparisons"])]
    start += len(mine)
    out.append(Verdict(claim, combine([c.verdict for c in mine]), mine))
  return out


@dataclasses.dataclass(frozen=True)
class Shift:
  """One row's mean metric in one framework minus another's, in points, over the seeds both ran."""
  experiment: str
  row: str
  spread: bootstrap.Spread
  low: float
  high: float


def shift(runs: pd.DataFrame, replicates: pd.DataFrame, experiment: str, row: str,
          frameworks: Sequence[str], confidence: float) -> Optional[Shift]:
  """frameworks[0] minus frameworks[1] on `row`, paired by seed and test item, with its t
  interval (Welch-Satterthwaite degrees of freedom) at `confidence`; None without two shared seeds."""
  done = run_export.finished(runs)
  done = done[(done.experiment == experiment) & (done.row == row)]
  first, second = (_values(done[done.framework == f], replicates, row) for f in frameworks)
  seeds = sorted({s for _, s in first} & {s for _, s in second})
  if len(seeds) < 2:
    return None
  pairs = _paired(first, second, [(frameworks[0], s) for s in seeds], [(frameworks[1], s) for s in seeds],
                  seeds, scale=100)
  s = bootstrap.spread(pairs, bootstrap.mean_gap)
  half = float(distributions.t.ppf(0.5 + confidence / 2, s.dof) * s.se)
  return Shift(experiment, row, s, s.estimate - half, s.estimate + half)


def claim_rows(settings: dict) -> List[Tuple[str, str]]:
  """(experiment, row) of every row a claim compares, in order of first mention."""
  rows = [(claim["experiment"], test[k]) for claim, test in family(settings) for k in ("row", "other")]
  return list(dict.fromkeys(rows))
