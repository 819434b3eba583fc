"""Fine-tuning from a base trained once per seed (train.base): the paper's recipe for Table 1
and Figure 1, which fine-tunes a pre-trained ViT with the token reduction inserted.

The base is a run of its own: `train.base.row` of `train.base.experiment`, trained
`train.base.steps` steps at its own learning rate, by one framework, with every other setting
the fine-tuning run's (data, batch, optimizer) and scored on the validation split (it is never
reported, and so is the same run whichever split its rows are scored on). Every row of every
experiment that names the same base, in either framework, starts from that one run's final
weights: it is trained once per seed and skipped thereafter, like any run. Its config is
compose.base_config's; its hash is part of each fine-tuning run's.
"""
from typing import Dict, Mapping, Sequence

import numpy as np


def lay_over(start: Mapping[str, np.ndarray], base: Mapping[str, np.ndarray],
             keep_own: Sequence[str]) -> Dict[str, np.ndarray]:
  """The run's start (converter layout) with the base's weights wherever the run has the same
  weight, except under the `keep_own` prefixes; ValueError naming a weight whose shapes differ."""
  out = dict(start)
  for name, value in base.items():
    if name not in out or name.startswith(tuple(keep_own)):
      continue
    if out[name].shape != value.shape:
      raise ValueError(f"the base's {name} is {value.shape}, the run's {out[name].shape}")
    out[name] = value
  return out
