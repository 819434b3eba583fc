"""The paper-scale cost estimate: the arithmetic on a hand-worked row, and the table from the
committed FLOP counts."""
import pandas as pd
import pytest
from omegaconf import OmegaConf

from harness.flops import accelerator_hours

RATES = OmegaConf.create({"utilisation": 0.5, "flops_per_multiply_add": 2, "backward_factor": 3,
                          "accelerators": {"chip": {"label": "Chip", "peak_tflops": 100}}})


def test_a_hand_worked_row():
  flops = pd.DataFrame([{"entry": "row", "scale": "paper", "experiment": "table1", "row": "base",
                         "label": "Base", "analytic_gflops": 100.0},
                        {"entry": "row", "scale": "proxy", "experiment": "table1", "row": "base",
                         "label": "Base", "analytic_gflops": 0.01}])
  (line,) = accelerator_hours.estimate(flops, {"table1": {"steps": 1000, "batch_size": 500}}, RATES).to_dict("records")
  # 100e9 multiply-adds x 2 x 3 x 500 examples x 1000 steps = 3e17 FLOPs = 300 PFLOPs;
  # at 50% of 100 TFLOP/s, 3e17 / 5e13 = 6000 s = 1 2/3 hours.
  assert line["train_pflops"] == pytest.approx(300.0)
  assert line["chip_hours"] == pytest.approx(6000 / 3600)


def test_the_table_from_the_committed_counts(tmp_path):
  out = tmp_path / "paper_cost.md"
  accelerator_hours.main(["--flops", "results/flops.csv", "--md", str(out)])
  text = out.read_text()
  recipe = accelerator_hours.recipes()
  assert recipe["table1"] == {"steps": 20000, "batch_size": 512}
  assert "Base (ViT L/16)" in text and "All rows, one seed each" in text


def test_a_missing_count_file_is_one_line(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_:
    accelerator_hours.main(["--flops", str(tmp_path / "none.csv"), "--md", str(tmp_path / "x.md")])
  assert exit_.value.code == 2 and "python -m harness.flops" in capsys.readouterr().err
