"""Initial weights the twins share: one .npz per model config and seed (train.init=shared).

A start is written once, by the PyTorch twin's initialisers (which follow Flax's and
Scenic's: xavier-uniform or lecun-normal kernels, tiny-normal MLP biases, zero
heads), in the converter's layout: PyTorch state-dict keys, numpy float32. Both
runners read it, so a JAX and a PyTorch run of one seed start from the same weights
and differ only in how each framework computes; the JAX runner never imports torch.
With train.init=native each framework draws its own initial weights instead.
"""
import hashlib
import json
import pathlib
import sys
from typing import Dict, Mapping

import numpy as np
from filelock import FileLock

from harness.configs import registry
from harness.machine import durable
from harness.twins import backends


def path(results_dir, kind: str, fields: Mapping, seed: int) -> pathlib.Path:
  """results/starts/<hash of (kind, model fields, seed)>.npz."""
  spec = {"kind": kind, "seed": seed, "fields": registry.json_fields(fields)}
  key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
  return pathlib.Path(results_dir) / "starts" / f"{key}.npz"


def torch_initial_weights(kind: str, fields: Mapping, seed: int) -> Dict[str, np.ndarray]:
  """The PyTorch twin's initial weights for `seed`, as numpy arrays by state-dict key."""
  try:
    import torch
  except ImportError:
    raise RuntimeError("train.init=shared writes a missing start with the PyTorch twin, which is "
                       "not installed: install torch, or set train.init=native") from None
  torch.manual_seed(seed)
  with torch.no_grad():
    model = backends.build("torch", kind, fields)
  return backends.torch_state_numpy(model)


def _checksum(target: pathlib.Path) -> pathlib.Path:
  return target.with_name(target.name + ".sha256")


def _damage(target: pathlib.Path) -> str:
  """Why the start at `target` cannot be used ('' if it can): it must match its checksum."""
  if not _checksum(target).exists():
    return "it has no checksum file beside it"
  if durable.sha256(target) != _checksum(target).read_text().strip():
    return "it does not match its checksum (truncated or corrupted)"
  return ""


def _write(target: pathlib.Path, weights: Mapping[str, np.ndarray]) -> None:
  def write(path):
    with open(path, "wb") as f:
      np.savez(f, **weights)
  durable.write_file(target, write, "start file")
  durable.write_text(_checksum(target), durable.sha256(target) + "\n", "checksum of start file")


def ensure(results_dir, kind: str, fields: Mapping, seed: int) -> Dict[str, np.ndarray]:
  """The start of (kind, fields, seed), written first if absent, and checked like a checkpoint:
  one that does not match the SHA-256 in its side file is rebuilt from the seed, with a warning
  line. Written once, under a file lock, whole or not at all (harness/machine/durable.py)."""
  target = path(results_dir, kind, fields, seed)
  with durable.storing("start file", target):
    target.parent.mkdir(parents=True, exist_ok=True)
  with FileLock(str(target.with_suffix(".lock"))):
    if not target.exists():
      _write(target, torch_initial_weights(kind, fields, seed))
    elif damage := _damage(target):
      print(f"warning: start file {target} is unusable ({damage}); rebuilt from seed {seed}",
            file=sys.stderr, flush=True)
      _write(target, torch_initial_weights(kind, fields, seed))
    with np.load(target) as stored:
      return {k: stored[k] for k in stored.files}
