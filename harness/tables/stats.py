"""Means with t confidence intervals over seeds; paired and Welch intervals for differences."""
import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Estimate:
  n: int
  mean: float
  std: float  # Sample standard deviation (ddof=1); nan for n < 2.
  half_width: float  # Of the two-sided t interval; nan for n < 2.

  @property
  def low(self) -> float:
    return self.mean - self.half_width

  @property
  def high(self) -> float:
    return self.mean + self.half_width


@dataclasses.dataclass(frozen=True)
class Difference:
  """Mean of a minus mean of b, with its Welch (unequal variances) t interval."""
  estimate: float
  low: float
  high: float
  dof: float


def estimate(values: Sequence[float], confidence: float) -> Estimate:
  x = np.asarray(values, dtype=float)
  n = len(x)
  if n == 0:
    return Estimate(0, math.nan, math.nan, math.nan)
  if n == 1:
    return Estimate(1, float(x[0]), math.nan, math.nan)
  std = float(x.std(ddof=1))
  t = stats.t.ppf(0.5 + confidence / 2, n - 1)
  return Estimate(n, float(x.mean()), std, float(t * std / math.sqrt(n)))


def paired(a: Sequence[float], b: Sequence[float], confidence: float) -> Optional[Difference]:
  """Mean of a - b over pairs (a[i], b[i]) with its t interval; None for fewer than two pairs."""
  d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
  if len(d) < 2:
    return None
  e = estimate(d, confidence)
  if e.std == 0:  # Every pair differs by the same amount: known exactly.
    return Difference(e.mean, e.mean, e.mean, math.inf)
  return Difference(e.mean, e.low, e.high, float(len(d) - 1))


def welch(a: Sequence[float], b: Sequence[float], confidence: float) -> Optional[Difference]:
  """None if either side has fewer than two values (no interval can be formed)."""
  a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
  if len(a) < 2 or len(b) < 2:
    return None
  d = float(a.mean() - b.mean())
  va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
  se = math.sqrt(va + vb)
  if se == 0:  # Both sides constant: the difference is known exactly.
    return Difference(d, d, d, math.inf)
  dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
  t = stats.t.ppf(0.5 + confidence / 2, dof)
  return Difference(d, d - t * se, d + t * se, float(dof))
