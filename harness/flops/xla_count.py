"""XLA's count: cost_analysis() of the jitted Flax forward, split into matmul/conv and the rest.

The forward is lowered on abstract shapes (jax.eval_shape parameters, a
ShapeDtypeStruct input), so a paper-size model costs no memory. XLA counts a
multiply-add as 2 FLOPs and also counts elementwise work (norms, activations,
softmax, residual adds). To report that part separately instead of hiding it in
the total, the dot and convolution instructions of the same HLO module are
costed the way XLA's HloCostAnalysis costs them, and the elementwise part is the
total minus those.
"""
import dataclasses
import math
import re
from typing import Dict, List, Tuple

import jax
import jax.numpy as jnp

from harness.twins import backends

# name = f32[1,2,3]{2,1,0} opcode(operand, operand), attributes
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?([\w.\-]+) = \w+\[([\d,]*)\]\S* ([\w\-]+)\(([^)]*)\)(.*)$")


@dataclasses.dataclass(frozen=True)
class XlaCount:
  """FLOPs in XLA's convention (2 per multiply-add)."""
  total_flops: float  # cost_analysis()['flops'].
  matmul_flops: float  # Its dot and convolution instructions, as cost_analysis counts them.
  dense_matmul_flops: float  # The same with every kernel tap, padding included (torch's way).
  params: int = 0  # Parameters of the lowered model, if it is one.

  @property
  def padding_flops(self) -> float:
    """Convolution taps on zero padding, which cost_analysis skips and torch counts."""
    return self.dense_matmul_flops - self.matmul_flops

  @property
  def elementwise_flops(self) -> float:
    return self.total_flops - self.matmul_flops


def _dims(text: str) -> Tuple[int, ...]:
  return tuple(int(d) for d in text.split(",") if d)


def _attr(attrs: str, name: str) -> str:
  match = re.search(rf"{name}=(\{{[^}}]*\}}|[^,\s]+)", attrs)
  return match.group(1).strip("{}") if match else ""


def _dot_flops(out: Tuple[int, ...], lhs: Tuple[int, ...], attrs: str) -> int:
  contracting = _dims(_attr(attrs, "lhs_contracting_dims"))
  return 2 * math.prod(out) * math.prod(lhs[d] for d in contracting)


def _conv_flops(out: Tuple[int, ...], lhs: Tuple[int, ...], attrs: str) -> Tuple[int, int]:
  """(HloCostAnalysis's convolution cost, which counts only the kernel taps that land on real
  input, not on padding; the cost with every tap)."""
  lhs_labels, rest = _attr(attrs, "dim_labels").split("_")
  out_labels = rest.split("->")[1]
  window = dict(item.split("=") for item in _attr(attrs, "window").split())
  sizes = [int(s) for s in window["size"].split("x")]
  rank = len(sizes)

  def per_dim(key: str, default: str) -> List[str]:
    return window.get(key, "x".join([default] * rank)).split("x")

  strides = [int(s) for s in per_dim("stride", "1")]
  pads_low = [int(p.split("_")[0]) for p in per_dim("pad", "0_0")]
  lhs_dilation = [int(d) for d in per_dim("lhs_dilate", "1")]
  rhs_dilation = [int(d) for d in per_dim("rhs_dilate", "1")]
  valid, dense = 1, 1
  for k in range(rank):
    size_in, size_out = lhs[lhs_labels.index(str(k))], out[out_labels.index(str(k))]
    count = 0
    for o in range(size_out):
      for w in range(sizes[k]):
        index = o * strides[k] - pads_low[k] + w * rhs_dilation[k]
        if index % lhs_dilation[k] == 0 and 0 <= index // lhs_dilation[k] < size_in:
          count += 1
    valid *= count
    dense *= size_out * sizes[k]
  groups = int(_attr(attrs, "feature_group_count") or 1)
  batch_groups = int(_attr(attrs, "batch_group_count") or 1)
  in_features = lhs[lhs_labels.index("f")]
  out_features = out[out_labels.index("f")]
  batch = lhs[lhs_labels.index("b")]
  per_tap = 2 * (in_features // groups) * out_features * (batch // batch_groups)
  return per_tap * valid, per_tap * dense


def matmul_flops(hlo_text: str) -> Tuple[int, int]:
  """FLOPs of every dot and convolution in an HLO module's text: (as HloCostAnalysis counts
  them, with every convolution tap counted)."""
  if re.search(r"\swhile\(", hlo_text):
    raise ValueError("the HLO has a while loop, whose body XLA's cost analysis counts once; "
                     "lower the unrolled program (e.g. vectt_chunk_size=0) to count it")
  shapes: Dict[str, Tuple[int, ...]] = {}
  flops, dense = 0, 0
  for line in hlo_text.splitlines():
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    name, dims, opcode, operands, attrs = match.groups()
    out = shapes[name] = _dims(dims)
    args = [a.strip() for a in operands.split(",")]
    if opcode == "dot":
      dot = _dot_flops(out, shapes[args[0]], attrs)
      flops, dense = flops + dot, dense + dot
    elif opcode == "convolution":
      valid_taps, all_taps = _conv_flops(out, shapes[args[0]], attrs)
      flops, dense = flops + valid_taps, dense + all_taps
  return flops, dense


def lower(fn, *abstract_args) -> XlaCount:
  """Costs a function on abstract arguments without running it."""
  lowered = jax.jit(fn).lower(*abstract_args)
  matmul, dense = matmul_flops(lowered.as_text(dialect="hlo"))
  return XlaCount(float(lowered.cost_analysis()["flops"]), float(matmul), float(dense))


def count(kind: str, fields) -> XlaCount:
  """The per-example forward cost of a registered model's Flax twin."""
  model = backends.build("jax", kind, fields)
  model = model.clone(conv_impl="xla")  # Convolutions, not stacked taps, in the HLO.
  x = jax.ShapeDtypeStruct(backends.input_shape(kind, model.config, batch=1), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  counted = lower(lambda p, images: model.apply(p, images)[0], params, x)
  return dataclasses.replace(counted, params=backends.count_params("jax", params))
