"""Sessions: tests (the default suite), parity (writes results/parity.csv), flops (writes
results/flops.csv and tables/flops.md), reproduce (the main job), tables (rebuilds tables/
from the runs), faults (the fault catalogue: results/faults.md), bench.

Each session installs the two implementations and the harness from this
repository into its own virtual environment with pip (torch is pinned to the
CPU-built 2.13.0 in impls/torch/pyproject.toml).
"""
import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "virtualenv"

PACKAGES = ("-e", "impls/spec", "-e", "impls/jax", "-e", "impls/torch", "-e", ".[test]")
PARITY_CSV = "results/parity.csv"
FAULTS_TABLE = "results/faults.md"
# Two pytest-xdist workers, a test file per worker at a time (a file's tests share compiled
# programs): the suite is bound by XLA compiles, each on one thread.
PARALLEL = ("-n", "2", "--dist", "loadfile")


def install(session: nox.Session) -> None:
  session.install("--upgrade", "pip")
  session.install(*PACKAGES)


@nox.session
def tests(session: nox.Session) -> None:
  """The whole test suite: parity of every module and row, conversion, configs, isolation. Its
  JAX programs compile as smoke runs do (--xla-compile fast); `parity` checks at full compile."""
  install(session)
  session.run("pytest", "-q", *PARALLEL, *session.posargs)


@nox.session
def parity(session: nox.Session) -> None:
  """Cross-framework parity suite, compiled as proxy and paper runs are; writes
  results/parity.csv and prints it as a table."""
  install(session)
  session.run("pytest", "-q", *PARALLEL, "tests/parity", "--all-parity", "--xla-compile", "full",
              "--parity-csv", PARITY_CSV, *session.posargs)
  session.run("python", "-m", "harness.testing.parity_log", PARITY_CSV)


@nox.session
def flops(session: nox.Session) -> None:
  """GFLOPs and parameters of every row at every scale, three counters, beside the paper."""
  install(session)
  session.run("python", "-m", "harness.flops", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
  """Training throughput of every proxy row in both frameworks against the machine's matmul
  roof: results/bench.csv (and bench-<part>.csv), tables/bench.md and the generated
  block in docs/performance.md. Wants an idle machine."""
  install(session)
  session.run("python", "-m", "harness.bench", *session.posargs)


@nox.session
def faults(session: nox.Session) -> None:
  """The fault catalogue: every test that declares a fault case (kills at every point in both
  frameworks, damaged checkpoints, start files and artifacts, concurrent trainers, divergence,
  real full disks, a sweep's parent killed, a tracking server gone, bad inputs); prints and
  writes results/faults.md (case, what was done, what happened, pass or fail). The default
  session runs a share of the same cases."""
  install(session)
  session.run("pytest", "-q", "-n", "2", "--all-faults", "--only-faults", "--faults-table", FAULTS_TABLE,
              "tests/harness", *session.posargs)
  session.run("python", "-c", f"print(open({FAULTS_TABLE!r}).read())")


@nox.session
def reproduce(session: nox.Session) -> None:
  """The main job: trains every row x framework x seed (proxy scale unless told otherwise),
  logged to MLflow under results/; finished runs are skipped. Arguments after `--` go to
  `python -m harness reproduce` (Hydra overrides such as scale=smoke, or --jobs 4). Its
  last step is the `tables` session's work."""
  install(session)
  session.run("python", "-m", "harness", "reproduce", *session.posargs)


@nox.session
def tables(session: nox.Session) -> None:
  """Tables 1-2, Figure 1 and the claims (tables/) from the runs: re-exported from MLflow into
  results/runs-<scale>.csv when a store is there, else from that export alone (--offline forces it)."""
  install(session)
  session.run("python", "-m", "harness", "tables", *session.posargs)
