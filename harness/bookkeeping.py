"""A run's bookkeeping, kept out of the training loop: its checkpoint, its MLflow run, and
the metrics not yet logged.

`RunRecord.open` resumes the last checkpoint into the same MLflow run, or starts
a new MLflow run (marking runs of the same config that were killed before any
checkpoint as KILLED); `step_done` buffers the step's metrics, logs them every
`log_every` steps and checkpoints every `checkpoint_every`; `finish` logs the
results, marks the run FINISHED and deletes the checkpoint.
"""
import json
import os
import pathlib
import shutil
import time
from typing import Dict, List, Optional

from harness import tracking


class Checkpoint:
  """The training state of an unfinished run, written atomically every few steps."""

  def __init__(self, results_dir: str, config_hash: str):
    self.dir = pathlib.Path(results_dir) / "checkpoints" / config_hash

  def meta(self) -> Optional[dict]:
    path = self.dir / "meta.json"
    return json.loads(path.read_text()) if path.is_file() else None

  def save(self, runner, meta: dict) -> None:
    self.dir.mkdir(parents=True, exist_ok=True)
    state, state_tmp = self.dir / "state", self.dir / "state.tmp"
    runner.save(state_tmp)
    os.replace(state_tmp, state)
    (self.dir / "meta.tmp").write_text(json.dumps(meta))
    os.replace(self.dir / "meta.tmp", self.dir / "meta.json")  # Meta last: it vouches for state.

  def restore(self, runner) -> None:
    runner.load(self.dir / "state")

  def remove(self) -> None:
    shutil.rmtree(self.dir, ignore_errors=True)


def flatten(tree, prefix="") -> Dict[str, object]:
  """A nested dict as {'a.b.c': value}, for MLflow params."""
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(flatten(value, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: tree}


class RunRecord:
  def __init__(self, tracker: tracking.Tracker, artifact: str, config_hash: str, runtime,
               results_dir: str):
    self.tracker, self.artifact, self.config_hash = tracker, artifact, config_hash
    self.log_every, self.checkpoint_every = runtime.log_every, runtime.checkpoint_every
    self.checkpoint = Checkpoint(results_dir, config_hash)
    self.run_id, self.prior_seconds, self.began = "", 0.0, time.monotonic()
    self._pending: List[Dict[str, float]] = []

  def finished_run(self):
    """The FINISHED MLflow run of this config, if any."""
    return self.tracker.finished_run(self.artifact, self.config_hash)

  def open(self, runner, name: str, tags: Dict[str, str], params: Dict[str, object],
           first_metrics: Dict[str, float]) -> int:
    """Resumes or starts the MLflow run; returns the first step to train."""
    meta = self.checkpoint.meta()
    runs = self.tracker.runs(self.artifact, self.config_hash)
    if meta is not None and meta["run_id"] in {r.info.run_id for r in runs}:
      self.checkpoint.restore(runner)
      self.run_id, self.prior_seconds, first = meta["run_id"], meta["seconds"], meta["step"]
      self.tracker.reopen(self.run_id)
    else:
      for stale in runs:  # Killed before any checkpoint: superseded.
        if stale.info.status == tracking.RUNNING:
          self.tracker.end(stale.info.run_id, tracking.KILLED)
      self.run_id = self.tracker.start(self.artifact, name, tags={"config_hash": self.config_hash, **tags})
      self.tracker.log_params(self.run_id, params)
      self.tracker.log_metrics(self.run_id, [{"step": 0, **first_metrics}])
      first = 0
    self.began = time.monotonic()
    return first

  def seconds(self) -> float:
    """Training time so far, across resumes."""
    return self.prior_seconds + time.monotonic() - self.began

  def step_done(self, runner, step: int, last: bool, **metrics: float) -> None:
    """Buffers the metrics of `step`; logs and checkpoints when due."""
    self._pending.append({"step": step, **metrics})
    if len(self._pending) >= self.log_every or last:
      self.tracker.log_metrics(self.run_id, self._pending)
      self._pending = []
    if self.checkpoint_every and (step + 1) % self.checkpoint_every == 0 and not last:
      self.checkpoint.save(runner, {"step": step + 1, "run_id": self.run_id, "seconds": self.seconds()})

  def finish(self, step: int, results: Dict[str, float]) -> None:
    self.tracker.log_metrics(self.run_id, [{"step": step, **results}])
    self.tracker.end(self.run_id, tracking.FINISHED)
    self.checkpoint.remove()

  def end(self, status: str) -> None:
    """Marks an opened run KILLED or FAILED."""
    if self.run_id:
      self.tracker.end(self.run_id, status)
