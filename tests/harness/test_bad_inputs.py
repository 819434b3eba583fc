"""Every bad input of the catalogue (tests/harness/bad_inputs.py) is refused before anything
is built, trained or recorded: exit status 2 and one line on stderr naming the problem."""

import pytest
from omegaconf import OmegaConf

from harness import data as datasets
from harness.configs import schema
from harness.run import preflight
from harness.testing import tiny_datasets
from tests.harness import bad_inputs
from tests.processes import python

CASES = [pytest.param(case, id=case.id, marks=[pytest.mark.skip(case.skip)] if case.skip else [])
         for case in bad_inputs.CASES]


@pytest.fixture
def nothing_runs(monkeypatch):
  """A case that got past the checks fails here, before training or sweeping anything."""
  from harness.run import sweep, train

  def refuse(*args, **kwargs):
    raise AssertionError("a bad input reached training")
  monkeypatch.setattr(train, "run", refuse)
  monkeypatch.setattr(sweep, "reproduce", refuse)


def test_the_catalogue_is_complete():
  ids = [case.id for case in bad_inputs.CASES]
  assert len(ids) == len(set(ids)) and len(ids) >= 20


@pytest.mark.parametrize("case", CASES)
def test_refused_in_one_line_before_anything_runs(case, tmp_path, nothing_runs, fault):
  fault.done(case.describe())
  outcome = bad_inputs.run(case, tmp_path)
  lines = outcome.stderr.splitlines()
  assert outcome.code == 2, outcome.stderr
  assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
  assert case.message_names(tmp_path) in lines[0]
  assert not outcome.stores  # Nothing recorded in MLflow.
  fault.happened(f"exit 2, no MLflow store, one line: '{lines[0].replace(str(tmp_path), '<tmp>')}'")


def test_a_passed_image_check_is_remembered_until_the_files_change(tmp_path, monkeypatch):
  spec = OmegaConf.structured(schema.ImageNetData(root=str(tiny_datasets.imagenet(tmp_path / "imagenet"))))
  stamps = tmp_path / "stamps"
  datasets.check(spec, 8, stamp_dir=stamps)
  assert len(list(stamps.iterdir())) == 1
  opened = []
  monkeypatch.setattr("harness.data.files._check_image", opened.append)
  datasets.check(spec, 8, stamp_dir=stamps)
  assert not opened  # The stamp stood for the same files.
  tiny_datasets.write_image(tmp_path / "imagenet" / "train" / "n01" / "n01_9.png", 1)
  datasets.check(spec, 8, stamp_dir=stamps)
  assert len(opened) == 13 and len(list(stamps.iterdir())) == 2


def test_a_failed_image_check_leaves_no_stamp(tmp_path):
  root = tiny_datasets.imagenet(tmp_path / "imagenet")
  (root / "val" / "n03" / "val_2.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
  with pytest.raises(ValueError, match="val_2.png does not open"):
    datasets.check(OmegaConf.structured(schema.ImageNetData(root=str(root))), 8, stamp_dir=tmp_path / "stamps")
  assert not (tmp_path / "stamps").exists()


def test_the_tracking_schemes_are_those_mlflow_opens():
  from mlflow.store.db.db_types import DATABASE_ENGINES
  from mlflow.tracking._tracking_service.utils import _tracking_store_registry
  assert set(preflight.DATABASE_SCHEMES) == set(DATABASE_ENGINES)
  assert set(preflight.TRACKING_SCHEMES) <= set(_tracking_store_registry._registry)


@pytest.mark.parametrize("uri", ["/tmp/mlruns", "relative/mlruns", "file:///tmp/mlruns", "sqlite:///x.db",
                                 "postgresql+psycopg2://u@h/db", "mysql://h/db", "https://mlflow.example",
                                 "databricks", "databricks://profile"])
def test_the_tracking_uris_mlflow_opens_pass(uri):
  preflight.check_tracking_uri(uri)


def test_the_results_check_leaves_nothing_behind(tmp_path):
  (tmp_path / "results" / "checkpoints").mkdir(parents=True)
  preflight.check_writable(tmp_path / "results" / "new")
  preflight.check_writable(tmp_path / "results")
  assert [p.name for p in (tmp_path / "results").iterdir()] == ["checkpoints"]
  assert not any((tmp_path / "results" / "checkpoints").iterdir())


def test_the_real_command_line_reports_a_bad_tracking_uri_in_one_line(tmp_path):
  """The catalogue runs in this process; this case, once through `python -m harness`."""
  done = python("-m", "harness", "run", "scale=smoke", f"tracking.results_dir={tmp_path}/results",
                env={"MLFLOW_TRACKING_URI": "foo://bar"}, timeout=300)
  assert done.returncode == 2
  assert done.stderr.startswith("error: tracking URI 'foo://bar'") and done.stderr.count("\n") == 1
  assert not (tmp_path / "results").exists()
