"""A sweep worker's life tied to its parent's: however the parent ends (a signal, SIGKILL, a lost
terminal), the kernel sends the worker a signal, so that no worker trains on, holding its core
locks, for a sweep that nobody watches. Linux's prctl(PR_SET_PDEATHSIG); elsewhere nothing.
"""
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def end_with_parent(signum: int, parent: int) -> bool:
  """Has the kernel send this process `signum` when its parent, `parent`, ends; sends it now if
  that parent is gone already. Whether the kernel took the request."""
  if not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    taken = libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
  except (OSError, AttributeError):
    return False
  if taken and os.getppid() != parent:  # Ended before the request: nothing would come.
    signal.raise_signal(signum)
  return taken
