"""A paired two-way bootstrap: seeds and test items resampled together.

Every run of a comparison is scored on the same test items, and each run also records its
metric on the same R resamples of those items (harness/data/metrics.py: item_replicates).
Replicate b of a comparison draws its seeds with replacement (a seed carries all its runs,
in every framework, so the frameworks stay paired within it) and takes every run's value on
item resample b, so that both rows see the same items. The spread of a statistic over the R
replicates then holds both sources of uncertainty: which seeds were run (training noise) and
which test items were drawn (sampling of the test set).
"""
import dataclasses
import math
from typing import Callable

import numpy as np
from scipy import special

SEED_DRAWS_SEED = 104_729  # The seed resamples: fixed, so that the tables rebuild byte for byte.
MIN_DRAWS = 1000  # Bootstrap replicates, at least; more where the runs recorded more item resamples.


@dataclasses.dataclass(frozen=True)
class Paired:
  """Two rows' metric (fractions) on the units both finished, a unit being one run of a seed in
  one framework: `a`, `b` [U] on the whole test set, `a_items`, `b_items` [U, R] on each resample
  of its items, and `seeds` [U], the seed of each unit."""
  a: np.ndarray
  b: np.ndarray
  a_items: np.ndarray
  b_items: np.ndarray
  seeds: np.ndarray
  unresampled: int = 0  # units whose runs recorded no item resamples: their items count as fixed

  @property
  def num_seeds(self) -> int:
    return len(np.unique(self.seeds))


@dataclasses.dataclass(frozen=True)
class Spread:
  """A statistic of a Paired set, with what its uncertainty is made of: se^2 = seed_variance +
  item_variance, the first shrinking as 1 / n with the n seeds, the second not."""
  estimate: float
  se: float  # nan for fewer than 2 seeds, or where a value was missing
  item_variance: float  # the test items' part, from the item resamples at the seeds run
  num_seeds: int

  @property
  def seed_variance(self) -> float:
    return max(self.se ** 2 - self.item_variance, 0.0)

  @property
  def seed_variance_per_seed(self) -> float:
    """sigma^2 in seed_variance = sigma^2 / n: one seed's training noise."""
    return self.seed_variance * self.num_seeds

  @property
  def dof(self) -> float:
    """Welch-Satterthwaite degrees of freedom: n - 1 for the seeds' part, the item part taken as
    known (1000 resamples measure it well); inf when the seeds add nothing."""
    return satterthwaite(self.seed_variance, self.item_variance, self.num_seeds)


def satterthwaite(seed_variance: float, item_variance: float, n: int) -> float:
  if seed_variance <= 0:
    return math.inf
  return (seed_variance + item_variance) ** 2 / (seed_variance ** 2 / (n - 1))


def log_odds(p):
  return special.logit(np.clip(p, 1e-9, 1 - 1e-9))


def log_odds_gap(a_mean, b_mean):
  """logit(a) - logit(b): the paper's effects and the proxy's compared on one scale, which a
  change of error rate leaves about where it was (a 23% cut of the error is +0.30 at 13% error
  and +0.27 at 3%, where it is 3.0 and 0.69 points)."""
  return log_odds(a_mean) - log_odds(b_mean)


def mean_gap(a_mean, b_mean):
  return a_mean - b_mean


def spread(pairs: Paired, statistic: Callable = log_odds_gap) -> Spread:
  """statistic(mean of a, mean of b) over the units, and its bootstrap spread (module doc).
  Over seeds and items together the bootstrap variance is (n - 1) / n of the seeds' part plus
  the items' part; the items alone (every seed once) give the items' part, and the seeds' part
  is scaled back by n / (n - 1). A value missing anywhere gives se nan."""
  estimate = float(statistic(pairs.a.mean(), pairs.b.mean()))
  seeds, index = np.unique(pairs.seeds, return_inverse=True)
  n = len(seeds)
  if n < 2:
    return Spread(estimate, math.nan, math.nan, n)
  # Replicate r takes item resample r (cycling through them when the runs recorded fewer).
  draws = max(pairs.a_items.shape[1], MIN_DRAWS)
  column = np.arange(draws) % pairs.a_items.shape[1]
  a_items, b_items = pairs.a_items[:, column].T, pairs.b_items[:, column].T  # [draws, U]
  counts = np.random.default_rng(SEED_DRAWS_SEED).multinomial(n, np.full(n, 1 / n), size=draws)
  weights = counts[:, index].astype(float)  # [draws, U]: how often each unit's seed is drawn.

  def over(w):
    return statistic((w * a_items).sum(1) / w.sum(1), (w * b_items).sum(1) / w.sum(1))

  both, items = over(weights), over(np.ones_like(weights))
  if not (np.isfinite(both).all() and np.isfinite(items).all()):
    return Spread(estimate, math.nan, math.nan, n)
  item_variance = float(np.var(items, ddof=1))
  # The bootstrap's seed part is (n - 1) / n of the usual one; the item part is not scaled.
  seed_variance = max(float(np.var(both, ddof=1)) - item_variance, 0.0) * n / (n - 1)
  return Spread(estimate, math.sqrt(seed_variance + item_variance), item_variance, n)
