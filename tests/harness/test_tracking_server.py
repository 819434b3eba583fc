"""A team's MLflow tracking server: runs record there by MLFLOW_TRACKING_URI alone, from processes
that share nothing else (each its own results folder, as on machines of their own), and the
claims keep a config that several start at once to one training."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from harness.store import leases, tracking
from tests.harness.smoke import FAST_ROW, harness_at_once, reproduce_argv


START_SECONDS = 300  # A loaded two-core machine took 30 s to start a server of four workers.


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(home, port: int = 0):
  """`mlflow server` on the SQLite file home/mlflow.db, on loopback at `port` (a free one if 0);
  its URL once it answers. Its process group is ended however the block ends."""
  url = f"http://127.0.0.1:{port or free_port()}"
  log = open(home / "server.log", "a")
  process = subprocess.Popen(
      [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
       "--default-artifact-root", str(home / "artifacts"), "--host", "127.0.0.1",
       "--port", url.rsplit(":", 1)[1], "--workers", "2"],
      cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
      env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
  try:
    deadline = time.monotonic() + START_SECONDS
    while True:
      try:
        with urllib.request.urlopen(f"{url}/health", timeout=10) as answer:
          if answer.status == 200:
            break
      except OSError:
        pass
      if process.poll() is not None or time.monotonic() > deadline:
        pytest.fail(f"mlflow server did not answer at {url}:\n{(home / 'server.log').read_text()[-3000:]}")
      time.sleep(0.5)
    yield url
  finally:
    for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
      try:
        os.killpg(process.pid, sig)
        process.wait(wait)
        break
      except ProcessLookupError:
        break
      except subprocess.TimeoutExpired:
        continue
    log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
  with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
    yield url


def runs_at_once(url, argvs):
  """`python -m harness run <argv>` for each argv, started together with MLFLOW_TRACKING_URI=url
  and nothing else naming a store; each one's (returncode, stdout, stderr)."""
  return harness_at_once(*[["run", *argv] for argv in argvs], env={"MLFLOW_TRACKING_URI": url})


def test_parallel_runs_record_on_the_server_and_a_config_started_twice_trains_once(server, tmp_path):
  """Three processes at once, each with a results folder of its own: seed 0 twice and seed 1."""
  prefix = "parallel_"
  argvs = [["scale=smoke", *FAST_ROW, "framework=torch", f"seed={seed}", "runtime.threads=1",
            f"tracking.results_dir={tmp_path / name}", f"tracking.experiment_prefix={prefix}"]
           for name, seed in (("a", 0), ("b", 0), ("c", 1))]
  outputs = runs_at_once(server, argvs)
  assert [code for code, _, _ in outputs] == [0, 0, 0], [err[-1500:] for _, _, err in outputs]
  assert sum(err.count("finished in") for _, _, err in outputs) == 2
  assert sum(err.count("skipped, already finished") for _, _, err in outputs) == 1
  client = MlflowClient(tracking_uri=server)
  runs = client.search_runs([client.get_experiment_by_name(f"{prefix}table1").experiment_id])
  assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1"]
  assert {r.info.status for r in runs} == {"FINISHED"}
  for run in runs:  # Their artifacts at the server's artifact root, not in a results folder.
    assert {f.path for f in client.list_artifacts(run.info.run_id)} == {"model", "config.yaml", "curves.csv"}
  assert not list(tmp_path.rglob("*.safetensors"))
  # Processes that find no ledger may each make one; all of them then use the oldest.
  ledgers = client.search_runs([client.get_experiment_by_name(f"{prefix}claims").experiment_id])
  ledger = min(ledgers, key=lambda r: (r.info.start_time, r.info.run_id))
  hashes = {r.data.tags["config_hash"] for r in runs}
  # Each config claimed first by the process that trained it. A process that waited for the
  # holder claims next once it is released, finds the run finished and skips it: nothing else.
  assert {key for key in ledger.data.params if key.endswith(".0")} == {f"{h}.0" for h in hashes}
  later = [key for key in ledger.data.params if not key.endswith(".0")]
  assert all(ledger.data.tags.get(f"{key}.released") == "skipped" for key in later), ledger.data.tags
  assert not any(other.data.params for other in ledgers if other is not ledger)
  assert not any("View run" in out for _, out, _ in outputs)  # MLflow's links stay off the output.


def test_processes_that_share_only_the_server_agree_on_experiments_and_claims(server, tmp_path):
  """Eight trackers, each with its own results folder (so no file lock between them), make the
  same experiment at once and then claim one config at once: one experiment, one winner."""
  trackers = [tracking.Tracker(types.SimpleNamespace(uri=server, experiment_prefix="race_",
                                                     results_dir=str(tmp_path / str(i))))
              for i in range(8)]
  start, ids, won, errors = threading.Barrier(len(trackers)), [], [], []

  def claimant(i, tracker):
    try:
      start.wait()
      ids.append(tracker.experiment_id("table1"))
      if leases.Ledger(tracker).try_claim("abc", 0, leases.Holder("host", "boot", i, i, f"t{i}")):
        won.append(i)
    except Exception as error:
      errors.append(f"{type(error).__name__}: {tracking.one_line(error)}")

  threads = [threading.Thread(target=claimant, args=(i, t)) for i, t in enumerate(trackers)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(600)
  assert not errors
  assert len(ids) == len(trackers) and len(set(ids)) == 1
  assert len(won) == 1


@pytest.mark.all_faults
def test_a_server_that_dies_mid_sweep_stops_it_in_a_minute_and_the_rerun_resumes(tmp_path, fault):
  fault.done("`reproduce` of Table 1 (5 smoke runs, torch, --jobs 1) on a tracking server killed once "
             "the first run finished; then the server restarted on its store and the command rerun")
  home = tmp_path / "server"
  home.mkdir()
  port = free_port()
  argv = ["-m", "harness", *reproduce_argv(tmp_path / "results")]
  argv = [a for a in argv if not a.startswith("tracking.uri=")]
  log = tmp_path / "stderr.log"  # Not a pipe: nobody reads it while the sweep runs.
  with mlflow_server(home, port) as url, open(log, "w") as stderr_file:
    sweep = subprocess.Popen([sys.executable, *argv], env={**os.environ, "MLFLOW_TRACKING_URI": url},
                             stdout=subprocess.DEVNULL, stderr=stderr_file)
    client = MlflowClient(tracking_uri=url)
    while not any(r.info.status == "FINISHED" for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments() if e.name == "table1"])):
      assert sweep.poll() is None, log.read_text()[-2000:]
      time.sleep(1)
  killed = time.monotonic()
  sweep.wait(timeout=600)
  stopped_after = time.monotonic() - killed
  stderr = log.read_text()
  lines = [line for line in stderr.splitlines() if not line.startswith(("table1/", "warning: "))]
  assert sweep.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
  assert stopped_after < 60, stopped_after
  assert lines[-1].startswith("error: SweepStopped: the sweep stopped, "), stderr[-3000:]
  assert "the tracking server stopped answering" in lines[-1]
  with mlflow_server(home, port) as url:
    again = subprocess.run([sys.executable, *argv], env={**os.environ, "MLFLOW_TRACKING_URI": url},
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    client = MlflowClient(tracking_uri=url)
    runs = client.search_runs([client.get_experiment_by_name("table1").experiment_id])
  finished = [r for r in runs if r.info.status == "FINISHED"]
  assert len(finished) == 5 and len({r.data.tags["config_hash"] for r in finished}) == 5
  assert again.stderr.count("skipped, already finished") >= 1
  fault.happened(f"exit 1 {stopped_after:.0f} s after the server died, no traceback, ending "
                 f"'{lines[-1].replace(str(tmp_path), '<tmp>')[:160]}...'; with the server back, the rerun "
                 "finished the other runs (5 FINISHED, each config once)")
