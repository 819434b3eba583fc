"""train.base: fine-tuning every row from one base trained once per seed, for both twins."""
import numpy as np
import pytest

from harness.configs import compose
from harness.run import base_model
from tests.harness import smoke

BASE = ["train.base.experiment=table1", "train.base.row=base", "train.base.steps=4",
        "train.base.learning_rate=4e-3", "train.base.warmup_steps=1"]


def test_a_row_takes_the_base_weights_it_shares_but_its_own_module():
  start = {"embed": np.zeros(3), "module.w": np.zeros(2), "head": np.zeros(1)}
  base = {"embed": np.ones(3), "module.w": np.ones(2), "other": np.ones(4)}
  out = base_model.lay_over(start, base, keep_own=["module."])
  assert out["embed"].tolist() == [1, 1, 1] and out["module.w"].tolist() == [0, 0]
  assert out["head"].tolist() == [0] and "other" not in out
  with pytest.raises(ValueError, match="the base's embed is"):
    base_model.lay_over(start, {"embed": np.ones(4)}, [])


def test_rows_of_either_experiment_and_framework_name_one_base_scored_on_validation():
  hashes = set()
  for experiment, row, framework, split in [("table1", "tl16_at_12", "jax", "test"),
                                            ("figure1", "unpool_tl8", "torch", "validation"),
                                            ("table1", "base", "torch", "test")]:
    cfg = compose.load([f"experiment={experiment}", f"row={row}", f"framework={framework}", "scale=proxy",
                        f"data.eval_split={split}", *BASE])
    base = compose.base_config(cfg)
    assert (base.experiment.name, base.row, base.framework, base.train.steps) == ("table1", "base", "torch", 4)
    assert base.data.eval_split == "validation" and base.tracking.artifacts and not base.train.base.experiment
    assert base.runtime.progress_total == 0  # Its line is not numbered as one of the sweep's runs.
    hashes.add(compose.config_hash(base))
  assert len(hashes) == 1


def test_the_base_is_part_of_a_fine_tuning_run_s_identity():
  """Another base (here, one trained longer) is another run; no base leaves the hash as it was
  before runs could have one."""
  row = ["experiment=table1", "row=tl16_at_12", "scale=proxy"]
  tuned = compose.config_hash(compose.load([*row, *BASE]))
  longer = compose.config_hash(compose.load([*row, *BASE, "train.base.steps=8"]))
  assert tuned != longer
  plain = compose.load([*row, "train.base.experiment="])
  assert "base" not in compose.resolved(plain)["train"]


def test_a_bad_base_is_refused_in_one_line():
  with pytest.raises(compose.ConfigError, match="train.base names table1/nope"):
    compose.load(["train.base.experiment=table1", "train.base.row=nope", "train.base.steps=4"])
  with pytest.raises(compose.ConfigError, match="steps >= 1"):
    compose.load(["train.base.experiment=table1", "train.base.row=base", "train.base.steps=0"])


def test_the_base_trains_once_and_every_row_starts_from_it(tmp_path):
  """A JAX Figure 1 row trains the base (in PyTorch) first; a PyTorch Table 1 row then finds
  it finished. A row that starts from the base starts elsewhere than one from its initial
  weights: their first losses, on the same batch, differ."""
  first = smoke.run_cli(tmp_path, "experiment=figure1", "row=tokenfuser_tl8", "framework=jax", *BASE)
  assert first.returncode == 0, first.stderr[-2000:]
  second = smoke.run_cli(tmp_path, "experiment=table1", "row=tl16_at_12", "framework=torch", *BASE)
  assert second.returncode == 0, second.stderr[-2000:]
  assert "already finished" in second.stdout + second.stderr
  assert "table1/base torch smoke seed 0 (base model): finished" in first.stdout + first.stderr
  runs = {r.data.tags["row"]: r for r in smoke.all_runs(tmp_path, "table1")}
  assert sorted(runs) == ["base", "tl16_at_12"]  # One base, trained once.
  tuned = runs["tl16_at_12"].info.run_id
  fresh = smoke.run_cli(tmp_path, "experiment=table1", "row=tl16_at_12", "framework=torch")
  assert fresh.returncode == 0, fresh.stderr[-2000:]
  (scratch,) = [r.info.run_id for r in smoke.all_runs(tmp_path, "table1")
                if r.data.tags["row"] == "tl16_at_12" and r.info.run_id != tuned]
  assert smoke.train_losses(tmp_path, tuned)[0] != smoke.train_losses(tmp_path, scratch)[0]
