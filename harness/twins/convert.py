"""Weight conversion between the Flax and PyTorch twins: one table of leaf rules, both directions.

The twins share a module tree: a Flax submodule `name=` equals the torch
attribute name, and a Flax list entry `blocks_3` is the torch `blocks.3`. So a
Flax parameter path maps to a torch state-dict key by joining with dots, and
the leaf name and rank alone decide the tensor transform:

  Dense kernel [in, out]           <-> Linear weight [out, in]
  Conv kernel [kh, kw, in, out]    <-> Conv2d weight [out, in, kh, kw]
  Conv kernel [kt, kh, kw, in, out] <-> Conv3d weight [out, in, kt, kh, kw]
  LayerNorm scale                  <-> weight
  bias, and any named parameter    <-> same name, unchanged

Both directions refuse a missing, unexpected or wrongly shaped weight with an
error naming it.
"""
import re
from typing import Dict, Mapping, Tuple

import numpy as np
from flax import traverse_util

_LIST_ENTRY = re.compile(r"^(.+)_(\d+)$")
# (flax leaf name, rank) -> (torch leaf name, permutation taking the Flax array to torch's).
_LEAF_RULES = {
    ("kernel", 2): ("weight", (1, 0)),
    ("kernel", 4): ("weight", (3, 2, 0, 1)),
    ("kernel", 5): ("weight", (4, 3, 0, 1, 2)),
    ("scale", 1): ("weight", None),
}


class ConversionError(ValueError):
  """A weight is missing, unexpected or of the wrong shape."""


def torch_key(flax_path: Tuple[str, ...], ndim: int) -> Tuple[str, Tuple[int, ...] | None]:
  """Flax parameter path and rank -> (torch state-dict key, permutation or None)."""
  *modules, leaf = flax_path
  torch_leaf, perm = _LEAF_RULES.get((leaf, ndim), (leaf, None))
  parts = [_LIST_ENTRY.sub(r"\1.\2", m) for m in modules]
  return ".".join(parts + [torch_leaf]), perm


def _inverse(perm):
  return None if perm is None else tuple(int(i) for i in np.argsort(perm))


def _transpose(array: np.ndarray, perm) -> np.ndarray:
  return np.ascontiguousarray(array if perm is None else np.transpose(array, perm))


def _unwrap(params: Mapping) -> Mapping:
  return params["params"] if set(params) == {"params"} else params


def _torch_entries(flax_params: Mapping):
  """(Flax name, Flax shape, torch key, array in torch's layout) for each Flax parameter."""
  for path, value in traverse_util.flatten_dict(_unwrap(flax_params)).items():
    value = np.asarray(value)
    key, perm = torch_key(path, value.ndim)
    yield "/".join(path), value.shape, key, _transpose(value, perm)


def torch_layout(flax_params: Mapping) -> Dict[str, np.ndarray]:
  """Flax params -> the same weights by PyTorch state-dict key (numpy), unchecked: for a process
  without torch. The torch model that loads them checks every key and shape (strict
  load_state_dict), as torch_to_jax does on the way back."""
  return {key: array for _, _, key, array in _torch_entries(flax_params)}


def jax_to_torch(flax_params: Mapping, torch_state: Mapping) -> Dict[str, np.ndarray]:
  """Flax params -> a torch state dict (numpy arrays) with the keys and shapes of `torch_state`.

  `torch_state` is the target model's `state_dict()`, used for checking only.
  """
  expected = {k: tuple(v.shape) for k, v in torch_state.items()}
  converted = {}
  for name, flax_shape, key, array in _torch_entries(flax_params):
    if key not in expected:
      raise ConversionError(f"unexpected weight: Flax {name} has no torch counterpart {key}")
    if array.shape != expected[key]:
      raise ConversionError(
          f"wrong shape: Flax {name} {flax_shape} gives {array.shape}, torch {key} wants {expected[key]}")
    converted[key] = array
  missing = sorted(set(expected) - set(converted))
  if missing:
    raise ConversionError(f"missing weight: torch {missing[0]} has no Flax source"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
  return converted


def torch_to_jax(torch_state: Mapping, flax_template: Mapping) -> Dict:
  """A torch state dict -> Flax params with the tree and shapes of `flax_template`.

  `flax_template` is any tree with the target's structure and `.shape` leaves
  (e.g. from `jax.eval_shape(model.init, ...)`).
  """
  state = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
           for k, v in torch_state.items()}
  converted, used = {}, set()
  for path, leaf in traverse_util.flatten_dict(_unwrap(flax_template)).items():
    shape = tuple(leaf.shape)
    key, perm = torch_key(path, len(shape))
    name = "/".join(path)
    if key not in state:
      raise ConversionError(f"missing weight: Flax {name} needs torch {key}, which is absent")
    array = _transpose(state[key], _inverse(perm))
    if array.shape != shape:
      raise ConversionError(
          f"wrong shape: torch {key} {state[key].shape} gives {array.shape}, Flax {name} wants {shape}")
    converted[path] = array
    used.add(key)
  unexpected = sorted(set(state) - used)
  if unexpected:
    raise ConversionError(f"unexpected weight: torch {unexpected[0]} has no Flax counterpart"
                          + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
  return {"params": traverse_util.unflatten_dict(converted)}
