"""`reproduce`: every row x framework x seed of the chosen experiments as Hydra multiruns.

One multirun per experiment (row names differ between experiments) and per set of rows
and frameworks that run the same seeds (a framework or row may run fewer), each a sweep
over row, framework and seed (`curves`
sweeps its own axes through `multirun`), run by Hydra's joblib launcher in `jobs` parallel
processes (one CPU thread each unless runtime.threads says otherwise), or by the launcher
a `hydra/launcher=<name>` override names: `slurm` (harness/conf/hydra/launcher/slurm.yaml)
submits each run as a SLURM job through Hydra's submitit launcher, `submitit_local` runs
the same path as processes on this machine. A failing run is recorded as FAILED and
reported; the sweep goes on and the command exits non-zero at the end. A run that cannot
store its results (a full disk) or reach its tracking server stops the sweep instead, since
every run after it would fail the same way: runs not started by then are not attempted, each
said in a line, and the command ends with one line saying why (SweepStopped).
"""
import contextlib
import errno
import glob
import math
import os
import pathlib
import signal
import sys
import tempfile
import threading
import traceback
import uuid
from typing import Collection, Dict, List, Mapping, Optional, Sequence

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness.configs import compose, registry, run_spec
from harness.machine import durable, host, lifetime
from harness.run import preemption
from harness.store import tracking

_FAILED_MARK = "RUN FAILED"
JOBLIB, JOBS = "joblib", 2  # The default launcher, and its default number of processes.
_RAISE = "HYDRA_FULL_ERROR"
# The file by which the jobs of a sweep learn that it stopped: a job whose run could not store
# its results writes the reason into it, and each job after that appends its run, not attempted.
# On one machine in memory (/dev/shm) where there is one, since the results disk may be full; a
# cluster's jobs share only the results directory, so theirs is there.
STOP_FILE = "HARNESS_SWEEP_STOP"
# The errors of a write that the disk refused, whoever made it (Hydra writes the sweep's config).
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)
# The sweep's process, as its worker processes know it (set in each job's environment).
PARENT = "HARNESS_SWEEP_PARENT"
# What ends a sweep from outside: Ctrl-C (to the whole process group), a kill, a lost terminal.
INTERRUPTIONS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_TRACKER_NOISE = "ignore::UserWarning:joblib.externals.loky.backend.resource_tracker"
# What the next run would meet too: results that cannot be stored, a tracking server that is down.
STOPS_THE_SWEEP = (durable.StorageError, tracking.StoreUnavailable)


class SweepStopped(RuntimeError):
  """A sweep stopped by a run's failure that every run after it would meet: said in one line."""


# A sweep worker may grow this much past its size after its first run before loky replaces it.
WORKER_GROWTH_LIMIT_BYTES = 4 * 2**30


def _keep_worker() -> None:
  """Lets loky (joblib's process pool) keep this worker between runs. It replaces a worker
  whose memory grew 300 MB past its size after its first task, which a switch between the
  frameworks always does: in a smoke sweep 30 of 36 runs started in a fresh process and
  paid the imports and JAX's warm-up again. Runs in one worker share the process-wide
  settings (XLA flags, thread count, core), the same for every run of a sweep, and caches;
  each run seeds what it draws."""
  try:
    from joblib.externals.loky import process_executor
  except ImportError:
    return
  if hasattr(process_executor, "_MAX_MEMORY_LEAK_SIZE"):
    process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_GROWTH_LIMIT_BYTES


def _in_own_processes(cfg: DictConfig) -> str:
  """The job's run as `python -m harness run` on runtime.gpus_per_run GPUs: under torchrun, a
  process per GPU, for PyTorch; one process, which drives them all, for JAX. A process of its
  own also hands the GPUs' memory back when the run ends. 'finished' or 'failed'."""
  import subprocess
  fixed = ("runtime.gpus_per_run", "runtime.progress_index")
  overrides = [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0].lstrip("+") not in fixed]
  overrides += ["runtime.gpus_per_run=0", f"runtime.progress_index={cfg.runtime.progress_index}"]
  launcher = ["-m", "harness"]
  if cfg.framework == "torch":
    launcher = ["-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={cfg.runtime.gpus_per_run}", "-m", "harness"]
  env = dict(os.environ)  # JAX drives every GPU it sees: the run's n, unless the user chose.
  env.setdefault("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(cfg.runtime.gpus_per_run))))
  done = subprocess.run([sys.executable, *launcher, "run", *overrides], env=env)
  if done.returncode - 128 in preemption.SIGNALS:  # Checkpointed and marked: the sweep stops too.
    raise preemption.Preempted(done.returncode - 128, -1)
  if done.returncode:
    print(f"{_FAILED_MARK} {cfg.experiment.name}/{cfg.row} {cfg.framework} seed {cfg.seed}: its "
          f"processes exited with status {done.returncode}", file=sys.stderr, flush=True)
  return "failed" if done.returncode else "finished"


@hydra.main(config_path=str(compose.CONF_DIR), config_name="config", version_base=None)
def _job(cfg: DictConfig) -> str:
  """One run of a multirun; returns 'finished', 'skipped', 'taken over' or 'failed' (never
  raises)."""
  from harness.run import train
  from harness.store import leases
  _keep_worker()
  cfg.runtime.progress_index = cfg.runtime.progress_index + HydraConfig.get().job.num + 1
  if cfg.runtime.gpus_per_run:
    return _in_own_processes(cfg)
  run_id = f"{cfg.experiment.name}/{cfg.row} {cfg.framework} seed {cfg.seed}"
  parent = int(os.environ.get(PARENT, 0))
  worker = bool(parent) and parent != os.getpid()
  if worker:  # A worker process: it ends with the sweep (_ended_at_once).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lifetime.end_with_parent(signal.SIGTERM, parent)
  stop = os.environ.get(STOP_FILE)
  if stop and _stopped(pathlib.Path(stop), run_id):
    return "not attempted"
  train.configure_runtime(cfg.runtime, cfg.framework)  # Before JAX's backend starts.
  try:
    return train.run(run_spec.of(compose.validate(cfg))).status
  except preemption.Preempted as stop:  # Checkpointed and marked; the process ends here.
    if worker:  # Its sweep is gone: loky would block for ever handing the exit to it.
      sys.stderr.flush()
      os._exit(stop.code)
    raise
  except leases.ClaimLost as error:
    print(f"{run_id}: {error}", file=sys.stderr, flush=True)
    return "taken over"
  except Exception as error:  # Reported here and recorded FAILED in MLflow by train.run.
    print(f"{_FAILED_MARK} {run_id}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    if not isinstance(error, train.SELF_EXPLAINED):
      traceback.print_exc()
    if stop and isinstance(error, STOPS_THE_SWEEP):
      _append(pathlib.Path(stop), f"{run_id}: {error}")
    return "failed"


def _append(stop: pathlib.Path, line: str) -> None:
  """Best effort: a disk that refuses this line fails the next run in one line of its own."""
  with contextlib.suppress(OSError), open(stop, "a") as f:  # One short write: whole lines, whoever
    f.write(line.replace("\n", " ") + "\n")                # appends at once.


def _reason(stop: pathlib.Path) -> Optional[str]:
  """Why the sweep stopped (the stop file's first line); None while it has not. An empty file,
  which a disk that refused the line may leave, says nothing."""
  try:
    return stop.read_text().splitlines()[0]
  except (OSError, IndexError):
    return None


def _stopped(stop: pathlib.Path, run_id: str) -> bool:
  """Whether the sweep stopped; if so, says that `run_id` is not attempted, here and in `stop`."""
  reason = _reason(stop)
  if reason is None:
    return False
  print(f"not attempted: {run_id} (the sweep stopped: {reason})", file=sys.stderr, flush=True)
  _append(stop, f"not attempted: {run_id}")
  return True


def _stop_file(results_dir: Optional[str] = None) -> pathlib.Path:
  """The sweep's stop file (STOP_FILE): under `results_dir` for a cluster's jobs, else in memory."""
  name = f"harness-sweep-{os.getpid()}-{uuid.uuid4().hex[:8]}.stop"
  if results_dir is not None:
    return pathlib.Path(results_dir).absolute() / f".{name}"
  shm = pathlib.Path("/dev/shm")
  folder = shm if shm.is_dir() and os.access(shm, os.W_OK) else pathlib.Path(tempfile.gettempdir())
  return folder / name


def gpus_per_run(overrides: Sequence[str]) -> bool:
  """Whether the overrides set runtime.gpus_per_run (each run on all the GPUs, one at a time)."""
  given = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "runtime.gpus_per_run"]
  return bool(given) and given[-1] not in ("", "0")


def launcher(overrides: Sequence[str]) -> str:
  """The Hydra launcher that `overrides` choose (hydra/launcher=<name>), joblib by default."""
  chosen = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+") == "hydra/launcher"]
  return chosen[-1] if chosen else JOBLIB


class SubmititReport(Callback):
  """A submitit job prints to its log files, not to this terminal: says where they are when a
  multirun starts and, when it ends, repeats here the line of each run that failed, as a
  joblib worker prints it. (A job that ended without a result, e.g. at SLURM's time limit, is
  reported by `multirun`.)"""

  def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
    folder = config.hydra.launcher.get("submitit_folder")
    self.logs = None
    if folder:  # %j (the job id) names a folder per job; each task writes <id>_<task>_log.err.
      self.logs = "*".join(glob.escape(part) for part in str(folder).split("%j")) + "/*_log.err"
      self.before = set(glob.glob(self.logs))
      print(f"{config.hydra.launcher._target_.rsplit('.', 1)[-1]}: the runs' output goes to "
            f"{folder} (%j: the job id)", file=sys.stderr, flush=True)

  def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
    for path in sorted(set(glob.glob(self.logs)) - self.before) if self.logs else ():
      with open(path, errors="replace") as log:
        for line in log:
          if line.startswith(_FAILED_MARK):
            print(f"{line.rstrip()} (its log: {path})", file=sys.stderr, flush=True)


def multirun(experiment: str, axes: Dict[str, Sequence], jobs: int, overrides: Sequence[str],
             offset: int = 0, total: int = 0, stop: Optional[pathlib.Path] = None,
             left: Optional[int] = None) -> None:
  """One Hydra multirun of `experiment` over the product of `axes` (override key -> values); a
  run's progress line counts it from `offset` of `total` (default: this multirun's size).
  `jobs` is the joblib launcher's number of processes; another launcher's own config says
  how many runs go at once. `stop`: the sweep's stop file (STOP_FILE).
  `left`: how many of its runs are not finished yet (default: all), which caps the workers."""
  size = math.prod(len(values) for values in axes.values())
  left = size if left is None else left
  if gpus_per_run(overrides) and (launcher(overrides) != JOBLIB or jobs != 1):
    raise compose.ConfigError("bad config: runtime.gpus_per_run gives each run all the GPUs in turn, "
                              "one run at a time: it takes neither --jobs nor another launcher")
  argv = ["harness", "--multirun", f"experiment={experiment}",
          *(f"{key}={','.join(map(str, values))}" for key, values in axes.items()),
          f"runtime.progress_index={offset}", f"runtime.progress_total={total or size}",
          "hydra/job_logging=none", "hydra/hydra_logging=none"]
  if launcher(overrides) == JOBLIB:
    # No more worker processes than runs left to train or cores (each holds a framework, about
    # 1 GB; a finished run is only looked up); an override hydra.launcher.n_jobs=N, which comes
    # later on the command line, still sets N.
    cores = host.cores()
    workers = max(1, min(jobs, left, cores))
    if workers < jobs:
      print(f"note: {workers} worker process(es) for {left} run(s) of {experiment} left to train on "
            f"{cores} core(s), not --jobs {jobs}", file=sys.stderr, flush=True)
    argv += [f"hydra/launcher={JOBLIB}", f"hydra.launcher.n_jobs={workers}"]
    if workers > 1 and not any(o.startswith("runtime.threads=") for o in overrides):
      argv.append("runtime.threads=1")
    if workers > 1:  # Not in this process: joblib runs a single worker's jobs here.
      argv.append(f"+hydra.job.env_set.{PARENT}={os.getpid()}")
  else:  # Each run a job of its own, with the cores the launcher's config gives it.
    argv.append(f"+hydra.callbacks.submitit_report._target_={__name__}.SubmititReport")
    workers = 0
  if stop is not None:  # Set in each job's environment by Hydra, whichever worker runs it.
    argv.append(f"+hydra.job.env_set.{STOP_FILE}={stop}")
  if workers > 1 and _TRACKER_NOISE not in os.environ.get("PYTHONWARNINGS", ""):
    # loky's tracker process, once this one is gone, lists the semaphores it cleans up: noise.
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), _TRACKER_NOISE]))
  GlobalHydra.instance().clear()
  with _hydra_command(argv + list(overrides), raise_errors=launcher(overrides) != JOBLIB), \
       _ended_at_once(stop) if workers > 1 else contextlib.nullcontext():
    try:
      _job()
    except OSError as error:
      if error.errno not in STORAGE_ERRNOS:
        raise
      raise durable.StorageError(f"cannot write Hydra's record of the {experiment} sweep in "
                                 f"{error.filename or 'the results directory'}: {error.strerror}") from None
    except Exception as error:
      if type(error).__module__.split(".")[0] != "submitit":
        raise
      # A job ended without its run's result (SLURM's time limit, memory, a node lost, ...):
      # the sweep goes on, as past a failed run; the store tells which runs did not finish.
      print(f"{_FAILED_MARK}: a job of the {experiment} sweep ended without its result; its other "
            f"jobs go on unwatched (`python -m harness list` shows them). {type(error).__name__}: "
            f"{error}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _ended_at_once(stop: Optional[pathlib.Path]):
  """While worker processes run the jobs: an interruption ends this process at once, in one
  line. Each worker, which ignores Ctrl-C and is sent SIGTERM by the kernel when this process
  ends (lifetime.end_with_parent), then checkpoints its run at the next step, marks it KILLED
  (preempted by SIGTERM) and says so in a line of its own; a rerun resumes it there."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def end(signum, frame):
    print(f"{signal.Signals(signum).name}: the sweep stops; runs under way checkpoint, are marked KILLED "
          "and resume on rerun", file=sys.stderr, flush=True)
    if stop is not None:
      stop.unlink(missing_ok=True)
    os._exit(128 + signum)

  previous = {signum: signal.signal(signum, end) for signum in INTERRUPTIONS}
  try:
    yield
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)


@contextlib.contextmanager
def _hydra_command(argv: Sequence[str], raise_errors: bool):
  """Hydra's command line as @hydra.main reads it; raise_errors: Hydra raises an error of the
  launcher's (HYDRA_FULL_ERROR) rather than printing it and exiting."""
  saved = sys.argv, os.environ.get(_RAISE)
  sys.argv = list(argv)
  if raise_errors:
    os.environ[_RAISE] = "1"
  try:
    yield
  finally:
    sys.argv = saved[0]
    if saved[1] is None:
      os.environ.pop(_RAISE, None)
    else:
      os.environ[_RAISE] = saved[1]


def reproduce(experiments: Sequence[str], seeds: Mapping[str, Mapping[str, Mapping[str, Sequence[int]]]],
              jobs: int, overrides: Sequence[str], finished: Collection[tuple] = ()) -> None:
  """Runs the sweep of `seeds` (framework -> experiment -> row -> its seeds); what is finished
  already is skipped inside each run. `finished`: the (experiment, row, framework, seed) found
  finished before the sweep, which no worker process is started for. A multirun sweeps a
  product of rows, frameworks and seeds, so the rows and frameworks that run the same seeds
  share one."""
  cfg = compose.load(list(overrides))  # A bad override fails here, once, before anything starts.
  # A cluster launcher's jobs take the task layout of their framework (hydra/launcher/slurm.yaml):
  # a multirun per framework there.
  apart = launcher(overrides) != JOBLIB
  sweeps = []
  for e in experiments:
    frameworks_by_axes: Dict[tuple, list] = {}  # (rows, seeds) -> the frameworks that run them
    for framework, per_experiment in seeds.items():
      rows_by_seeds: Dict[tuple, list] = {}
      for row in registry.rows(e):
        its = tuple(per_experiment[e][row.key])
        if its:
          rows_by_seeds.setdefault(its, []).append(row.key)
      for its, rows in rows_by_seeds.items():
        frameworks_by_axes.setdefault((tuple(rows), its, framework if apart else ""), []).append(framework)
    sweeps += [(e, list(rows), fws, list(its)) for (rows, its, _), fws in frameworks_by_axes.items()]
  total = sum(len(rows) * len(fws) * len(s) for _, rows, fws, s in sweeps)
  offset, stop = 0, _stop_file(cfg.tracking.results_dir if apart else None)
  try:
    for at, (experiment, rows, frameworks, its_seeds) in enumerate(sweeps):
      left = sum((experiment, row, framework, seed) not in finished
                 for row in rows for framework in frameworks for seed in its_seeds)
      refused = None  # Hydra's own write of the sweep, refused by the disk.
      try:
        multirun(experiment, {"row": rows, "framework": frameworks, "seed": its_seeds}, jobs, overrides,
                 offset, total, stop, left)
      except durable.StorageError as error:
        refused = str(error)
        _append(stop, refused)
      offset += len(rows) * len(frameworks) * len(its_seeds)
      if refused or _reason(stop):
        _stop(stop, [f"{e}/{row} {framework} seed {seed}" for e, rows, fws, s in sweeps[at + 1:]
                     for row in rows for framework in fws for seed in s], refused)
  finally:
    stop.unlink(missing_ok=True)


def _stop(stop: pathlib.Path, later: List[str], reason: Optional[str] = None) -> None:
  """Ends a stopped sweep: the runs it never started, then one error (`reason`, else the stop
  file's first line)."""
  for run_id in later:
    print(f"not attempted: {run_id}", file=sys.stderr, flush=True)
  try:
    lines = stop.read_text().splitlines()
  except OSError:  # The disk refused even the stop file: `reason` says why.
    lines = []
  skipped = sum(line.startswith("not attempted: ") for line in lines) + len(later)
  raise SweepStopped(f"the sweep stopped, {skipped} run(s) not attempted: {reason or _reason(stop)} "
                     "(finished runs are kept; rerun the same command once it is mended)")
