"""The claims' statistics: paired tests against a threshold, Holm's correction, simultaneous
intervals, the minimum detectable difference and the seeds a design needs."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from harness.report import stats


def test_paired_p_value_is_the_t_test_against_the_threshold():
  a, b = [30.0, 25.0, 21.0, 27.5], [30.5, 25.1, 22.5, 27.0]
  d = stats.paired(a, b, 0.95, threshold=-1.0)
  diffs = np.subtract(a, b)
  assert d.p == pytest.approx(scipy_stats.ttest_1samp(diffs, -1.0).pvalue, rel=1e-12)
  assert (d.n, d.threshold) == (4, -1.0)
  assert d.sd == pytest.approx(diffs.std(ddof=1))
  assert stats.paired(a, b, 0.95).p == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue, rel=1e-12)
  assert d.p != pytest.approx(stats.paired(a, b, 0.95).p)  # The threshold moves the test.


def test_a_difference_known_exactly_is_rejected_unless_it_is_the_threshold():
  a, b = [3.0, 4.0, 5.0], [1.0, 2.0, 3.0]
  assert stats.paired(a, b, 0.95).p == 0.0
  assert stats.paired(a, b, 0.95, threshold=2.0).p == 1.0
  assert stats.paired(a, b, 0.95).half_width == 0.0


def test_simultaneous_interval_is_the_t_interval_at_the_bonferroni_level():
  a, b = [30.0, 25.0, 21.0, 27.5], [28.0, 23.5, 18.0, 26.0]
  assert stats.simultaneous_confidence(0.95, 4) == pytest.approx(0.9875)
  d = stats.simultaneous(a, b, 0.95, 4)
  ci = scipy_stats.ttest_rel(a, b).confidence_interval(0.9875)
  assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
  assert d.half_width > stats.paired(a, b, 0.95).half_width


def test_holm_on_a_hand_worked_example():
  # Sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> running
  # maximum 0.02, 0.03, 0.06, 0.06; back in the input order:
  adjusted, reject = stats.holm([0.01, 0.04, 0.03, 0.005], 0.05)
  assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
  assert list(reject) == [True, False, False, True]


def test_holm_caps_adjusted_p_at_one_and_takes_an_empty_family():
  adjusted, reject = stats.holm([0.5, 0.9], 0.05)
  assert adjusted == pytest.approx([1.0, 1.0]) and not reject.any()
  adjusted, reject = stats.holm([], 0.05)
  assert len(adjusted) == len(reject) == 0


@pytest.mark.parametrize("m", [1, 2, 7, 30])
def test_holm_matches_statsmodels_on_random_p_values(m):
  rng = np.random.default_rng(m)
  p = rng.uniform(0, 0.1, size=m) ** rng.uniform(1, 3, size=m)
  adjusted, reject = stats.holm(p.tolist(), 0.05)
  want_reject, want_adjusted, _, _ = multipletests(p, 0.05, method="holm")
  assert adjusted == pytest.approx(want_adjusted, rel=1e-12)
  assert list(reject) == list(want_reject)
  assert (adjusted >= p).all() and (reject >= (p * m <= 0.05)).all()  # At least Bonferroni's rejections.


def test_mdd_matches_the_normal_approximation_for_many_seeds():
  sd, n, alpha, power = 2.0, 20000, 0.05, 0.8
  normal = (scipy_stats.norm.isf(alpha / 2) + scipy_stats.norm.ppf(power)) * sd / math.sqrt(n)
  assert stats.minimum_detectable_difference(sd, n, alpha, power) == pytest.approx(normal, rel=1e-3)


def test_mdd_agrees_with_statsmodels_where_statsmodels_is_reliable():
  effect = TTestPower().solve_power(effect_size=None, nobs=10, alpha=0.05, power=0.8)
  assert stats.minimum_detectable_difference(1.5, 10, 0.05, 0.8) == pytest.approx(1.5 * effect, rel=1e-5)


@pytest.mark.parametrize("n, alpha", [(5, 0.05), (3, 0.05 / 24), (12, 0.01)])
def test_simulated_power_at_the_mdd_is_the_asked_power(n, alpha):
  """(3, 0.05/24): the claims' design, where statsmodels' solve_power returns 10 sd (power 0.37)."""
  sd, power, draws = 2.5, 0.8, 4000
  mdd = stats.minimum_detectable_difference(sd, n, alpha, power)
  samples = np.random.default_rng(0).normal(mdd, sd, size=(draws, n))
  rejected = scipy_stats.ttest_1samp(samples, 0.0, axis=1).pvalue < alpha
  assert rejected.mean() == pytest.approx(power, abs=0.03)  # 4.7 Monte Carlo standard errors.


def test_mdd_of_no_test_is_nan_and_of_no_noise_is_zero():
  assert math.isnan(stats.minimum_detectable_difference(1.0, 1, 0.05, 0.8))
  assert math.isnan(stats.minimum_detectable_difference(math.nan, 3, 0.05, 0.8))
  assert stats.minimum_detectable_difference(0.0, 3, 0.05, 0.8) == 0.0


def test_seeds_needed_matches_a_published_sample_size():
  # One-sample t test, two-sided, d = 0.5, alpha 0.05, power 0.8: n = 34 (G*Power; Cohen 1988).
  assert stats.seeds_needed(2.0, 0.05, 0.8, 1.0) == 34


@pytest.mark.parametrize("sd, alpha, power, delta", [
    (2.0, 0.05, 0.8, 1.0), (1.0, 0.05 / 24, 0.8, 1.5), (3.0, 0.01, 0.9, 0.7), (0.5, 0.05, 0.8, 5.0)])
def test_seeds_needed_is_exact_at_the_boundary(sd, alpha, power, delta):
  n = stats.seeds_needed(sd, alpha, power, delta)
  assert stats.t_test_power(delta / sd, n, alpha) >= power
  assert n == 2 or stats.t_test_power(delta / sd, n - 1, alpha) < power
  assert stats.minimum_detectable_difference(sd, n, alpha, power) <= delta


def test_seeds_needed_grows_with_noise_power_and_strictness_and_falls_with_the_effect():
  base = stats.seeds_needed(2.0, 0.05, 0.8, 1.0)
  assert stats.seeds_needed(3.0, 0.05, 0.8, 1.0) > base
  assert stats.seeds_needed(2.0, 0.05, 0.9, 1.0) > base
  assert stats.seeds_needed(2.0, 0.05 / 24, 0.8, 1.0) > base
  assert stats.seeds_needed(2.0, 0.05, 0.8, 2.0) < base
  sizes = [stats.seeds_needed(1.0, 0.05, 0.8, delta) for delta in (2.0, 1.0, 0.5, 0.25)]
  assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
  assert stats.seeds_needed(0.0, 0.05, 0.8, 1.0) == 2
  with pytest.raises(ValueError):
    stats.seeds_needed(1.0, 0.05, 0.8, 0.0)


def test_seeds_for_half_width_on_a_hand_worked_example():
  # sd 1, 95%: n=6 gives t(0.975, 5) / sqrt(6) = 2.571 / 2.449 = 1.050; n=7 gives 2.447 / 2.646 = 0.925.
  assert stats.seeds_for_half_width(1.0, 0.05, 1.0) == 7


@pytest.mark.parametrize("sd, alpha, half_width",
                         [(1.0, 0.05, 1.0), (2.2, 0.05 / 24, 1.5), (0.3, 0.01, 0.05)])
def test_seeds_for_half_width_is_exact_at_the_boundary(sd, alpha, half_width):
  def half(n):
    low, high = scipy_stats.t.interval(1 - alpha, n - 1, scale=sd / math.sqrt(n))
    return (high - low) / 2
  n = stats.seeds_for_half_width(sd, alpha, half_width)
  assert half(n) <= half_width and (n == 2 or half(n - 1) > half_width)


def test_seeds_for_half_width_grows_with_noise_and_confidence():
  base = stats.seeds_for_half_width(2.0, 0.05, 1.0)
  assert stats.seeds_for_half_width(3.0, 0.05, 1.0) > base
  assert stats.seeds_for_half_width(2.0, 0.01, 1.0) > base
  assert stats.seeds_for_half_width(2.0, 0.05, 0.5) > base
  with pytest.raises(ValueError):
    stats.seeds_for_half_width(math.nan, 0.05, 1.0)


def test_pooled_sd_weights_each_group_by_its_degrees_of_freedom():
  # Variances 1 (3 values) and 2 (2 values): (2 * 1 + 1 * 2) / 3; a single value adds nothing.
  assert stats.pooled_sd([[1.0, 2.0, 3.0], [2.0, 4.0], [9.0]]) == pytest.approx(math.sqrt(4 / 3))
  assert math.isnan(stats.pooled_sd([[1.0], [2.0]]))
