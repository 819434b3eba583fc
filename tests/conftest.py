"""Shared test setup: float32 parity settings for both frameworks, and the parity CSV log.

Under pytest-xdist each worker logs to <csv>.<worker> and the controller joins the
parts into <csv> when the session ends.
"""
import pathlib

import jax
import pytest
import torch

from harness.parity import ParityLog, merge_csv

jax.config.update("jax_default_matmul_precision", "highest")
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_num_threads(max(1, torch.get_num_threads()))


def _worker(config):
  return getattr(config, "workerinput", {}).get("workerid")


def _parts(path: str):
  return sorted(pathlib.Path(path).parent.glob(pathlib.Path(path).name + ".gw*"))


def pytest_sessionstart(session):
  path = session.config.getoption("--parity-csv")
  if path and _worker(session.config) is None:
    for stale in _parts(path):  # Left by an interrupted parallel session.
      stale.unlink()


def pytest_sessionfinish(session):
  path = session.config.getoption("--parity-csv")
  if path and _worker(session.config) is None and _parts(path):
    merge_csv(_parts(path), path)
    for part in _parts(path):
      part.unlink()


@pytest.fixture(scope="session")
def parity_log(request):
  log = ParityLog()
  yield log
  path = request.config.getoption("--parity-csv")
  if path and log.results:
    worker = _worker(request.config)
    log.write_csv(f"{path}.{worker}" if worker else path)


@pytest.fixture
def check(parity_log):
  """Records harness.parity.Results and fails the test, naming every differing tensor."""
  def _check(*results):
    for result in results:
      parity_log.add(result)
    failed = [r.message() for r in results if not r.passed]
    assert not failed, "\n".join(failed)
  return _check
  return _check
