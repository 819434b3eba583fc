"""Run configs: a bad value fails at load time with one line that names it."""
import re

import pytest

from harness.cli import main
from harness.configs import compose, registry, seed_plan

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
    "a key the data source does not read": (["data.fps_stride=9"], "fps_stride"),
    "a key no data source reads": (["data.train_size=100"], "train_size"),
    "negative runtime option": (["runtime.log_every=-1"], "runtime.log_every=-1"),
    "data classes differ from the model's": (
        ["experiment.scales.proxy.num_classes=12"], "data fashion_mnist has 10 classes"),
    "empty dataset root": (["data=imagenet"], "data.root is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_fails_with_one_line_naming_it(case):
  overrides, named = BAD[case]
  with pytest.raises(compose.ConfigError) as error:
    compose.load(overrides)
  message = str(error.value)
  assert "\n" not in message
  assert named in message


def test_cli_reports_a_bad_config_in_one_line(capsys):
  assert main(["run", "train.steps=many"]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: bad config") and "\n" not in err


@pytest.mark.parametrize("experiment,scale,source", [
    ("table1", "proxy", "fashion_mnist"), ("figure1", "smoke", "digits"), ("table2", "proxy", "moving_fashion"),
    ("table2", "smoke", "moving_digits"),
    ("table1", "paper", "imagenet"), ("table2", "paper", "charades")])
def test_recipe_follows_experiment_and_scale(experiment, scale, source):
  row = "mhsa" if experiment == "table2" else ("base" if experiment == "table1" else "unpool_tl8")
  cfg = compose.validate(compose.compose_config([f"experiment={experiment}", f"scale={scale}",
                                               f"row={row}", "train.pretrained_dir=/data/vit"]),
                         data_files=False)
  assert cfg.data.source == source
  assert compose.model_fields(cfg)["image_size"] == (32 if scale != "paper" else
                                                     {"table1": 512, "table2": 224}[experiment])


def test_config_hash_ignores_execution_details_but_not_the_recipe():
  base = compose.config_hash(compose.load([]))
  for runtime in ("log_every=3", "threads=1", "checkpoint_every=7", "fast_compile=true",
                  "progress_index=4", "progress_total=9"):
    assert compose.config_hash(compose.load([f"runtime.{runtime}"])) == base, runtime
  assert compose.config_hash(compose.load(["tracking.experiment_prefix=x_"])) == base
  assert compose.config_hash(compose.load(["data.validation_size=9000"])) != base
  assert compose.config_hash(compose.load(["train.eval_batch_size=128"])) != base
  assert compose.config_hash(compose.load(["seed=1"])) != base
  assert compose.config_hash(compose.load(["optim.learning_rate=0.1"])) != base
  assert compose.config_hash(compose.load(["experiment.scales.proxy.num_layers=6"])) != base


def test_enumerated_values_accept_what_a_command_line_parses():
  """Hydra parses tokenlearner_version=1.1 as a float; the model config takes it as '1.1'."""
  cfg = compose.load(["row=tl16_at_12", "++experiment.rows.tl16_at_12.proxy.tokenlearner_version=1.1"])
  assert compose.model_fields(cfg)["tokenlearner_version"] == 1.1
  from harness.twins import backends
  assert backends.make_config("vit", compose.model_fields(cfg)).tokenlearner_version == "1.1"


def test_one_composition_per_experiment_gives_the_hash_of_composing_each_run():
  """status.plan derives each planned run from one composed config per experiment."""
  base = compose.compose_config(["experiment=table2", "row=mhsa"])
  for row, framework, seed in (("vectt", "torch", 2), ("tl_vectt_tokenfuser", "jax", 1)):
    derived = compose.for_run(base, row, framework, seed)
    composed = compose.load(["experiment=table2", f"row={row}", f"framework={framework}", f"seed={seed}"])
    assert compose.config_hash(derived) == compose.config_hash(composed)


def test_model_and_data_are_checked_before_mlflow_is_touched(tmp_path):
  assert main(["run", "experiment.scales.proxy.num_classes=12",
               f"tracking.results_dir={tmp_path}"]) == 2
  assert not any(tmp_path.iterdir())


def test_seeds_per_framework_experiment_and_row():
  """scale.seeds for every framework, a framework's own list where framework_seeds gives one,
  in the rows framework_rows lists for it, cut down by experiment_seeds per experiment or per
  row (the row's list wins); --seeds overrides all; the lists are not part of a run's hash."""
  scale = compose.compose_config(["scale=smoke", "scale.seeds=[0,1,2,3]",
                                 "+scale.framework_seeds={jax: [0, 5]}",
                                 "+scale.framework_rows={jax: [table1/base, table2]}",
                                 "+scale.experiment_seeds={table2: [0, 1], table2/vectt: [2, 3]}"]).scale
  seeds = seed_plan.seeds_by_framework(scale, ["jax", "torch"])
  assert seeds["torch"]["table1"] == {r.key: [0, 1, 2, 3] for r in registry.rows("table1")}
  assert seeds["torch"]["table2"]["mhsa"] == [0, 1] and seeds["torch"]["table2"]["vectt"] == [2, 3]
  assert seeds["jax"]["table1"]["base"] == [0, 5] and seeds["jax"]["table1"]["tl16_at_12"] == []
  assert seeds["jax"]["figure1"] == {r.key: [] for r in registry.rows("figure1")}
  assert seeds["jax"]["table2"]["mhsa"] == [0] and seeds["jax"]["table2"]["vectt"] == []
  assert seed_plan.seeds_by_framework(scale, ["torch"], [7])["torch"]["table2"]["vectt"] == [7]
  for key, value, named in [("experiment_seeds", "{table9: [0]}", "table9"),
                            ("experiment_seeds", "{table1/nope: [0]}", "table1/nope"),
                            ("framework_rows", "{jax: [figure1/nope]}", "figure1/nope"),
                            ("framework_rows", "{tf: [table1]}", "tf")]:
    bad = compose.compose_config(["scale=smoke", f"+scale.{key}={value}"]).scale
    with pytest.raises(compose.ConfigError, match=f"scale.{key}.* names {named}, not an? "):
      seed_plan.seeds_by_framework(bad, ["torch"])
  beyond = compose.compose_config(["scale=smoke", "+scale.framework_seeds={jax: [0, 5]}",
                                  "+scale.experiment_seeds={table2: [0, 5, 6]}"]).scale
  with pytest.raises(compose.ConfigError, match=r"experiment_seeds.table2 lists seed\(s\) 6, which no"):
    seed_plan.seeds_by_framework(beyond, ["torch"])
  hashes = {compose.config_hash(compose.load(["scale=smoke", *extra])) for extra in
            ([], ["+scale.experiment_seeds={table2: [0]}"], ["+scale.framework_seeds={jax: [3]}"],
             ["+scale.framework_rows={jax: [table1]}"])}
  assert len(hashes) == 1


@pytest.mark.parametrize("experiment", ["table1", "figure1", "table2"])
def test_the_tables_state_the_proxy_recipe_the_runs_train_with(experiment):
  """The deviations the tables print (conf/tables.yaml) restate each proxy recipe's optimizer
  and budget in words; they must say what the recipe does."""
  from harness.configs import tables_conf
  (training,) = [d for d in tables_conf.experiment(experiment)["deviations"]["proxy"] if d.startswith("training")]
  stated = re.search(r"lr ([\d.e-]+), (\d+) warm-up steps then cosine, (\d+) steps of batch (\d+)", training)
  from harness.configs import registry
  cfg = compose.load(["scale=proxy", f"experiment={experiment}", f"row={registry.rows(experiment)[0].key}"])
  assert stated, training
  assert (float(stated[1]), int(stated[2]), int(stated[3]), int(stated[4])) == (
      cfg.optim.learning_rate, cfg.optim.warmup_steps, cfg.train.steps, cfg.train.batch_size)


def test_a_paper_fine_tune_names_its_checkpoint_in_the_folder_set_once():
  from harness.configs import compose
  for experiment, row, file in (("table1", "base", "ViT-L_16.npz"), ("figure1", "unpool_tl8", "ViT-B_16.npz")):
    base = ["scale=paper", f"experiment={experiment}", f"row={row}", "data.root=/nowhere"]
    cfg = compose.compose_config([*base, "train.pretrained_dir=/data/vit"])
    assert cfg.train.pretrained == f"/data/vit/{file}"
    unset = compose.compose_config(base)
    compose.validate(unset, data_files=False)  # Planning and reporting need no checkpoint,
    with pytest.raises(compose.ConfigError, match=f"fine-tunes {file}: set train.pretrained_dir"):
      compose.require_pretrained(unset)  # but a run that is to start does.
    scratch = compose.compose_config([*base, "train.pretrained="])
    compose.require_pretrained(scratch)
    assert scratch.train.pretrained == ""
