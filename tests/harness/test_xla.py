"""XLA_FLAGS as runs and the test session set them (harness/xla.py, conftest.py)."""
import os

from harness import xla


def test_our_flags_come_first_and_once():
  present = "intra_op_parallelism_threads=1 --xla_cpu_multi_thread_eigen=false --xla_dump_to=/tmp"
  flags = xla.with_flags([*xla.ONE_THREAD, *xla.FAST_COMPILE], present)
  assert flags.split() == [*xla.ONE_THREAD, *xla.FAST_COMPILE,
                           "intra_op_parallelism_threads=1", "--xla_dump_to=/tmp"]


def test_processes_started_by_tests_do_not_inherit_the_sessions_compile_flags():
  """The session compiles fast in its own processes only: a harness run a test starts compiles
  as its config says."""
  assert not set(xla.FAST_COMPILE) & set(os.environ.get("XLA_FLAGS", "").split())
