"""XLA_FLAGS as runs and the test session set them (harness/xla.py, conftest.py)."""
import os
import subprocess
import sys
import textwrap

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


def test_a_run_sets_its_flags_after_jax_is_imported_but_before_its_backend_starts():
  """XLA reads XLA_FLAGS when JAX's backend starts, not when jax is imported, and harness modules
  import jax (the weight converter uses flax). A check on the import once dropped every run's
  flags: smoke runs compiled at full optimisation, two to three times slower."""
  code = textwrap.dedent("""
      import os
      import jax
      from omegaconf import OmegaConf
      from harness import train, xla
      before = xla.backend_started()
      train.configure_runtime(OmegaConf.create({"threads": 0, "fast_compile": True}), "jax")
      jax.devices()
      print(before, xla.backend_started(), os.environ.get("XLA_FLAGS", ""))
  """)
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  printed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           check=True).stdout.split()
  assert printed == ["False", "True", *xla.FAST_COMPILE]
