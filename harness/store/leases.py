"""One run, one trainer: a claim on a config, held in the tracking store.

A process trains a config only while it holds the config's claim. Claims live in a
ledger: one MLflow run in the experiment `<prefix>claims`, whose param
`<config_hash>.<n>` names the holder of the config's n-th claim. MLflow refuses to
change a param's value, and its SQL stores enforce that with a unique key, so of two
processes logging the same claim exactly one succeeds, whether they share a machine
or only a tracking server.

A holder shows it is alive by a heartbeat tag (`<config_hash>.<n>.heartbeat`) every
HEARTBEAT_SECONDS and ends its claim with a `released` tag. A claim whose holder is
gone, a process on this host that no longer exists or, elsewhere, a heartbeat older
than STALE_SECONDS, is taken over by logging claim n + 1. A holder that finds the next
claim taken has been declared dead; it stops (ClaimLost) and leaves the run to the new
holder.
"""
import dataclasses
import os
import socket
import threading
import time
import uuid
from typing import Callable, Dict, Optional, Tuple

from harness.machine import host
from harness.store import tracking

HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 5 * HEARTBEAT_SECONDS  # A missed beat or two is a busy machine, not a dead one.
POLL_SECONDS = 2.0
LEDGER_EXPERIMENT = "claims"
LEDGER_TAG = "harness_role"


class ClaimLost(RuntimeError):
  """Another process took this run over, having found its holder dead."""


def _boot_id() -> str:
  try:
    with open("/proc/sys/kernel/random/boot_id") as f:
      return f.read().strip()[:8]
  except OSError:
    return ""


@dataclasses.dataclass(frozen=True)
class Holder:
  host: str
  boot: str
  pid: int
  start: int  # -1 where /proc is missing: then only the heartbeat tells.
  token: str

  def __str__(self) -> str:
    return f"{self.host}:{self.pid}"

  def encode(self) -> str:
    return f"{self.host} {self.boot} {self.pid} {self.start} {self.token}"

  @classmethod
  def decode(cls, text: str) -> "Holder":
    host, boot, pid, start, token = text.split(" ")
    return cls(host, boot, int(pid), int(start), token)

  @classmethod
  def this_process(cls) -> "Holder":
    start = host.process_start_ticks(os.getpid())
    return cls(socket.gethostname(), _boot_id(), os.getpid(), -1 if start is None else start,
               uuid.uuid4().hex[:8])

  def on_this_host(self) -> bool:
    return self.host == socket.gethostname() and self.boot == _boot_id() and self.start >= 0


@dataclasses.dataclass(frozen=True)
class ClaimState:
  """The newest claim on a config, as the ledger records it."""
  number: int
  holder: Holder
  heartbeat: Optional[float]
  released: Optional[str]

  def alive(self, now: Optional[float] = None) -> bool:
    """Whether the holder may still be training: not released, and its process exists (this
    host) or its heartbeat is fresh (elsewhere)."""
    if self.released:
      return False
    if self.holder.on_this_host():
      return host.process_start_ticks(self.holder.pid) == self.holder.start
    return self.heartbeat is not None and (now or time.time()) - self.heartbeat < STALE_SECONDS


def _key(config_hash: str, number: int, field: str = "") -> str:
  return f"{config_hash}.{number}" + (f".{field}" if field else "")


class Ledger:
  """The claims run of one tracking store."""

  def __init__(self, tracker: tracking.Tracker):
    self.tracker = tracker
    self.run_id = self._find_or_create()

  def _find(self, experiment_id: str):
    runs = tracking.retry(self.tracker.client.search_runs, [experiment_id],
                          filter_string=f"tags.{LEDGER_TAG} = 'ledger'", max_results=100)
    # The oldest wins, so that processes that created one at once agree on which.
    return min(runs, key=lambda r: (r.info.start_time, r.info.run_id), default=None)

  def _find_or_create(self) -> str:
    # The process that makes the ledger's experiment makes the ledger; the store lets exactly one
    # make the experiment, so processes that start at once, on one server, find one ledger.
    # Choosing the oldest of several made at once, after a settle, was not enough: a creation
    # that took longer than the settle landed after others had chosen.
    experiment_id, made_it = self.tracker.find_or_create_experiment(LEDGER_EXPERIMENT)
    if made_it:
      self._create(experiment_id)
    found = self._find(experiment_id)
    deadline = time.monotonic() + STALE_SECONDS
    while found is None and time.monotonic() < deadline:  # Its maker is making it.
      time.sleep(POLL_SECONDS)
      found = self._find(experiment_id)
    if found is None:  # Its maker died first. Of ledgers made at once from here, the oldest wins.
      with self.tracker.lock:  # Serialises creation on one machine; the settle covers the rest.
        found = self._find(experiment_id)
        if found is None:
          self._create(experiment_id)
          if not self.tracker.local:
            time.sleep(POLL_SECONDS)  # Lets another machine's creation land before choosing.
          found = self._find(experiment_id)
    return found.info.run_id

  def _create(self, experiment_id: str) -> None:
    run = tracking.retry(self.tracker.client.create_run, experiment_id, run_name="claims",
                         tags={LEDGER_TAG: "ledger"})
    tracking.retry(self.tracker.client.set_terminated, run.info.run_id, status=tracking.FINISHED)

  def states(self) -> Dict[str, ClaimState]:
    """The newest claim of every config hash."""
    run = tracking.retry(self.tracker.client.get_run, self.run_id)
    newest: Dict[str, Tuple[int, str]] = {}
    for key, value in run.data.params.items():
      config_hash, number = key.rsplit(".", 1)
      if int(number) >= newest.get(config_hash, (-1, ""))[0]:
        newest[config_hash] = (int(number), value)
    tags = run.data.tags
    states = {}
    for config_hash, (number, value) in newest.items():
      beat = tags.get(_key(config_hash, number, "heartbeat"))
      states[config_hash] = ClaimState(number, Holder.decode(value), float(beat) if beat else None,
                                       tags.get(_key(config_hash, number, "released")))
    return states

  def state(self, config_hash: str) -> Optional[ClaimState]:
    return self.states().get(config_hash)

  def try_claim(self, config_hash: str, number: int, holder: Holder) -> bool:
    """Logs claim `number`; False if another process logged it first."""
    from mlflow.exceptions import MlflowException
    try:
      tracking.retry(self.tracker.client.log_param, self.run_id, _key(config_hash, number),
                     holder.encode())
    except MlflowException as error:
      if "Changing param values is not allowed" in str(error):
        return False
      raise
    return True

  def set(self, config_hash: str, number: int, field: str, value: str) -> None:
    self.tracker.set_tags(self.run_id, {_key(config_hash, number, field): value})

  def taken_over(self, config_hash: str, number: int) -> bool:
    run = tracking.retry(self.tracker.client.get_run, self.run_id)
    return _key(config_hash, number + 1) in run.data.params


class Claim:
  """This process's claim on a config: heartbeats in a daemon thread until released."""

  def __init__(self, ledger: Ledger, config_hash: str, number: int, holder: Holder):
    self.ledger, self.config_hash, self.number, self.holder = ledger, config_hash, number, holder
    self._lost = threading.Event()
    self._stop = threading.Event()
    self._beat()
    self._thread = threading.Thread(target=self._heartbeats, daemon=True, name=f"claim {config_hash}")
    self._thread.start()

  def _beat(self) -> None:
    self.ledger.set(self.config_hash, self.number, "heartbeat", f"{time.time():.3f}")

  def _heartbeats(self) -> None:
    while not self._stop.wait(HEARTBEAT_SECONDS):
      try:
        if self.ledger.taken_over(self.config_hash, self.number):
          self._lost.set()
          return
        self._beat()
      except Exception:  # A store hiccup: the next beat tries again; staleness is generous.
        pass

  def check(self) -> None:
    """Raises ClaimLost if another process has taken the run over."""
    if self._lost.is_set():
      raise ClaimLost(f"config {self.config_hash} was taken over by another process, which found "
                      f"this one ({self.holder}) dead; it trains the run now")

  def release(self, how: str) -> None:
    self._stop.set()
    if not self._lost.is_set():
      self.ledger.set(self.config_hash, self.number, "released", how)


def acquire(tracker: tracking.Tracker, config_hash: str,
            on_wait: Callable[[ClaimState], None] = lambda state: None) -> Claim:
  """Claims `config_hash`, waiting while a live process holds it (on_wait is told once per
  holder); takes it over from a dead one."""
  ledger, me, told = Ledger(tracker), Holder.this_process(), None
  while True:
    state = ledger.state(config_hash)
    if state is not None and state.alive():
      if told != state.number:
        on_wait(state)
        told = state.number
      time.sleep(POLL_SECONDS)
      continue
    number = 0 if state is None else state.number + 1
    if ledger.try_claim(config_hash, number, me):
      return Claim(ledger, config_hash, number, me)
