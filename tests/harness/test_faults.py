"""Faults a long sweep on a shared machine meets: processes killed at any point, checkpoints
truncated, corrupted or contradicting their meta, runs that diverge, a full disk, two
trainers for one config. Nothing is lost, nothing is trained twice, every ended run says why."""
import contextlib
import json
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from harness.configs import compose, run_spec
from harness.run import train
from harness.machine import durable
from harness.store import leases, run_status, tracking
from harness.testing import killpoints
from tests.harness.smoke import (FAST_ROW, all_runs, harness, harness_at_once, overrides,
                                 reproduce_argv, run_cli, train_losses)

RESUMABLE = [*FAST_ROW, "train.steps=6", "runtime.checkpoint_every=2"]
ALL_ONLY = pytest.mark.all_faults  # Too slow for every test session: `nox -s faults` runs these.
FRAMEWORKS = ("jax", "torch")


def share(cases, in_default):
  """Parameters for every case, those not in `in_default` marked for `nox -s faults` only."""
  return [pytest.param(*case, marks=() if case in in_default else ALL_ONLY, id="-".join(map(str, case)))
          for case in cases]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
  """The resumable run trained without faults, per framework, made when first asked for. In
  a process of its own, as every run here: XLA's programs, and so the last bits of a loss,
  depend on the process's flags."""
  made = {}

  def reference(framework):
    if framework not in made:
      results = tmp_path_factory.mktemp(f"whole-{framework}")
      assert resume(results, framework).returncode == 0
      (run,) = all_runs(results)
      made[framework] = run.data.metrics["test_top1"], train_losses(results, run.info.run_id)
    return made[framework]
  return reference


def resume(results, framework):
  """Runs (or reruns) the resumable config in a fresh process, as `reproduce` would."""
  done = run_cli(results, *RESUMABLE, f"framework={framework}")
  assert done.returncode == 0, done.stderr[-2000:]
  return done


def assert_same_as_uninterrupted(results, reference):
  top1, reference = reference
  (run,) = [r for r in all_runs(results) if r.info.status == tracking.FINISHED]
  assert run.data.metrics["test_top1"] == top1
  assert train_losses(results, run.info.run_id) == reference
  assert not (results / "checkpoints").exists() or not any((results / "checkpoints").iterdir())


KILL_POINTS = {"start:0": "its MLflow run opened, nothing trained",
               "step:2": "right after step 2",
               "checkpoint:3": "writing the step-4 checkpoint: state written, not committed",
               "log:4": "about to log step 4's metrics to MLflow",
               "eval:5": "all steps done, before the final evaluation",
               "artifacts:5": "its artifacts logged, before it is marked finished"}


# The default session kills PyTorch mid-checkpoint and JAX before its first step (a dead run
# with no checkpoint, which starts over); `nox -s faults` at every point in both frameworks.
@pytest.mark.parametrize("framework,point", share(
    [(f, p) for f in FRAMEWORKS for p in KILL_POINTS], [("torch", "checkpoint:3"), ("jax", "start:0")]))
def test_killed_anywhere_resumes_to_the_same_metrics(tmp_path, fault, references, framework, point):
  fault.done(f"{framework} run (6 steps, checkpoints every 2) killed {KILL_POINTS[point]}; rerun")
  killed = run_cli(tmp_path, *RESUMABLE, f"framework={framework}", env={killpoints.KILL_ENV: point})
  assert killed.returncode == 137, killed.stderr[-2000:]
  resume(tmp_path, framework)
  assert_same_as_uninterrupted(tmp_path, references(framework))
  assert len(all_runs(tmp_path)) == 1
  fault.happened("resumed into the same MLflow run; every step's loss and test top-1 identical to "
                 "an uninterrupted run's, each step logged once; checkpoints removed")


def _killed_with_checkpoints(results, framework):
  """A run killed after step 4: checkpoints at steps 2 and 4."""
  killed = run_cli(results, *RESUMABLE, f"framework={framework}", env={killpoints.KILL_ENV: "step:4"})
  assert killed.returncode == 137, killed.stderr[-2000:]
  (folder,) = (results / "checkpoints").iterdir()
  assert sorted(p.name for p in folder.iterdir()) == ["step-2", "step-4"]
  return folder


def _truncate(state):
  with open(state, "r+b") as f:
    f.truncate(1000)


def _flip_bytes(state):
  data = bytearray(state.read_bytes())
  middle = len(data) // 2
  data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
  state.write_bytes(bytes(data))  # Same size: only the checksum can tell.


def _other_steps_state(state):
  state.write_bytes((state.parent.parent / "step-2" / "state").read_bytes())  # Step 4 holds step 2.


def _meta_says_other_step(state):
  meta = json.loads((state.parent / "meta.json").read_text())
  (state.parent / "meta.json").write_text(json.dumps({**meta, "step": 2}))


DAMAGES = {"truncated": (_truncate, "state truncated to 1000 bytes"),
           "corrupted": (_flip_bytes, "64 bytes of state inverted, same size"),
           "state_of_another_step": (_other_steps_state, "state replaced by step 2's"),
           "meta_of_another_step": (_meta_says_other_step, "meta rewritten to say step 2")}


@pytest.mark.parametrize("framework,damage", share(
    [(f, d) for d in DAMAGES for f in FRAMEWORKS],
    [("jax", "truncated"), ("torch", "state_of_another_step")]))
def test_a_bad_checkpoint_is_set_aside_and_the_one_before_used(tmp_path, fault, references, framework,
                                                               damage):
  spoil, how = DAMAGES[damage]
  fault.done(f"{framework} run killed after step 4 (checkpoints at 2 and 4); step 4's {how}; rerun")
  folder = _killed_with_checkpoints(tmp_path, framework)
  spoil(folder / "step-4" / "state")
  stderr = resume(tmp_path, framework).stderr
  (warning,) = [line for line in stderr.splitlines() if line.startswith("warning:")]
  assert "step-4" in warning and "moved to" in warning
  assert "resuming at step 2" in stderr
  assert_same_as_uninterrupted(tmp_path, references(framework))
  fault.happened(f"one line: '{warning[:90]}...'; resumed at step 2 to identical metrics")


@ALL_ONLY  # Damaged checkpoints: the default session has two damages above, one per framework.
def test_every_checkpoint_bad_trains_from_scratch(tmp_path, fault, references):
  fault.done("torch run killed after step 4; both checkpoints truncated; rerun")
  folder = _killed_with_checkpoints(tmp_path, "torch")
  for step in (2, 4):
    _truncate(folder / f"step-{step}" / "state")
  assert "resuming" not in resume(tmp_path, "torch").stderr
  assert_same_as_uninterrupted(tmp_path, references("torch"))
  statuses = sorted(r.info.status for r in all_runs(tmp_path))
  assert statuses == ["FINISHED"]  # The dead run's own MLflow run, started over.
  fault.happened("two warnings; trained from scratch, in the same MLflow run, to identical metrics")


def test_a_diverging_run_is_failed_with_its_reason_and_the_step(tmp_path, fault):
  fault.done("`run` of a torch config with optim.learning_rate=1e6, its losses read every 3 steps")
  done = run_cli(tmp_path, *FAST_ROW, "framework=torch", "optim.learning_rate=1e6", "runtime.log_every=3")
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1].startswith("error: FloatingPointError: loss is nan at step")
  assert "Traceback" not in done.stderr
  (run,) = all_runs(tmp_path)
  assert run.info.status == "FAILED"
  assert run.data.tags[tracking.FAILURE_TAG].startswith("FloatingPointError: loss is nan at step")
  assert run.data.tags[tracking.FAILURE_TAG].endswith(f"at step {run.data.tags[tracking.FAILURE_STEP_TAG]}")
  fault.happened(f"exit 1, one line; FAILED, tagged failure='{run.data.tags[tracking.FAILURE_TAG]}'")


def test_a_full_disk_during_a_checkpoint_keeps_the_last_one_and_leaves_nothing_stray(tmp_path, fault,
                                                                                    monkeypatch):
  fault.done("torch run whose step-4 checkpoint write fails with ENOSPC after writing part of it "
             "(simulated), then rerun")
  from harness.twins.runners import torch_runner
  real_save = torch_runner.TorchRunner.save

  def save_until_full(self, path):
    if "step-4" in str(path):
      path.write_bytes(b"partial")
      raise OSError(28, "No space left on device")
    real_save(self, path)

  monkeypatch.setattr(torch_runner.TorchRunner, "save", save_until_full)
  with pytest.raises(durable.StorageError, match="cannot write checkpoint .*step-4: No space left"):
    train.run(run_spec.load(overrides(tmp_path, *RESUMABLE, "framework=torch")))
  (folder,) = (tmp_path / "checkpoints").iterdir()
  assert [p.name for p in folder.iterdir()] == ["step-2"]  # No stray temporary folder.
  (run,) = all_runs(tmp_path)
  assert run.info.status == "FAILED" and "No space left" in run.data.tags[tracking.FAILURE_TAG]
  monkeypatch.setattr(torch_runner.TorchRunner, "save", real_save)
  resumed = train.run(run_spec.load(overrides(tmp_path, *RESUMABLE, "framework=torch")))
  assert resumed.status == "finished"
  fault.happened("one-line StorageError naming the checkpoint; FAILED with the reason; step-2 "
                 "intact, no temporary folder; the rerun resumed from step 2 and finished")


@contextlib.contextmanager
def small_disk(folder, size: str):
  """A real filesystem of `size` (a tmpfs) mounted at `folder`, for the length of the block."""
  folder.mkdir(parents=True, exist_ok=True)
  if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                    capture_output=True).returncode != 0:
    pytest.skip("cannot mount a tmpfs here (needs root)")
  try:
    yield folder
  finally:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def temporaries(folder):
  return [p for p in folder.rglob("*") if durable.is_temporary(p)]


@pytest.mark.parametrize("framework", share([(f,) for f in FRAMEWORKS], [("torch",)]))
def test_checkpoints_on_a_really_full_disk_fail_the_run_in_one_line(tmp_path, fault, framework):
  fault.done(f"`run` ({framework}, 6 steps) whose checkpoints folder is a 16 KB tmpfs")
  with small_disk(tmp_path / "checkpoints", "16k"):
    done = run_cli(tmp_path, *RESUMABLE, f"framework={framework}")
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("table1/")]  # Progress.
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
    assert re.fullmatch(r"error: StorageError: cannot write checkpoint \S+/step-2: "
                        r"(No space left on device|no space left on its disk)", lines[0]), lines[0]
    assert not temporaries(tmp_path)
    (run,) = all_runs(tmp_path)
    assert run.info.status == "FAILED" and "cannot write checkpoint" in run.data.tags[tracking.FAILURE_TAG]
  fault.happened(f"exit 1, one line: '{lines[0].replace(str(tmp_path), '<tmp>')}'; the run FAILED with "
                 "that reason; no temporary file")


def test_a_sweep_whose_disk_fills_stops_and_lists_the_runs_not_attempted(tmp_path, fault):
  fault.done("`reproduce` of Table 1 (5 smoke runs, torch, --jobs 1) whose checkpoints folder is a "
             "16 KB tmpfs")
  with small_disk(tmp_path / "checkpoints", "16k"):
    done = harness(*reproduce_argv(tmp_path))
  lines = [line for line in done.stderr.splitlines() if not line.startswith("warning: ")]
  failed = [line for line in lines if line.startswith("RUN FAILED")]
  skipped = [line for line in lines if line.startswith("not attempted: ")]
  assert done.returncode == 1, done.stderr[-2000:]
  assert len(failed) == 1 and "StorageError: cannot write checkpoint" in failed[0], done.stderr[-2000:]
  assert len(skipped) == 4 and lines[-1].startswith("error: SweepStopped: the sweep stopped, 4 run(s) "
                                                    "not attempted: table1/"), done.stderr[-2000:]
  assert not temporaries(tmp_path) and "Traceback" not in done.stderr
  assert [r.info.status for r in all_runs(tmp_path)] == ["FAILED"]  # Nothing started after it.
  assert not (tmp_path / "tables").exists()
  fault.happened(f"exit 1: the failed run's line, 4 'not attempted' lines, then "
                 f"'{lines[-1].replace(str(tmp_path), '<tmp>')}'; 1 run FAILED, none started after it, "
                 "no tables written")


def test_tables_on_a_really_full_disk_fail_in_one_line_and_leave_nothing_half_written(tmp_path, fault,
                                                                                      capsys):
  from harness.cli import main
  fault.done("`tables --offline` from the committed run export into a 24 KB tmpfs")
  results = pathlib.Path(__file__).parents[2] / "results"
  with small_disk(tmp_path / "tables", "24k") as out:
    status = main(["tables", "--offline", "--out", str(out), f"tracking.results_dir={results}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(lines) == 1, lines
    assert re.fullmatch(rf"error: StorageError: cannot write the [a-z' ]+ {re.escape(str(out))}/\S+: "
                        r"(No space left on device|no space left on its disk)", lines[0]), lines[0]
    assert not temporaries(out)
    committed = results.parent / "tables"
    for table in out.glob("*.md"):  # Whole or absent: each one written is the committed one.
      assert table.read_bytes() == (committed / table.name).read_bytes(), table.name
  fault.happened(f"exit 1, one line: '{lines[0].replace(str(tmp_path), '<tmp>')}'; the tables written "
                 "before it whole, no temporary file")


@ALL_ONLY
def test_results_on_a_full_disk_fail_in_one_line_and_resume_once_there_is_room(tmp_path, fault):
  fault.done("`run` (torch, 6 steps) with its results on a 2 MB tmpfs, then the tmpfs grown to "
             "64 MB and the run again")
  disk = tmp_path / "disk"
  with small_disk(disk, "2m"):
    full = run_cli(disk, *RESUMABLE, "framework=torch")
    assert full.returncode == 1
    assert full.stderr.strip().splitlines() == [
        "error: StorageError: cannot write the tracking store: no space left on its disk"]
    assert not list(disk.rglob("*.tmp*"))
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    again = run_cli(disk, *RESUMABLE, "framework=torch")
    assert again.returncode == 0, again.stderr[-2000:]
    assert [r.info.status for r in all_runs(disk)] == ["FINISHED"]
  fault.happened("exit 1 with one line (the store could not be written), no temporary file; the "
                 "store intact: with room, the same command finished the run (1 FINISHED)")


def test_a_killed_run_is_listed_dead_until_resumed(tmp_path, fault):
  fault.done("torch run killed after step 2, then `list` (the plan's status)")
  killed = run_cli(tmp_path, *RESUMABLE, "framework=torch", env={killpoints.KILL_ENV: "step:2"})
  assert killed.returncode == 137
  (run,) = all_runs(tmp_path)
  assert run.info.status == "RUNNING"  # MLflow cannot know; the claim can.
  plan = list(run_status.planned(["table1"], ["torch"], [0], overrides(tmp_path, "train.steps=6",
                                                                   "runtime.checkpoint_every=2")))
  (planned,) = [p for p in plan if p.row.key == "pool_4x4_at_12"]
  assert planned.status == run_status.DEAD
  fault.happened("MLflow still says RUNNING; the plan shows it DEAD (no live claim)")


def test_one_config_started_four_times_at_once_is_trained_once(tmp_path, fault):
  fault.done("the same `run` started 4 times at once on a fresh store")
  argv = ["run", *overrides(tmp_path, *FAST_ROW, "framework=torch", "runtime.threads=1")]
  outputs = harness_at_once(*[argv] * 4)
  assert [code for code, _, _ in outputs] == [0] * 4, [err[-1500:] for _, _, err in outputs]
  (run,) = all_runs(tmp_path)
  assert run.info.status == "FINISHED"
  assert sum("already finished" in err for _, _, err in outputs) == 3
  fault.happened("one trained it, three waited for its claim and then skipped it: 1 FINISHED run")


@ALL_ONLY  # Concurrent trainers: the default session has four runs of one config at once.
def test_two_reproduce_at_once_train_each_config_once(tmp_path, fault):
  fault.done("`reproduce --experiments table1 --frameworks torch` (5 configs) twice at once, one store")
  outputs = harness_at_once(*[reproduce_argv(tmp_path)] * 2)
  assert [code for code, _, _ in outputs] == [0, 0], [err[-1500:] for _, _, err in outputs]
  runs = all_runs(tmp_path)
  assert len(runs) == 5 and {r.info.status for r in runs} == {"FINISHED"}
  assert all("5 of 5 runs finished" in out for _, out, _ in outputs)
  trained = sum(err.count("finished in") for _, _, err in outputs)
  assert trained == 5
  fault.happened("5 FINISHED runs, each trained by one of them; both report 5 of 5 finished")


@pytest.mark.parametrize("count", share([(4,), (8,)], []))
def test_many_runs_at_once_on_a_fresh_store_are_all_recorded(tmp_path, fault, count):
  fault.done(f"{count} `run`s of different seeds started at once on a fresh store")
  outputs = harness_at_once(*[["run", *overrides(tmp_path, *FAST_ROW, "framework=torch", f"seed={seed}",
                                                 "runtime.threads=1")] for seed in range(count)])
  assert [code for code, _, _ in outputs] == [0] * count, [err[-1500:] for _, _, err in outputs]
  runs = all_runs(tmp_path)
  assert sorted(int(r.data.tags["seed"]) for r in runs) == list(range(count))
  assert {r.info.status for r in runs} == {"FINISHED"}
  fault.happened(f"{count} FINISHED runs, one per seed")


@ALL_ONLY  # Divergence: the default session has one diverging run.
def test_a_diverging_run_fails_alone_and_the_tables_mark_its_cell(tmp_path, fault):
  fault.done("`reproduce --experiments table1 --frameworks torch` with the 4x4-pool row's loss "
             "NaN at step 1 (HARNESS_NAN_AT)")
  done = harness(*reproduce_argv(tmp_path), env={killpoints.NAN_ENV: "pool_4x4_at_12:1"})
  assert done.returncode == 1, done.stderr[-2000:]
  (failed,) = [line for line in done.stderr.splitlines() if line.startswith("RUN FAILED")]
  assert "pool_4x4_at_12" in failed and "loss is nan at step 1" in failed
  assert "Traceback" not in done.stderr
  runs = all_runs(tmp_path)
  assert sorted(r.info.status for r in runs) == ["FAILED"] + ["FINISHED"] * 4
  assert "4 of 5 runs finished; not finished: FAILED" in done.stdout
  table1 = (tmp_path / "tables" / "smoke" / "table1.md").read_text()
  (row,) = [line for line in table1.splitlines() if line.startswith("| 4x4 pool")]
  assert "(n=1)" not in row
  fault.happened(f"the sweep went on: 4 FINISHED, 1 FAILED; one line '{failed[:80]}...'; exit 1; "
                 "Table 1 has no value for that row")


class TestClaims:
  """The claim protocol itself, against a real store, with holders made up."""

  @pytest.fixture
  def tracker(self, tmp_path):
    spec = compose.load(overrides(tmp_path)).tracking
    return tracking.Tracker(spec)

  def test_of_many_claimants_exactly_one_wins(self, tracker):
    ledger, won = leases.Ledger(tracker), []

    def claimant(i):
      holder = leases.Holder("host", "boot", i, i, f"t{i}")
      if ledger.try_claim("abc", 0, holder):
        won.append(i)

    threads = [threading.Thread(target=claimant, args=(i,)) for i in range(8)]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
    assert len(won) == 1
    assert ledger.state("abc").holder.pid == won[0]

  def test_the_ledger_is_made_by_the_process_that_made_its_experiment(self, tracker, monkeypatch):
    """Another process made the claims experiment and is slow to make the ledger: this one
    waits for that ledger instead of making a second, whatever their start times."""
    monkeypatch.setattr(leases, "POLL_SECONDS", 0.05)
    experiment_id, made_it = tracker.find_or_create_experiment(leases.LEDGER_EXPERIMENT)
    assert made_it and tracker.find_or_create_experiment(leases.LEDGER_EXPERIMENT) == (experiment_id, False)
    maker = threading.Timer(0.5, lambda: tracker.client.create_run(
        experiment_id, run_name="claims", tags={leases.LEDGER_TAG: "ledger"}))
    maker.start()
    ledger = leases.Ledger(tracker)
    maker.join()
    (only,) = tracker.client.search_runs([experiment_id])
    assert ledger.run_id == only.info.run_id

  def test_a_ledger_whose_maker_died_is_made_after_the_wait(self, tracker, monkeypatch):
    monkeypatch.setattr(leases, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(leases, "STALE_SECONDS", 0.3)
    tracker.find_or_create_experiment(leases.LEDGER_EXPERIMENT)  # Its maker dies here.
    ledger = leases.Ledger(tracker)
    assert ledger.try_claim("abc", 0, leases.Holder("host", "boot", 1, 1, "t"))
    assert leases.Ledger(tracker).run_id == ledger.run_id

  def test_a_holder_elsewhere_is_alive_while_it_beats(self, tracker, monkeypatch):
    ledger = leases.Ledger(tracker)
    remote = leases.Holder("another-host", "boot", 1, 1, "t")
    assert ledger.try_claim("abc", 0, remote)
    ledger.set("abc", 0, "heartbeat", "0")  # Long ago.
    assert not ledger.state("abc").alive()
    ledger.set("abc", 0, "heartbeat", f"{time.time()}")
    assert ledger.state("abc").alive()

  def test_a_dead_holder_is_taken_over_and_learns_it(self, tracker, monkeypatch):
    monkeypatch.setattr(leases, "HEARTBEAT_SECONDS", 0.05)
    first = leases.acquire(tracker, "abc")
    # Another process finds the first dead (as it would if its heartbeat went stale).
    monkeypatch.setattr(leases.ClaimState, "alive", lambda self, now=None: False)
    second = leases.acquire(tracker, "abc")
    assert (first.number, second.number) == (0, 1)
    first._thread.join(timeout=5)
    with pytest.raises(leases.ClaimLost, match="taken over"):
      first.check()
    second.check()
    second.release("FINISHED")

  def test_a_released_claim_is_free(self, tracker):
    claim = leases.acquire(tracker, "abc")
    claim.release("FINISHED")
    waits = []
    again = leases.acquire(tracker, "abc", on_wait=waits.append)
    assert again.number == 1 and not waits
    again.release("FINISHED")


PREEMPTIONS = [(f, s) for f in FRAMEWORKS for s in ("SIGTERM", "SIGUSR1", "SIGUSR2")]


@pytest.mark.parametrize("framework,signal_name", share(
    PREEMPTIONS, [("torch", "SIGTERM"), ("jax", "SIGUSR2")]))
def test_a_preempted_run_checkpoints_at_the_step_and_resumes_to_the_same_metrics(
    tmp_path, fault, references, framework, signal_name):
  fault.done(f"{framework} run (6 steps, checkpoints every 2, losses read every 4) sent {signal_name} "
             "during step 2, as SLURM preempts or nears the time limit; `list`, then rerun")
  # Step 2 is no read step: the loop reads steps 0-2's losses, then checkpoints step 3.
  stopped = run_cli(tmp_path, *RESUMABLE, f"framework={framework}", "runtime.log_every=4",
                    env={killpoints.SIGNAL_ENV: f"{signal_name}:2"})
  signum = int(getattr(signal, signal_name))
  assert stopped.returncode == 128 + signum, stopped.stderr[-2000:]
  assert f"preempted by {signal_name}: checkpointed at step 3" in stopped.stderr
  assert "Traceback" not in stopped.stderr
  (run,) = all_runs(tmp_path)
  assert run.info.status == tracking.KILLED and run.data.tags[tracking.PREEMPTED_TAG] == signal_name
  assert run.data.tags[tracking.FAILURE_STEP_TAG] == "3"  # Off the 2-step checkpoint schedule.
  (folder,) = (tmp_path / "checkpoints").iterdir()
  assert sorted(p.name for p in folder.iterdir()) == ["step-2", "step-3"]
  ledger = leases.Ledger(tracking.Tracker(compose.compose_config(overrides(tmp_path)).tracking))
  assert not ledger.state(run.data.tags["config_hash"]).alive()  # Released: a requeue needn't wait.
  listed = harness("list", "--experiments", "table1", "--frameworks", framework, "--seeds", "0",
                   *overrides(tmp_path, "train.steps=6"))
  assert "PREEMPTED" in listed.stdout, listed.stdout

  resumed = resume(tmp_path, framework)
  assert "resuming at step 3" in resumed.stderr
  assert_same_as_uninterrupted(tmp_path, references(framework))
  assert len(all_runs(tmp_path)) == 1
  fault.happened("stopped at the step boundary with a step-3 checkpoint, marked preempted, claim "
                 f"released, exit {128 + signum}; listed PREEMPTED; resumed at step 3 to every loss "
                 "and test top-1 of an uninterrupted run")


def _children(pid: int):
  """The processes whose parent is `pid` (Linux /proc)."""
  found = []
  for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
    try:
      fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
      continue
    if int(fields[1]) == pid:
      found.append(int(stat.parent.name))
  return found


def _alive(pid: int) -> bool:
  try:
    state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
  except OSError:
    return False
  return state != "Z"


PARENT_KILLS = ["SIGTERM", "SIGKILL", "SIGINT"]
# The default session kills with SIGKILL and checks what is left; resuming the two runs (a
# minute here) is what `nox -s faults` adds, as other default cases resume runs already.
KILL_CASES = share([(s, "rerun") for s in PARENT_KILLS] + [("SIGKILL", "no-rerun")], [("SIGKILL", "no-rerun")])


@pytest.mark.parametrize("signal_name,then", KILL_CASES)
def test_a_sweep_ended_from_outside_takes_its_workers_with_it(tmp_path, fault, signal_name, then):
  from harness.machine import host
  if not sys.platform.startswith("linux") or host.cores() < 2:
    pytest.skip("needs Linux and 2 cores (2 worker processes)")
  fault.done(f"`reproduce` of 2 runs (torch, 1000 smoke steps, --jobs 2); {signal_name} to the parent alone "
             "once both train" + ("; then the same command again" if then == "rerun" else ""))
  argv = ["-m", "harness", "reproduce", "--experiments", "table1", "--frameworks", "torch", "--jobs", "2",
          "--out", str(tmp_path / "tables"),
          *overrides(tmp_path, "train.steps=1000", "runtime.checkpoint_every=100", "scale.seeds=[0,1]",
                     "+scale.framework_rows.torch=[table1/pool_4x4_at_12]")]
  all_runs(tmp_path)  # The store made here first: polling one the sweep is making would race it.
  log = tmp_path / "stderr.log"  # Not a pipe: nobody reads it while the sweep runs.
  with open(log, "w") as stderr_file:
    sweep = subprocess.Popen([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=stderr_file,
                             start_new_session=True)
  deadline = time.monotonic() + 600
  while len([r for r in all_runs(tmp_path) if r.info.status == "RUNNING"]) < 2:
    assert sweep.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
    time.sleep(1)
  time.sleep(5)  # Into their training loops.
  workers = _children(sweep.pid)
  assert len([w for w in workers if _alive(w)]) >= 2
  sweep.send_signal(getattr(signal, signal_name))
  sweep.wait(timeout=60)
  ended = time.monotonic()
  while any(_alive(w) for w in workers) and time.monotonic() - ended < 120:  # Seconds when idle.
    time.sleep(0.5)
  left = time.monotonic() - ended
  assert not any(_alive(w) for w in workers), f"workers alive {left:.0f} s after the parent ended"
  stderr = log.read_text()
  assert "Traceback" not in stderr and "Warning" not in stderr, stderr[-3000:]
  statuses = sorted(r.info.status for r in all_runs(tmp_path))
  assert stderr.count("preempted by SIGTERM: checkpointed at step") == 2, stderr[-3000:]  # The workers'.
  assert statuses == ["KILLED", "KILLED"]
  if then == "rerun":
    again = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    finished = [r for r in all_runs(tmp_path) if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["seed"] for r in finished) == ["0", "1"]
  fault.happened(f"the workers were gone {left:.0f} s after the parent; both runs checkpointed and KILLED "
                 "(preempted by SIGTERM), a line each" + ("; the rerun finished both, once each"
                                                          if then == "rerun" else ""))
