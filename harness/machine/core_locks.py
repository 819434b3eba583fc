"""Gives each run process cores of its own when runs go in parallel.

XLA's thread flags alone do not hold JAX to one core: its 'one-thread' float32 matmul
ran at 169 GFLOP/s here, against 95 pinned to one core and 181 on both, so parallel
'one-thread' runs shared the cores unevenly. A process that is to use n threads
claims n cores: one lock file per core in the temp directory, held (flock) for the
life of the process, so a killed process frees its cores at once, and the runs of two
commands on one machine share the cores out between them too.
"""
import fcntl
import os
import pathlib
import sys
import tempfile
from typing import List, Tuple

_held: List[Tuple[int, object]] = []  # (core, open lock file); closing the file frees the core.


def lock_dir() -> pathlib.Path:
  return pathlib.Path(tempfile.gettempdir()) / f"tokenlearner-cores-{os.getuid()}"


def claim(n: int) -> Tuple[int, ...]:
  """Pins this process to n cores no other claiming process holds and returns them; () and
  no pinning when n covers every core, the OS cannot pin, or fewer than n are free (that
  one said on stderr). A process claims once: a later call for as many cores returns
  them, for another number raises."""
  if _held:
    if len(_held) != n:
      raise ValueError(f"this process holds {len(_held)} core(s); it cannot claim {n} instead")
    return tuple(core for core, _ in _held)
  if n <= 0 or not hasattr(os, "sched_setaffinity"):
    return ()
  allowed = sorted(os.sched_getaffinity(0))
  if n >= len(allowed):
    return ()
  directory = lock_dir()
  directory.mkdir(exist_ok=True)
  for core in allowed:
    lock = open(directory / f"{core}.lock", "w")
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      lock.close()
      continue
    _held.append((core, lock))
    if len(_held) == n:
      break
  if len(_held) < n:
    release()
    print(f"warning: no {n} free core(s) to pin this process to; it may use more (JAX does)",
          file=sys.stderr)
    return ()
  cores = tuple(core for core, _ in _held)
  os.sched_setaffinity(0, cores)
  return cores


def release() -> None:
  """Frees this process's cores (the claim, not the pinning)."""
  for _, lock in _held:
    lock.close()
  _held.clear()


# A forked child (a data-loader worker, say) gets copies of the lock files; it must not hold
# the parent's cores after the parent is gone.
if hasattr(os, "register_at_fork"):
  os.register_at_fork(after_in_child=release)
