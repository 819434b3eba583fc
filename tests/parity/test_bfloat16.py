"""The bfloat16 policy (tokenlearner_spec.precision) computes the same in both twins: every
registered row at proxy scale, same weights and input, forward intermediates and the training
loss's gradients, in both directions."""
from typing import Dict, Tuple

import numpy as np
import pytest

from harness.configs import registry
from harness.testing.parity_log import BF16_BALANCE, BF16_BALANCE_MIN_SIZE, BF16_GAP_FACTOR
from tests.parity.test_rows import make_twin
from tests.parity.twins import DIRECTIONS

# One row that holds most of the policy's float32 ops (TokenLearner, MHSA, TokenFuser, the video
# model's LayerNorms and pools) in the default session, one direction; every row in both
# directions under `nox -s parity` (a row compiles its gradient twice, 10-45 s here).
DEFAULT_ROWS = ("table2/tl_mhsa_tokenfuser",)
CASES = [pytest.param(row, d, id=f"{row.id}-{d}",
                      marks=() if row.id in DEFAULT_ROWS and d == DIRECTIONS[i % 2] else pytest.mark.all_parity)
         for i, row in enumerate(registry.rows()) for d in DIRECTIONS]


def _in(twin, labels, multilabel: bool, precision: str):
  """(JAX intermediates, JAX gradients, torch intermediates, torch gradients) in `precision`, as
  each twin's train step computes them, as float32 arrays; the logits checked to have been
  computed in `precision` first."""
  out_jax, grads_jax, out_torch, grads_torch = twin.training_grads(labels, multilabel, precision=precision)
  assert str(out_jax["logits"].dtype) == str(out_torch["logits"].dtype) == precision
  as_float = lambda named: {k: np.asarray(v, np.float32) for k, v in named.items()}
  return as_float(out_jax), grads_jax, as_float(out_torch), grads_torch


def _distance(a, b, scale: float) -> float:
  return float(np.linalg.norm(np.float64(a) - np.float64(b))) / scale


def _differences(jax_bf16: Dict, torch_bf16: Dict, jax_f32: Dict, torch_f32: Dict,
                 balanced: bool) -> Tuple[list, list]:
  """Per tensor, as distances relative to its float32 norm: the twins in bfloat16 apart by at
  most BF16_GAP_FACTOR times what bfloat16 moves either twin from its own float32 result, and,
  if `balanced`, on tensors of BF16_BALANCE_MIN_SIZE elements or more, bfloat16 moving each twin
  by at least BF16_BALANCE times what it moves the other: both round, and at the same ops.
  Returns the failures and, per tensor, (name, gap, JAX's move, PyTorch's move)."""
  assert jax_bf16.keys() == torch_bf16.keys(), sorted(jax_bf16.keys() ^ torch_bf16.keys())
  failed, measured = [], []
  for name in sorted(jax_bf16):
    scale = float(np.linalg.norm(np.float64(jax_f32[name])))
    if scale == 0.0:
      continue
    gap = _distance(jax_bf16[name], torch_bf16[name], scale)
    moves = (_distance(jax_bf16[name], jax_f32[name], scale), _distance(torch_bf16[name], torch_f32[name], scale))
    measured.append((name, gap, *moves))
    if gap > BF16_GAP_FACTOR * max(moves):
      failed.append(f"{name}: twins {gap:.3g} apart, bfloat16 moves JAX {moves[0]:.3g}, PyTorch {moves[1]:.3g}")
    elif balanced and jax_bf16[name].size >= BF16_BALANCE_MIN_SIZE and min(moves) < BF16_BALANCE * max(moves):
      failed.append(f"{name}: bfloat16 moves JAX {moves[0]:.3g} but PyTorch {moves[1]:.3g} from float32")
  return failed, measured


@pytest.mark.parametrize("row,direction", CASES)
def test_bfloat16_forward_and_gradients(row, direction):
  twin, y = make_twin(row, direction)
  multilabel = row.kind == "video"
  half, full = _in(twin, y, multilabel, "bfloat16"), _in(twin, y, multilabel, "float32")
  # Balanced in the forward, where the policy's casts are. A gradient can be ill-conditioned
  # (attention kernels that see the few tokens a TokenLearner leaves): bfloat16 then moves one
  # twin's up to 25x farther than the other's, the twins still within BF16_GAP_FACTOR.
  forward, _ = _differences(half[0], half[2], full[0], full[2], balanced=True)
  grads, _ = _differences(half[1], half[3], full[1], full[3], balanced=False)
  assert not forward + grads, "\n".join(forward + grads)
  # The check bites: a PyTorch forward left in float32, or 20% off, fails it.
  assert _differences(half[0], full[2], full[0], full[2], balanced=True)[0]
  assert _differences(half[0], {k: 1.2 * v for k, v in half[2].items()}, full[0], full[2], balanced=True)[0]
