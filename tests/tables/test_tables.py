"""The table builder on a fixed set of made-up runs, the claim verdicts, the figure, and the
committed tables regenerating byte for byte from the committed run export."""
import collections
import math
import pathlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from tokenlearner_spec import FRAMEWORKS

from harness.configs import registry, seed_plan, tables_conf
from harness.report import build, claims, render, stats, summary
from harness.store import export as run_export
from tests.tables import fixtures

ROOT = pathlib.Path(__file__).parents[2]
FLOPS_CSV = ROOT / "results" / "flops.csv"
COMMITTED_EXPORT = ROOT / "results" / "runs-proxy.csv"
TEXT_ARTIFACTS = ("table1.md", "table1.tex", "table2.md", "table2.tex", "figure1.md", "claims.md")


@pytest.fixture(scope="module")
def runs():
  return fixtures.export()


@pytest.fixture(scope="module")
def gflops():
  return summary.paper_gflops(FLOPS_CSV)


def test_estimate_is_the_t_interval():
  e = stats.estimate([1.0, 2.0, 3.0], 0.95)
  assert (e.n, e.mean, e.std) == (3, 2.0, 1.0)
  assert e.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
  assert math.isnan(stats.estimate([5.0], 0.95).half_width)


def test_welch_matches_scipy():
  a, b = [30.1, 31.5, 29.0, 30.7], [28.0, 27.2, 29.9]
  d = stats.welch(a, b, 0.95)
  ci = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
  assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
  assert d.estimate == pytest.approx(np.mean(a) - np.mean(b))
  assert stats.welch([1.0], b, 0.95) is None
  exact = stats.welch([2.0, 2.0], [1.0, 1.0], 0.95)
  assert (exact.low, exact.high) == (1.0, 1.0)


def test_paired_matches_scipy_and_removes_the_shared_seed_effect():
  a, b = [30.0, 25.0, 21.0], [28.0, 23.5, 18.0]  # Seeds move both rows together.
  d = stats.paired(a, b, 0.95)
  ci = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
  assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
  assert d.low > 0 and stats.welch(a, b, 0.95).low < 0
  assert stats.paired([1.0], [0.0], 0.95) is None


@pytest.mark.parametrize("experiment", registry.EXPERIMENTS)
def test_summary(runs, gflops, experiment, dataframe_regression):
  frame = summary.build(runs, experiment, ["jax", "torch"], gflops)
  assert list(frame.row) == [r.key for r in registry.rows(experiment)]
  dataframe_regression.check(frame.drop(columns=["label", "series"]), basename=f"summary_{experiment}")


def test_summary_counts_only_finished_runs(runs, gflops):
  frame = summary.build(runs, "table2", ["jax", "torch"], gflops).set_index("row")
  assert (frame.loc["vectt", "torch_n"], frame.loc["vectt", "torch_planned"]) == (2, 3)
  assert frame.loc["vectt", "jax_n"] == 3


def test_claim_verdicts(runs, gflops):
  """On the fixture both frameworks judge (conf/tables.yaml may name one)."""
  verdicts = claims.judge(runs, ["jax", "torch"], gflops, {**tables_conf.load(), "judge_frameworks": ["jax", "torch"]})
  by_claim = {(v.claim["id"], v.framework): v for v in verdicts}
  for framework in ("jax", "torch"):
    assert by_claim["tokenlearner_beats_pooling", framework].verdict == claims.SUPPORTED
    assert by_claim["tokenfuser_beats_unpool", framework].verdict == claims.CONTRADICTED
    assert by_claim["tokenfuser_matches_reprojection", framework].verdict == claims.INCONCLUSIVE
    # Every Table 2 row ties exactly: no win, and no room for a large effect either.
    assert by_claim["tl_vectt_tokenfuser_best", framework].verdict == claims.NOT_SHOWN
    unpool = by_claim["tokenfuser_beats_unpool", framework].comparisons
    assert [c.verdict for c in unpool] == [claims.CONTRADICTED, claims.BOUNDED]
  assert claims.family_size(verdicts) == 2 * sum(len(c["comparisons"]) for c in tables_conf.load()["claims"])


def _export(values, frameworks=("jax",), experiment="table1"):
  """Finished runs: row -> metric per seed 0, 1, ..., the same in every framework."""
  return pd.DataFrame.from_records([
      dict(experiment=experiment, row=row, framework=framework, seed=seed, status="FINISHED", value=value)
      for row, per_seed in values.items() for framework in frameworks for seed, value in enumerate(per_seed)])


def _settings(comparisons, judge_frameworks=("jax", "torch"), experiment="table1"):
  """conf/tables.yaml with one claim per comparison (claim ids c0, c1, ...)."""
  claim_list = [dict(id=f"c{i}", experiment=experiment, text=f"claim {i}", comparisons=[c])
                for i, c in enumerate(comparisons)]
  return {**tables_conf.load(), "claims": claim_list, "judge_frameworks": list(judge_frameworks)}


SEED_EFFECT = np.array([30.0, 31.0, 29.0, 30.5, 29.5])  # Shared by every row of a seed.
DESIGN = {  # Row minus "b", per seed.
    "b": SEED_EFFECT,
    "win": SEED_EFFECT + [2.0, 2.2, 1.8, 2.1, 1.9],
    "loss": SEED_EFFECT + [-3.0, -2.8, -3.2, -2.9, -3.1],
    "tie": SEED_EFFECT + [0.1, -0.1, 0.05, -0.05, 0.0],
    "noise": SEED_EFFECT + [3.0, -2.0, 4.0, -3.0, 1.0],
}
SUPERIOR = [{"row": row, "other": "b", "test": "superior"} for row in ("win", "loss", "tie", "noise")]


def test_each_verdict_follows_from_the_holm_decision_and_the_interval_width():
  verdicts = claims.judge(_export(DESIGN), ["jax"], {}, _settings(SUPERIOR))
  assert [v.verdict for v in verdicts] == [claims.SUPPORTED, claims.CONTRADICTED, claims.NOT_SHOWN,
                                           claims.INCONCLUSIVE]
  comparisons = [v.comparisons[0] for v in verdicts]
  assert [c.verdict for c in comparisons] == [claims.SUPPORTED, claims.CONTRADICTED, claims.BOUNDED,
                                              claims.INCONCLUSIVE]
  m = claims.family_size(verdicts)
  raw = [c.difference.p for c in comparisons]
  assert m == 4 and [c.p_holm for c in comparisons] == pytest.approx(multipletests(raw, 0.05, "holm")[1])
  for c, row in zip(comparisons, ("win", "loss", "tie", "noise")):
    diffs = DESIGN[row] - DESIGN["b"]
    ci = scipy_stats.ttest_1samp(diffs, 0.0).confidence_interval(1 - 0.05 / m)
    assert (c.difference.low, c.difference.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert c.mdd == pytest.approx(stats.minimum_detectable_difference(diffs.std(ddof=1), 5, 0.05 / m, 0.8))
  tie, noise = comparisons[2].difference, comparisons[3].difference
  assert tie.half_width <= 1.5 < noise.half_width
  # The seeds a comparison would need for a simultaneous half-width <= 1.5 at its measured sd:
  # the bounded one (sd ~0.08) no more than its 5, the noisy one (sd ~3) many more.
  assert comparisons[2].seeds_for_bound == stats.seeds_for_half_width(
      (DESIGN["tie"] - DESIGN["b"]).std(ddof=1), 0.05 / m, 1.5) <= 5
  assert comparisons[3].seeds_for_bound == stats.seeds_for_half_width(
      (DESIGN["noise"] - DESIGN["b"]).std(ddof=1), 0.05 / m, 1.5) > 5


def test_holm_over_the_family_undoes_a_win_each_test_alone_would_give():
  # Two comparisons with p = 0.038 each beside a strong one: Holm multiplies the smaller
  # p by 2 (its rank from the top), so neither is supported, though each is below 0.05.
  small = SEED_EFFECT + [1.2, 0.3, 1.6, 0.1, 1.3]
  design = {"b": SEED_EFFECT, "win": DESIGN["win"], "small1": small, "small2": small}
  tests = [{"row": row, "other": "b", "test": "superior"} for row in ("win", "small1", "small2")]
  comparisons = [v.comparisons[0] for v in claims.judge(_export(design), ["jax"], {}, _settings(tests))]
  p = comparisons[1].difference.p
  assert p < 0.05 < 2 * p
  assert [c.p_holm for c in comparisons[1:]] == pytest.approx([2 * p, 2 * p])
  # Not supported; their intervals (half-width ~1.4) are narrow enough to call them bounded.
  assert [c.verdict for c in comparisons] == [claims.SUPPORTED, claims.BOUNDED, claims.BOUNDED]


def test_judge_frameworks_sets_the_family():
  runs = _export(DESIGN, frameworks=("jax", "torch"))
  both = claims.judge(runs, ["jax", "torch"], {}, _settings(SUPERIOR))
  jax = claims.judge(runs, ["jax", "torch"], {}, _settings(SUPERIOR, judge_frameworks=["jax"]))
  assert (claims.family_size(both), claims.family_size(jax)) == (8, 4)
  assert {v.framework for v in jax} == {"jax"} and {v.framework for v in both} == {"jax", "torch"}
  win, noisy = ({claims.family_size(vs): [v for v in vs if v.claim["id"] == claim][0].comparisons[0]
                 for vs in (both, jax)} for claim in ("c0", "c3"))
  # A larger family asks more of each comparison.
  assert win[8].p_holm > win[4].p_holm and win[8].difference.half_width > win[4].difference.half_width
  assert noisy[8].mdd > noisy[4].mdd
  only_jax_ran = claims.judge(_export(DESIGN), ["jax", "torch"], {}, _settings(SUPERIOR))
  assert {v.framework for v in only_jax_ran} == {"jax"} and claims.family_size(only_jax_ran) == 4


def test_a_comparison_without_two_seeds_stays_in_the_family_as_inconclusive():
  design = {**DESIGN, "one": [40.0]}
  tests = [*SUPERIOR, {"row": "one", "other": "b", "test": "superior"}]
  verdicts = claims.judge(_export(design), ["jax"], {}, _settings(tests))
  assert claims.family_size(verdicts) == 5
  last = verdicts[-1].comparisons[0]
  assert (last.verdict, last.difference, last.p_holm) == (claims.INCONCLUSIVE, None, 1.0)


def test_noninferiority_tests_against_minus_the_margin():
  test = {"row": "tie", "other": "b", "test": "noninferior", "margin": 1.0}  # "tie" is b +- 0.1.
  c = claims.judge(_export(DESIGN), ["jax"], {}, _settings([test]))[0].comparisons[0]
  assert (c.threshold, c.difference.threshold, c.verdict) == (-1.0, -1.0, claims.SUPPORTED)


def test_more_flops_contradicts_a_fewer_flops_claim():
  test = {"row": "tie", "other": "b", "test": "noninferior", "margin": 1.0, "fewer_flops": True}
  runs, settings = _export(DESIGN), _settings([test])
  c = claims.judge(runs, ["jax"], {"table1": {"tie": 40.0, "b": 30.0}}, settings)[0].comparisons[0]
  assert c.verdict == claims.CONTRADICTED and "not fewer GFLOPs" in c.reason
  c = claims.judge(runs, ["jax"], {"table1": {"tie": 20.0, "b": 30.0}}, settings)[0].comparisons[0]
  assert c.verdict == claims.SUPPORTED and "GFLOPs 20 < 30" in c.reason


def test_a_claim_combines_its_comparisons():
  S, C, B, I = claims.SUPPORTED, claims.CONTRADICTED, claims.BOUNDED, claims.INCONCLUSIVE
  assert claims.combine([S, S]) == S
  assert claims.combine([S, C, B]) == C
  assert claims.combine([S, B]) == claims.combine([B, B]) == claims.NOT_SHOWN
  assert claims.combine([S, B, I]) == I and claims.combine([]) == I


def test_claims_markdown_states_the_family_and_counts_what_is_resolved(runs, gflops, tmp_path):
  run_export.write(runs, tmp_path / "runs-proxy.csv")
  build.build(tmp_path / "runs-proxy.csv", FLOPS_CSV, tmp_path / "tables")
  text = (tmp_path / "tables" / "claims.md").read_text()
  verdicts = claims.judge(runs, ["jax", "torch"], gflops)
  m = claims.family_size(verdicts)
  count = collections.Counter(c.verdict for v in verdicts for c in v.comparisons)
  assert f"m = {m} " in text and f"1 - 0.05/{m} = " in text and "Holm" in text
  assert (f"**Resolved:** {count['supported'] + count['contradicted']} of {m} comparisons decided "
          f"({count['supported']} supported, {count['contradicted']} contradicted), "
          f"{count['bounded']} bounded, {count['inconclusive']} inconclusive.") in text
  for column in ("| n ", "Difference [simultaneous CI]", "| sd ", "| p ", "Holm p", "MDD", "Seeds for ±1.5"):
    assert column in text


def test_frameworks_that_differ_beyond_seed_noise_are_flagged(runs, gflops):
  frame = summary.build(runs, "table1", ["jax", "torch"], gflops).set_index("row")
  assert summary.agreement(frame.loc["base"], FRAMEWORKS).startswith("DIFFER")
  assert summary.agreement(frame.loc["tl16_at_12"], FRAMEWORKS) == "identical per seed (n=3)"


def test_a_row_one_framework_does_not_plan_reads_as_such(runs, gflops):
  """A scale may run a row in PyTorch only (scale.framework_rows): its JAX cell and the
  agreement say 'not planned', not that runs are missing."""
  torch_only = runs[~((runs.framework == "jax") & (runs.row == "base"))]
  frame = summary.build(torch_only, "table1", ["jax", "torch"], gflops).set_index("row")
  assert render.estimate(frame.loc["base"], "jax") == "not planned"
  assert render.estimate(frame.loc["base"], "torch").endswith("(n=3)")
  assert summary.agreement(frame.loc["base"], FRAMEWORKS) == "n/a (not planned in both)"
  assert summary.agreement(frame.loc["tl16_at_12"], FRAMEWORKS) == "identical per seed (n=3)"


def test_agreement_pairs_a_row_by_seed():
  # PyTorch 0.3 below JAX in every seed, under a seed-to-seed spread of 3: Welch sees
  # nothing, the pairing does. Only the seeds both finished count.
  jax = pd.DataFrame({"seed": [0, 1, 2, 3], "value": [30.0, 33.0, 27.0, 31.5]})
  torch = pd.DataFrame({"seed": [0, 1, 2], "value": [29.7, 32.6, 26.8]})
  gap = summary.framework_gap(jax, torch, 0.95)
  ci = scipy_stats.ttest_rel([30.0, 33.0, 27.0], [29.7, 32.6, 26.8]).confidence_interval(0.95)
  assert (gap["gap_n"], gap["gap_low"], gap["gap_high"]) == pytest.approx((3, ci.low, ci.high))
  assert gap["gap_mean"] == pytest.approx(0.3) and gap["gap_max_per_seed"] == pytest.approx(0.4)
  assert summary.agreement(gap, FRAMEWORKS).startswith("DIFFER: +0.30 [")
  assert "(n=3)" in summary.agreement(gap, FRAMEWORKS)
  assert stats.welch(jax.value[:3], torch.value, 0.95).low < 0
  one = summary.framework_gap(jax, torch[torch.seed == 1], 0.95)
  assert summary.agreement(one, FRAMEWORKS) == "+0.40 (n=1, no interval)"
  none = summary.framework_gap(jax, torch[torch.seed == 9], 0.95)
  assert summary.agreement(none, FRAMEWORKS).startswith("n/a")


def test_pooled_agreement_sets_the_framework_gap_beside_the_seed_noise():
  # PyTorch trails JAX by 0.5 in seed 0 and by 1.0 in seed 1 of both rows; it lacks row a's seed 2.
  runs = pd.DataFrame.from_records([
      dict(experiment="table1", row=row, framework=fw, seed=seed, status="FINISHED",
           value=value - (0.5 * (seed + 1) if fw == "torch" else 0.0))
      for row, per_seed in {"a": [30.0, 33.0, 27.0], "b": [40.0, 42.0]}.items()
      for fw in ("jax", "torch") for seed, value in enumerate(per_seed)
      if not (fw == "torch" and row == "a" and seed == 2)])
  pooled = summary.pooled_agreement(runs, ["table1"], ["jax", "torch"], 0.95)
  ci = scipy_stats.ttest_1samp([0.5, 1.0, 0.5, 1.0], 0.0).confidence_interval(0.95)
  assert pooled["n"] == 4 and pooled["mean"] == pytest.approx(0.75)
  assert (pooled["low"], pooled["high"]) == pytest.approx((ci.low, ci.high))
  assert pooled["sd"] == pytest.approx(np.std([0.5, 1.0, 0.5, 1.0], ddof=1))
  assert pooled["seed_sd_framework"] == "jax"  # 5 finished runs against 4.
  # JAX's row a: variance 9 over 2 dof; row b: variance 2 over 1 dof.
  assert pooled["seed_sd"] == pytest.approx(math.sqrt((2 * 9 + 1 * 2) / 3))


def test_build_writes_every_artifact(runs, tmp_path):
  run_export.write(runs, tmp_path / "runs-proxy.csv")
  written = build.build(tmp_path / "runs-proxy.csv", FLOPS_CSV, tmp_path / "tables")
  names = sorted(p.name for p in written)
  assert names == sorted([*TEXT_ARTIFACTS, "figure1.png", "figure1.svg"])
  assert "Row | tokenizer" in (tmp_path / "tables" / "table2.md").read_text().replace("  ", "")
  assert "\\toprule" in (tmp_path / "tables" / "table1.tex").read_text()


def test_an_export_of_mixed_scales_or_wrong_columns_is_refused(runs, tmp_path):
  mixed = runs.copy()
  mixed.loc[0, "scale"] = "smoke"
  run_export.write(mixed, tmp_path / "mixed.csv")
  with pytest.raises(ValueError, match="one scale"):
    build.build(tmp_path / "mixed.csv", FLOPS_CSV, tmp_path / "out")
  pd.DataFrame({"a": [1]}).to_csv(tmp_path / "other.csv", index=False)
  with pytest.raises(ValueError, match="not a run export"):
    run_export.read(tmp_path / "other.csv")
  with pytest.raises(FileNotFoundError, match="no run export"):
    run_export.read(tmp_path / "missing.csv")


def test_tables_without_an_export_fail_with_one_line(tmp_path, capsys):
  from harness.cli import main
  assert main(["tables", "--offline", "--out", str(tmp_path / "t"), f"tracking.results_dir={tmp_path}"]) == 2
  err = capsys.readouterr().err.strip()
  assert "\n" not in err and err.startswith("error: no run export at") and "runs-proxy.csv" in err


def test_committed_tables_regenerate_byte_for_byte_offline(tmp_path):
  """The committed tables/ come from the committed results/runs-proxy.csv alone."""
  build.build(COMMITTED_EXPORT, FLOPS_CSV, tmp_path)
  for name in TEXT_ARTIFACTS:
    assert (tmp_path / name).read_bytes() == (ROOT / "tables" / name).read_bytes(), name
  export = run_export.read(COMMITTED_EXPORT)
  assert set(export.scale) == {"proxy"} and set(export.status) == {"FINISHED"}
  # Every row has, in each framework, at least the seeds the proxy scale plans for it.
  from harness.configs import compose
  planned = seed_plan.seeds_by_framework(compose.compose_config(["scale=proxy"]).scale, ["jax", "torch"])
  seeds = export.groupby(["experiment", "row", "framework"]).seed.apply(set)
  for (experiment, row, framework), finished in seeds.items():
    assert finished >= set(planned[framework][experiment][row]), (experiment, row, framework)


def test_table2_shows_each_label_group_beside_its_chance_level():
  """A group that was not learned (digits at chance) shows as such beside one that was, and an
  export without group columns (older runs) gets no such table."""
  runs = fixtures.export()
  video = runs.row.isin([r.key for r in registry.rows("table2")])
  runs.loc[video, "value_digits"] = 19.0 + runs.loc[video, "seed"]  # 19, 20, 21: mean 20.
  runs.loc[video, "chance_digits"] = 19.5
  runs.loc[video, "value_directions"] = 99.0
  runs.loc[video, "chance_directions"] = 38.7
  groups = summary.by_label_group(runs, "table2", ["jax", "torch"])
  assert set(groups.group) == {"digits", "directions"}
  mhsa = groups[(groups.row == "mhsa") & (groups.framework == "jax")].set_index("group")
  assert mhsa.loc["digits", "mean"] == pytest.approx(20.0) and mhsa.loc["digits", "n"] == 3
  assert mhsa.loc["directions", "ci"] == pytest.approx(0.0)
  table = render.groups_table(groups, ["jax", "torch"])
  assert "JAX digits (chance 19.5)" in table and "PyTorch directions (chance 38.7)" in table
  assert "| 20.0 ± 2.5 (n=3)" in table  # t(2) 4.303 * sd 1 / sqrt(3)
  assert summary.by_label_group(fixtures.export(), "table2", ["jax"]).empty
