"""The chunked evaluation of vector attention gives the naive numbers, in both frameworks."""
import jax
import numpy as np
import pytest
import torch

from harness.testing.parity_log import CHUNKED_ATOL, CHUNKED_GRAD_ATOL, compare
from tokenlearner_jax import mixers as mj
from tests.parity.twins import flat
from tokenlearner_torch import mixers as mt

M, C = 23, 16  # 23 tokens: chunk sizes that do not divide it exercise the padding.


def named(grads):
  """(params' gradient, input's gradient) -> name -> array."""
  return {**flat(grads[0], "params/"), "input": np.asarray(grads[1])}


@pytest.mark.parametrize("qk_dim", [0, 8])
@pytest.mark.parametrize("chunk_size", [1, 5, 8])
def test_chunked_equals_naive_jax(qk_dim, chunk_size, check):
  x = np.random.RandomState(0).randn(2, M, C).astype(np.float32)
  naive, chunked = mj.VectorAttention(qk_dim), mj.VectorAttention(qk_dim, chunk_size)
  params = naive.init(jax.random.PRNGKey(0), x)
  loss = lambda module: jax.grad(lambda p, x: (module.apply(p, x) ** 2).sum(), argnums=(0, 1))
  grads_naive, grads_chunked = loss(naive)(params, x), loss(chunked)(params, x)
  check(compare({"out": naive.apply(params, x)}, {"out": chunked.apply(params, x)}, CHUNKED_ATOL,
                model=f"module/VectorAttention_qk{qk_dim}", direction="jax",
                check=f"chunked{chunk_size}_vs_naive_forward"),
        compare(named(grads_naive), named(grads_chunked), CHUNKED_GRAD_ATOL,
                model=f"module/VectorAttention_qk{qk_dim}", direction="jax",
                check=f"chunked{chunk_size}_vs_naive_gradients"))


@pytest.mark.parametrize("qk_dim", [0, 8])
@pytest.mark.parametrize("chunk_size", [1, 5, 8])
def test_chunked_equals_naive_torch(qk_dim, chunk_size, check):
  x = torch.from_numpy(np.random.RandomState(0).randn(2, M, C).astype(np.float32))
  module = mt.VectorAttention(C, qk_dim)
  results = {}
  for size in (0, chunk_size):
    module.chunk_size = size
    x_in = x.clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x_in)
    (out ** 2).sum().backward()
    grads = {k: p.grad.numpy().copy() for k, p in module.named_parameters()}
    results[size] = ({"out": out.detach().numpy()}, {**grads, "input": x_in.grad.numpy()})
  check(compare(results[0][0], results[chunk_size][0], CHUNKED_ATOL,
                model=f"module/VectorAttention_qk{qk_dim}", direction="torch",
                check=f"chunked{chunk_size}_vs_naive_forward"),
        compare(results[0][1], results[chunk_size][1], CHUNKED_GRAD_ATOL,
                model=f"module/VectorAttention_qk{qk_dim}", direction="torch",
                check=f"chunked{chunk_size}_vs_naive_gradients"))


@pytest.mark.parametrize("qk_dim", [0, 8])
def test_chunked_in_bfloat16_recomputes_with_the_bfloat16_copies_torch(qk_dim):
  """A checkpointed chunk recomputes in the backward, after train_step.in_precision has put the
  float32 parameters back: it must use the bfloat16 copies its forward used, as the naive one."""
  from tokenlearner_torch import train_step
  torch.manual_seed(0)
  x = torch.from_numpy(np.random.RandomState(0).randn(2, M, C).astype(np.float32))
  naive, chunked = mt.VectorAttention(C, qk_dim), mt.VectorAttention(C, qk_dim, chunk_size=5)
  chunked.load_state_dict(naive.state_dict())
  grads = []
  for module in (naive, chunked):
    train_step.in_precision(module, x, "bfloat16").float().square().sum().backward()
    grads.append({name: p.grad for name, p in module.named_parameters()})
  assert all(g.dtype == torch.float32 for g in grads[1].values())
  for name, grad in grads[0].items():  # bfloat16 rounds chunk by chunk as it rounds the whole.
    torch.testing.assert_close(grads[1][name], grad, rtol=2e-2, atol=2e-2 * float(grad.abs().max()))
