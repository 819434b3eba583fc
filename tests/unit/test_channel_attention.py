"""The written-out gradient of vector attention without gamma: the NumPy reference against
finite differences, and each twin's hand-written backward against the reference."""
import jax
import numpy as np
import pytest
import torch

from tokenlearner_jax import mixers as jax_mixers
from tokenlearner_spec import channel_attention as reference
from tokenlearner_torch import mixers as torch_mixers


def _inputs(rows=3, queries=5, keys=4, dtype=np.float64):
  rng = np.random.default_rng(0)
  q, k, v, g = (rng.normal(size=shape).astype(dtype) for shape in
                [(rows, queries), (rows, keys), (rows, keys), (rows, queries)])
  return 3 * q, k, v, g  # Peaked weights, mixed-sign logits.


def test_the_reference_gradient_is_the_derivative():
  q, k, v, g = _inputs()
  y, weights = reference.forward(q, k, v)
  analytic = reference.backward(q, k, v, weights, y, g)
  loss = lambda *qkv: float((reference.forward(*qkv)[0] * g).sum())
  eps = 1e-6
  for i, x in enumerate((q, k, v)):
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
      up, down = [t.copy() for t in (q, k, v)], [t.copy() for t in (q, k, v)]
      up[i][index] += eps
      down[i][index] -= eps
      numeric[index] = (loss(*up) - loss(*down)) / (2 * eps)
    np.testing.assert_allclose(analytic[i], numeric, atol=1e-7)


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_each_twins_backward_is_the_reference(framework):
  """float32 against float64: 1e-5 forward, 1e-4 gradients."""
  q, k, v, g = _inputs(dtype=np.float32)
  y, weights = reference.forward(*(t.astype(np.float64) for t in (q, k, v)))
  expected = reference.backward(*(t.astype(np.float64) for t in (q, k, v)), weights, y,
                                g.astype(np.float64))
  if framework == "jax":
    got_y, vjp = jax.vjp(jax_mixers._channel_attention, q, k, v)
    grads = vjp(g)
  else:
    inputs = [torch.tensor(t, requires_grad=True) for t in (q, k, v)]
    got_y = torch_mixers._ChannelAttention.apply(*inputs)
    grads = torch.autograd.grad(got_y, inputs, torch.tensor(g))
    got_y = got_y.detach()
  np.testing.assert_allclose(np.asarray(got_y), y, atol=1e-5)
  for got, want in zip(grads, expected):
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)
