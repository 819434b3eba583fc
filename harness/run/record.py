"""A run's bookkeeping, kept out of the training loop: its claim, its checkpoints, its MLflow
run, and the metrics not yet logged.

`RunRecord.claim_run` claims the config (harness/store/leases.py); `open` then resumes the
newest good checkpoint into its MLflow run, or starts over in the MLflow run of a
process that died before a usable checkpoint, or starts a new MLflow run; `step_done` buffers the step's
metrics, logs them every `log_every` steps and checkpoints every `checkpoint_every` (logs_after,
checkpoints_after: the training loop reads its losses at those steps too);
`finish` logs the results, marks the run FINISHED and deletes the checkpoints; `end`
marks it FAILED or KILLED with the reason as tags; `preempt` checkpoints where the run stands
and marks it preempted (harness/run/preemption.py).

In a data-parallel run over several processes (harness/machine/process_group.py) process 0 keeps the
record and tells the others what they need of it: whether the run is finished, and the
step it resumes at, whose checkpoint they load themselves. The others hold a `Follower`.
"""
import json
import os
import pathlib
import shutil
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

from harness.data.metrics import REPLICATE
from harness.machine import durable
from harness.machine.process_group import Group
from harness.store import leases, tracking
from harness.testing import killpoints

KEEP_CHECKPOINTS = 2  # The newest and one before it, for when the newest does not load.


class Checkpoints:
  """The training states of an unfinished run: results/checkpoints/<config hash>/step-<n>/,
  each a `state` and a `meta.json` naming its step, MLflow run and the state's SHA-256.

  A step's folder is written whole or not at all (harness/machine/durable.py), so its meta can
  only vouch for the state beside it.
  """

  def __init__(self, results_dir: str, config_hash: str):
    self.dir = pathlib.Path(results_dir) / "checkpoints" / config_hash

  def _steps(self) -> Dict[int, pathlib.Path]:
    """Committed checkpoints by step, newest first."""
    found = {int(p.name[5:]): p for p in self.dir.glob("step-*") if p.name[5:].isdigit()}
    return dict(sorted(found.items(), reverse=True))

  def save(self, runner, meta: dict) -> None:
    def write(folder: pathlib.Path) -> None:
      runner.save(folder / "state")
      (folder / "meta.json").write_text(json.dumps({**meta, "sha256": durable.sha256(folder / "state")}))
      killpoints.reached("checkpoint", meta["step"] - 1)

    durable.write_folder(self.dir / f"step-{meta['step']}", write, "checkpoint")
    for old in list(self._steps().values())[KEEP_CHECKPOINTS:]:
      shutil.rmtree(old, ignore_errors=True)

  def _verified_meta(self, step: int, folder: pathlib.Path) -> dict:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("step") != step:
      raise ValueError(f"its meta says step {meta.get('step')}")
    if durable.sha256(folder / "state") != meta.get("sha256"):
      raise ValueError("its state does not match the checksum in its meta (truncated or corrupted)")
    return meta

  def restore(self, runner, run_ids) -> Optional[dict]:
    """Loads the newest checkpoint that belongs to one of `run_ids` and verifies and loads;
    returns its meta, or None (train from scratch). One that fails is moved aside with a
    warning; folders left by a writer that died are removed."""
    for stray in self.dir.glob(".step-*.tmp-*"):  # durable.write_folder's temporaries.
      shutil.rmtree(stray, ignore_errors=True)  # This process holds the claim: no writer is alive.
    for step, folder in self._steps().items():
      try:
        meta = self._verified_meta(step, folder)
        if meta.get("run_id") not in run_ids:
          continue
        runner.load(folder / "state")
        return meta
      except Exception as error:  # Any way a checkpoint can be unreadable.
        aside = folder.with_name(f"{folder.name}.bad-{int(time.time())}")
        os.rename(folder, aside)
        print(f"warning: checkpoint {folder} is unusable ({type(error).__name__}: "
              f"{tracking.one_line(error)}); moved to {aside.name}", file=sys.stderr, flush=True)
    return None

  def load(self, runner, step: int) -> None:
    """Loads the committed checkpoint of `step`: one that `restore` chose in another process
    (a data-parallel run's process 0), on a disk they share."""
    folder = self._steps().get(step)
    if folder is None:
      raise FileNotFoundError(f"checkpoint of step {step} not found in {self.dir} (is it on a disk "
                              "every process of the run shares?)")
    runner.load(folder / "state")

  def remove(self) -> None:
    shutil.rmtree(self.dir, ignore_errors=True)


class Finished(NamedTuple):
  """A config's FINISHED MLflow run."""
  run_id: str
  metrics: Dict[str, float]


class Follower:
  """The record as a data-parallel run's processes other than 0 hold it: what process 0
  decides, heard from it; nothing written."""
  run_id, prior_seconds = "", 0.0

  def __init__(self, group: Group, results_dir: str, config_hash: str):
    self.group, self.checkpoints = group, Checkpoints(results_dir, config_hash)
    self.began = time.monotonic()

  def finished_run(self) -> Optional[Finished]:
    return self.group.broadcast()

  def claim_run(self, on_wait) -> None:
    pass

  def open(self, runner, *args, **kwargs) -> int:
    """Process 0's first step; the checkpoint it resumed from, loaded here too (a shared disk)."""
    first = self.group.broadcast()
    if first:
      self.checkpoints.load(runner, first)
    self.began = time.monotonic()
    return first

  def seconds(self) -> float:
    return time.monotonic() - self.began

  def step_done(self, *args, **kwargs) -> None:
    pass

  def keep(self, *args) -> None:
    pass

  def finish(self, *args) -> None:
    pass

  def end(self, *args) -> None:
    pass

  def preempt(self, *args) -> None:
    pass

  def release(self, *args) -> None:
    pass


def flatten(tree, prefix="") -> Dict[str, object]:
  """A nested dict as {'a.b.c': value}, for MLflow params."""
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(flatten(value, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: tree}


def logs_after(step: int, runtime, last: bool) -> bool:
  """Whether a run logs its buffered metrics after `step`: after every runtime.log_every-th step
  (counted from step 0, so that a resumed run logs where an uninterrupted one does) and the last."""
  return last or (step + 1) % runtime.log_every == 0


def checkpoints_after(step: int, runtime, last: bool) -> bool:
  """Whether a run writes a checkpoint after `step`: after every runtime.checkpoint_every-th
  step (0: never), but not the last, after which the run finishes instead."""
  return bool(runtime.checkpoint_every) and (step + 1) % runtime.checkpoint_every == 0 and not last


class RunRecord:
  def __init__(self, tracker: tracking.Tracker, artifact: str, config_hash: str, runtime,
               results_dir: str, group: Group = Group()):
    self.tracker, self.artifact, self.config_hash, self.group = tracker, artifact, config_hash, group
    self.runtime = runtime
    self.checkpoints = Checkpoints(results_dir, config_hash)
    self.run_id, self.prior_seconds, self.began = "", 0.0, time.monotonic()
    self.claim: Optional[leases.Claim] = None
    self.logged_through = -1  # Steps up to this one are in MLflow already (from before a resume).
    self._pending: List[Dict[str, float]] = []

  def finished_run(self) -> Optional[Finished]:
    """The FINISHED MLflow run of this config, if any (told to the group's other processes)."""
    done = self.tracker.finished_run(self.artifact, self.config_hash)
    return self.group.broadcast(done and Finished(done.info.run_id, dict(done.data.metrics)))

  def claim_run(self, on_wait) -> None:
    """Waits until no live process trains this config, then holds it (harness/store/leases.py)."""
    self.claim = leases.acquire(self.tracker, self.config_hash, on_wait)

  def open(self, runner, name: str, tags: Dict[str, str], params: Dict[str, object],
           first_metrics: Dict[str, float]) -> int:
    """Resumes or starts the MLflow run (holding the claim); returns the first step to train."""
    runs = self.tracker.runs(self.artifact, self.config_hash)  # Newest first.
    meta = self.checkpoints.restore(runner, {r.info.run_id for r in runs})
    # RUNNING runs of this config are dead ones: this process holds the claim.
    dead = [r.info.run_id for r in runs if r.info.status == tracking.RUNNING]
    first = 0
    if meta is not None:
      self.run_id, self.prior_seconds, first = meta["run_id"], meta["seconds"], meta["step"]
    else:
      self.checkpoints.remove()  # Another MLflow run's, or none usable.
      if dead:  # Died before a usable checkpoint: starts over in its own MLflow run.
        self.run_id = dead[0]
        self.tracker.log_params(self.run_id, params)  # The same values: a no-op unless it died first.
      else:
        self.run_id = self.tracker.start(self.artifact, name, tags={"config_hash": self.config_hash, **tags})
        self.tracker.log_params(self.run_id, params)
        self.tracker.log_metrics(self.run_id, [{"step": 0, **first_metrics}])
    if meta is not None or dead:
      self.tracker.reopen(self.run_id)
      history = self.tracker.client.get_metric_history(self.run_id, "train_loss")
      self.logged_through = max((m.step for m in history), default=-1)
    for stale in dead:  # Older dead runs of the config (from before runs were claimed).
      if stale != self.run_id:
        self.tracker.set_tags(stale, {tracking.FAILURE_TAG: "its process died; superseded"})
        self.tracker.end(stale, tracking.KILLED)
    if self.claim is not None:
      self.tracker.set_tags(self.run_id, {"claim": f"{self.claim.number} {self.claim.holder.encode()}"})
    self.began = time.monotonic()
    return self.group.broadcast(first)

  def seconds(self) -> float:
    """Training time so far, across resumes."""
    return self.prior_seconds + time.monotonic() - self.began

  def step_done(self, runner, step: int, last: bool, **metrics: float) -> None:
    """Buffers the metrics of `step` (unless MLflow has them from before a resume: a resumed
    run repeats them exactly); logs and checkpoints when due."""
    if self.claim is not None:
      self.claim.check()
    if step > self.logged_through:
      self._pending.append({"step": step, **metrics})
    if self._pending and logs_after(step, self.runtime, last):
      killpoints.reached("log", step)
      self.tracker.log_metrics(self.run_id, self._pending)
      self._pending = []
    if checkpoints_after(step, self.runtime, last):
      self.checkpoints.save(runner, {"step": step + 1, "run_id": self.run_id, "seconds": self.seconds()})

  def keep(self, log_artifacts, step: int) -> None:
    """Logs the run's artifacts (log_artifacts(tracker, run_id)) before it is marked finished:
    a run that dies here is still RUNNING, resumes, and logs them again over these."""
    log_artifacts(self.tracker, self.run_id)
    killpoints.reached("artifacts", step)

  def finish(self, step: int, results: Dict[str, float], replicates: Sequence[float] = ()) -> None:
    """Logs the results, and the replicates (metrics.item_replicates) as the history of
    REPLICATE, value b at step b; then marks the run FINISHED."""
    done = set()
    if self.logged_through >= 0:  # Resumed: what a dying attempt logged stays, not doubled.
      logged = self.tracker.client.get_run(self.run_id).data.metrics
      results = {k: v for k, v in results.items() if k not in logged}
      done = {m.step for m in self.tracker.client.get_metric_history(self.run_id, REPLICATE)}
    rows = [{"step": b, REPLICATE: float(v)} for b, v in enumerate(replicates) if b not in done]
    self.tracker.log_metrics(self.run_id, [{"step": step, **results}, *rows])
    self.tracker.end(self.run_id, tracking.FINISHED)
    self.checkpoints.remove()
    self.release(tracking.FINISHED)

  def preempt(self, runner, step: int, signal_name: str) -> None:
    """Logs the metrics not yet logged and checkpoints `step` (the next step to train, unless
    its checkpoint was just written), then marks the run KILLED, preempted by `signal_name`,
    and releases the claim: a rerun resumes at `step`."""
    if self._pending:
      self.tracker.log_metrics(self.run_id, self._pending)
      self._pending = []
    if step not in self.checkpoints._steps():
      self.checkpoints.save(runner, {"step": step, "run_id": self.run_id, "seconds": self.seconds()})
    self.tracker.set_tags(self.run_id, {
        tracking.PREEMPTED_TAG: signal_name, tracking.FAILURE_STEP_TAG: str(step),
        tracking.FAILURE_TAG: f"preempted by {signal_name}; checkpointed, resumes at step {step}"})
    self.tracker.end(self.run_id, tracking.KILLED)
    self.release("preempted")

  def end(self, status: str, error: Optional[BaseException] = None, step: Optional[int] = None) -> None:
    """Marks an opened run KILLED or FAILED, with why and at which step as tags. Never raises:
    the store may be what failed (a full disk); the caller reports the error itself."""
    try:
      if self.run_id:
        if error is not None:
          tags = {tracking.FAILURE_TAG: f"{type(error).__name__}: {tracking.one_line(error)}"}
          if step is not None:
            tags[tracking.FAILURE_STEP_TAG] = str(step)
          self.tracker.set_tags(self.run_id, tags)
        self.tracker.end(self.run_id, status)
      self.release(status)
    except Exception as failure:
      if not any(isinstance(failure, said) and isinstance(error, said)
                 for said in (durable.StorageError, tracking.StoreUnavailable)):
        print(f"warning: could not mark the run {status} in MLflow: {tracking.one_line(failure)}",
              file=sys.stderr, flush=True)  # Unless it is what the caller is reporting.

  def release(self, how: str) -> None:
    if self.claim is not None:
      self.claim.release(how)
      self.claim = None
