"""Run configs: a bad value fails at load time with one line that names it."""
import pytest

from harness import config
from harness.__main__ import main

BAD = {
    "unknown key": (["train.stepz=3"], "stepz"),
    "unknown top-level key": (["foo=1"], "foo"),
    "wrong type": (["train.steps=many"], "train.steps=many"),
    "unknown row": (["row=nope"], "unknown row 'nope'"),
    "unknown scale": (["scale=huge"], "scale/huge"),
    "unknown framework": (["framework=mxnet"], "framework/mxnet"),
    "unknown optimizer": (["optim.name=lamb"], "name='lamb' is not one of"),
    "TokenLearner beyond the depth": (
        ["row=tl16_at_12", "experiment.rows.tl16_at_12.proxy.tokenlearner_at=8"],
        "tokenlearner_at=8 is outside the 8 blocks"),
    "pooling beyond the depth": (
        ["row=pool_4x4_at_12", "experiment.rows.pool_4x4_at_12.proxy.pool_at=[9]"], "pool_at entry 9"),
    "non-positive steps": (["train.steps=0"], "train.steps=0"),
    "warm-up longer than training": (["train.steps=10", "optim.warmup_steps=20"], "warmup_steps=20"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_fails_with_one_line_naming_it(case):
  overrides, named = BAD[case]
  with pytest.raises(config.ConfigError) as error:
    config.load(overrides)
  message = str(error.value)
  assert "\n" not in message
  assert named in message


def test_cli_reports_a_bad_config_in_one_line(capsys):
  assert main(["run", "train.steps=many"]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: bad config") and "\n" not in err


@pytest.mark.parametrize("experiment,scale,source", [
    ("table1", "proxy", "digits"), ("figure1", "smoke", "digits"), ("table2", "proxy", "moving_digits"),
    ("table1", "paper", "imagenet"), ("table2", "paper", "charades")])
def test_recipe_follows_experiment_and_scale(experiment, scale, source):
  row = "mhsa" if experiment == "table2" else ("base" if experiment == "table1" else "unpool_tl8")
  cfg = config.load([f"experiment={experiment}", f"scale={scale}", f"row={row}"])
  assert cfg.data.source == source
  assert config.model_fields(cfg)["image_size"] == (32 if scale != "paper" else
                                                     {"table1": 512, "table2": 224}[experiment])


def test_config_hash_ignores_execution_details_but_not_the_recipe():
  base = config.config_hash(config.load([]))
  assert config.config_hash(config.load(["train.log_every=3", "train.threads=1"])) == base
  assert config.config_hash(config.load(["seed=1"])) != base
  assert config.config_hash(config.load(["optim.learning_rate=0.1"])) != base
  assert config.config_hash(config.load(["experiment.scales.proxy.num_layers=6"])) != base


def test_enumerated_values_accept_what_a_command_line_parses():
  """Hydra parses tokenlearner_version=1.1 as a float; the model config takes it as '1.1'."""
  cfg = config.load(["row=tl16_at_12", "++experiment.rows.tl16_at_12.proxy.tokenlearner_version=1.1"])
  assert config.model_fields(cfg)["tokenlearner_version"] == 1.1
  from harness import backends
  assert backends.make_config("vit", config.model_fields(cfg)).tokenlearner_version == "1.1"
