"""Each package installs and imports alone: the twins pull in neither each other nor the harness,
and the spec both build from imports no framework."""

import pytest
from tests.processes import python

CASES = {
    "tokenlearner_spec": (("config", "pooling"),
                          ("jax", "flax", "torch", "tokenlearner_jax", "tokenlearner_torch", "harness")),
    "tokenlearner_jax": (("model", "train_step"), ("torch", "tokenlearner_torch", "harness")),
    "tokenlearner_torch": (("model", "train_step"), ("jax", "flax", "tokenlearner_jax", "harness")),
}


@pytest.mark.parametrize("package", sorted(CASES))
def test_package_imports_alone(package):
  modules, forbidden = CASES[package]
  imports = ", ".join([package] + [f"{package}.{m}" for m in modules])
  code = (f"import sys, {imports}\n"
          f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
          "assert not bad, f'imported {bad}'")
  result = python("-c", code)
  assert result.returncode == 0, result.stderr[-2000:]
