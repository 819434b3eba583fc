"""The table builder on a fixed set of made-up runs, the claim verdicts, the figure, and the
committed tables regenerating byte for byte from the committed run export."""
import collections
import math
import pathlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from tokenlearner_spec import FRAMEWORKS

from harness.configs import registry
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


@pytest.fixture(scope="module")
def built(runs, tmp_path_factory):
  """The tables built from the fixture export: (the files written, their folder)."""
  tmp = tmp_path_factory.mktemp("built")
  run_export.write(runs, tmp / "runs-proxy.csv")
  return build.build(tmp / "runs-proxy.csv", FLOPS_CSV, tmp / "tables"), tmp / "tables"


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


def test_claims_markdown_states_the_family_and_counts_the_verdicts(runs, gflops, built):
  text = (built[1] / "claims.md").read_text()
  verdicts = claims.judge(runs, pd.DataFrame(), ["jax", "torch"], gflops)
  m = sum(len(v.comparisons) for v in verdicts)
  count = collections.Counter(c.verdict for v in verdicts for c in v.comparisons)
  assert f"m = {m}." in text and f"1 - 0.05/{m} = " in text and "Holm" in text
  assert f"**Comparisons:** {m}: {count[claims.SUPPORTED]} supported, {count[claims.CONTRADICTED]} contradicted" in text
  for column in ("| Seeds ", "Gap, log-odds [simultaneous CI]", "| JAX ", "| PyTorch ", "Paper's gap",
                 "Holm p", "Seeds needed", "JAX - PyTorch, points"):
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


def test_build_writes_every_artifact(built):
  written, folder = built
  names = sorted(p.name for p in written)
  assert names == sorted([*TEXT_ARTIFACTS, "figure1.png", "figure1.svg"])
  assert "Row | tokenizer" in (folder / "table2.md").read_text().replace("  ", "")
  assert "\\toprule" in (folder / "table1.tex").read_text()


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


def test_the_committed_export_holds_the_registered_protocol_s_runs():
  """Every run the registered protocol plans is in the committed export, finished: the tables
  rest on the whole protocol. An export made before the protocol was registered (its runs'
  config hashes are not in it) is of an earlier protocol, and says so in tables/claims.md."""
  from harness.store import registration
  registered = registration.read(registration.path(ROOT / "results", "proxy")).get("runs", {})
  export = run_export.read(COMMITTED_EXPORT)
  if not set(export.config_hash) <= set(registered):
    pytest.skip("the committed export predates the registered protocol (its full run is to come)")
  assert set(registered) <= set(run_export.finished(export).config_hash)


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
