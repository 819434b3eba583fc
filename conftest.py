"""Root conftest: registers the command-line options (pytest reads them before tests/), puts
the repository root on sys.path so that tests can import tests.parity helpers, and joins the
parity logs of pytest-xdist workers (the controller loads this conftest, not the one in tests/)."""
import pathlib

from harness.parity import merge_csv


def pytest_addoption(parser):
  parser.addoption("--parity-csv", default=None,
                   help="write every parity check's measured difference to this CSV file")
  parser.addoption("--fuzz", type=int, default=0, metavar="N",
                   help="randomized parity: N configs beyond the default session's fixed budget")


def worker_id(config):
  return getattr(config, "workerinput", {}).get("workerid")


def _parts(path: str):
  return sorted(pathlib.Path(path).parent.glob(pathlib.Path(path).name + ".gw*"))


def pytest_sessionstart(session):
  path = session.config.getoption("--parity-csv")
  if path and worker_id(session.config) is None:
    for stale in _parts(path):  # Left by an interrupted parallel session.
      stale.unlink()


def pytest_sessionfinish(session):
  path = session.config.getoption("--parity-csv")
  if path and worker_id(session.config) is None and _parts(path):
    merge_csv(_parts(path), path)
    for part in _parts(path):
      part.unlink()
