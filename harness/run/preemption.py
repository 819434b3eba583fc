"""A cluster's notice that a run must stop: SLURM sends SIGTERM when it preempts a job, and the
signal a job asks for with --signal before its time limit (submitit asks for SIGUSR2,
signal_delay_s = 120 s ahead in Hydra's launcher; SIGUSR1 is the other common choice). While a
run trains, these signals only raise a flag. At the next step boundary the run writes a
checkpoint of where it stands, is marked preempted (KILLED, with a `preempted` tag), releases
its claim and stops; a rerun or requeue resumes it there, with the metrics of an uninterrupted
run.

How the process then ends is the launcher's business: a handler that was installed before
(submitit's, which requeues the job) is handed the signal; without one the process exits
with 128 + the signal's number, the status of a process that the signal ended (torchrun
restarts on it when given --max-restarts; SLURM's own requeue does not look at it).
"""
import signal
import sys
import threading
from typing import Callable, Dict, Optional

from harness.machine import cluster_signals

SIGNALS = cluster_signals.PREEMPTION


class Preempted(SystemExit):
  """Ends the process after a preempted run has been checkpointed and marked."""

  def __init__(self, signum: int, step: int):
    super().__init__(128 + signum)
    self.signum, self.step = signum, step


class Notice:
  """The preemption signals, noted instead of acted on while the `with` block runs (in the
  main thread: elsewhere Python runs no signal handlers and nothing is installed)."""

  def __init__(self):
    self.signum = 0  # The first signal received; 0: none.
    self._previous: Dict[int, Callable] = {}

  def __enter__(self) -> "Notice":
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._note) for s in SIGNALS}
    return self

  def __exit__(self, kind, error, trace) -> None:
    for signum, handler in self._previous.items():
      if handler is not None:  # None: installed from C, which Python cannot put back.
        signal.signal(signum, handler)
    if kind is None and self.signum:  # Came after the last step's check: acted on as it would be.
      signal.raise_signal(self.signum)

  def _note(self, signum: int, frame) -> None:
    self.signum = self.signum or signum

  def due(self, group) -> int:
    """The signal to stop for at this step boundary, or 0: this process's, or the largest any
    process of its group got (one small collective, which the loop asks for only at the steps
    where every process waits for its device anyway), so that they all stop at the same step."""
    return self.signum if group.count == 1 else group.largest(self.signum)

  def pass_on(self, signum: int) -> None:
    """Hands `signum` to the handler that was there before this block (say, submitit's
    requeue), which may end the process; returns when it does not."""
    previous: Optional[Callable] = self._previous.get(signum)
    if callable(previous):
      previous(signum, sys._getframe())


def name(signum: int) -> str:
  return signal.Signals(signum).name
