"""`python -m harness curves`: a row at several budgets over seeds, its CSV and its report."""
import pandas as pd
import pytest

from harness.configs import tables_conf
from harness.report import learning_curves as curve_report, stats
from harness.store import export as run_export
from tests.harness import smoke


def test_curve_trains_each_budget_once_and_writes_its_records(tmp_path):
  """Table 2's first row at half, one and two times the smoke budget (4 steps), in PyTorch:
  three runs, one CSV record each, examples = steps x batch, the chance levels of the label
  groups, and the report; a second call trains nothing and writes the same CSV. The row is
  named, as a curve of any row but the default experiment's is."""
  argv = ["curves", "experiment=table2", "row=mhsa", "--frameworks", "torch", "--seeds", "0",
          "--multiples", "0.5,1,2", "--jobs", "1", "--out", str(tmp_path / "tables"),
          *smoke.overrides(tmp_path)]
  first = smoke.harness(*argv)
  assert first.returncode == 0, first.stderr[-2000:]
  path = run_export.curves_csv_path(tmp_path, "smoke", "table2")
  frame = pd.read_csv(path)
  assert list(frame.steps) == [2, 4, 8] and set(frame.seed) == {0}
  assert set(frame.row) == {"mhsa"} and set(frame.framework) == {"torch"}
  assert frame.overrides.isna().all()  # The recipe's task: tracking.* and the like do not count.
  assert (frame.status == "FINISHED").all() and frame.value.between(0, 100).all()
  assert (frame.examples == frame.steps * frame.batch_size).all()
  assert list(frame.multiple.drop_duplicates()) == [0.5, 1.0, 2.0]
  for group in ("digits", "directions"):  # Multi-label: each label group scored alone.
    assert frame[f"value_{group}"].between(0, 100).all()
    assert 0 < frame[f"chance_{group}"].iloc[0] < 100
  assert len(smoke.all_runs(tmp_path, "table2")) == 3
  report = (tmp_path / "tables" / "smoke" / "curves.md").read_text()
  assert "twice the budget changes the mean by" in report
  assert (tmp_path / "tables" / "smoke" / "curves.png").stat().st_size > 0

  again = smoke.harness(*argv)
  assert again.returncode == 0, again.stderr[-2000:]
  assert "already finished" in again.stdout + again.stderr
  assert len(smoke.all_runs(tmp_path, "table2")) == 3
  pd.testing.assert_frame_equal(pd.read_csv(path), frame)


def test_row_needs_one_experiment(tmp_path):
  result = smoke.harness("curves", "row=base", *smoke.overrides(tmp_path))
  assert result.returncode == 2
  assert result.stderr.strip().count("\n") == 0 and "row= needs one experiment" in result.stderr


def _records(means_by_multiple, seeds=(0, 1, 2)):
  """A curve whose seeds sit at mean - 1, mean, mean + 1 at each budget (multiple -> mean)."""
  rows = []
  for multiple, mean in means_by_multiple.items():
    for seed, offset in zip(seeds, (-1, 0, 1)):
      rows.append(dict(experiment="table1", row="base", overrides="data.digit_size=24",
                       framework="torch", seed=seed,
                       steps=int(100 * multiple), multiple=multiple, batch_size=64,
                       examples=int(6400 * multiple), status="FINISHED", metric="test_top1",
                       value=mean + offset, chance=10.0))
  return pd.DataFrame.from_records(rows)


@pytest.mark.parametrize("gain, on_plateau", [(0.6, True), (-0.9, True), (1.4, False)])
def test_plateau_is_the_mean_at_twice_the_budget_within_the_tolerance(gain, on_plateau):
  curve = curve_report.points(_records({0.5: 50.0, 1.0: 60.0, 2.0: 60.0 + gain}), 0.95)
  assert list(curve["mean"]) == pytest.approx([50.0, 60.0, 60.0 + gain])
  assert list(curve.sd) == pytest.approx([1.0] * 3)  # seeds at mean -1, 0, +1
  judged = curve_report.plateau(curve, tolerance=1.0)
  assert judged["gain"] == pytest.approx(gain) and judged["on_plateau"] is on_plateau


def test_plateau_needs_both_budgets():
  curve = curve_report.points(_records({0.5: 50.0, 1.0: 60.0}), 0.95)
  assert curve_report.plateau(curve, tolerance=1.0) == dict(gain=None, on_plateau=None)


def test_the_report_names_the_task_overrides_of_a_curve():
  frame = _records({1.0: 60.0, 2.0: 60.5})
  report = curve_report.markdown({"table1": frame}, "proxy", tables_conf.load(), 1.0)
  assert "## table1: Base (ViT L/16) (data.digit_size=24)" in report
  assert "twice the budget changes the mean by +0.50 points: on a plateau" in report
  assert "power at the budget: paired differences with sd sqrt(2) x 1.00 = 1.41" in report


def test_power_analysis_tests_at_alpha_over_the_claims_family():
  """Seeds spread with sd 1 at the budget: paired differences of sd sqrt(2), tested at 0.05/m
  with m from the claims and judging frameworks; more seeds detect smaller differences."""
  settings = {**tables_conf.load(), "judge_frameworks": ["torch"], "confidence": 0.95, "power": 0.8,
              "bound": 1.5}
  m = sum(len(c["comparisons"]) for c in settings["claims"])
  p = curve_report.power(1.0, settings)
  assert p["m"] == m and p["sd"] == pytest.approx(2 ** 0.5)
  alpha = 0.05 / m
  for n, mdd in p["mdd"].items():
    assert mdd == pytest.approx(stats.minimum_detectable_difference(2 ** 0.5, n, alpha, 0.8))
  assert list(p["mdd"].values()) == sorted(p["mdd"].values(), reverse=True)
  assert p["seeds_for_bound"] == stats.seeds_for_half_width(2 ** 0.5, alpha, 1.5)
  both = curve_report.power(1.0, {**settings, "judge_frameworks": ["jax", "torch"]})
  assert both["m"] == 2 * m and both["mdd"][4] > p["mdd"][4]  # A larger family, a stricter test.
