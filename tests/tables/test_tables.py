"""The table builder on a fixed set of made-up runs, the claim verdicts, the figure, and the
committed tables regenerating byte for byte from the committed run export."""
import math
import pathlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from harness import registry
from harness.tables import build, claims, figure, runs as run_export, stats, summary
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
  verdicts = {(v.claim["id"], v.framework): v.verdict for v in claims.judge(runs, ["jax", "torch"], gflops)}
  for framework in ("jax", "torch"):
    assert verdicts["tokenlearner_beats_pooling", framework] == claims.SUPPORTED
    assert verdicts["tokenfuser_beats_unpool", framework] == claims.CONTRADICTED
    assert verdicts["tokenfuser_matches_reprojection", framework] == claims.INCONCLUSIVE
    assert verdicts["tl_vectt_tokenfuser_best", framework] == claims.INCONCLUSIVE


def test_more_flops_contradicts_a_fewer_flops_claim(runs):
  test = {"row": "tokenfuser_tl8", "other": "reprojection_tl8", "test": "noninferior", "margin": 1.0,
          "fewer_flops": True}
  c = claims.compare(runs, "figure1", test, "jax", 0.95, {"tokenfuser_tl8": 40.0, "reprojection_tl8": 30.0})
  assert c.verdict == claims.CONTRADICTED and "not fewer GFLOPs" in c.reason


def test_frameworks_that_differ_beyond_seed_noise_are_flagged(runs, gflops):
  frame = summary.build(runs, "table1", ["jax", "torch"], gflops).set_index("row")
  assert summary.agreement(frame.loc["base"]).startswith("DIFFER")
  assert summary.agreement(frame.loc["tl16_at_12"]) == "identical per seed"


def test_figure_has_three_series_published_points_and_labelled_axes(runs, gflops):
  frame = summary.build(runs, "figure1", ["jax", "torch"], gflops)
  fig = figure.draw(frame, ["jax", "torch"], "proxy", caption="Scale: proxy")
  panels = [ax for ax in fig.axes if ax.get_title()]
  assert [ax.get_title() for ax in panels] == list(figure.SERIES)
  for ax in panels:
    assert ax.get_xlabel()
    published = [line for line in ax.get_lines() if line.get_label().startswith("paper")]
    assert len(published) == 1 and len(published[0].get_xdata()) == 2
  assert panels[0].get_ylabel()
  ours = [ax for ax in fig.axes if not ax.get_title()]
  assert len(ours) == 3 and all(ax.get_ylabel() for ax in ours)
  labels = {c.get_label() for ax in ours for c in ax.containers}
  assert labels == {"JAX, proxy (ours)", "PyTorch, proxy (ours)"}
  assert fig.get_supxlabel() == "Scale: proxy"
  figure.plt.close(fig)


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
  from harness.__main__ import main
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
  assert export.groupby(["experiment", "row", "framework"]).seed.nunique().min() >= 3
