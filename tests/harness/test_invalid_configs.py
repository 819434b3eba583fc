"""Every invalid model config is refused before anything is built or trained: one line naming
the field, through the Python API (both twins) and through the command line (exit 2).

The configs come from the same seeded generator as the randomized parity suite:
a valid draw broken in one drawn way (tests/parity/config_space.py).
"""
import dataclasses

import pytest

import tokenlearner_jax as tj
import tokenlearner_torch as tt
from harness.cli import main
from harness.twins import backends
from tests.parity import config_space
from tokenlearner_spec import FRAMEWORKS, VideoConfig, ViTConfig

BUDGET = 48
CASES = [config_space.invalid(seed) for seed in range(BUDGET)]
IDS = [f"{seed:02d}-{kind}-{way.replace(' ', '_')}" for seed, (kind, _, _, way) in enumerate(CASES)]
# The row whose model fields a command line replaces, per model family.
CLI_ROW = {"vit": ("table1", "base"), "video": ("table2", "mhsa")}


@pytest.fixture
def nothing_is_built(monkeypatch):
  def refuse(config):
    raise AssertionError(f"a model was built from an invalid config: {config}")
  for impl in (tj, tt):
    monkeypatch.setattr(impl, "build_model", refuse)


def assert_one_line_naming(message: str, field: str):
  assert "\n" not in message.strip(), message
  assert field in message, f"{field!r} not named in: {message}"


@pytest.mark.parametrize("kind,fields,field,way", CASES, ids=IDS)
def test_refused_through_the_python_api(kind, fields, field, way, nothing_is_built):
  for framework in FRAMEWORKS:
    with pytest.raises(ValueError) as error:
      backends.build(framework, kind, fields)
    assert_one_line_naming(str(error.value), field)


def hydra_value(value) -> str:
  """A Python value as a Hydra override value of the same type."""
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, (list, tuple)):
    return "[" + ",".join(hydra_value(v) for v in value) + "]"
  if isinstance(value, str):
    return f"'{value}'"
  return repr(value)


def model_overrides(kind: str, fields, experiment: str, row: str):
  """Overrides that make the row's model at smoke scale exactly `fields` (every field set)."""
  cls = ViTConfig if kind == "vit" else VideoConfig
  full = {f.name: f.default for f in dataclasses.fields(cls)} | dict(fields)
  return [f"++experiment.rows.{row}.proxy.{k}={hydra_value(v)}" for k, v in full.items()]


@pytest.mark.parametrize("kind,fields,field,way", CASES, ids=IDS)
def test_refused_on_the_command_line(kind, fields, field, way, tmp_path, capsys, nothing_is_built):
  experiment, row = CLI_ROW[kind]
  results = tmp_path / "results"
  code = main(["run", f"experiment={experiment}", f"row={row}", "framework=jax", "scale=smoke",
               f"tracking.results_dir={results}", f"tracking.uri=sqlite:///{results}/mlflow.db",
               *model_overrides(kind, fields, experiment, row)])
  err = capsys.readouterr().err
  assert code == 2, err
  assert err.startswith("error: bad config")
  assert_one_line_naming(err, field)
  assert not results.exists()  # No store, no checkpoint: nothing ran.


def test_the_overrides_reproduce_a_valid_config_exactly():
  """The command-line path above builds the drawn config, not the row's own."""
  from harness.configs import compose
  for seed in range(6):
    kind, fields = config_space.valid(seed)
    experiment, row = CLI_ROW[kind]
    cfg = compose.compose_config([f"experiment={experiment}", f"row={row}", "scale=smoke",
                                 *model_overrides(kind, fields, experiment, row)])
    assert backends.make_config(kind, compose.model_fields(cfg)) == backends.make_config(kind, fields)
