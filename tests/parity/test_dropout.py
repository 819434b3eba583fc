"""Training-mode dropout of TokenLearner v1.1 and TokenFuser, in each twin: on where the
official modules put it (inside the MLP; TokenFuser also on the fused tokens), off in
evaluation mode, and scaled by 1 / (1 - rate) where it keeps a value."""
import jax
import numpy as np
import pytest
import torch

from tokenlearner_jax import tokenlearner as tlj
from tokenlearner_torch import tokenlearner as tlt

C, S, B, N, RATE = 16, 4, 2, 64, 0.5
RNG = np.random.RandomState(0)
TOKENS, ORIGINAL = RNG.randn(B, S, C).astype(np.float32), RNG.randn(B, N, C).astype(np.float32)
GRID = RNG.randn(B, 8, 8, C).astype(np.float32)
TOKEN_MIX = RNG.randn(S, S).astype(np.float32)  # TokenFuser's is zero at init: fused tokens would be 0.


def jax_modes(module, inputs, silence_mlp_output: bool):
  """(evaluation, training) outputs of a Flax module; optionally the MLP's output Dense zeroed."""
  def prepare(path, x):
    name = jax.tree_util.keystr(path)
    if "token_mix" in name:
      return TOKEN_MIX.T  # Dense kernel [in, out]: torch's weight transposed.
    return x * 0 if silence_mlp_output and "fc2" in name else x
  params = jax.tree_util.tree_map_with_path(prepare, module.init(jax.random.PRNGKey(0), *inputs))
  evaluation = module.apply(params, *inputs)
  training = module.apply(params, *inputs, deterministic=False, rngs={"dropout": jax.random.PRNGKey(1)})
  first = lambda out: np.asarray(out[0] if isinstance(out, tuple) else out)
  return first(evaluation), first(training)


def torch_modes(module, inputs, silence_mlp_output: bool):
  torch.manual_seed(0)
  with torch.no_grad():
    if hasattr(module, "token_mix"):
      module.token_mix.weight.copy_(torch.from_numpy(TOKEN_MIX))
    if silence_mlp_output:
      module.mlp.fc2.weight.zero_()
      module.mlp.fc2.bias.zero_()
  tensors = [torch.from_numpy(x) for x in inputs]
  with torch.no_grad():
    evaluation = module.eval()(*tensors)
    training = module.train()(*tensors)
  first = lambda out: (out[0] if isinstance(out, tuple) else out).numpy()
  return first(evaluation), first(training)


FUSERS = {"jax": lambda rate: (tlj.TokenFuser(8, rate), jax_modes),
          "torch": lambda rate: (tlt.TokenFuser(C, S, 8, rate), torch_modes)}
LEARNERS = {"jax": lambda rate: (tlj.TokenLearnerV11(S, 8, rate), jax_modes),
            "torch": lambda rate: (tlt.TokenLearnerV11(C, S, 8, rate), torch_modes)}


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_tokenfuser_drops_the_fused_tokens_and_scales_the_rest(framework):
  # With the MLP's output Dense at zero, every mixing weight is sigmoid(0) in both modes, so
  # the only dropout left to see is the one on the fused tokens.
  module, modes = FUSERS[framework](RATE)
  evaluation, training = modes(module, (TOKENS, ORIGINAL), silence_mlp_output=True)
  fused_eval, fused_train = evaluation - ORIGINAL, training - ORIGINAL
  dropped = fused_train == 0
  assert 0.4 < dropped.mean() < 0.6  # Of B*N*C = 2048 entries at rate 0.5.
  np.testing.assert_allclose(fused_train[~dropped], fused_eval[~dropped] / (1 - RATE), rtol=1e-5,
                             atol=1e-5)


@pytest.mark.parametrize("framework", ["jax", "torch"])
@pytest.mark.parametrize("module_set", ["fuser", "learner"])
def test_dropout_is_active_in_training_and_absent_at_rate_zero(framework, module_set):
  make = (FUSERS if module_set == "fuser" else LEARNERS)[framework]
  inputs = (TOKENS, ORIGINAL) if module_set == "fuser" else (GRID,)
  module, modes = make(RATE)
  evaluation, training = modes(module, inputs, silence_mlp_output=False)
  assert np.abs(training - evaluation).max() > 1e-3
  module, modes = make(0.0)
  evaluation, training = modes(module, inputs, silence_mlp_output=False)
  np.testing.assert_array_equal(training, evaluation)


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_tokenlearner_v11_drops_inside_its_mlp_only(framework):
  """With the MLP's output at zero the maps are uniform in both modes: no dropout acts on
  the learned tokens themselves (the official v1.1 drops inside its MLP only)."""
  module, modes = LEARNERS[framework](RATE)
  evaluation, training = modes(module, (GRID,), silence_mlp_output=True)
  np.testing.assert_allclose(training, evaluation, rtol=1e-6, atol=1e-6)
