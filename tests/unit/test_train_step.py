"""How a train step computes, in each twin: gradient accumulation equals one step on the whole
batch, the step compiled whole computes what the plain one does, and bfloat16 compute trains
and stays close to float32, with float32 parameters."""
import numpy as np
import pytest

from harness.configs import registry
from harness.run import initial_weights
from harness.twins import backends, runners
from harness.twins.runners.protocol import step_on
from tokenlearner_spec import FRAMEWORKS, OptimizerConfig

ROW = ("table1", "tl16_at_12")  # A TokenLearner row: attention, the TokenLearner, pooling, a head.
BATCH = 8
STEPS = 3
# Accumulation reorders float32 sums only: the tolerance of the parity suite's forward check.
ACCUMULATION_ATOL = 1e-5
# bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2%) in every matmul; over a few
# steps of AdamW from the same start, the losses move apart by less than this.
BFLOAT16_LOSS_ATOL = 0.02


def fields():
  return registry.model_fields(*ROW, "proxy")


def batch(seed: int = 0):
  config = backends.make_config("vit", fields())
  rng = np.random.default_rng(seed)
  x = rng.normal(size=backends.input_shape("vit", config, BATCH)).astype(np.float32)
  return x, rng.integers(0, config.num_classes, BATCH).astype(np.int32)


def make_runner(framework, optim, **how):
  start = initial_weights.torch_initial_weights("vit", fields(), seed=0)
  return runners.make(framework, "vit", fields(), optim, multilabel=False, seed=0, start=start, **how)


def train(runner, x, y, steps=STEPS):
  return [step_on(runner, step, x, y) for step in range(steps)]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_accumulated_micro_batches_equal_one_step_on_the_whole_batch(framework):
  """SGD, whose update is linear in the gradient: with AdamW, which divides each gradient
  element by its own size, rounding-level differences in near-zero elements become lr-sized."""
  optim = OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.9)
  x, y = batch()
  whole, parts = make_runner(framework, optim), make_runner(framework, optim, micro_batches=4)
  np.testing.assert_allclose(train(parts, x, y), train(whole, x, y), rtol=0, atol=ACCUMULATION_ATOL)
  logits = whole.predict(x)
  assert np.abs(parts.predict(x) - logits).max() <= ACCUMULATION_ATOL
  assert np.abs(logits).max() > 1e-3  # The steps moved the zero-initialised head.


# torch.compile takes most of a minute on a CPU: PyTorch's case waits for --runslow.
@pytest.mark.parametrize("framework", ["jax", pytest.param("torch", marks=pytest.mark.slow)])
def test_the_compiled_step_trains_as_the_plain_one(framework):
  """torch.compile, and JAX's one donated program, reorder float32 arithmetic at most: the
  losses, and the weights after the steps, within the parity suite's forward tolerance."""
  optim = OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.9)
  x, y = batch()
  compiled_frames = lambda: __import__("torch")._dynamo.utils.counters["frames"]["ok"]
  frames_before = compiled_frames()
  plain, compiled = make_runner(framework, optim), make_runner(framework, optim, compiled=True)
  np.testing.assert_allclose(train(compiled, x, y), train(plain, x, y), rtol=0, atol=ACCUMULATION_ATOL)
  for key, weight in plain.weights().items():
    np.testing.assert_allclose(compiled.weights()[key], weight, rtol=0, atol=ACCUMULATION_ATOL, err_msg=key)
  if framework == "jax":  # The old state's buffers went to the new state.
    import jax
    before = compiled.params
    step_on(compiled, STEPS, x, y)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(before))
  else:
    assert compiled_frames() > frames_before  # Dynamo compiled the step's forward.
    assert list(compiled.model.state_dict()) == list(plain.model.state_dict())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_bfloat16_trains_close_to_float32_with_float32_parameters(framework):
  optim = OptimizerConfig(name="adamw", learning_rate=1e-3)
  x, y = batch()
  full, half = make_runner(framework, optim), make_runner(framework, optim, precision="bfloat16")
  losses_full, losses_half = train(full, x, y, 5), train(half, x, y, 5)
  assert losses_half[-1] < losses_half[0]
  assert np.abs(np.subtract(losses_half, losses_full)).max() <= BFLOAT16_LOSS_ATOL
  assert half.predict(x).dtype == np.float32
  if framework == "jax":
    import jax
    dtypes = {leaf.dtype for leaf in jax.tree.leaves((half.params, half.opt_state)) if leaf.ndim}
  else:
    dtypes = {p.dtype for p in half.model.parameters()}
    dtypes |= {v.dtype for s in half.optimizer.state.values() for v in s.values() if v.ndim}
  assert {str(d).removeprefix("torch.") for d in dtypes} == {"float32"}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_batch_that_does_not_split_evenly_is_refused(framework):
  runner = make_runner(framework, OptimizerConfig(), micro_batches=3)
  x, y = batch()
  with pytest.raises(ValueError, match="a batch of 8 does not split into 3 equal micro-batches"):
    step_on(runner, 0, x, y)
