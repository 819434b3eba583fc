"""Fixed pooling of a square grid into rectangular regions (Table 2's pooling tokenizer)."""
from typing import Tuple

import numpy as np


def region_layout(grid: int, num_tokens: int) -> Tuple[int, int]:
  """(rows, cols) of the region grid: the most nearly square split of num_tokens.

  Raises ValueError when the split needs more rows or columns than the grid has,
  since a region would then hold no position.
  """
  rows = max(r for r in range(1, int(num_tokens ** 0.5) + 1) if num_tokens % r == 0)
  cols = num_tokens // rows
  if cols > grid:
    raise ValueError(f"num_tokens={num_tokens} splits a {grid}x{grid} grid into {rows}x{cols} "
                     "pooling regions, more columns than the grid has")
  return rows, cols


def pooling_regions(grid: int, num_tokens: int) -> np.ndarray:
  """The membership matrix [N, S] (1 where position n lies in region s), N = grid**2.

  Pooling averages each region; broadcasting copies a region's token back.
  """
  rows, cols = region_layout(grid, num_tokens)
  r = np.arange(grid) * rows // grid
  c = np.arange(grid) * cols // grid
  region = (r[:, None] * cols + c[None, :]).reshape(-1)  # Shape: [N].
  return (region[:, None] == np.arange(num_tokens)[None, :]).astype(np.float32)
