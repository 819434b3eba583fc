"""Each implementation installs and imports alone: neither pulls in the other nor the harness."""
import subprocess
import sys

import pytest

CASES = {"tokenlearner_jax": ("torch", "tokenlearner_torch", "harness"),
         "tokenlearner_torch": ("jax", "flax", "tokenlearner_jax", "harness")}


@pytest.mark.parametrize("package", sorted(CASES))
def test_implementation_imports_alone(package):
  forbidden = CASES[package]
  code = (f"import sys, {package}, {package}.model, {package}.train_step\n"
          f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
          "assert not bad, f'imported {bad}'")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
