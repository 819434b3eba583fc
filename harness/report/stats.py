"""Means with t confidence intervals over seeds; paired and Welch intervals for differences;
the claims' paired t tests, Holm's correction, simultaneous intervals and power."""
import dataclasses
import math
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests


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
  """Mean of a minus mean of b, with its t interval (Welch's, or paired by `paired`)."""
  estimate: float
  low: float
  high: float
  dof: float

  @property
  def half_width(self) -> float:
    return (self.high - self.low) / 2


@dataclasses.dataclass(frozen=True)
class PairedDifference(Difference):
  """A paired difference with what a verdict and a power analysis need: the number of
  pairs, the sd of their differences, and the two-sided p of the t test of mean = threshold."""
  n: int
  sd: float
  threshold: float
  p: float


def _t_half_width(sd: float, n: int, confidence: float) -> float:
  return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n))


def estimate(values: Sequence[float], confidence: float) -> Estimate:
  x = np.asarray(values, dtype=float)
  n = len(x)
  if n == 0:
    return Estimate(0, math.nan, math.nan, math.nan)
  if n == 1:
    return Estimate(1, float(x[0]), math.nan, math.nan)
  std = float(x.std(ddof=1))
  return Estimate(n, float(x.mean()), std, _t_half_width(std, n, confidence))


def paired(a: Sequence[float], b: Sequence[float], confidence: float,
           threshold: float = 0.0) -> Optional[PairedDifference]:
  """Mean of a - b over pairs (a[i], b[i]) with its t interval, and the p-value of the
  two-sided paired t test of mean(a - b) = threshold; None for fewer than two pairs.

  Pairing removes what a pair shares (a seed's batches and test set) from the noise."""
  d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
  n = len(d)
  if n < 2:
    return None
  e = estimate(d, confidence)
  if e.std == 0:  # Every pair differs by the same amount: known exactly (scipy's p is nan at t = 0/0).
    return PairedDifference(e.mean, e.mean, e.mean, math.inf, n, 0.0, threshold,
                            1.0 if e.mean == threshold else 0.0)
  p = float(stats.ttest_1samp(d, threshold).pvalue)
  return PairedDifference(e.mean, e.low, e.high, float(n - 1), n, e.std, threshold, p)


def simultaneous_confidence(confidence: float, m: int) -> float:
  """Bonferroni: m intervals each at 1 - alpha/m all hold with probability >= 1 - alpha."""
  return 1 - (1 - confidence) / max(m, 1)


def simultaneous(a: Sequence[float], b: Sequence[float], confidence: float, m: int,
                 threshold: float = 0.0) -> Optional[PairedDifference]:
  """`paired` with the interval one of a family of m that hold together at `confidence`."""
  return paired(a, b, simultaneous_confidence(confidence, m), threshold)


def holm(pvalues: Sequence[float], alpha: float) -> Tuple[np.ndarray, np.ndarray]:
  """Holm-adjusted p-values and which hypotheses are rejected at family-wise level alpha.

  Holm holds the family-wise error rate under any dependence between the tests (the two
  frameworks' runs of a seed share weights and batches) and rejects at least what
  Bonferroni rejects."""
  if len(pvalues) == 0:
    return np.zeros(0), np.zeros(0, dtype=bool)
  reject, adjusted, _, _ = multipletests(np.asarray(pvalues, dtype=float), alpha, method="holm")
  return adjusted, reject


def t_test_power(effect: float, n: int, alpha: float) -> float:
  """Power of the two-sided one-sample (paired) t test at level alpha, n pairs, against a
  true mean of `effect` sds: the non-central t's tail on the effect's side.

  The other tail (below alpha/2; about 1e-6 at the MDD for alpha 0.05 and power 0.8) is
  left out: scipy's non-central t cdf (special.nctdtr, through which statsmodels' TTestPower
  adds it) returns nan in that far tail (scipy/scipy#25470); at n=3 and alpha=0.05/32 TTestPower's power is
  then nan and its solve_power returns 10 sd, a power of 0.37, without warning."""
  df = n - 1
  return float(stats.nct.sf(stats.t.isf(alpha / 2, df), df, abs(effect) * math.sqrt(n)))


def minimum_detectable_difference(sd: float, n: int, alpha: float, power: float) -> float:
  """Smallest true mean paired difference a two-sided paired t test at level alpha on n
  pairs detects with probability `power`, given the sd of the differences: the effect a
  non-rejection cannot rule out. nan for n < 2 or an unknown sd."""
  if n < 2 or math.isnan(sd):
    return math.nan
  if sd == 0:
    return 0.0
  high = 1.0
  while t_test_power(high, n, alpha) < power:
    high *= 2
  effect = optimize.brentq(lambda e: t_test_power(e, n, alpha) - power, 0.0, high, xtol=1e-12)
  return float(effect * sd)


def _smallest_n(enough: Callable[[int], bool]) -> int:
  """Smallest n >= 2 for which `enough` holds, given that it keeps holding for larger n."""
  low, high = 1, 2  # enough(low) is taken as false: one seed gives no test.
  while not enough(high):
    low, high = high, 2 * high
  while high - low > 1:
    middle = (low + high) // 2
    low, high = (low, middle) if enough(middle) else (middle, high)
  return high


def seeds_needed(sd: float, alpha: float, power: float, delta: float) -> int:
  """Smallest number of seeds whose paired t test at level alpha detects a true mean
  difference `delta` with probability `power`, given the sd of paired differences."""
  if not (delta > 0 and sd >= 0):
    raise ValueError(f"need delta > 0 and sd >= 0, not delta {delta}, sd {sd}")
  if sd == 0:
    return 2
  return _smallest_n(lambda n: t_test_power(delta / sd, n, alpha) >= power)


def seeds_for_half_width(sd: float, alpha: float, half_width: float) -> int:
  """Smallest number of seeds whose t interval at level 1 - alpha has half-width at most
  `half_width`, given the sd of the differences (taken as known, as for planning)."""
  if not (half_width > 0 and sd >= 0):
    raise ValueError(f"need half_width > 0 and sd >= 0, not half_width {half_width}, sd {sd}")
  return _smallest_n(lambda n: _t_half_width(sd, n, 1 - alpha) <= half_width)


def pooled_sd(groups: Sequence[Sequence[float]]) -> float:
  """Within-group sd pooled over groups (each weighted by its n - 1): the seed-to-seed
  noise of one row, from every row at once. nan when no group has two values."""
  arrays = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
  dof = sum(len(g) - 1 for g in arrays)
  if dof == 0:
    return math.nan
  return math.sqrt(sum((len(g) - 1) * g.var(ddof=1) for g in arrays) / dof)


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
