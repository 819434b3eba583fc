"""Verdicts on the paper's claims, per judging framework, from the proxy runs (conf/tables.yaml).

A comparison is a paired t test of the mean difference in the artifact's metric (row -
other), paired by seed: a seed gives both rows the same training batches and test set,
so the seed-to-seed spread they share drops out. It tests against a threshold, 0 for
'superior' and -margin for 'noninferior'. The family is every comparison of every claim
in every judging framework (`judge_frameworks`); Holm's correction over it holds the
family-wise error rate at 1 - confidence. A rejected comparison is supported (estimate
above the threshold) or contradicted (below); one not rejected is bounded when its
Bonferroni-simultaneous interval is narrow (half-width <= `bound`), inconclusive
otherwise. A claim is contradicted if any comparison is, supported if all are, 'not
shown' if all are supported or bounded, inconclusive otherwise.
"""
import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import pandas as pd

from harness.configs import tables_conf
from harness.report import stats
from harness.store import export as run_export

SUPPORTED, CONTRADICTED, BOUNDED, INCONCLUSIVE = "supported", "contradicted", "bounded", "inconclusive"
NOT_SHOWN = "not shown"  # A claim: every comparison supported or bounded, not all supported.


@dataclasses.dataclass(frozen=True)
class Comparison:
  row: str
  other: str
  test: str
  framework: str
  threshold: float
  difference: Optional[stats.PairedDifference]  # Its interval is the simultaneous one.
  p_holm: float
  mdd: float  # Minimum detectable difference from the threshold, at the Bonferroni level.
  seeds_for_bound: float  # Seeds whose simultaneous interval would be <= bound at the measured sd.
  verdict: str
  reason: str


@dataclasses.dataclass(frozen=True)
class Verdict:
  claim: dict
  framework: str
  verdict: str
  comparisons: List[Comparison]


def values(runs: pd.DataFrame, experiment: str, row: str, framework: str) -> Dict[int, float]:
  """seed -> metric of the finished runs of a row in a framework."""
  done = run_export.finished(runs)
  pick = done[(done.experiment == experiment) & (done.row == row) & (done.framework == framework)]
  return dict(zip(pick.seed, pick.value))


def threshold(test: dict) -> float:
  return 0.0 if test["test"] == "superior" else -float(test["margin"])


def judging_frameworks(listed: Sequence[str], frameworks: Sequence[str], runs: pd.DataFrame) -> List[str]:
  """The listed frameworks that the tables cover and the runs include, in listed order."""
  present = set(runs.framework)
  return [f for f in listed if f in frameworks and f in present]


def measure(runs: pd.DataFrame, experiment: str, test: dict, framework: str, confidence: float,
            m: int) -> Optional[stats.PairedDifference]:
  """The paired test of one comparison over the seeds both rows finished, with its
  interval simultaneous over a family of m; None for fewer than two such seeds."""
  a = values(runs, experiment, test["row"], framework)
  b = values(runs, experiment, test["other"], framework)
  seeds = sorted(set(a) & set(b))
  return stats.simultaneous([a[s] for s in seeds], [b[s] for s in seeds], confidence, m, threshold(test))


def format_p(p: float) -> str:
  return "<0.001" if p < 0.001 else f"{p:.3f}"


def decide(difference: Optional[stats.PairedDifference], p_holm: float, rejected: bool, alpha: float,
           bound: float) -> Tuple[str, str]:
  """A comparison's verdict from its Holm decision, or, when not rejected, its interval's width."""
  if difference is None:
    return INCONCLUSIVE, "fewer than 2 seeds finished in both rows"
  t = difference.threshold
  if rejected:
    above = difference.estimate > t
    return ((SUPPORTED if above else CONTRADICTED),
            f"Holm p {format_p(p_holm)} < {alpha:g}, estimate {'above' if above else 'below'} {t:g}")
  width = f"Holm p {format_p(p_holm)}; half-width {difference.half_width:.2f}"
  if difference.half_width <= bound:
    return BOUNDED, f"{width} <= {bound:g}"
  return INCONCLUSIVE, f"{width} > {bound:g}"


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
  if verdicts and all(v in (SUPPORTED, BOUNDED) for v in verdicts):
    return NOT_SHOWN
  return INCONCLUSIVE


def family_size(verdicts: List[Verdict]) -> int:
  return sum(len(v.comparisons) for v in verdicts)


def family(settings: dict, judged: Sequence[str]) -> List[Tuple[dict, str, dict]]:
  """Holm's family: (claim, framework, comparison) for every comparison of every claim in every
  judging framework."""
  return [(claim, framework, test) for claim in settings["claims"] for framework in judged
          for test in claim["comparisons"]]


def judge(runs: pd.DataFrame, frameworks: Sequence[str], gflops: Dict[str, Dict[str, float]],
          settings: Optional[dict] = None) -> List[Verdict]:
  """Every claim, per judging framework, with Holm's correction over the whole family.

  `gflops`: experiment -> row -> paper-scale GFLOPs. `settings`: conf/tables.yaml as
  loaded (the default), or a variant of it. A comparison without a test (fewer than two
  seeds) stays in the family with p = 1: it was planned, so it counts in m."""
  settings = settings or tables_conf.load()
  confidence, bound, power = settings["confidence"], settings["bound"], settings["power"]
  alpha = 1 - confidence
  judged = judging_frameworks(settings["judge_frameworks"], frameworks, runs)
  tests = family(settings, judged)
  m = len(tests)
  differences = [measure(runs, claim["experiment"], test, framework, confidence, m)
                 for claim, framework, test in tests]
  adjusted, rejected = stats.holm([d.p if d else 1.0 for d in differences], alpha)
  comparisons = []
  for (claim, framework, test), d, p_holm, reject in zip(tests, differences, adjusted, rejected):
    verdict, reason = decide(d, float(p_holm), bool(reject), alpha, bound)
    verdict, reason = check_flops(test, verdict, reason, gflops.get(claim["experiment"], {}))
    mdd = stats.minimum_detectable_difference(d.sd, d.n, alpha / m, power) if d else math.nan
    needed = stats.seeds_for_half_width(d.sd, alpha / m, bound) if d else math.nan
    comparisons.append(Comparison(test["row"], test["other"], test["test"], framework, threshold(test),
                                  d, float(p_holm), mdd, needed, verdict, reason))
  out, start = [], 0
  for claim in settings["claims"]:
    for framework in judged:
      mine = comparisons[start:start + len(claim["comparisons"])]
      start += len(mine)
      out.append(Verdict(claim, framework, combine([c.verdict for c in mine]), mine))
  return out
