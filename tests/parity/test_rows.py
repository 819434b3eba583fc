"""Parity of every registered row (Tables 1-2, Figure 1) at proxy scale, in both directions."""
import jax
import numpy as np
import pytest
import torch

import tokenlearner_jax as tj
import tokenlearner_torch as tt
from harness.twins import backends
from harness.configs import registry
from harness.testing.parity_log import (FORWARD_ATOL, GRAD_ATOL, TRAIN_LOSS_RTOL, UPDATE_ATOL, compare)
from tests.parity.twins import DIRECTIONS, Twin, flat, random_batch, tolerance_factor
from tokenlearner_jax import train_step as train_jax
from tokenlearner_torch import train_step as train_torch

ROWS = registry.rows()
CASES = [pytest.param(row, d, id=f"{row.id}-{d}") for row in ROWS for d in DIRECTIONS]
# The compile-bound checks (forward and gradients, a training run) run every row in the
# default session, in one direction, the rows alternating between the two; `nox -s parity`
# runs both directions of every row.
SHARED_CASES = [pytest.param(row, d, id=f"{row.id}-{d}",
                             marks=() if d == DIRECTIONS[i % 2] else pytest.mark.all_parity)
                for i, row in enumerate(ROWS) for d in DIRECTIONS]
# The SGD update, row-independent but for the parameters it reaches, runs each experiment's
# first row in both directions in the default session (AdamW's update runs every row there).
FIRST_ROWS = {row.experiment: row for row in reversed(ROWS)}.values()
SGD_CASES = [pytest.param(row, d, id=f"{row.id}-{d}",
                          marks=() if row in FIRST_ROWS else pytest.mark.all_parity)
             for row in ROWS for d in DIRECTIONS]
BATCH = 2
TRAIN_STEPS = 20
# AdamW's eps is 1e-6, not 1e-8: Adam's first step g / (|g| + eps) normalises every
# gradient element by its own size, so elements below ~1e-7, where float32 round-off in
# the backward pass is a sizeable part of the value, would turn that noise into
# updates of up to lr. eps = 1e-6 bounds the amplification; the algorithm is unchanged.
ADAM_EPS = 1e-6
OPTIMIZERS = {
    "sgd_momentum": dict(name="sgd", learning_rate=0.05, momentum=0.9, weight_decay=1e-4),
    "adamw": dict(name="adamw", learning_rate=1e-3, weight_decay=0.05, eps=ADAM_EPS,
                  warmup_steps=2, total_steps=TRAIN_STEPS, grad_clip_norm=1.0),
}


def row_tolerance_factor(row) -> float:
  return tolerance_factor(row.kind, registry.model_fields(row.experiment, row.key, "proxy"))


def make_twin(row, direction, seed=0, drawn_params=False):
  """The row's twins with the same weights. drawn_params: JAX's weights drawn in numpy in the
  shapes of its init, not initialised by a compiled program (where their values do not matter)."""
  fields = registry.model_fields(row.experiment, row.key, "proxy")
  config = backends.make_config(row.kind, fields)
  x, y = random_batch(row.kind, config, seed, BATCH)
  flax_module, params = tj.build_model(config), None
  if drawn_params and direction == "jax_to_torch":
    rng = np.random.default_rng(seed)
    template = jax.eval_shape(flax_module.init, jax.random.key(seed, impl="rbg"), x)
    params = jax.tree.map(lambda leaf: rng.normal(size=leaf.shape).astype(leaf.dtype), template)
  twin = Twin(flax_module, tt.build_model(config), [x], direction, seed, params=params)
  return twin, y


def labels_torch(y):
  return torch.from_numpy(y) if y.dtype == np.float32 else torch.from_numpy(y).long()


@pytest.mark.parametrize("row,direction", SHARED_CASES)
def test_forward_and_gradients(row, direction, check):
  """Every named intermediate, then the training loss's gradient w.r.t. every parameter and
  the input (one jitted function in JAX, one autograd pass in torch)."""
  twin, y = make_twin(row, direction)
  out_jax, grads_jax, out_torch, grads_torch = twin.training_grads(y, row.kind == "video")
  factor = row_tolerance_factor(row)
  check(compare(out_jax, out_torch, FORWARD_ATOL * factor,
                model=row.id, direction=direction, check="forward"),
        compare(grads_jax, grads_torch, GRAD_ATOL * factor, model=row.id, direction=direction,
                check="gradients"))


_STEPS = {}
NO_DROPOUT = jax.random.PRNGKey(0)  # The rows train without dropout; the key goes unused.


def jitted_step(row, flax_module, optimizer: str):
  """One JAX train step per (row, recipe), shared by both directions."""
  key = (row.id, optimizer)
  if key not in _STEPS:
    _STEPS[key] = train_jax.make_train_step(
        flax_module, train_jax.OptimizerConfig(**OPTIMIZERS[optimizer]), row.kind == "video")
  return _STEPS[key]


@pytest.mark.parametrize("row,direction", SGD_CASES)
def test_sgd_momentum_update(row, direction, check):
  twin, y = make_twin(row, direction)
  (x,) = twin.inputs
  tx, step_jax = jitted_step(row, twin.flax_module, "sgd_momentum")
  params, _, _ = step_jax(twin.params, tx.init(twin.params), x, y, NO_DROPOUT)
  _, step_torch = train_torch.make_train_step(
      twin.torch_module, train_torch.OptimizerConfig(**OPTIMIZERS["sgd_momentum"]),
      row.kind == "video")
  step_torch(torch.from_numpy(x), labels_torch(y))
  check(compare(flat(params), twin.torch_params(), UPDATE_ATOL * row_tolerance_factor(row),
                model=row.id, direction=direction, check="update_sgd_momentum"))


@pytest.mark.parametrize("row,direction", SHARED_CASES)
def test_adamw_update_and_training_run(row, direction, check):
  """AdamW with weight decay, warm-up, cosine decay and clipping, on fixed batches: the
  weights after the first update, then the loss at each of 20 steps."""
  twin, _ = make_twin(row, direction)
  factor = row_tolerance_factor(row)
  batches = [random_batch(row.kind, twin.flax_module.config, seed, BATCH) for seed in range(4)]
  tx, step_jax = jitted_step(row, twin.flax_module, "adamw")
  _, step_torch = train_torch.make_train_step(
      twin.torch_module, train_torch.OptimizerConfig(**OPTIMIZERS["adamw"]), row.kind == "video")
  params, opt_state = twin.params, tx.init(twin.params)
  losses_jax, losses_torch, results = {}, {}, []
  for i in range(TRAIN_STEPS):
    x, y = batches[i % len(batches)]
    params, opt_state, loss = step_jax(params, opt_state, x, y, NO_DROPOUT)
    losses_jax[f"step{i:02d}"] = float(loss)
    losses_torch[f"step{i:02d}"] = float(step_torch(torch.from_numpy(x), labels_torch(y)))
    if i == 0:
      results.append(compare(flat(params), twin.torch_params(), UPDATE_ATOL * factor, model=row.id,
                             direction=direction, check="update_adamw"))
  # Relative tolerance on each step's loss.
  scale = {k: max(abs(v), 1e-12) for k, v in losses_jax.items()}
  results.append(compare({k: v / scale[k] for k, v in losses_jax.items()},
                         {k: v / scale[k] for k, v in losses_torch.items()}, TRAIN_LOSS_RTOL * factor,
                         model=row.id, direction=direction, check="train_20_steps_loss",
                         relative=False))
  check(*results)


@pytest.mark.parametrize("row,direction", CASES)
def test_round_trip_exact(row, direction, check):
  """JAX -> torch -> JAX (or torch -> JAX -> torch) restores every weight bit for bit."""
  twin, _ = make_twin(row, direction, drawn_params=True)
  if direction == "jax_to_torch":
    before, after = flat(twin.params), twin.torch_params()
  else:
    from harness.twins.convert import jax_to_torch
    before = backends.torch_state_numpy(twin.torch_module)
    after = jax_to_torch(twin.params, twin.torch_module.state_dict())
  check(compare(before, after, 0.0, model=row.id, direction=direction, check="round_trip",
                relative=False))
