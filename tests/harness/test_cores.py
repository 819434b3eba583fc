"""Parallel runs get cores of their own, and a killed run's cores are free again at once."""
import json
import os
import subprocess
import tempfile

import pytest

from harness.machine import core_locks
from tests.processes import start_python

CLAIMANT = ("import json, os, sys; from harness.machine import core_locks; got = core_locks.claim(int(sys.argv[1])); "
            "print(json.dumps([got, sorted(os.sched_getaffinity(0))]), flush=True); sys.stdin.read()")

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                                reason="needs CPU affinity and at least two cores")


def _claimant(tmp_path, n: int = 1):
  """A process that claims n cores, reports (claimed, its affinity) and waits."""
  job = start_python("-c", CLAIMANT, str(n), env={"TMPDIR": str(tmp_path)},  # Its own lock directory.
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
  claimed, affinity = json.loads(job.stdout.readline())
  return job, claimed, affinity


def test_parallel_claimants_get_distinct_cores_and_a_killed_ones_core_is_reclaimed(tmp_path):
  jobs = []
  try:
    first, first_cores, first_affinity = _claimant(tmp_path)
    jobs.append(first)
    second, second_cores, second_affinity = _claimant(tmp_path)
    jobs.append(second)
    assert len(first_cores) == len(second_cores) == 1 and first_cores != second_cores
    assert first_affinity == first_cores and second_affinity == second_cores  # Pinned to them.
    first.kill()
    first.wait()
    third, third_cores, _ = _claimant(tmp_path)
    jobs.append(third)
    assert third_cores == first_cores
  finally:
    for job in jobs:
      job.kill()
      job.wait()


def test_a_claim_of_every_core_pins_nothing():
  assert core_locks.claim(len(os.sched_getaffinity(0))) == ()


def test_a_process_claims_once(tmp_path, monkeypatch):
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # Its own lock directory.
  held = core_locks.claim(1)
  try:
    assert held and os.sched_getaffinity(0) == set(held)
    assert core_locks.claim(1) == held
    with pytest.raises(ValueError, match="cannot claim 2 instead"):
      core_locks.claim(2)
  finally:
    core_locks.release()
    os.sched_setaffinity(0, range(os.cpu_count()))
