"""Cross-framework parity: named comparison of two trees of arrays, and the results/parity.csv log.

A check compares every named tensor (outputs, gradients, weights) of one
framework with its twin of the other. The tolerance of a tensor is
`atol * max(1, max|reference|)`: absolute for tensors of unit scale, relative for
large ones (TokenLearner v1.0 sums over positions, so its tokens grow with N).
"""
import csv
import dataclasses
import pathlib
from typing import Dict, List, Mapping

import numpy as np

# The stated tolerances (float32, CPU): max |difference| per tensor, scaled as below.
FORWARD_ATOL = 1e-5
GRAD_ATOL = 1e-4
UPDATE_ATOL = 1e-5
TRAIN_LOSS_RTOL = 1e-4
CHUNKED_ATOL = 1e-6
# Chunked vs naive gradients: a weight's gradient sums over all B*M*M query-key pairs,
# which the chunked backward adds in another order (and torch's threaded CPU reductions
# in a run-dependent one); float32 round-off of such sums reaches ~1e-6 relative.
CHUNKED_GRAD_ATOL = 1e-5
# bfloat16 (tokenlearner_spec.precision), JAX vs PyTorch on the same weights and input, per
# tensor, as distances relative to its float32 norm. One policy means that both twins round at
# the same ops, so bfloat16 moves each about as far from its own float32 result (each rounding
# keeps 8 bits; kernels sum in their own orders), and the twins land about sqrt(2) times that
# apart. A twin that computes in float32 moves 0; one that rounds an op the policy keeps in
# float32 (TokenFuser's token mix: 10-20%) moves several times farther than the other.
BF16_GAP_FACTOR = 3.0  # twins apart <= this x the larger move (measured on every row: <= 1.9)
BF16_BALANCE = 0.25  # each twin's move >= this x the other's, in the forward (measured: >= 0.84)
BF16_BALANCE_MIN_SIZE = 1024  # elements: a norm over fewer is too noisy to compare

COLUMNS = ("model", "module", "direction", "check", "max_abs_diff", "tolerance", "passed")


@dataclasses.dataclass(frozen=True)
class Result:
  """The outcome of one check: its worst tensor (highest diff / tolerance) and all failures."""
  model: str
  module: str
  direction: str
  check: str
  max_abs_diff: float
  tolerance: float
  failures: tuple = ()

  @property
  def passed(self) -> bool:
    return not self.failures

  def message(self) -> str:
    lines = [f"{self.model} [{self.direction}] {self.check}: {len(self.failures)} tensor(s) differ"]
    lines += [f"  {name}: max|diff|={diff:.3g} > tol={tol:.3g}" for name, diff, tol in self.failures[:20]]
    return "\n".join(lines)

  def row(self) -> Dict:
    return dict(model=self.model, module=self.module, direction=self.direction, check=self.check,
                max_abs_diff=f"{self.max_abs_diff:.3e}", tolerance=f"{self.tolerance:.3e}",
                passed=self.passed)


def compare(reference: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray], atol: float,
            *, model: str, direction: str, check: str, relative: bool = True) -> Result:
  """Compares two name -> array maps; a missing name or a shape mismatch is a failure too."""
  if not reference:
    raise ValueError(f"{model} {check}: nothing to compare")
  worst, failures = ("", 0.0, atol), []
  for name in sorted(set(reference) | set(other)):
    if name not in reference or name not in other:
      failures.append((f"{name} (present in one framework only)", float("inf"), atol))
      continue
    ref = np.asarray(reference[name], np.float64)
    got = np.asarray(other[name], np.float64)
    if ref.shape != got.shape:
      failures.append((f"{name} (shape {ref.shape} vs {got.shape})", float("inf"), atol))
      continue
    scale = max(1.0, float(np.abs(ref).max(initial=0.0))) if relative else 1.0
    diff, tol = float(np.abs(ref - got).max(initial=0.0)), atol * scale
    if not np.isfinite(diff) or diff > tol:
      failures.append((name, diff, tol))
    if _ratio(diff, tol) >= _ratio(worst[1], worst[2]):
      worst = (name, diff, tol)
  return Result(model, worst[0], direction, check, worst[1], worst[2], tuple(failures))


def _ratio(diff: float, tol: float) -> float:
  if not np.isfinite(diff):
    return float("inf")
  return diff / tol if tol else (float("inf") if diff else 0.0)


class ParityLog:
  """Collects check results during a pytest session and writes them as CSV."""

  def __init__(self):
    self.results: List[Result] = []

  def add(self, result: Result) -> Result:
    self.results.append(result)
    return result

  def write_csv(self, path: pathlib.Path) -> None:
    _write_rows([r.row() for r in self.results], path)


def merge_csv(parts, path) -> None:
  """Joins the logs of parallel test workers into one CSV, ordered as one process writes it."""
  rows = []
  for part in parts:
    with open(part, newline="") as f:
      rows += list(csv.DictReader(f))
  _write_rows(rows, path)


def _write_rows(rows, path) -> None:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  ordered = sorted(rows, key=lambda r: (r["model"], r["check"], r["direction"]))
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(ordered)


def main(argv=None) -> int:
  """python -m harness.testing.parity_log results/parity.csv: prints the CSV as a table and a summary."""
  import sys

  import pandas as pd

  path = (argv or sys.argv[1:] or ["results/parity.csv"])[0]
  table = pd.read_csv(path)
  print(table.to_markdown(index=False))
  failed = table[~table["passed"]]
  print(f"\n{len(table)} checks over {table['model'].nunique()} models and modules, "
        f"{len(failed)} failed.")
  return 1 if len(failed) else 0


if __name__ == "__main__":
  raise SystemExit(main())
