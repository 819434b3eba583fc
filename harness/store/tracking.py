"""MLflow tracking: one MLflow experiment per paper artifact, one MLflow run per training run.

The store is a SQLite file under results/ unless tracking.uri or
$MLFLOW_TRACKING_URI names another. Runs are found again by the `config_hash`
tag, which is how `reproduce` skips finished work and resumes unfinished work.
Schema and experiment creation happen under a file lock, and writes are retried
while SQLite reports the database locked, so that runs started at once on a
fresh store are all recorded; an experiment another machine created at the same
moment (a tracking server shared by machines the lock does not reach) is found
rather than made twice.

Artifacts (harness/store/artifacts.py) of a SQLite store go beside its database file, in
artifacts/<experiment>/<run id>/artifacts/ (MLflow's own default is ./mlruns in whatever folder the
command runs from); a server's go to its artifact root.
"""
import logging
import os
import pathlib
import time
from typing import Dict, List, Optional, Tuple

from filelock import FileLock

from harness.machine import durable

FINISHED, RUNNING, FAILED, KILLED = "FINISHED", "RUNNING", "FAILED", "KILLED"
# Tags of a run that ended FAILED or KILLED: why (the error's one line) and at which step.
FAILURE_TAG, FAILURE_STEP_TAG = "failure", "failure_step"
PREEMPTED_TAG = "preempted"  # A KILLED run that stopped for a cluster's signal: which one.
RETRY_SECONDS = 120
# How hard a run tries a tracking server before saying it is down: MLflow's defaults (7 retries,
# doubling from 2 s, 120 s per request) spent over 4 minutes in silence per call. Here: 3
# retries 1, 2 and 4 s apart, 20 s per request; a server that refuses costs a run about 7 s.
SERVER_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def short_id(run_id: str) -> str:
  """A run id as messages and captions print it: 8 of its 32 hex digits tell a store's runs apart."""
  return run_id[:8]


def tracking_uri(spec) -> str:
  if spec.uri:
    return spec.uri
  if os.environ.get("MLFLOW_TRACKING_URI"):
    return os.environ["MLFLOW_TRACKING_URI"]
  return f"sqlite:///{pathlib.Path(spec.results_dir).resolve() / 'mlflow.db'}"


def sqlite_file(uri: str) -> Optional[pathlib.Path]:
  """The file of a SQLite store's URI (sqlite[+driver]:///<path>[?<options>], as SQLAlchemy
  reads it); None for any other store, an in-memory one included."""
  if not uri.startswith("sqlite"):
    return None
  from sqlalchemy.engine import make_url
  from sqlalchemy.exc import ArgumentError
  try:
    url = make_url(uri)
  except ArgumentError:
    return None
  if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
    return None
  return pathlib.Path(url.database)


def artifact_location(uri: str, experiment: str) -> Optional[str]:
  """Where a new experiment's artifacts go: beside a SQLite store's file; None (the store's or
  server's default) for any other store."""
  database = sqlite_file(uri)
  return None if database is None else (database.resolve().parent / "artifacts" / experiment).as_uri()


def store_exists(spec) -> bool:
  """A local SQLite store counts only once a run has created it; a remote one always does.
  Readers (list, tables) check first, since opening a store creates it."""
  if spec.uri or os.environ.get("MLFLOW_TRACKING_URI"):
    return True
  return (pathlib.Path(spec.results_dir) / "mlflow.db").exists()


def database_missing(spec) -> bool:
  """Whether the store is a SQLite file, named or the default, that does not exist yet."""
  database = sqlite_file(tracking_uri(spec))
  return database is not None and not database.exists()


class StoreUnavailable(RuntimeError):
  """The tracking server stopped answering: said in one line."""


def one_line(error: BaseException) -> str:
  """An error's first line (its type where it has no message), for tags and one-line reports."""
  lines = str(error).strip().splitlines()
  return lines[0][:500] if lines else type(error).__name__


def _disk_full(error: Exception) -> bool:
  text = str(error).lower()
  return "disk is full" in text or "no space left" in text


def _unanswered(error: Exception) -> str:
  """Why a request to a tracking server got no answer, after MLflow's retries; '' if it did."""
  text = str(error)
  if not text.startswith("API request to ") or " failed with " not in text:
    return ""
  causes = ("Connection refused", "timed out", "timeout", "Name or service not known", "Connection reset",
            "Remote end closed connection")
  return next((cause for cause in causes if cause in text), "no answer")


def _locked(error: Exception) -> bool:
  text = str(error).lower()
  return "database is locked" in text or "database table is locked" in text


def retry(fn, *args, **kwargs):
  """Calls fn, retrying for up to RETRY_SECONDS while SQLite reports a lock."""
  deadline, wait = time.monotonic() + RETRY_SECONDS, 0.05
  while True:
    try:
      return fn(*args, **kwargs)
    except Exception as error:  # MLflow wraps SQLAlchemy's OperationalError in its own types.
      if _disk_full(error):
        raise durable.StorageError("cannot write the tracking store: no space left on its disk") from None
      if _unanswered(error):
        raise StoreUnavailable(f"the tracking server stopped answering ({_unanswered(error)}), also "
                               f"to {SERVER_RETRIES['MLFLOW_HTTP_REQUEST_MAX_RETRIES']} retries") from None
      if not _locked(error) or time.monotonic() > deadline:
        raise
      time.sleep(wait)
      wait = min(wait * 2, 2.0)


class Tracker:
  def __init__(self, spec):
    from mlflow.tracking import MlflowClient
    self.uri = tracking_uri(spec)
    self.prefix = spec.experiment_prefix
    results = pathlib.Path(spec.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    # MLflow logs each database error with its traceback before raising it; the harness
    # reports what it raises itself (in one line where it knows the cause, e.g. a full disk).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    self.local = self.uri.startswith(("sqlite:", "file:", "/")) or "://" not in self.uri
    if not self.local:  # MLflow prints two links per ended run (the claims ledger's too) to a server.
      os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
      for name, value in SERVER_RETRIES.items():  # Unless the user chose.
        os.environ.setdefault(name, value)
    self.lock = FileLock(str(results / ".mlflow.lock"))
    with self.lock:  # The first client on a new SQLite file creates the schema.
      self.client = MlflowClient(tracking_uri=self.uri)
      retry(self.client.search_experiments, max_results=1)

  def experiment_id(self, artifact: str) -> str:
    return self.find_or_create_experiment(artifact)[0]

  def find_or_create_experiment(self, artifact: str) -> Tuple[str, bool]:
    """(the artifact's experiment id, whether this call made it). The store refuses a second
    experiment of a name, so of processes that make it at once exactly one made it."""
    from mlflow.exceptions import MlflowException
    name = self.prefix + artifact
    with self.lock:
      found = retry(self.client.get_experiment_by_name, name)
      if found is not None:
        return found.experiment_id, False
      try:
        return retry(self.client.create_experiment, name,
                     artifact_location=artifact_location(self.uri, name)), True
      except MlflowException as error:  # Made meanwhile by a process the lock does not reach: one
        if error.error_code != "RESOURCE_ALREADY_EXISTS":  # on another machine, on one server.
          raise
        return retry(self.client.get_experiment_by_name, name).experiment_id, False

  def runs(self, artifact: str, config_hash: Optional[str] = None, **tags: str) -> List:
    """Runs of an artifact, newest first; optionally only those of one config hash, or with
    the given tag values (e.g. scale='proxy')."""
    if config_hash:
      tags["config_hash"] = config_hash
    query = " and ".join(f"tags.{k} = '{v}'" for k, v in sorted(tags.items()))
    return retry(self.client.search_runs, [self.experiment_id(artifact)], filter_string=query,
                 order_by=["attributes.start_time DESC"], max_results=10000)

  def finished_run(self, artifact: str, config_hash: str):
    return next((r for r in self.runs(artifact, config_hash) if r.info.status == FINISHED), None)

  def start(self, artifact: str, name: str, tags: Dict[str, str]) -> str:
    run = retry(self.client.create_run, self.experiment_id(artifact), run_name=name, tags=tags)
    return run.info.run_id

  def reopen(self, run_id: str) -> None:
    """Marks a run RUNNING again; a preemption it resumes from is over."""
    retry(self.client.update_run, run_id, status=RUNNING)
    if PREEMPTED_TAG in retry(self.client.get_run, run_id).data.tags:
      retry(self.client.delete_tag, run_id, PREEMPTED_TAG)

  def log_params(self, run_id: str, params: Dict[str, object]) -> None:
    from mlflow.entities import Param
    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch.
      retry(self.client.log_batch, run_id, params=items[start:start + 100])

  def log_metrics(self, run_id: str, rows: List[Dict[str, float]]) -> None:
    """rows: dicts with 'step' and metric values, logged in one batch."""
    from mlflow.entities import Metric
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, int(row["step"])) for row in rows
               for k, v in row.items() if k != "step"]
    for start in range(0, len(metrics), 1000):
      retry(self.client.log_batch, run_id, metrics=metrics[start:start + 1000])

  def set_tags(self, run_id: str, tags: Dict[str, str]) -> None:
    from mlflow.entities import RunTag
    retry(self.client.log_batch, run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

  def log_artifacts(self, run_id: str, folder: pathlib.Path) -> None:
    """Copies every file under `folder` into the run's artifacts, keeping the layout."""
    try:
      retry(self.client.log_artifacts, run_id, str(folder))
    except OSError as error:
      if _disk_full(error):
        raise durable.StorageError("cannot write the run's artifacts: no space left on their disk") from None
      raise

  def end(self, run_id: str, status: str) -> None:
    retry(self.client.set_terminated, run_id, status=status)
