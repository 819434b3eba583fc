"""The FLOP report (results/flops.csv, tables/flops.md): three counters agree on every model,
the paper-scale configs give the published GFLOPs, and the CSV is pinned. The checks read the
committed report; a sample of it is recounted here, all of it under --runslow (nox -s flops
writes it)."""
import pathlib

import pytest

from harness import flops
from harness.configs import published, registry
from harness.flops import report

ROOT = pathlib.Path(__file__).parents[2]
XLA_RTOL, TORCH_RTOL = 0.02, 0.005  # All three within 2%; analytic and torch within 0.5%.
# Rows whose published GFLOPs the paper-scale configs must give.
MUST_MATCH = ["table1/base", "table1/tl16_at_12", "figure1/tokenfuser_tl8", "figure1/tokenfuser_tl16",
              "figure1/reprojection_tl8", "figure1/reprojection_tl16"]


# Recounted in the default session: a model of each family at paper scale, and a proxy one.
SAMPLE = [("table1/tl16_at_12", "paper"), ("figure1/tokenfuser_tl8", "paper"),
          ("table2/tl_vectt_tokenfuser", "paper"), ("table2/mhsa", "proxy")]
CSV = ROOT / "results" / "flops.csv"


@pytest.fixture(scope="module")
def frame():
  return report.read_csv(CSV)


@pytest.mark.parametrize("row_id,scale", SAMPLE)
def test_a_sample_recounts_to_the_committed_report(frame, row_id, scale):
  row = registry.get_row(*row_id.split("/"))
  count = flops.count(row.kind, registry.model_fields(row.experiment, row.key, scale))
  committed = frame.loc[f"row:{row_id}@{scale}"]
  for column in report.COUNT_COLUMNS:
    assert getattr(count, column) == pytest.approx(committed[column], rel=1e-9, abs=1e-12), column


def test_every_row_is_counted_at_every_scale(frame):
  rows = frame[frame.entry == "row"]
  expected = {(r.experiment, r.key, s) for r in registry.rows() for s in registry.scales(r.experiment)}
  assert set(zip(rows.experiment, rows.row, rows.scale)) == expected
  assert (rows[["analytic_gflops", "xla_gflops", "torch_gflops"]] > 0).all().all()


def test_three_counters_agree(frame):
  counted = frame.dropna(subset=["xla_gflops"])
  xla = (counted.xla_gflops / counted.analytic_gflops - 1).abs()
  torch = (counted.torch_gflops / counted.analytic_gflops - 1).abs()
  assert (xla <= XLA_RTOL).all(), xla[xla > XLA_RTOL]
  assert (torch <= TORCH_RTOL).all(), torch[torch > TORCH_RTOL]
  parts = frame[frame.entry == "module_part"]
  assert ((parts.torch_gflops / parts.analytic_gflops - 1).abs() <= TORCH_RTOL).all()


def test_both_frameworks_count_the_same_parameters(frame):
  counted = frame.dropna(subset=["params"])
  assert (counted.params == counted.params_torch).all()


@pytest.mark.parametrize("row_id", MUST_MATCH)
def test_paper_scale_gflops_match_the_paper(frame, row_id):
  experiment, key = row_id.split("/")
  record = frame.loc[f"row:{row_id}@paper"]
  assert record.paper_gflops == published.row(experiment, key, "gflops").value
  assert abs(record.rel_diff_to_paper) <= report.conf()["match_tolerance"], record


def test_unmatched_rows_are_shown_with_the_readings_tried(frame):
  markdown = report.markdown(frame)
  paper = frame[(frame.entry == "row") & (frame.scale == "paper")]
  unmatched = paper[paper.rel_diff_to_paper.abs() > report.conf()["match_tolerance"]]
  assert set(unmatched.row) >= {"pool_2x2_at_9_18", "pool_2x2_at_12_18", "pool_4x4_at_12"}
  section = markdown.split("## Rows that do not match")[1].split("\n## ")[0]
  for _, row in unmatched.iterrows():
    readings = frame[frame.row.str.startswith(f"{row.row}:") & (frame.entry == "interpretation")]
    assert len(readings) >= 2, row.row
    assert row.label in section and f"{row.analytic_gflops:,.2f}" in section
    for _, reading in readings.iterrows():
      assert reading.label in section


def test_table2_module_cost_is_set_beside_the_published_figures(frame):
  parts = frame[frame.entry == "module_part"].set_index("label")
  assert parts.loc["TokenLearner alone", "paper_gflops"] == 3.4
  assert parts.loc["Conv2D + TokenLearner", "paper_gflops"] == 17.2
  assert (parts.analytic_gflops > 0).all()


@pytest.mark.slow  # Counts every model: minutes.
def test_flops_csv_is_pinned(dataframe_regression):
  dataframe_regression.check(report.build(), fullpath=CSV)


def test_published_numbers_name_registered_rows():
  for experiment, key in published.row_keys():
    registry.get_row(experiment, key)  # Raises on an unknown row.
  for row in registry.rows():
    metric = "map" if row.experiment == "table2" else "top1"
    assert published.row(row.experiment, row.key, metric) is not None, row.id
