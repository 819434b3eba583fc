"""Checks of the environment a run needs, made before anything is trained or tracked: that
MLflow can open a store at the tracking URI, and that the results directory takes the
files runs write there (the store, checkpoints, starts, caches). Each failure is a
ConfigError with one line naming the URI or the directory.
"""
import os
import pathlib
import tempfile
import urllib.parse

from harness.configs.compose import ConfigError
from harness.store import tracking

# What MLflow opens a tracking store at, besides a plain path: files, a database through
# SQLAlchemy (mlflow.store.db.db_types.DATABASE_ENGINES; each may name a driver, as in
# postgresql+psycopg2), a tracking server, or Databricks.
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
TRACKING_SCHEMES = ("file", *DATABASE_SCHEMES, "http", "https", "databricks")


def check(cfg) -> None:
  """Raises ConfigError if the run's tracking URI or results directory would fail it."""
  check_tracking_uri(tracking.tracking_uri(cfg.tracking))
  check_writable(pathlib.Path(cfg.tracking.results_dir))


def check_tracking_uri(uri: str) -> None:
  scheme, _, driver = urllib.parse.urlparse(uri).scheme.lower().partition("+")
  if scheme and (scheme not in TRACKING_SCHEMES or driver and scheme not in DATABASE_SCHEMES):
    raise ConfigError(
        f"tracking URI {uri!r} (tracking.uri or $MLFLOW_TRACKING_URI) has an unknown scheme; "
        f"MLflow takes a path or {', '.join(s + '://' for s in TRACKING_SCHEMES)} "
        f"({'/'.join(DATABASE_SCHEMES)} with an optional +driver)")


def check_writable(results_dir: pathlib.Path) -> None:
  """The results directory, and each folder in it (runs write into their own), take a new
  entry; a directory not made yet counts as its nearest existing parent, where the run
  will make it. Tried by making and removing a folder, since permission bits do not tell
  (root writes through them; a read-only mount refuses root)."""
  target = results_dir.absolute()
  nearest = target
  while not nearest.exists():
    nearest = nearest.parent
  folder = nearest
  try:
    inside = sorted(p for p in target.iterdir() if p.is_dir()) if target.is_dir() else []
    for folder in [nearest, *inside]:
      os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=folder))
  except OSError as error:
    raise ConfigError(f"results directory {results_dir} (tracking.results_dir) is not writable: "
                      f"cannot make a folder in {folder}: {error.strerror or error}") from None
