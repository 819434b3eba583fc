"""Where tokens look: the first TokenLearner module's maps alpha_i(x) of a loaded model
(harness/store/finished_runs.py), the fixed pooling regions of the same token budget, and the
share of each map's mass on what the pixels show (target, clutter, background).

A map is a weight per position of the module's grid (g x g); a grid cell covers
(image / g)^2 pixels. A map's mass on a layer is the sum over cells of the map's weight,
normalised to sum 1, times the fraction of the cell's pixels in that layer: the map's
weight spread evenly over its cell's pixels. A pooling region is uniform over its cells,
so fixed pooling puts on each layer, averaged over its tokens, that layer's share of the
image: the yardstick a learned map beats by looking somewhere.

A TokenLearner v1.0 map is a sigmoid per position, and a trained token can switch off for
an example, every weight near 0 (in the proxy's Table 2 runs, whole tokens are off for
nearly every clip). Such a map says nothing about where the token looks: below
conf/maps.yaml's `silent_below` everywhere, it counts as silent and is left out of the shares,
and how often a token is silent is reported beside them.
"""
import numpy as np

from harness.data.base import LAYER_NAMES


def _first_tokenlearner_torch(module):
  from tokenlearner_torch.tokenlearner import TokenLearner, TokenLearnerV11
  found = [m for m in module.modules() if isinstance(m, (TokenLearner, TokenLearnerV11))]
  if not found:
    raise ValueError("the model has no TokenLearner module")
  return found[0]  # Registration order: the ViT's tokenlearners[0], the video module's tokenizer.


def _raw_maps(model, x: np.ndarray) -> np.ndarray:
  """The first TokenLearner's maps [B', S, N] (B' = B, or B*T for clips: one per frame)."""
  if model.framework == "torch":
    import torch
    caught = []
    hook = _first_tokenlearner_torch(model.module).register_forward_hook(
        lambda _, inputs, output: caught.append(output[1]))
    try:
      with torch.no_grad():
        model.module(torch.from_numpy(np.asarray(x, np.float32)))
    finally:
      hook.remove()
    return caught[0].numpy()
  from flax import traverse_util
  from tokenlearner_jax.tokenlearner import TokenLearner, TokenLearnerV11
  _, state = model.module.apply(model.variables, x, capture_intermediates=lambda m, name: (
      isinstance(m, (TokenLearner, TokenLearnerV11)) and name == "__call__"), mutable=["intermediates"])
  calls = list(traverse_util.flatten_dict(state["intermediates"]).values())  # In call order.
  if not calls:
    raise ValueError("the model has no TokenLearner module")
  return np.asarray(calls[0][0][1])  # The first call's (tokens, maps): its maps.


def token_maps(model, x: np.ndarray) -> np.ndarray:
  """The first TokenLearner module's maps of a batch: [B, S, g, g] for images, [B, T, S, g, g]
  for clips (inputs channels last, as the data sources give them)."""
  maps = _raw_maps(model, x)
  grid = int(round(maps.shape[-1] ** 0.5))
  return maps.reshape(*x.shape[:-3], maps.shape[1], grid, grid)  # Shape: [B, (T,) S, g, g].


def pooling_maps(regions: np.ndarray) -> np.ndarray:
  """Fixed pooling's maps [S, g, g] from its membership matrix [N, S] (1 where position n lies
  in region s), N = g^2."""
  grid = int(round(regions.shape[0] ** 0.5))
  return regions.T.reshape(regions.shape[1], grid, grid)  # Shape: [S, g, g].


def layer_cover(layers: np.ndarray, grid: int) -> np.ndarray:
  """Per grid cell, the share of its pixels in each layer: [..., L, g, g] from [..., H, W]."""
  *lead, height, width = layers.shape
  cell = height // grid
  if cell * grid != height or height != width:
    raise ValueError(f"a {grid}x{grid} grid does not tile {height}x{width} images")
  onehot = layers[..., None] == np.arange(len(LAYER_NAMES))  # Shape: [..., H, W, L].
  cells = onehot.reshape(*lead, grid, cell, grid, cell, len(LAYER_NAMES))  # [..., g, c, g, c, L].
  return np.moveaxis(cells.mean(axis=(-4, -2)), -1, -3)  # Shape: [..., L, g, g].


def mass_on_layers(maps: np.ndarray, layers: np.ndarray) -> np.ndarray:
  """Each map's mass on each layer, [..., S, L]: maps [..., S, g, g] (any non-negative
  weights; normalised here) over images whose pixels show `layers` [..., H, W]."""
  grid = maps.shape[-1]
  weights = maps / maps.sum(axis=(-2, -1), keepdims=True)
  cover = layer_cover(layers, grid)  # Shape: [..., L, g, g].
  return np.einsum("...sij,...lij->...sl", weights, cover)
