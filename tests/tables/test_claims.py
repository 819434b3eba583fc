"""The claims' verdicts: log-odds gaps against the paper's own, a paired bootstrap over seeds and
test items, Holm over the family, and the seeds an undecided comparison would need."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import special
from statsmodels.stats.multitest import multipletests

from harness.configs import tables_conf
from harness.report import bootstrap, claims

NO_ITEMS = pd.DataFrame()  # No run recorded item resamples: the seeds' spread alone.
SEED_EFFECT = np.array([80.0, 81.0, 79.0, 80.5, 79.5])  # Shared by every row of a seed.
# Table 1's published rows, so that the paper's gaps are real: tl16 beats 4x4 pooling by 0.309
# in log-odds, and 2x2 pooling at 12 and 18 by 0.108.
PAPER_TL_VS_POOL4 = float(special.logit(0.8768) - special.logit(0.8393))


def _export(values, frameworks=("torch",), experiment="table1"):
  """Finished runs: row -> metric per seed 0, 1, ..., the same in every framework."""
  return pd.DataFrame.from_records([
      dict(experiment=experiment, row=row, framework=framework, seed=seed, status="FINISHED",
           value=value, run_id=f"{row}-{framework}-{seed}")
      for row, per_seed in values.items() for framework in frameworks for seed, value in enumerate(per_seed)])


def _settings(comparisons, judge_frameworks=("torch", "jax")):
  claim_list = [dict(id=f"c{i}", experiment="table1", text=f"claim {i}", comparisons=[c])
                for i, c in enumerate(comparisons)]
  return {**tables_conf.load(), "claims": claim_list, "judge_frameworks": list(judge_frameworks)}


def _one(values, test, replicates=NO_ITEMS, frameworks=("torch",)):
  settings = _settings([test], frameworks)
  return claims.judge(_export(values, frameworks), replicates, list(frameworks), {}, settings)[0].comparisons[0]


def _vs_pool(row_minus_other):
  values = {"pool_4x4_at_12": SEED_EFFECT, "tl16_at_12": SEED_EFFECT + np.asarray(row_minus_other)}
  return _one(values, {"row": "tl16_at_12", "other": "pool_4x4_at_12", "test": "superior"})


def test_the_gap_is_the_log_odds_of_the_means_and_the_paper_gap_the_published_one():
  c = _vs_pool([3.0, 3.2, 2.8, 3.1, 2.9])
  mean_row, mean_other = (SEED_EFFECT.mean() + 3.0) / 100, SEED_EFFECT.mean() / 100
  assert c.spread.estimate == pytest.approx(special.logit(mean_row) - special.logit(mean_other))
  assert c.paper == pytest.approx(PAPER_TL_VS_POOL4) and c.paper == pytest.approx(0.309, abs=1e-3)
  # The paper's gap in points at the proxy's level of the other row (80%).
  assert c.paper_points == pytest.approx(100 * (special.expit(special.logit(0.8) + c.paper) - 0.8))


@pytest.mark.parametrize("gaps, verdict", [
    ([3.0, 3.2, 2.8, 3.1, 2.9], claims.SUPPORTED),
    ([-3.0, -3.2, -2.8, -3.1, -2.9], claims.CONTRADICTED),
    ([0.1, -0.1, 0.05, -0.05, 0.0], claims.SMALLER),  # A tie, tight enough to rule 0.309 out.
    ([6.0, -1.0, 5.0, 0.0, 2.5], claims.CONSISTENT),  # Holds 0.309, and narrower than it.
    ([5.0, -4.0, 6.0, -5.0, 2.0], claims.INCONCLUSIVE),
])
def test_each_verdict_follows_from_holm_and_the_paper_gap(gaps, verdict):
  c = _vs_pool(gaps)
  assert c.verdict == verdict, c.reason
  half = (c.high - c.low) / 2
  if verdict == claims.SMALLER:
    assert c.high < c.paper
  if verdict == claims.CONSISTENT:
    assert c.low <= c.paper <= c.high and half <= c.paper and c.p_holm >= 0.05
  if verdict == claims.INCONCLUSIVE:
    assert c.low <= c.paper <= c.high and half > c.paper
    assert c.seeds_needed > 5  # More than it ran: the noise per seed is large.


def test_the_interval_is_t_with_n_minus_1_degrees_of_freedom_at_the_bonferroni_level():
  c = _vs_pool([2.0, -0.5, 1.5, 0.0, 0.5])
  from scipy import stats
  half = stats.t.ppf(1 - 0.05 / 2, 4) * c.spread.se  # m = 1
  assert (c.low, c.high) == pytest.approx((c.spread.estimate - half, c.spread.estimate + half))
  assert c.p == pytest.approx(2 * stats.t.sf(abs(c.spread.estimate) / c.spread.se, 4))


def test_the_bootstrap_se_is_the_delta_method_se_over_seeds():
  """Without item resamples the spread is the seeds': about the sd over seeds of the
  linearised gap, over sqrt(n)."""
  rng = np.random.default_rng(0)
  a, b = 0.80 + rng.normal(0, 0.01, 20), 0.78 + rng.normal(0, 0.01, 20)
  pairs = bootstrap.Paired(a, b, a[:, None], b[:, None], np.arange(20))
  linear = (a - a.mean()) / (a.mean() * (1 - a.mean())) - (b - b.mean()) / (b.mean() * (1 - b.mean()))
  assert bootstrap.spread(pairs).se == pytest.approx(linear.std(ddof=1) / math.sqrt(20), rel=0.1)
  assert bootstrap.spread(pairs).item_variance == pytest.approx(0, abs=1e-20)


def test_item_resamples_widen_the_interval_and_can_put_the_paper_gap_out_of_reach():
  gaps = [0.1, -0.1, 0.05, -0.05, 0.0]
  tight = _vs_pool(gaps)
  values = {"pool_4x4_at_12": SEED_EFFECT, "tl16_at_12": SEED_EFFECT + np.asarray(gaps)}
  rng = np.random.default_rng(1)
  shared = rng.normal(0, 3.0, 200)  # Both rows move together with the items drawn ...
  own = {row: rng.normal(0, 3.0, (5, 200)) for row in values}  # ... and each on its own.
  replicates = pd.DataFrame(
      {f"{row}-torch-{s}": values[row][s] + shared + own[row][s] for row in values for s in range(5)}).T
  wide = _one(values, {"row": "tl16_at_12", "other": "pool_4x4_at_12", "test": "superior"}, replicates)
  assert wide.spread.estimate == pytest.approx(tight.spread.estimate)
  assert wide.high - wide.low > 3 * (tight.high - tight.low)
  assert wide.spread.item_variance > 0
  assert wide.verdict == claims.INCONCLUSIVE and math.isinf(wide.seeds_needed)


def test_a_seed_is_one_unit_in_both_frameworks():
  """The frameworks' runs of a seed are resampled together: a second framework that repeats the
  first adds no evidence, so the interval stays as wide."""
  values = {"pool_4x4_at_12": SEED_EFFECT, "tl16_at_12": SEED_EFFECT + [2.0, -0.5, 1.5, 0.0, 0.5]}
  test = {"row": "tl16_at_12", "other": "pool_4x4_at_12", "test": "superior"}
  one, both = _one(values, test), _one(values, test, frameworks=("torch", "jax"))
  assert both.spread.num_seeds == one.spread.num_seeds == 5
  assert both.high - both.low == pytest.approx(one.high - one.low)
  assert both.by_framework == pytest.approx({"torch": one.spread.estimate, "jax": one.spread.estimate})


def test_holm_runs_over_every_comparison():
  values = {"pool_4x4_at_12": SEED_EFFECT, "tl16_at_12": SEED_EFFECT + [3.0, 3.2, 2.8, 3.1, 2.9],
            "pool_2x2_at_12_18": SEED_EFFECT + [1.2, 0.3, 1.6, 0.1, 1.3]}
  tests = [{"row": "tl16_at_12", "other": "pool_4x4_at_12", "test": "superior"},
           {"row": "pool_2x2_at_12_18", "other": "pool_4x4_at_12", "test": "superior"}]
  verdicts = claims.judge(_export(values), NO_ITEMS, ["torch"], {}, _settings(tests))
  raw = [v.comparisons[0].p for v in verdicts]
  assert [v.comparisons[0].p_holm for v in verdicts] == pytest.approx(multipletests(raw, 0.05, "holm")[1])


def test_a_comparison_without_two_seeds_stays_in_the_family_as_inconclusive():
  values = {"pool_4x4_at_12": SEED_EFFECT[:1], "tl16_at_12": SEED_EFFECT[:1] + 3}
  c = _one(values, {"row": "tl16_at_12", "other": "pool_4x4_at_12", "test": "superior"})
  assert (c.verdict, c.p_holm) == (claims.INCONCLUSIVE, 1.0)


def test_a_match_is_tested_against_minus_the_margin_the_paper_sets():
  settings = tables_conf.load()
  match = next(c for c in settings["claims"] if c["id"] == "tokenfuser_matches_reprojection")
  margin = match["comparisons"][0]["margin"]
  assert margin == pytest.approx(float(special.logit(0.8370) - special.logit(0.8275)))
  test = {"row": "tl16_at_12", "other": "pool_4x4_at_12", "test": "noninferior", "margin": 0.05}
  tie = {"pool_4x4_at_12": SEED_EFFECT, "tl16_at_12": SEED_EFFECT + [0.1, -0.1, 0.05, -0.05, 0.0]}
  c = _one(tie, test)
  assert (c.threshold, c.verdict) == (-0.05, claims.SUPPORTED)


def test_more_flops_contradicts_a_fewer_flops_claim():
  test = {"row": "tl16_at_12", "other": "pool_4x4_at_12", "test": "noninferior", "margin": 0.05,
          "fewer_flops": True}
  tie = {"pool_4x4_at_12": SEED_EFFECT, "tl16_at_12": SEED_EFFECT + [0.1, -0.1, 0.05, -0.05, 0.0]}
  runs, settings = _export(tie), _settings([test])
  c = claims.judge(runs, NO_ITEMS, ["torch"], {"table1": {"tl16_at_12": 40.0, "pool_4x4_at_12": 30.0}},
                   settings)[0].comparisons[0]
  assert c.verdict == claims.CONTRADICTED and "not fewer GFLOPs" in c.reason


def test_a_claim_combines_its_comparisons():
  S, C, L, K, I = claims.SUPPORTED, claims.CONTRADICTED, claims.SMALLER, claims.CONSISTENT, claims.INCONCLUSIVE
  assert claims.combine([S, S]) == S
  assert claims.combine([S, C, L]) == C
  assert claims.combine([S, L]) == claims.combine([L, L]) == L
  assert claims.combine([S, K]) == K
  assert claims.combine([L, K]) == claims.combine([S, I]) == claims.combine([]) == I


def test_the_framework_shift_pairs_seeds_and_items():
  runs = pd.concat([_export({"tl16_at_12": SEED_EFFECT + 0.3}, ("jax",)),
                    _export({"tl16_at_12": SEED_EFFECT}, ("torch",))])
  s = claims.shift(runs, NO_ITEMS, "table1", "tl16_at_12", ("jax", "torch"), 0.95)
  assert s.spread.estimate == pytest.approx(0.3) and s.low == pytest.approx(0.3) == s.high


def test_with_no_seed_noise_the_spread_is_the_items_alone():
  """Three seeds that agree exactly: the seeds' part is nil, so se^2 is the items' variance (not
  inflated by the n / (n - 1) that the seeds' part takes) and the t test is a z test."""
  rng = np.random.default_rng(2)
  items = rng.normal(0, 0.01, 300)
  a_items = np.stack([0.80 + items] * 3)
  b_items = np.stack([0.78 + 0 * items] * 3)
  pairs = bootstrap.Paired(np.full(3, 0.8), np.full(3, 0.78), a_items, b_items, np.arange(3))
  s = bootstrap.spread(pairs)
  assert s.seed_variance == pytest.approx(0, abs=1e-12) and s.se ** 2 == pytest.approx(s.item_variance)
  assert math.isinf(s.dof)


def test_a_missing_item_value_makes_a_comparison_inconclusive_not_exact():
  values = {"pool_4x4_at_12": SEED_EFFECT, "tl16_at_12": SEED_EFFECT + [5.0, -4.0, 6.0, -5.0, 2.0]}
  replicates = pd.DataFrame({f"{row}-torch-{s}": np.full(10, values[row][s]) for row in values for s in range(5)}).T
  replicates.iloc[0, 3] = np.nan
  c = _one(values, {"row": "tl16_at_12", "other": "pool_4x4_at_12", "test": "superior"}, replicates)
  assert c.verdict == claims.INCONCLUSIVE and "missing" in c.reason and c.p_holm == 1.0
