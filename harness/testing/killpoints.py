"""Faults on cue, for the fault tests and `nox -s faults`; inert unless their variable is set.

HARNESS_KILL_AT=<point>:<step> makes the process exit at once with status 137, as under
SIGKILL (no cleanup, no atexit), at that point of that step. Points: `start` (the MLflow
run opened, nothing trained; step: the first step), `step` (its update done),
`checkpoint` (its state written, not yet committed), `log` (a metrics batch about to be
logged), `eval` (the final evaluation about to start; step: the last step), `artifacts` (the
run's artifacts logged, the run not yet marked finished; step: the last step).

HARNESS_NAN_AT=<row>:<step> makes that row's training loss NaN at that step, as a
diverging run's would be, to follow a divergence through a sweep.

HARNESS_SIGNAL_AT=<signal>:<step> (SIGTERM, SIGUSR1, SIGUSR2) makes the process that keeps the run's
record send itself that signal once the step's update is done, as a cluster would while the
step runs.
"""
import os
import signal

KILL_ENV, NAN_ENV, SIGNAL_ENV = "HARNESS_KILL_AT", "HARNESS_NAN_AT", "HARNESS_SIGNAL_AT"
POINTS = ("start", "step", "checkpoint", "log", "eval", "artifacts")


def _target(variable: str):
  spec = os.environ.get(variable, "")
  if not spec:
    return None
  where, step = spec.rsplit(":", 1)
  if variable == KILL_ENV and where not in POINTS:
    raise ValueError(f"{KILL_ENV}={spec!r}: the point must be one of {', '.join(POINTS)}")
  return where, int(step)


def reached(point: str, step: int, keeps_record: bool = True) -> None:
  """Exits at `point` of `step` if that is the cue, in the process that keeps the run's record
  (process 0 of a data-parallel run; the others wait for it in their next collective), so that
  what the run leaves behind is that point's, not a race between the processes."""
  if keeps_record and _target(KILL_ENV) == (point, step):
    os._exit(137)


def signal_after(step: int, keeps_record: bool = True) -> None:
  target = _target(SIGNAL_ENV)
  if keeps_record and target is not None and target[1] == step:
    os.kill(os.getpid(), signal.Signals[target[0]])


def loss(row: str, step: int, value: float) -> float:
  return float("nan") if _target(NAN_ENV) == (row, step) else value
