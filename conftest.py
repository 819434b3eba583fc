"""Root conftest: registers the command-line options (pytest reads them before tests/), puts
the repository root on sys.path so that tests can import tests.parity helpers, joins the
parity logs of pytest-xdist workers and writes the fault catalogue's table (the controller
loads this conftest, not the one in tests/, and receives the workers' reports)."""
import pathlib

from harness.machine import xla_flags
from harness.testing.parity_log import merge_csv
from tests import fault_catalogue


def pytest_addoption(parser):
  parser.addoption("--parity-csv", default=None,
                   help="write every parity check's measured difference to this CSV file")
  parser.addoption("--fuzz", type=int, default=0, metavar="N",
                   help="randomized parity: N configs beyond the default session's fixed budget")
  parser.addoption("--faults-table", default=None, metavar="PATH",
                   help="write the fault cases run (what was done, what happened, pass or fail) "
                        "to this Markdown file")
  parser.addoption("--all-faults", action="store_true",
                   help="every fault case, not only the default session's share (nox -s faults)")
  parser.addoption("--only-faults", action="store_true",
                   help="only the fault cases: the tests that use the `fault` fixture (nox -s faults)")
  parser.addoption("--all-parity", action="store_true",
                   help="every parity case, not only the default session's share (nox -s parity)")
  parser.addoption("--runslow", action="store_true",
                   help="also the slow tests: a paper-scale training step of every paper architecture, the "
                        "whole FLOP report recounted, and second cases of kinds the default session covers")
  parser.addoption("--xla-compile", choices=("fast", "full"), default="fast",
                   help="how this process's XLA compiles: fast, as smoke runs do (a third off the suite's "
                        "time, measured), or full, as proxy and paper runs do (nox -s parity)")


def worker_id(config):
  return getattr(config, "workerinput", {}).get("workerid")


def _parts(path: str):
  return sorted(pathlib.Path(path).parent.glob(pathlib.Path(path).name + ".gw*"))


def pytest_sessionstart(session):
  path = session.config.getoption("--parity-csv")
  if path and worker_id(session.config) is None:
    for stale in _parts(path):  # Left by an interrupted parallel session.
      stale.unlink()


def pytest_configure(config):
  """Compiles the tests' JAX programs as asked. Processes a test starts (harness runs) keep the
  XLA_FLAGS they would have had, so their runs compile as their config says."""
  if config.getoption("--xla-compile") == "fast":
    xla_flags.start_with(xla_flags.FAST_COMPILE)


def pytest_collection_modifyitems(config, items):
  """Leaves out what the default session does not run: the fault and parity cases beyond its
  share (--all-faults, --all-parity) and the slow tests (--runslow); with --only-faults, every
  test that is not a fault case."""
  opt_in = (("all_faults", "--all-faults"), ("all_parity", "--all-parity"), ("slow", "--runslow"))
  left_out = {marker for marker, option in opt_in if not config.getoption(option)}
  kept = [item for item in items if not any(item.get_closest_marker(m) for m in left_out)
          and (not config.getoption("--only-faults") or "fault" in getattr(item, "fixturenames", ()))]
  if len(kept) < len(items):
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def pytest_runtest_logreport(report):
  fault_catalogue.collect(report)


def pytest_sessionfinish(session):
  table = session.config.getoption("--faults-table")
  if table and worker_id(session.config) is None:
    fault_catalogue.write(table)
  path = session.config.getoption("--parity-csv")
  if path and worker_id(session.config) is None and _parts(path):
    merge_csv(_parts(path), path)
    for part in _parts(path):
      part.unlink()
