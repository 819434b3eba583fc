"""Ops written as other programs for XLA's CPU backend, which runs their plain forms slowly.

Each computes the same function from the same parameters as its plain form: products on rows
(rows_matmul, behind layers.dense), convolutions as kernel taps (convolve,
convolve_depthwise, behind layers.Conv and layers.DepthwiseConv) and attention normalised after
the product with the values (attend_late_normalised, behind layers.attend). The PyTorch twin's
cpu_rewrites is empty and says why.
"""
import functools
import itertools
from typing import Sequence, Tuple, Union

import jax
import jax.numpy as jnp

# How a convolution runs. 'xla': XLA's convolution op. 'taps': the same sum written as
# strided slices of the padded input, one per kernel tap (a dense conv stacks them and
# does one matmul, a depthwise conv scales and adds them). On XLA's CPU backend 'taps'
# is several times faster, the backward of strided convs most of all (the proxy video
# stem, 1x3x3 stride 2 on 16 clips: 245 ms forward and backward as a convolution). 'auto':
# 'taps' on CPU, 'xla' elsewhere. Both programs compute one function from the same parameters.
CONV_IMPLS = ("auto", "taps", "xla")
Padding = Union[str, Sequence[Tuple[int, int]]]


def rows_matmul(x, kernel, precision=None):
  """x [..., C] @ kernel [C, F] -> [..., F], computed on x flattened to rows [R, C].

  The same numbers as the N-d product. Why: XLA's CPU backend lays out the backward of
  an N-d product with transposes it runs slowly; on rows it is 2-4x faster (a [16, 6, 8,
  8, 32] @ [32, 128] product's gradient: 5.6 ms N-d, 1.8 ms on rows).
  """
  y = jnp.matmul(x.reshape(-1, x.shape[-1]), kernel, precision=precision)  # Shape: [R, F].
  return y.reshape(*x.shape[:-1], kernel.shape[-1])  # Shape: [..., F].


def rows_dot_general(x, kernel, dimension_numbers, precision=None):
  """nn.Dense's dot_general (x [..., C] contracted with kernel [C, F]) as rows_matmul."""
  if dimension_numbers != (((x.ndim - 1,), (0,)), ((), ())):
    raise ValueError(f"expected nn.Dense's contraction, got {dimension_numbers}")
  return rows_matmul(x, kernel, precision)


def convolve(x, kernel, strides, padding: Padding, impl: str = "auto"):
  """A conv, channels last, run as `impl` says (CONV_IMPLS): x [B, *S, C_in], kernel
  [*K, C_in, C_out] -> [B, *S', C_out]."""
  impl = _resolve(impl)
  pads = _explicit_padding(padding, x.shape[1:-1], kernel.shape[:-2], strides)
  if impl == "xla":
    return _xla_conv(x, kernel, strides, pads)
  return conv_taps(x, kernel, strides, pads)


def convolve_depthwise(x, kernel, pads, impl: str = "auto"):
  """A depthwise conv, stride 1, padded by `pads` ((low, high) per dim), run as `impl` says
  (CONV_IMPLS): x [B, *S, C], kernel [*K, 1, C] -> [B, *S', C]."""
  impl = _resolve(impl)
  if impl == "xla":
    return _xla_conv(x, kernel, (1,) * (kernel.ndim - 2), pads, groups=x.shape[-1])
  return depthwise_taps(x, kernel, pads)


def _resolve(impl: str) -> str:
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv impl={impl!r} is not one of {CONV_IMPLS}")
  if impl == "auto":
    return "taps" if jax.default_backend() == "cpu" else "xla"
  return impl


def _explicit_padding(padding: Padding, sizes, kernel, strides):
  """'SAME' / 'VALID' / per-dim (low, high) pairs -> a tuple of per-dim pairs, as XLA resolves them."""
  if isinstance(padding, str):
    if padding not in ("SAME", "VALID"):
      raise ValueError(f"padding={padding!r}: expected 'SAME', 'VALID' or (low, high) per dim")
    return tuple(jax.lax.padtype_to_pads(sizes, kernel, strides, padding))
  return tuple(tuple(p) for p in padding)


def _xla_conv(x, kernel, strides, pads, groups: int = 1):
  """XLA's convolution, channels last: x [B, *S, C_in], kernel [*K, C_in / groups, C_out]."""
  rank = kernel.ndim - 2
  spec = "N" + "THW"[-rank:] + "C"  # Shape: e.g. NTHWC.
  return jax.lax.conv_general_dilated(x, kernel, strides, pads, feature_group_count=groups,
                                      dimension_numbers=(spec, "THW"[-rank:] + "IO", spec))


# The two tap programs below are jitted so that, run op by op (Flax's init, eager tests), a
# conv is one compiled program rather than one per slice shape; under jit they inline.
@functools.partial(jax.jit, static_argnums=(2, 3))
def conv_taps(x, kernel, strides, pads):
  """A conv (kernel [*K, C_in, C_out]) as one matmul over the stacked taps: [B, *S, C_in] ->
  [B, *S', C_out]."""
  patches = jnp.concatenate(kernel_taps(x, kernel.shape[:-2], strides, pads), axis=-1)
  return rows_matmul(patches, kernel.reshape(-1, kernel.shape[-1]))  # [B, *S', K*C_in] -> C_out.


@functools.partial(jax.jit, static_argnums=(2,))
def depthwise_taps(x, kernel, pads):
  """A depthwise conv (kernel [*K, 1, C], stride 1) as a sum of scaled taps: [B, *S, C] -> same.

  Behind an optimization barrier: XLA otherwise fuses the sum into each consumer's slices
  and recomputes it (two stacked depthwise convs, forward and backward: 32 ms; 9 ms with
  the barrier).
  """
  taps = kernel_taps(x, kernel.shape[:-2], (1,) * (kernel.ndim - 2), pads)
  scales = kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)  # Shape: [K, C].
  # Summed in float32, rounded once, as a convolution kernel sums (tokenlearner_spec.precision).
  total = sum(tap.astype(jnp.float32) * w for tap, w in zip(taps, scales))
  return jax.lax.optimization_barrier(total.astype(x.dtype))


def kernel_taps(x, kernel_size, strides, pads):
  """The input under each kernel tap: [B, *S, C] -> a list, in kernel order, of [B, *S', C]."""
  padded = jnp.pad(x, [(0, 0), *pads, (0, 0)])
  spatial = padded.shape[1:-1]
  out = [(n - k) // s + 1 for n, k, s in zip(spatial, kernel_size, strides)]
  return [padded[(slice(None), *(slice(o, o + s * (m - 1) + 1, s)
                                 for o, s, m in zip(offset, strides, out)))]
          for offset in itertools.product(*(range(k) for k in kernel_size))]


def attend_late_normalised(q, k, v):
  """softmax(q k^T / sqrt(D)) v per head: q [B, Mq, K, D], k and v [B, Mk, K, D] -> [B, Mq, K, D].

  Normalised after the product with v (sum_m e_qm v_m / sum_m e_qm, e = exp(logit - max)),
  the same function as normalising the weights first, with one pass less over the [B, K,
  Mq, Mk] weights forward and backward, which XLA's CPU backend runs slowly.
  In bfloat16 the logits, their exponentials and the normaliser stay float32 (a softmax over
  hundreds of keys in bfloat16 loses the small weights); the weights meet the values in
  bfloat16, summed in float32 (tokenlearner_spec.precision).
  """
  q, k, v = (t.swapaxes(1, 2) for t in (q, k, v))  # Shape: [B, K, M, D].
  scale = jnp.sqrt(q.shape[-1]).astype(jnp.float32)
  logits = jnp.matmul(q, k.swapaxes(-1, -2), preferred_element_type=jnp.float32) / scale  # [B, K, Mq, Mk].
  e = jnp.exp(logits - jax.lax.stop_gradient(logits.max(-1, keepdims=True)))
  y = jnp.matmul(e.astype(v.dtype), v, preferred_element_type=jnp.float32)  # Shape: [B, K, Mq, D].
  return (y / e.sum(-1, keepdims=True)).astype(v.dtype).swapaxes(1, 2)
