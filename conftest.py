"""Root conftest: registers the command-line options (pytest reads them before tests/), and
puts the repository root on sys.path so that tests can import tests.parity helpers."""


def pytest_addoption(parser):
  parser.addoption("--parity-csv", default=None,
                   help="write every parity check's measured difference to this CSV file")
  parser.addoption("--fuzz", type=int, default=0, metavar="N",
                   help="randomized parity: N configs beyond the default session's fixed budget")
