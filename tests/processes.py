"""Python processes the tests start: this interpreter, the repository on the path, output
captured as text; one place for what every such process needs."""
import os
import pathlib
import subprocess
import sys
from typing import Mapping, Optional, Sequence

ROOT = pathlib.Path(__file__).parents[1]


def environment(env: Optional[Mapping[str, str]] = None, drop: Sequence[str] = ()) -> dict:
  """This process's environment with the repository on PYTHONPATH, `env` laid over it and the
  variables in `drop` removed."""
  out = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
  for name in drop:
    out.pop(name, None)
  return out


def python(*args: str, env=None, drop: Sequence[str] = (), timeout: float = 600,
           cwd=ROOT) -> subprocess.CompletedProcess:
  """`python <args>` in a fresh process, to its end."""
  return subprocess.run([sys.executable, *args], cwd=cwd, env=environment(env, drop), capture_output=True,
                        text=True, timeout=timeout)


def start_python(*args: str, env=None, cwd=ROOT, **popen) -> subprocess.Popen:
  """`python <args>` started, not waited for; `popen` as subprocess.Popen's (stdout=, ...)."""
  return subprocess.Popen([sys.executable, *args], cwd=cwd, env=environment(env), text=True, **popen)


def all_at_once(argvs: Sequence[Sequence[str]], env=None, timeout: float = 900):
  """`python <argv>` for each argv, started together; each one's (returncode, stdout, stderr)."""
  jobs = [start_python(*argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in argvs]
  outputs = [job.communicate(timeout=timeout) for job in jobs]
  return [(job.returncode, out, err) for job, (out, err) in zip(jobs, outputs)]
