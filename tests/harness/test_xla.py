"""XLA_FLAGS as runs and the test session set them (harness/machine/xla_flags.py, conftest.py)."""
import os
import textwrap

from harness.machine import xla_flags
from tests.processes import python


def test_our_flags_come_first_and_once():
  present = "intra_op_parallelism_threads=1 --xla_cpu_multi_thread_eigen=false --xla_dump_to=/tmp"
  flags = xla_flags.with_flags([*xla_flags.ONE_THREAD, *xla_flags.FAST_COMPILE], present)
  assert flags.split() == [*xla_flags.ONE_THREAD, *xla_flags.FAST_COMPILE,
                           "intra_op_parallelism_threads=1", "--xla_dump_to=/tmp"]


def test_processes_started_by_tests_do_not_inherit_the_sessions_compile_flags():
  """The session compiles fast in its own processes only: a harness run a test starts compiles
  as its config says."""
  assert not set(xla_flags.FAST_COMPILE) & set(os.environ.get("XLA_FLAGS", "").split())


def test_a_run_sets_its_flags_after_jax_is_imported_but_before_its_backend_starts():
  """XLA reads XLA_FLAGS when JAX's backend starts, not when jax is imported, and harness modules
  import jax (the weight converter uses flax). A check on the import once dropped every run's
  flags: smoke runs compiled at full optimisation, two to three times slower."""
  code = textwrap.dedent("""
      import os
      import jax
      from omegaconf import OmegaConf
      from harness.machine import xla_flags
      from harness.run import train
      before = xla_flags.backend_started()
      train.configure_runtime(OmegaConf.create({"threads": 0, "fast_compile": True}), "jax")
      jax.devices()
      print(before, xla_flags.backend_started(), os.environ.get("XLA_FLAGS", ""))
  """)
  done = python("-c", code, drop=["XLA_FLAGS"])
  assert done.returncode == 0, done.stderr[-2000:]
  printed = done.stdout.split()
  assert printed == ["False", "True", *xla_flags.FAST_COMPILE]
