"""Verdicts on the paper's claims, per framework, from the proxy runs (conf/tables.yaml).

A comparison is a paired t interval for (row - other) in the artifact's metric, paired
by seed: a seed gives both rows the same training batches and test set, so the
seed-to-seed spread they share drops out. 'superior' is supported when the interval lies above 0 and contradicted when
it lies below; 'noninferior' likewise against -margin. A claim is contradicted if any
comparison contradicts it, supported if all support it, inconclusive otherwise.
"""
import dataclasses
from typing import Dict, List, Optional

import pandas as pd

from harness.tables import runs as run_export, spec, stats

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


@dataclasses.dataclass(frozen=True)
class Comparison:
  row: str
  other: str
  test: str
  framework: str
  difference: Optional[stats.Difference]
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


def _judge(test: dict, difference: Optional[stats.Difference]) -> (str, str):
  if difference is None:
    return INCONCLUSIVE, "fewer than 2 seeds finished in both rows"
  threshold = 0.0 if test["test"] == "superior" else -float(test["margin"])
  if difference.low > threshold:
    return SUPPORTED, f"interval above {threshold:g}"
  if difference.high < threshold:
    return CONTRADICTED, f"interval below {threshold:g}"
  return INCONCLUSIVE, f"interval contains {threshold:g}"


def compare(runs: pd.DataFrame, experiment: str, test: dict, framework: str, confidence: float,
            gflops: Dict[str, float]) -> Comparison:
  a = values(runs, experiment, test["row"], framework)
  b = values(runs, experiment, test["other"], framework)
  seeds = sorted(set(a) & set(b))
  difference = stats.paired([a[s] for s in seeds], [b[s] for s in seeds], confidence)
  verdict, reason = _judge(test, difference)
  if test.get("fewer_flops"):
    mine, theirs = gflops[test["row"]], gflops[test["other"]]
    if mine >= theirs:
      verdict, reason = CONTRADICTED, f"not fewer GFLOPs ({mine:.4g} vs {theirs:.4g})"
    else:
      reason += f"; GFLOPs {mine:.4g} < {theirs:.4g}"
  return Comparison(test["row"], test["other"], test["test"], framework, difference, verdict, reason)


def combine(verdicts: List[str]) -> str:
  if CONTRADICTED in verdicts:
    return CONTRADICTED
  if verdicts and all(v == SUPPORTED for v in verdicts):
    return SUPPORTED
  return INCONCLUSIVE


def judge(runs: pd.DataFrame, frameworks, gflops: Dict[str, Dict[str, float]]) -> List[Verdict]:
  """Every claim of conf/tables.yaml, per framework. `gflops`: experiment -> row -> paper-scale GFLOPs."""
  confidence = spec.load()["confidence"]
  out = []
  for claim in spec.load()["claims"]:
    for framework in frameworks:
      comparisons = [compare(runs, claim["experiment"], test, framework, confidence,
                             gflops.get(claim["experiment"], {}))
                     for test in claim["comparisons"]]
      out.append(Verdict(claim, framework, combine([c.verdict for c in comparisons]), comparisons))
  return out
