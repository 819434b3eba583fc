"""Public ViT checkpoints (google-research/vision_transformer's .npz layout) as a run's start.

A ViT / AugReg checkpoint (e.g. ImageNet-21k B/16 or L/16) is a flat .npz whose keys
are Flax parameter paths joined by '/'. It fills the parts of our image model that
the plain ViT has: the patch embedding, the position embedding, every encoder block
and the encoder norm. Everything else keeps the run's own initial weights:

  - the head, always: the class count differs, and fine-tuning starts it at zero;
  - TokenLearner, TokenFuser and re-projection modules, which the checkpoint lacks.

Keys the model has no use for are ignored by design: `cls` (our models average-pool
instead of reading a class token), `head/*` and `pre_logits/*` (a pre-training
classifier, dropped for fine-tuning as in ViT), and the attention's key bias (our
attention has none: it shifts every logit of a query equally, which the softmax
cancels, so dropping it leaves the function unchanged).

Only kind 'vit' is supported: the video model (Table 2) has a convolutional backbone
and one mixer layer of its own width, so no ViT weight has a place in it.

Everything here is numpy and scipy; importing it imports neither framework.
"""
import pathlib
import re
import zipfile
from typing import Callable, Dict, Mapping, Tuple

import numpy as np
from scipy import ndimage

from harness.twins import backends
from harness.twins.runners.protocol import Weights

PREFIX = "pretrained ViT .npz"
_BLOCK = "Transformer/encoderblock_{i}/"
_BLOCK_INDEX = re.compile(r"^Transformer/encoderblock_(\d+)/")
_ATTN = "MultiHeadDotProductAttention_1/"


def _same(array: np.ndarray) -> np.ndarray:
  return array


def _dense(kernel: np.ndarray) -> np.ndarray:
  return kernel.T  # Shape: [in, out] -> Linear weight [out, in].


def _heads_in(kernel: np.ndarray) -> np.ndarray:
  """q, k or v projection: DenseGeneral [C, K, D] -> Linear weight [K*D, C]. Our attention
  splits its output channels as (K, D), row-major, so flattening (K, D) matches."""
  return kernel.reshape(kernel.shape[0], -1).T  # Shape: [C, K, D] -> [C, K*D] -> [K*D, C].


def _heads_bias(bias: np.ndarray) -> np.ndarray:
  return bias.reshape(-1)  # Shape: [K, D] -> [K*D].


def _heads_out(kernel: np.ndarray) -> np.ndarray:
  """Output projection: DenseGeneral [K, D, C] -> Linear weight [C, K*D]."""
  return kernel.reshape(-1, kernel.shape[-1]).T  # Shape: [K, D, C] -> [K*D, C] -> [C, K*D].


def _patch_conv(kernel: np.ndarray) -> np.ndarray:
  return kernel.transpose(3, 2, 0, 1)  # Shape: [p, p, C_in, C] -> Conv2d weight [C, C_in, p, p].


# Our torch key (within encoder block i) -> (checkpoint key within encoderblock_{i}, transform).
BLOCK_KEYS: Dict[str, Tuple[str, Callable]] = {
    "norm1.weight": ("LayerNorm_0/scale", _same),
    "norm1.bias": ("LayerNorm_0/bias", _same),
    "attn.query.weight": (_ATTN + "query/kernel", _heads_in),
    "attn.query.bias": (_ATTN + "query/bias", _heads_bias),
    "attn.key.weight": (_ATTN + "key/kernel", _heads_in),
    "attn.value.weight": (_ATTN + "value/kernel", _heads_in),
    "attn.value.bias": (_ATTN + "value/bias", _heads_bias),
    "attn.out.weight": (_ATTN + "out/kernel", _heads_out),
    "attn.out.bias": (_ATTN + "out/bias", _same),
    "norm2.weight": ("LayerNorm_2/scale", _same),
    "norm2.bias": ("LayerNorm_2/bias", _same),
    "mlp.fc1.weight": ("MlpBlock_3/Dense_0/kernel", _dense),
    "mlp.fc1.bias": ("MlpBlock_3/Dense_0/bias", _same),
    "mlp.fc2.weight": ("MlpBlock_3/Dense_1/kernel", _dense),
    "mlp.fc2.bias": ("MlpBlock_3/Dense_1/bias", _same),
}
# Our torch key -> (checkpoint key, transform), outside the blocks. The position embedding
# is not here: it is resized to the model's grid (resize_pos_embedding).
STEM_KEYS: Dict[str, Tuple[str, Callable]] = {
    "embedding.weight": ("embedding/kernel", _patch_conv),
    "embedding.bias": ("embedding/bias", _same),
    "encoder_norm.weight": ("Transformer/encoder_norm/scale", _same),
    "encoder_norm.bias": ("Transformer/encoder_norm/bias", _same),
}
POS_KEY = "Transformer/posembed_input/pos_embedding"


def resize_pos_embedding(pos: np.ndarray, grid: int) -> np.ndarray:
  """Checkpoint position embedding [1, (1 +) g*g, C] -> ours [1, grid*grid, C].

  Drops the class token's entry where there is one (a count one above a square: ViT's
  'token' classifier; AugReg's 'gap' models have none), then resizes the g x g grid
  bilinearly as ViT fine-tuning does (scipy.ndimage.zoom, order=1: corners map to
  corners, points between interpolate).
  """
  n = pos.shape[1]
  table = pos[0, 1:] if _is_square(n - 1) else pos[0]  # Shape: [g*g, C].
  if not _is_square(table.shape[0]):
    raise ValueError(f"{PREFIX}: {n} position embeddings are neither a square grid nor one plus it")
  g = int(round(np.sqrt(table.shape[0])))
  table = table.reshape(g, g, -1)  # Shape: [g*g, C] -> [g, g, C].
  if g != grid:
    table = ndimage.zoom(table, (grid / g, grid / g, 1), order=1)  # Shape: [grid, grid, C].
  return table.reshape(1, grid * grid, -1).astype(np.float32)  # Shape: [grid, grid, C] -> [1, grid*grid, C].


def _is_square(n: int) -> bool:
  return n > 0 and int(round(np.sqrt(n))) ** 2 == n


class _Checkpoint:
  """Lazy access to an opened .npz that names the file and key when a key is absent."""

  def __init__(self, npz, path: pathlib.Path):
    self.npz, self.path, self.keys = npz, path, set(npz.files)

  def __getitem__(self, key: str) -> np.ndarray:
    if key not in self.keys:
      raise ValueError(f"{PREFIX}: {self.path} has no {key}")
    return np.asarray(self.npz[key], dtype=np.float32)

  def num_layers(self) -> int:
    indices = {int(m.group(1)) for k in self.keys if (m := _BLOCK_INDEX.match(k))}
    return max(indices) + 1 if indices else 0  # A gap in the numbering is a missing key later.


def _check_architecture(ckpt: _Checkpoint, config) -> None:
  """ValueError naming the first size in which the checkpoint and the model differ."""
  patch = ckpt["embedding/kernel"].shape  # Shape: [p, p, C_in, C].
  query = ckpt[_BLOCK.format(i=0) + _ATTN + "query/kernel"].shape  # Shape: [C, K, D].
  mlp = ckpt[_BLOCK.format(i=0) + "MlpBlock_3/Dense_0/kernel"].shape  # Shape: [C, mlp].
  pairs = (("hidden size", patch[3], config.hidden_size),
           ("heads", query[1], config.num_heads),
           ("MLP size", mlp[1], config.mlp_dim),
           ("patch size", patch[0], config.patch_size),
           ("layer count", ckpt.num_layers(), config.num_layers),
           ("input channels", patch[2], config.in_channels))
  for what, theirs, ours in pairs:
    if theirs != ours:
      raise ValueError(f"{PREFIX}: {what} {theirs}, the model has {ours}")


def _open(npz_path):
  path = pathlib.Path(npz_path)
  if not path.is_file():
    raise FileNotFoundError(f"{PREFIX}: no file {path}")
  try:
    return np.load(path, allow_pickle=False), path
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise ValueError(f"{PREFIX}: {path} is not a readable .npz ({type(e).__name__}: {e})") from None


def check(npz_path, kind: str, fields: Mapping) -> None:
  """Refuses (one line) a checkpoint `load` would refuse for its sizes, reading only the few
  arrays that show them: a config is checked before anything is built or trained."""
  if kind != "vit":
    raise ValueError(f"{PREFIX}: model kind {kind!r} has no ViT encoder to load into; only 'vit'")
  npz, path = _open(npz_path)
  with npz:
    _check_architecture(_Checkpoint(npz, path), backends.make_config(kind, fields))


def load(npz_path, kind: str, fields: Mapping) -> Dict[str, np.ndarray]:
  """The weights a checkpoint provides for the model of (kind, fields): torch state-dict
  keys, numpy float32. Never the head, nor modules the plain ViT lacks (see the module
  docstring); `apply` lays these over a full start."""
  if kind != "vit":
    raise ValueError(f"{PREFIX}: model kind {kind!r} has no ViT encoder to load into; only 'vit'")
  config = backends.make_config(kind, fields)
  npz, path = _open(npz_path)
  with npz:
    ckpt = _Checkpoint(npz, path)
    _check_architecture(ckpt, config)
    weights = {ours: fn(ckpt[theirs]) for ours, (theirs, fn) in STEM_KEYS.items()}
    weights["pos_embedding"] = resize_pos_embedding(ckpt[POS_KEY], config.grid_size)
    for i in range(config.num_layers):
      for ours, (theirs, fn) in BLOCK_KEYS.items():
        weights[f"blocks.{i}.{ours}"] = fn(ckpt[_BLOCK.format(i=i) + theirs])
  return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}


def apply(start: Weights, npz_path, kind: str, fields: Mapping) -> Dict[str, np.ndarray]:
  """A run's initial weights `start` (full torch layout) with every weight the checkpoint
  provides overwritten; the head and the token-reduction modules stay as in `start`."""
  loaded = load(npz_path, kind, fields)
  out = dict(start)
  for key, value in loaded.items():
    if key not in out or tuple(np.shape(out[key])) != value.shape:
      have = "absent" if key not in out else f"of shape {tuple(np.shape(out[key]))}"
      raise ValueError(f"{PREFIX}: the start's {key} is {have}, the checkpoint gives {value.shape}")
    out[key] = value
  return out
