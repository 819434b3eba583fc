"""The preemption notice in one process: signals noted, not acted on, inside its block; the
handler from before restored after it and handed the signal (as submitit's requeue would
be); one noted but never acted on raised again as the block ends; a group stops where its
processes agree."""
import os
import signal

from harness.machine.process_group import Group
from harness.run import preemption


def test_signals_are_noted_in_the_block_and_handed_on_to_the_handler_from_before():
  before = []
  previous = signal.signal(signal.SIGUSR2, lambda signum, frame: before.append(signum))
  try:
    try:
      with preemption.Notice() as notice:
        os.kill(os.getpid(), signal.SIGUSR2)
        os.kill(os.getpid(), signal.SIGTERM)  # The first signal is the one to stop for.
        assert notice.signum == signal.SIGUSR2 and before == []
        raise preemption.Preempted(notice.signum, 3)  # As the loop does at the step boundary.
    except preemption.Preempted as stop:
      assert stop.code == 128 + signal.SIGUSR2
    assert before == []  # Acted on: not raised again.
    os.kill(os.getpid(), signal.SIGUSR2)
    assert before == [signal.SIGUSR2]  # Restored.
    notice.pass_on(signal.SIGUSR2)
    assert before == [signal.SIGUSR2] * 2
    notice.pass_on(signal.SIGTERM)  # The default action is not a handler to call: nothing.

    with preemption.Notice():  # Noted after the loop's last check: raised again at the end.
      os.kill(os.getpid(), signal.SIGUSR2)
    assert before == [signal.SIGUSR2] * 3
  finally:
    signal.signal(signal.SIGUSR2, previous)
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_group_stops_where_its_processes_agree_and_one_process_on_its_own_signal():
  class Agreeing(Group):
    def largest(self, value):
      return max(value, int(signal.SIGTERM))  # Another process got SIGTERM.
  notice = preemption.Notice()
  assert notice.due(Group()) == 0
  assert notice.due(Agreeing(0, 2, "torch")) == signal.SIGTERM
  notice.signum = signal.SIGUSR1
  assert notice.due(Group()) == signal.SIGUSR1


def test_preempted_ends_the_process_with_the_signal_s_status():
  stop = preemption.Preempted(signal.SIGTERM, 3)
  assert isinstance(stop, SystemExit) and stop.code == 143 and stop.step == 3
