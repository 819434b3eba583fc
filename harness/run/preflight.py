"""Checks of the environment a run needs, made before anything is trained or tracked: that
MLflow can open a store at the tracking URI and the store is there (a server answers, a
database's driver is installed, an SQLite file is an MLflow store), and that the results
directory takes the files runs write there (the store, checkpoints, starts, caches). Each
failure is a ConfigError with one line naming the URI, the file or the directory; nothing is
created or written by the checks.
"""
import os
import pathlib
import sqlite3
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from harness.configs.compose import ConfigError
from harness.store import tracking

# What MLflow opens a tracking store at, besides a plain path: files, a database through
# SQLAlchemy (mlflow.store.db.db_types.DATABASE_ENGINES; each may name a driver, as in
# postgresql+psycopg2), a tracking server, or Databricks.
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
TRACKING_SCHEMES = ("file", *DATABASE_SCHEMES, "http", "https", "databricks")
SERVER_ANSWER_SECONDS = 5  # A tracking server that has not answered by then counts as down.
MLFLOW_TABLES = {"experiments", "runs", "metrics", "params", "tags"}  # What every MLflow SQL store has.


def check(cfg) -> None:
  """Raises ConfigError if the run's tracking URI or results directory would fail it."""
  uri = tracking.tracking_uri(cfg.tracking)
  check_tracking_uri(uri)
  check_store(uri)
  check_writable(pathlib.Path(cfg.tracking.results_dir))


def check_tracking_uri(uri: str) -> None:
  scheme, _, driver = urllib.parse.urlparse(uri).scheme.lower().partition("+")
  if scheme and (scheme not in TRACKING_SCHEMES or driver and scheme not in DATABASE_SCHEMES):
    raise ConfigError(
        f"tracking URI {uri!r} (tracking.uri or $MLFLOW_TRACKING_URI) has an unknown scheme; "
        f"MLflow takes a path or {', '.join(s + '://' for s in TRACKING_SCHEMES)} "
        f"({'/'.join(DATABASE_SCHEMES)} with an optional +driver)")


def shown(uri: str) -> str:
  """The URI without its password, for messages."""
  parts = urllib.parse.urlsplit(uri)
  if not parts.password:
    return uri
  return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def check_store(uri: str) -> None:
  """The store at `uri` can be opened: a server answers within SERVER_ANSWER_SECONDS, the
  driver a database needs is installed, an SQLite file that exists is an MLflow store."""
  scheme = urllib.parse.urlparse(uri).scheme.lower().partition("+")[0]
  if scheme in ("http", "https"):
    _check_server(uri)
  elif scheme == "sqlite":
    _check_sqlite(uri)
  elif scheme in DATABASE_SCHEMES:
    _check_driver(uri)


def _check_server(uri: str) -> None:
  try:
    with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=SERVER_ANSWER_SECONDS):
      return
  except urllib.error.HTTPError:  # It answered (a proxy's refusal, a server without /health).
    return
  except (OSError, ValueError) as error:  # Refused, unreachable, timed out.
    reason = getattr(error, "reason", None) or error
    raise ConfigError(f"tracking server {shown(uri)} does not answer within {SERVER_ANSWER_SECONDS} s "
                      f"({getattr(reason, 'strerror', None) or reason}): start it, or set tracking.uri / "
                      "$MLFLOW_TRACKING_URI to a store that is up") from None


def _check_sqlite(uri: str) -> None:
  path = tracking.sqlite_file(uri)
  if path is None or not path.is_file() or path.stat().st_size == 0:  # MLflow makes a new store there.
    return
  try:
    connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
      damage = connection.execute("PRAGMA quick_check").fetchone()[0]
      tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
      connection.close()
  except sqlite3.Error as error:
    damage = str(error)
  if damage != "ok":
    raise ConfigError(f"tracking store {path} is damaged ({damage}); nothing was written to it: restore "
                      "it from a backup, or move it aside to start a new store")
  if not MLFLOW_TABLES <= tables:
    raise ConfigError(f"tracking store {path} is an SQLite database but not an MLflow store (it lacks "
                      f"the tables {', '.join(sorted(MLFLOW_TABLES - tables))}); name another file")


def _check_driver(uri: str) -> None:
  from sqlalchemy.engine import make_url
  try:
    dialect = make_url(uri).get_dialect()
    dialect.import_dbapi()
  except ImportError as error:
    module = getattr(error, "name", None) or tracking.one_line(error)
    raise ConfigError(f"tracking URI {shown(uri)} needs the database driver {module}, which is not "
                      "installed: pip install it, or name another store") from None
  except Exception as error:  # A URI SQLAlchemy cannot read, an unknown +driver.
    raise ConfigError(f"tracking URI {shown(uri)}: {tracking.one_line(error)}") from None


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
