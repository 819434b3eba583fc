"""What a run records about where it ran: the commit, the machine, the package versions."""
import os
import pathlib
import platform
import subprocess
import sys
from importlib import metadata
from typing import Dict, Optional

PACKAGES = ("jax", "flax", "optax", "torch", "numpy", "mlflow", "hydra-core")


def git_commit() -> str:
  root = pathlib.Path(__file__).parents[2]
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                            check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


# Widest SIMD extension first: float32 kernels, and so a run's rounding, differ between them.
SIMD_LEVELS = ("avx512f", "avx2", "avx", "sse4_2", "asimd")


def cores() -> int:
  """The cores this process may run on (its affinity: what a cgroup or taskset leaves it)."""
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> str:
  """The host in words, e.g. 'Linux x86_64, AMD EPYC 7B13, 2 cores, avx512f'. Two hosts that
  report the same CPU name trained the same run, same code and packages, to different
  metrics (a Table 2 proxy run: 43.33 and 43.39 mAP); the SIMD level, which picks the
  float32 kernels, is one difference the name hides."""
  cpu, flags = platform.processor(), set()
  try:
    with open("/proc/cpuinfo") as f:
      lines = f.read().splitlines()
    cpu = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), cpu)
    flags = set(next((l.split(":", 1)[1].split() for l in lines
                      if l.startswith(("flags", "Features"))), []))
  except OSError:
    pass
  simd = next((level for level in SIMD_LEVELS if level in flags), "")
  return (f"{platform.system()} {platform.machine()}, {cpu or 'unknown CPU'}, {os.cpu_count()} cores"
          + (f", {simd}" if simd else ""))


def versions() -> Dict[str, str]:
  found = {"python": sys.version.split()[0]}
  for package in PACKAGES:
    try:
      found[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      pass
  return found


def process_start_ticks(pid="self") -> Optional[int]:
  """When a process started, in clock ticks since boot (Linux /proc; None where there is no
  such process or no /proc): with the pid, it names a process even after the pid is reused."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return int(f.read().rsplit(")", 1)[1].split()[19])  # Field 22, starttime.
  except (OSError, ValueError, IndexError):
    return None


def process_seconds() -> float:
  """Seconds since this process started (0 where that is not known)."""
  start_ticks = process_start_ticks()
  try:
    with open("/proc/uptime") as f:
      uptime = float(f.read().split()[0])
  except (OSError, ValueError, IndexError):
    return 0.0
  if start_ticks is None:
    return 0.0
  return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
