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
  for group in ("digits", "motions"):  # Multi-label: each label group scored alone.
    assert frame[f"value_{group}"].between(0, 100).all()
    assert 0 < frame[f"chance_{group}"].iloc[0] < 100
  assert len(smoke.all_runs(tmp_path, "table2")) == 3
  report = (tmp_path / "tables" / "smoke" / "curves.md").read_text()
  assert "twice the budget cuts the error by" in report
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


@pytest.mark.parametrize("at_twice, on_plateau", [(61.0, True), (59.0, True), (65.0, False)])
def test_plateau_is_the_error_cut_at_twice_the_budget(at_twice, on_plateau):
  """Errors 40 at the budget and 100 - at_twice at twice it, per seed (seeds at -1, 0, +1):
  a cut below 10% of the error is a plateau."""
  frame = _records({0.5: 50.0, 1.0: 60.0, 2.0: at_twice})
  curve = curve_report.points(frame, 0.95)
  assert list(curve["mean"]) == pytest.approx([50.0, 60.0, at_twice])
  judged = curve_report.plateau(frame, "torch", 0.10, 0.95)
  cuts = [1 - (100 - at_twice - o) / (100 - 60.0 - o) for o in (-1, 0, 1)]
  assert judged["cut"] == pytest.approx(sum(cuts) / 3) and judged["n"] == 3
  assert judged["low"] < judged["cut"] < judged["high"]
  assert judged["on_plateau"] is on_plateau


def test_plateau_needs_both_budgets():
  assert curve_report.plateau(_records({0.5: 50.0, 1.0: 60.0}), "torch", 0.10, 0.95) == dict(cut=None)


def test_the_report_names_the_task_overrides_of_a_curve():
  frame = _records({1.0: 60.0, 2.0: 60.5})
  report = curve_report.markdown({"table1": frame}, "proxy", tables_conf.load(), 0.10)
  assert "## table1: Base (ViT L/16) (data.digit_size=24)" in report
  assert "twice the budget cuts the error by +1.3% [+1.2%, +1.3%] of itself (3 seeds): on a plateau" in report
  assert "Seeds planned from this spread (sd 1.00 points at 60.0)" in report


def test_the_seed_plan_aims_at_the_paper_gap_of_each_comparison():
  """A base that spreads with sd 1 point at 60%: a gap of two runs spreads sqrt(2) x 1 / (0.6 x
  0.4) / 100 in log-odds; each comparison of the experiment's claims gets the seeds that detect
  the paper's gap with the configured power at alpha / m."""
  settings = tables_conf.load()
  m = sum(len(c["comparisons"]) for c in settings["claims"])
  plan = curve_report.power(1.0, 60.0, "table1", settings)
  assert [p["row"] for p in plan] == ["tl16_at_12", "tl16_at_12"]
  sd = 2 ** 0.5 / 100 / (0.6 * 0.4)
  for p in plan:
    assert p["sd"] == pytest.approx(sd)
    assert p["seeds"] == stats.seeds_needed(sd, 0.05 / m, 0.8, abs(p["distance"]))
  assert plan[0]["seeds"] < plan[1]["seeds"]  # The paper's larger gap needs fewer seeds.


def test_a_study_replaces_its_own_records_and_keeps_the_others(tmp_path):
  from harness.run import budget_study
  path = tmp_path / "curves-proxy-table1.csv"
  base = _records({1.0: 60.0, 2.0: 61.0}).assign(overrides="")
  other = _records({1.0: 50.0}).assign(row="tl16_at_12", overrides="")
  run_export.write(pd.concat([base, other]), path)
  again = _records({1.0: 62.0, 2.0: 63.0}).assign(overrides="")
  merged = budget_study.merged(again, path)
  assert sorted(set(merged.row)) == ["base", "tl16_at_12"] and len(merged) == len(again) + len(other)
  assert merged[merged.row == "base"].value.tolist() == again.value.tolist()
  elsewhere = _records({1.0: 70.0})  # The same row under other task overrides: another study.
  assert len(budget_study.merged(elsewhere, path)) == len(base) + len(other) + len(elsewhere)
  studies = curve_report.studies({"table1": merged})
  assert [(e, s.row.iloc[0]) for e, s in studies] == [("table1", "tl16_at_12"), ("table1", "base")]
