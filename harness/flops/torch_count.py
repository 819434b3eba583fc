"""torch's count: FlopCounterMode over the PyTorch forward, run on the meta device.

On the meta device tensors have shapes and no storage, so a paper-size model
and its activations cost no memory. FlopCounterMode counts matrix products and
convolutions (2 FLOPs per multiply-add, every kernel tap, padding included) and
nothing elementwise.
"""
import dataclasses
from typing import Dict

import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.twins import backends


@dataclasses.dataclass(frozen=True)
class TorchCount:
  total_flops: int  # 2 per multiply-add.
  by_module: Dict[str, int]  # Every submodule's FLOPs by its dotted name ('module.conv2d').
  params: int
  params_by_module: Dict[str, int]


def count(kind: str, fields) -> TorchCount:
  """The per-example forward FLOPs and the parameters of a registered model's PyTorch twin."""
  with torch.device("meta"):
    model = backends.build("torch", kind, fields)
    x = torch.empty(backends.input_shape(kind, model.config, batch=1))
  model.to("meta")  # Buffers made from numpy (pooling regions) start on the CPU.
  with FlopCounterMode(display=False) as counter, torch.no_grad():
    model(x)
  root = type(model).__name__
  by_module = {name.removeprefix(root).lstrip("."): sum(ops.values())
               for name, ops in counter.get_flop_counts().items() if name != "Global"}
  params_by_module = {name: sum(p.numel() for p in module.parameters())
                      for name, module in model.named_modules()}
  return TorchCount(counter.get_total_flops(), by_module, params_by_module[""], params_by_module)
