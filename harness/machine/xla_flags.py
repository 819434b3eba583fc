"""XLA's CPU compile flags. JAX's XLA reads XLA_FLAGS once, when its first backend starts."""
import os
import sys
from typing import Sequence

ONE_THREAD = ("--xla_cpu_multi_thread_eigen=false",)
# Backend optimisations and the new CPU fusion emitters off, for programs run so briefly that
# compiling dominates. Measured on a smoke run's three programs (gradient, update, forward):
# 4.7 s to compile at level 0, 1.5 s without the new fusion emitters too; they run 3-10% slower.
FAST_COMPILE = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")


def with_flags(flags: Sequence[str], present: str = "") -> str:
  """XLA_FLAGS holding `flags` ahead of the rest of `present`, each once. Ours first: XLA stops
  reading at the first entry that is not a '--' flag (the common recipe's
  'intra_op_parallelism_threads=1' silently dropped what followed it)."""
  return " ".join([*dict.fromkeys(flags), *(p for p in present.split() if p not in flags)])


def start_with(flags: Sequence[str]) -> None:
  """Starts this process's JAX backend with `flags` added to XLA_FLAGS, then puts XLA_FLAGS back
  as it was, so that the processes this one starts do not inherit them."""
  import jax  # Here: harness runs import this module before they decide their flags.

  before = os.environ.get("XLA_FLAGS")
  set_flags(flags)
  jax.devices()  # XLA reads the flags here, once per process.
  if before is None:
    del os.environ["XLA_FLAGS"]
  else:
    os.environ["XLA_FLAGS"] = before


def backend_started() -> bool:
  """Whether this process's JAX backend has started, i.e. XLA has read XLA_FLAGS. Importing jax
  does not start it (harness modules import it freely); the first device query or program
  does."""
  if "jax" not in sys.modules:
    return False
  from jax._src import xla_bridge  # No public API tells whether the backend has started.
  return xla_bridge.backends_are_initialized()


def set_flags(flags: Sequence[str]) -> None:
  """Adds `flags` to this process's XLA_FLAGS (and so to those of the processes it starts)."""
  if flags:
    os.environ["XLA_FLAGS"] = with_flags(flags, os.environ.get("XLA_FLAGS", ""))
