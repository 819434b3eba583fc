"""Where a run's time goes: wall seconds by phase, logged with its results as time_<phase>_s."""
import collections
import contextlib
import time
from typing import Dict


class Phases:
  def __init__(self):
    self.seconds: Dict[str, float] = collections.defaultdict(float)

  @contextlib.contextmanager
  def __call__(self, phase: str):
    began = time.perf_counter()
    try:
      yield
    finally:
      self.seconds[phase] += time.perf_counter() - began

  def metrics(self) -> Dict[str, float]:
    return {f"time_{phase}_s": seconds for phase, seconds in self.seconds.items()}
