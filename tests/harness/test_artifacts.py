"""A finished run keeps its weights (in both frameworks' formats), config and curves as MLflow
artifacts beside the store, and loads from them in either framework with the same logits."""
import csv

import numpy as np
import pytest

from harness import data as datasets
from harness.cli import main
from harness.configs import compose, run_spec
from harness.run import train
from harness.store import artifacts, finished_runs
from harness.testing.parity_log import FORWARD_ATOL
from tests.harness.smoke import all_runs, client, overrides

ROW = ["experiment=table1", "row=tl16_at_12"]  # A TokenLearner row: the maps are in its weights.


@pytest.mark.parametrize("trained_in", ["torch", "jax"])
def test_a_run_trained_in_one_framework_loads_in_both_with_the_same_logits(tmp_path, monkeypatch, trained_in):
  monkeypatch.chdir(tmp_path)  # MLflow's own default would put them in ./mlruns.
  results = tmp_path / "results"
  run_config = overrides(results, *ROW, f"framework={trained_in}")
  outcome = train.run(run_spec.load(run_config))
  (run,) = all_runs(results)
  logged = {f.path for f in client(results).list_artifacts(run.info.run_id)}
  assert logged == {"model", artifacts.CONFIG, artifacts.CURVES}
  folder = results / "artifacts" / "table1" / run.info.run_id / "artifacts"
  assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(
      [artifacts.CONFIG, artifacts.CURVES, artifacts.JAX_WEIGHTS, artifacts.TORCH_WEIGHTS])
  assert not (tmp_path / "mlruns").exists()

  with open(folder / artifacts.CURVES) as f:
    curves = list(csv.DictReader(f))
  history = client(results).get_metric_history(run.info.run_id, "train_loss")
  assert [float(r["train_loss"]) for r in curves] == [m.value for m in sorted(history, key=lambda m: m.step)]
  assert [int(r["step"]) for r in curves] == [0, 1, 2, 3] and all(r["learning_rate"] for r in curves)

  by_keys, by_id = finished_runs.find(run_config), finished_runs.find(overrides(results), run_id=outcome.run_id)
  assert by_keys.run_id == by_id.run_id == outcome.run_id
  assert compose.config_hash(by_id.config) == run.data.tags["config_hash"]
  cfg = compose.load(run_config)
  x, _ = datasets.make(cfg.data, 0, 32).test_set
  logits = {framework: finished_runs.model(by_id, framework).logits(x[:32]) for framework in ("jax", "torch")}
  assert np.abs(logits["jax"] - logits["torch"]).max() <= FORWARD_ATOL
  assert logits[trained_in].shape == (32, 10)


def test_artifacts_off_keeps_none_and_load_says_so_in_one_line(tmp_path, capsys):
  results = tmp_path / "results"
  run_config = overrides(results, *ROW, "framework=torch", "tracking.artifacts=false")
  assert train.run(run_spec.load(run_config)).status == "finished"
  (run,) = all_runs(results)
  assert client(results).list_artifacts(run.info.run_id) == []
  capsys.readouterr()
  assert main(["load", *run_config]) == 2
  error = capsys.readouterr().err
  assert error.startswith("error: run ") and "has no artifact config.yaml" in error and error.count("\n") == 1


def test_load_on_the_command_line_gives_the_logged_metric_again(tmp_path, capsys):
  results = tmp_path / "results"
  run_config = overrides(results, *ROW, "framework=torch")
  metric = train.run(run_spec.load(run_config)).metrics["test_top1"]
  capsys.readouterr()
  assert main(["load", *run_config, "seed=1"]) == 2  # Not trained.
  assert "no finished run of table1/tl16_at_12 torch smoke seed 1" in capsys.readouterr().err
  assert main(["load", *run_config, "--into", "jax"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].startswith("table1/tl16_at_12 torch smoke seed 0 (MLflow run ")
  assert lines[1] == f"  in jax: test_top1 {metric:.4f} (logged {metric:.4f})"


def _damage_header(path):
  path.write_bytes(b"\xff" * 8 + path.read_bytes()[8:])  # The header's length: far past the file.


def _cut_in_half(path):
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


ARTIFACT_DAMAGES = {"torch-header": ("torch", artifacts.TORCH_WEIGHTS, _damage_header),
                    "jax-truncated": ("jax", artifacts.JAX_WEIGHTS, _cut_in_half)}


def test_load_names_a_damaged_weight_file_in_one_line(tmp_path, capsys, fault):
  fault.done("a finished run's model/torch.safetensors with its header length overwritten, and its "
             "model/jax.msgpack cut in half; `load --into` each framework")
  results = tmp_path / "results"
  run_config = overrides(results, *ROW, "framework=torch")
  train.run(run_spec.load(run_config))
  (run,) = all_runs(results)
  folder = results / "artifacts" / "table1" / run.info.run_id / "artifacts"
  said = []
  for framework, artifact, damage in ARTIFACT_DAMAGES.values():
    damage(folder / artifact)
    capsys.readouterr()
    assert main(["load", *run_config, "--into", framework]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{artifact} of run {run.info.run_id[:8]} is damaged (" in error, error
    said.append(error.strip().replace(str(folder), "<artifacts>"))
  fault.happened("exit 2, one line each naming the file: " + "; ".join(f"'{line}'" for line in said))


def test_load_refuses_a_store_that_does_not_exist_without_creating_it(tmp_path, capsys):
  assert main(["load", *overrides(tmp_path / "nothing", *ROW, "framework=torch")]) == 2
  error = capsys.readouterr().err
  assert error.startswith("error: no MLflow store at sqlite:///") and error.count("\n") == 1
  assert not (tmp_path / "nothing").exists()
