"""The bfloat16 policy (tokenlearner_spec.precision) computes the same in both twins: every
registered row at proxy scale, same weights and input, forward intermediates and the training
loss's gradients, in both directions."""
from typing import Dict

import numpy as np
import pytest
import torch

from harness.configs import registry
from harness.testing.parity_log import BF16_FORWARD_ATOL, BF16_GRAD_ATOL, BF16_NOISE_FACTOR
from tests.parity.test_rows import make_twin, row_tolerance_factor
from tests.parity.twins import DIRECTIONS, as_dict, flat
from tokenlearner_jax import train_step as train_jax
from tokenlearner_torch import train_step as train_torch

# Two rows that hold most of the policy's float32 ops (TokenLearner, TokenFuser, attention, the
# video model) in the default session, one direction each; every row in both directions under
# `nox -s parity` (a row compiles its gradient twice, 15-45 s here).
DEFAULT_ROWS = ("figure1/tokenfuser_tl8", "table2/tl_mhsa_tokenfuser")
CASES = [pytest.param(row, d, id=f"{row.id}-{d}",
                      marks=() if row.id in DEFAULT_ROWS and d == DIRECTIONS[i % 2] else pytest.mark.all_parity)
         for i, row in enumerate(registry.rows()) for d in DIRECTIONS]


def _in(twin, labels, multilabel: bool, precision: str):
  """(JAX intermediates, JAX gradients, torch intermediates, torch gradients) in `precision`, as
  each twin's train step computes them, as float32 arrays."""
  fn = train_jax.loss_and_grads_fn(twin.flax_module, multilabel, input_grads=True, precision=precision)
  (_, out_jax), (g_params, g_input) = fn(twin.params, *twin.inputs, labels)
  grads_jax = {**flat(g_params, "params/"), "input0": np.asarray(g_input)}
  y = torch.from_numpy(labels) if multilabel else torch.from_numpy(labels).long()
  out_torch = {}

  def loss_of(inputs):
    logits, out = train_torch.in_precision(twin.torch_module, inputs[0], precision)
    out_torch.update({k: v.detach().float() for k, v in out.items()})
    return train_torch.loss_fn_for(multilabel)(logits.float(), y)

  grads_torch = twin._torch_grads(loss_of)
  as_float = lambda tree: {k: np.asarray(v, np.float32) for k, v in as_dict(tree).items()}
  return as_float(out_jax), grads_jax, as_float(out_torch), grads_torch


def _differences(jax_bf16: Dict, torch_bf16: Dict, jax_f32: Dict, torch_f32: Dict, atol: float):
  """Tensors whose twins differ beyond their tolerance: atol * max(1, max|ref|), or
  BF16_NOISE_FACTOR times the distance bfloat16 moves the tensor from float32 in the twin it
  moves least (a twin that rounds at other ops than the policy's moves farther, and fails)."""
  assert jax_bf16.keys() == torch_bf16.keys(), sorted(jax_bf16.keys() ^ torch_bf16.keys())
  failed, worst = [], (0.0, "")
  for name, ref in jax_bf16.items():
    gap = lambda a, b: float(np.abs(np.float64(a) - b).max())
    scale = max(1.0, float(np.abs(ref).max()))
    noise = min(gap(jax_bf16[name], jax_f32[name]), gap(torch_bf16[name], torch_f32[name]))
    tol = max(atol * scale, BF16_NOISE_FACTOR * noise)
    diff = gap(ref, torch_bf16[name])
    worst = max(worst, (diff / tol, name))
    if not diff <= tol:
      failed.append(f"{name}: {diff:.3g} > {tol:.3g} (bfloat16 moves it {noise:.3g} from float32)")
  return failed, worst


@pytest.mark.parametrize("row,direction", CASES)
def test_bfloat16_forward_and_gradients(row, direction):
  twin, y = make_twin(row, direction)
  multilabel = row.kind == "video"
  half, full = _in(twin, y, multilabel, "bfloat16"), _in(twin, y, multilabel, "float32")
  assert half[0]["logits"].dtype == np.float32 and full[0]["logits"].dtype == np.float32
  factor = row_tolerance_factor(row)
  forward, _ = _differences(half[0], half[2], full[0], full[2], BF16_FORWARD_ATOL * factor)
  grads, _ = _differences(half[1], half[3], full[1], full[3], BF16_GRAD_ATOL * factor)
  assert not forward + grads, "\n".join(forward + grads)
