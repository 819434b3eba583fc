"""`reproduce` through Hydra's submitit launcher (harness/conf/hydra/launcher/): each run a job
of its own in a process of its own, as on a SLURM cluster, recorded and skipped as under the
default joblib launcher, and its failures reported as there."""
import glob
import os
import signal
import sys

import pytest

from harness.cli import main
from harness.configs import registry
from harness.testing import killpoints
from tests.harness.smoke import FAST_ROW, all_runs, reproduce_argv


ROW = FAST_ROW[1].split("=", 1)[1]


@pytest.fixture
def one_row(monkeypatch):
  """Table 1 as its 4x4-pool row alone, so that a sweep is a run or two."""
  rows = registry.rows
  monkeypatch.setattr(registry, "rows", lambda experiment=None: [
      r for r in rows(experiment) if r.experiment != "table1" or r.key == ROW])


def submitit_argv(results, *extra):
  """`reproduce` of Table 1 in PyTorch through submitit_local (reproduce_argv less --jobs)."""
  argv = reproduce_argv(results)
  at = argv.index("--jobs")
  return [*argv[:at], *argv[at + 2:], "hydra/launcher=submitit_local", *extra]


def job_logs(results):
  return sorted(glob.glob(str(results / "hydra" / "multirun" / "*" / ".submitit" / "*" / "*_log.err")))


@pytest.mark.slow  # The SLURM test below submits through submitit too, and records its runs.
def test_submitit_jobs_record_their_runs_and_a_second_sweep_trains_nothing(tmp_path, one_row, capsys):
  argv = submitit_argv(tmp_path)
  assert main(argv) == 0
  (run,) = all_runs(tmp_path)
  assert run.info.status == "FINISHED" and run.data.tags["seed"] == "0"
  first = job_logs(tmp_path)
  assert len(first) == 1  # The run was a job, in a process of its own.
  output = capsys.readouterr()
  assert "the runs' output goes to" in output.err and "1 of 1 runs finished" in output.out

  assert main(argv) == 0
  assert "1 of 1 runs finished" in capsys.readouterr().out
  assert len(all_runs(tmp_path)) == 1
  (again,) = sorted(set(job_logs(tmp_path)) - set(first))
  assert "skipped, already finished" in open(again).read()


@pytest.mark.all_faults  # The default session fails a run in a sweep's worker (test_faults.py).
def test_a_failed_run_in_a_submitit_job_is_reported_here_and_fails_the_sweep(tmp_path, one_row,
                                                                              monkeypatch, capsys):
  monkeypatch.setenv(killpoints.NAN_ENV, f"{ROW}:1")  # The job inherits this environment.
  assert main(submitit_argv(tmp_path)) == 1
  output = capsys.readouterr()
  (failed,) = [line for line in output.err.splitlines() if line.startswith("RUN FAILED")]
  assert ROW in failed and "loss is nan at step 1" in failed and "(its log: " in failed
  assert "0 of 1 runs finished; not finished: FAILED" in output.out
  assert [r.info.status for r in all_runs(tmp_path)] == ["FAILED"]


# sbatch, srun, sacct, scancel and scontrol of a one-machine SLURM, one script under five names:
# sbatch keeps the batch script, starts a runner (a process group of its own) that runs the
# array's tasks one after another with SLURM's variables set and returns; srun starts the
# script's --ntasks-per-node processes, each with its SLURM_PROCID; sacct reports the tasks'
# states. $FAKE_SLURM_STATE makes every task end in that state without running.
FAKE_SLURM = r'''
import os, pathlib, re, subprocess, sys
home, command = pathlib.Path(os.environ["FAKE_SLURM_DIR"]), pathlib.Path(sys.argv[0]).name

def states():
  return dict(line.split() for line in (home / "states").read_text().splitlines()) if (home / "states").exists() else {}

def set_state(task, state):
  with open(home / "states", "a") as f:
    f.write(f"{task} {state}\n")

if command == "sbatch" and sys.argv[1] != "--run":
  text = pathlib.Path(sys.argv[1]).read_text()
  job = str(100 + len(list(home.glob("*.sh"))))
  (home / f"{job}.sh").write_text(text)
  array = re.search(r"^#SBATCH --array=0-(\d+)", text, re.M)
  ntasks = re.search(r"^#SBATCH --ntasks-per-node=(\d+)", text, re.M)
  (home / f"{job}.ntasks").write_text(ntasks.group(1) if ntasks else "1")
  tasks = [f"{job}_{i}" for i in range(int(array.group(1)) + 1)] if array else [job]
  for task in tasks:
    set_state(task, "PENDING")
  with open(home / f"{job}.log", "w") as log:  # Not sbatch's stdout, which submitit reads to its end.
    runner = subprocess.Popen([sys.executable, sys.argv[0], "--run", job, *tasks], stdout=log,
                              stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
  (home / f"{job}.pid").write_text(str(runner.pid))
  print(f"Submitted batch job {job}")
elif command == "sbatch":
  job, tasks = sys.argv[2], sys.argv[3:]
  for task in tasks:
    ntasks = (home / f"{job}.ntasks").read_text()
    env = {**os.environ, "SLURM_JOB_ID": task.replace("_", ""), "SLURM_NTASKS": ntasks,
           "SLURM_NTASKS_PER_NODE": ntasks, "SLURM_STEP_NUM_TASKS": ntasks,
           "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
           "SLURM_JOB_NODELIST": "localhost"}
    if "_" in task:
      env.update(SLURM_ARRAY_JOB_ID=job, SLURM_ARRAY_TASK_ID=task.split("_")[1])
    if os.environ.get("FAKE_SLURM_STATE"):
      set_state(task, os.environ["FAKE_SLURM_STATE"])
      continue
    set_state(task, "RUNNING")
    done = subprocess.run(["bash", str(home / f"{job}.sh")], env=env)
    set_state(task, "COMPLETED" if done.returncode == 0 else "FAILED")
elif command == "srun":
  args, names = sys.argv[1:], {}
  while args[0].startswith("--"):
    flag = args.pop(0)
    if flag in ("--output", "--error"):
      names[flag] = args.pop(0)
  tasks = []
  for rank in range(int(os.environ["SLURM_NTASKS"])):
    files = {}
    for flag, name in names.items():
      for key, value in (("%A", os.environ.get("SLURM_ARRAY_JOB_ID", "")), ("%a", os.environ.get("SLURM_ARRAY_TASK_ID", "")),
                         ("%j", os.environ["SLURM_JOB_ID"]), ("%t", str(rank))):
        name = name.replace(key, value)
      pathlib.Path(name).parent.mkdir(parents=True, exist_ok=True)  # Before submitit makes it.
      files[flag] = open(name, "a")
    env = {**os.environ, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)}
    tasks.append(subprocess.Popen(args, stdout=files.get("--output"), stderr=files.get("--error"), env=env))
  sys.exit(max(task.wait() for task in tasks))
elif command == "sacct":
  print("JobID|State|NodeList")
  for task, state in states().items():
    print(f"{task}|{state}|localhost")
'''


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
  """A one-machine SLURM on PATH (FAKE_SLURM above); its folder holds each job's batch script
  as <job>.sh. Runners still alive at the end are killed."""
  home = tmp_path / "slurm"
  home.mkdir()
  for command in ("sbatch", "srun", "sacct", "scancel", "scontrol"):
    (home / command).write_text(f"#!{sys.executable}\n{FAKE_SLURM}")
    (home / command).chmod(0o755)
  monkeypatch.setenv("FAKE_SLURM_DIR", str(home))
  monkeypatch.setenv("PATH", f"{home}{os.pathsep}{os.environ['PATH']}")

  def stuck(*args):  # submitit waits on sacct for ever; a fault of the fake must not hang the suite.
    raise TimeoutError("the fake SLURM's jobs did not end in 10 minutes")
  signal.signal(signal.SIGALRM, stuck)
  signal.alarm(600)
  yield home
  signal.alarm(0)
  for pid in home.glob("*.pid"):
    try:
      os.killpg(int(pid.read_text()), signal.SIGKILL)
    except ProcessLookupError:
      pass


def test_the_slurm_launcher_submits_an_array_per_framework_with_its_layout_and_records_its_runs(
    tmp_path, one_row, fake_slurm, capsys):
  """PyTorch asks for a task per GPU, JAX for one; both for 4 cores plus one per data worker.
  The fake starts the tasks as SLURM does: PyTorch's two train one run together (gloo here)."""
  argv = [*submitit_argv(tmp_path, "--seeds", "0", "hydra.launcher.partition=debug",
                         "hydra.launcher.gpus_per_node=2", "runtime.data_workers=1")]
  argv[argv.index("hydra/launcher=submitit_local")] = "hydra/launcher=slurm"
  argv[argv.index("--frameworks") + 1] = "jax,torch"
  assert main(argv) == 0
  scripts = [p.read_text() for p in sorted(fake_slurm.glob("*.sh"))]  # In job order: jax, torch.
  assert len(scripts) == 2
  for script, tasks in zip(scripts, (1, 2)):
    for flag in ("--partition=debug", f"--ntasks-per-node={tasks}", "--gpus-per-node=2",
                 "--cpus-per-task=5", "--time=240", "--mem-per-cpu=4G", "--job-name=tokenlearner"):
      assert f"#SBATCH {flag}\n" in script, (tasks, flag)
  runs = {r.data.tags["framework"]: r for r in all_runs(tmp_path)}
  assert sorted(runs) == ["jax", "torch"] and {r.info.status for r in runs.values()} == {"FINISHED"}
  assert runs["torch"].data.tags["device"].endswith(" x2")
  output = capsys.readouterr()
  assert "2 of 2 runs finished" in output.out and "RUN FAILED" not in output.err


def test_a_slurm_job_that_ends_without_its_result_is_reported_and_fails_the_sweep(
    tmp_path, one_row, fake_slurm, monkeypatch, capsys):
  monkeypatch.setenv("FAKE_SLURM_STATE", "TIMEOUT")  # As SLURM ends a job at its time limit.
  import submitit.core.core
  monkeypatch.setattr(submitit.core.core.Job, "_results_timeout_s", 1)  # Its wait for a result file.
  argv = submitit_argv(tmp_path)
  argv[argv.index("hydra/launcher=submitit_local")] = "hydra/launcher=slurm"
  assert main(argv) == 1
  output = capsys.readouterr()
  (failed,) = [line for line in output.err.splitlines() if line.startswith("RUN FAILED")]
  assert "a job of the table1 sweep ended without its result" in failed
  assert "state: TIMEOUT" in output.err
  assert "0 of 1 runs finished; not finished: not run" in output.out


def test_jobs_is_refused_with_another_launcher(capsys):
  with pytest.raises(SystemExit) as exit:
    main(["reproduce", "--jobs", "4", "hydra/launcher=slurm"])
  assert exit.value.code == 2
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert "--jobs is for the joblib launcher" in line and "array_parallelism" in line


def test_gpus_per_run_starts_each_torch_run_under_torchrun_in_turn(tmp_path, one_row, capsys):
  """runtime.gpus_per_run=2: the run trains in two processes of its own (gloo on this CPU
  machine, NCCL on one GPU each where there are GPUs), recorded as under the joblib launcher."""
  argv = reproduce_argv(tmp_path)
  at = argv.index("--jobs")
  argv = [*argv[:at], *argv[at + 2:], "--seeds", "0", "runtime.gpus_per_run=2"]
  assert main(argv) == 0
  (run,) = all_runs(tmp_path)
  assert run.info.status == "FINISHED" and run.data.tags["device"].endswith(" x2")
  assert "1 of 1 runs finished" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["reproduce", "--jobs", "2", "runtime.gpus_per_run=8"],
                                  ["reproduce", "hydra/launcher=slurm", "runtime.gpus_per_run=8"],
                                  ["run", "runtime.gpus_per_run=8"],
                                  ["curves", "--experiments", "table1", "runtime.gpus_per_run=8"]])
def test_gpus_per_run_is_refused_where_it_cannot_hold(argv, capsys):
  try:
    status = main(argv)
  except SystemExit as exit:  # Refused by the argument parser.
    status = exit.code
  assert status == 2
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert "gpus_per_run" in line
