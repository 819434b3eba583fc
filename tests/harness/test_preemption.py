"""The preemption notice in one process: signals noted, not acted on, inside its block; the
handler from before restored after it and handed the signal (as submitit's requeue would
be); a group stops only at the steps where its processes agree."""
import os
import signal

from harness.machine.process_group import Group
from harness.run import preemption


def test_signals_are_noted_in_the_block_and_handed_on_to_the_handler_from_before():
  before = []
  previous = signal.signal(signal.SIGUSR1, lambda signum, frame: before.append(signum))
  try:
    with preemption.Notice() as notice:
      os.kill(os.getpid(), signal.SIGUSR1)
      os.kill(os.getpid(), signal.SIGTERM)  # The first signal is the one to stop for.
      assert notice.signum == signal.SIGUSR1 and before == []
    os.kill(os.getpid(), signal.SIGUSR1)
    assert before == [signal.SIGUSR1]  # Restored.
    notice.pass_on(signal.SIGUSR1)
    assert before == [signal.SIGUSR1] * 2
    notice.pass_on(signal.SIGTERM)  # The default action is not a handler to call: nothing.
  finally:
    signal.signal(signal.SIGUSR1, previous)
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_group_stops_where_its_processes_agree_and_one_process_at_once():
  class Agreeing(Group):
    def largest(self, value):
      return max(value, int(signal.SIGTERM))  # Another process got SIGTERM.
  notice = preemption.Notice()
  assert notice.due(Group(), 5, 4) == 0
  assert notice.due(Agreeing(0, 2, "torch"), 5, 4) == 0  # Not a step where they agree.
  assert notice.due(Agreeing(0, 2, "torch"), 8, 4) == signal.SIGTERM
  notice.signum = signal.SIGUSR1
  assert notice.due(Group(), 5, 4) == signal.SIGUSR1


def test_preempted_ends_the_process_with_the_signal_s_status():
  stop = preemption.Preempted(signal.SIGTERM, 3)
  assert isinstance(stop, SystemExit) and stop.code == 143 and stop.step == 3
