"""FLOPs and parameters of every model in the paper's convention (one multiply-add = one FLOP).

Three independent counters: `analytic` (formulas from the architecture), `xla`
(cost_analysis of the jitted Flax forward) and `torch_counter` (FlopCounterMode
of the PyTorch forward); `report` puts them beside the published numbers.
"""
import dataclasses
from typing import Dict, Mapping

from harness.flops import analytic
from harness.twins import backends

GIGA = 1e9


@dataclasses.dataclass(frozen=True)
class Count:
  """One model's per-example forward cost; GFLOPs = 1e9 multiply-adds."""
  analytic_gflops: float
  xla_gflops: float  # XLA's dots and convolutions, halved, every kernel tap counted.
  torch_gflops: float  # FlopCounterMode, halved.
  xla_padding_gflops: float  # Convolution taps on zero padding, left out by cost_analysis.
  xla_elementwise_gflops: float  # Everything else cost_analysis counts, halved.
  xla_total_gflops: float  # cost_analysis()['flops'] / 2 = xla - padding + elementwise.
  params: int  # Flax parameters.
  params_torch: int
  analytic_parts: Dict[str, float]  # GFLOPs by component.
  torch_parts: Dict[str, float]  # GFLOPs by submodule name.
  params_parts: Dict[str, int]  # torch parameters by submodule name.


def counting_fields(kind: str, fields: Mapping) -> Dict:
  """The config the counters see: chunked VectT unchunked (same arithmetic; XLA's cost
  analysis would count a loop body once)."""
  fields = dict(fields)
  if kind == "video":
    fields["vectt_chunk_size"] = 0
  return fields


def count(kind: str, fields: Mapping) -> Count:
  from harness.flops import torch_count, xla_count
  fields = counting_fields(kind, fields)
  macs = analytic.count(kind, backends.make_config(kind, fields))
  by_xla = xla_count.count(kind, fields)
  by_torch = torch_count.count(kind, fields)
  return Count(
      analytic_gflops=sum(macs.values()) / GIGA,
      xla_gflops=by_xla.dense_matmul_flops / 2 / GIGA,
      torch_gflops=by_torch.total_flops / 2 / GIGA,
      xla_padding_gflops=by_xla.padding_flops / 2 / GIGA,
      xla_elementwise_gflops=by_xla.elementwise_flops / 2 / GIGA,
      xla_total_gflops=by_xla.total_flops / 2 / GIGA,
      params=by_xla.params,
      params_torch=by_torch.params,
      analytic_parts={k: v / GIGA for k, v in macs.items()},
      torch_parts={k: v / 2 / GIGA for k, v in by_torch.by_module.items()},
      params_parts=by_torch.params_by_module,
  )
