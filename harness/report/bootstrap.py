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

  @property
  def num_seeds(self) -> int:
    return len(np.unique(self.seeds))


@dataclasses.dataclass(frozen=True)
class Spread:
  """A statistic of a Paired set, with what its uncertainty is made of."""
  estimate: float
  se: float  # Over seeds and items, scaled by sqrt(n / (n - 1)) for the n seeds.
  item_variance: float  # The part that more seeds do not shrink: the test items' alone.
  num_seeds: int

  @property
  def seed_variance_per_seed(self) -> float:
    """sigma^2 with variance = sigma^2 / n + item_variance: one seed's training noise."""
    return max(self.se ** 2 - self.item_variance, 0.0) * self.num_seeds


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
  The bootstrap sd of a mean over n seeds is sqrt((n - 1) / n) times the usual standard
  error; it is scaled back."""
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

  both = over(weights)
  items = over(np.ones_like(weights))
  se = float(np.std(both, ddof=1) * math.sqrt(n / (n - 1)))
  return Spread(estimate, se, float(np.var(items, ddof=1)), n)
