"""Each op a twin rewrites for speed on CPU against its plain formulation: the same
parameters (tree and initial values), the same outputs and gradients within the parity
tolerances. Flax: convolutions as stacked kernel taps, Dense products on rows, attention
normalised after the product with the values, or by jax.nn.dot_product_attention. PyTorch: attention by torch's fused kernel.
Both: vector attention without gamma, with its backward written out."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch

import tokenlearner_jax as tj
from harness.testing.parity_log import FORWARD_ATOL, GRAD_ATOL, compare
from tokenlearner_jax import layers, mixers
from tokenlearner_torch import layers as torch_layers, mixers as torch_mixers

# name -> (features, kernel, strides, padding, input shape), as the twin's convs use them.
CONVS = {
    "tokenlearner_3x3": (4, (3, 3), (1, 1), "SAME", (2, 5, 5, 6)),
    "patch_embedding_4x4": (8, (4, 4), (4, 4), "VALID", (2, 12, 12, 1)),
    "strided_3x3_odd_grid": (5, (3, 3), (2, 2), "SAME", (2, 7, 7, 3)),
    "video_stem_1x3x3_stride2": (6, (1, 3, 3), (1, 2, 2), ((0, 0), (1, 1), (1, 1)), (2, 3, 8, 8, 1)),
    "video_temporal_3x1x1": (6, (3, 1, 1), (1, 1, 1), ((1, 1), (0, 0), (0, 0)), (2, 3, 4, 4, 5)),
}


def _perturbed(params):
  """Non-zero weights everywhere, biases included, so that every gradient term is exercised."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
  return jax.tree.unflatten(tree, [p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


def _outputs_and_grads(apply, params, *inputs):
  """(outputs, gradients of a random projection of them wrt params and inputs), flattened."""
  out = jax.jit(apply)(params, *inputs)
  weights = jax.random.normal(jax.random.PRNGKey(2), out.shape)
  loss = lambda p, *xs: jnp.sum(apply(p, *xs) * weights)
  grads = jax.jit(jax.grad(loss, argnums=tuple(range(1 + len(inputs)))))(params, *inputs)
  flat = {jax.tree_util.keystr(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]}
  return {"out": np.asarray(out)}, flat


def _check_same_function(check, name, plain, rewritten, params, *inputs):
  """plain, rewritten: Flax modules, or apply functions f(params, *inputs)."""
  apply = lambda f: getattr(f, "apply", f)
  out_plain, grads_plain = _outputs_and_grads(apply(plain), params, *inputs)
  out_new, grads_new = _outputs_and_grads(apply(rewritten), params, *inputs)
  check(compare(out_plain, out_new, FORWARD_ATOL, model=f"rewrite/{name}", direction="none",
                check="forward"),
        compare(grads_plain, grads_new, GRAD_ATOL, model=f"rewrite/{name}", direction="none",
                check="gradients"))


def _inputs(*shapes, seed: int = 0):
  rng = np.random.RandomState(seed)
  return [rng.randn(*shape).astype(np.float32) for shape in shapes]


@pytest.mark.parametrize("name", CONVS)
@pytest.mark.parametrize("impl", ["taps", "xla"])
def test_conv_matches_flax_conv(name, impl, check):
  features, kernel, strides, padding, shape = CONVS[name]
  (x,) = _inputs(shape)
  plain = nn.Conv(features, kernel, strides, padding)
  rewritten = layers.Conv(features, kernel, strides, padding, impl=impl)
  params = plain.init(jax.random.PRNGKey(0), x)
  new_params = rewritten.init(jax.random.PRNGKey(0), x)
  assert jax.tree.structure(params) == jax.tree.structure(new_params)
  jax.tree.map(np.testing.assert_array_equal, params, new_params)  # Same initial values too.
  _check_same_function(check, f"conv_{name}_{impl}", plain, rewritten, _perturbed(params), x)


@pytest.mark.parametrize("kernel", [(1, 3, 3), (3, 1, 1), (3, 3)])
def test_depthwise_conv_taps_match_grouped_conv(kernel, check):
  (x,) = _inputs((2, 3, 5, 5, 6)[-len(kernel) - 2:])
  plain = nn.Conv(6, kernel, padding="SAME", feature_group_count=6)
  params = _perturbed(plain.init(jax.random.PRNGKey(0), x))
  initial = plain.init(jax.random.PRNGKey(0), x)
  for impl in ("taps", "xla"):
    rewritten = layers.DepthwiseConv(kernel, impl)
    new_initial = rewritten.init(jax.random.PRNGKey(0), x)
    assert jax.tree.structure(new_initial) == jax.tree.structure(initial)
    jax.tree.map(np.testing.assert_array_equal, initial, new_initial)
    _check_same_function(check, f"depthwise_{'x'.join(map(str, kernel))}_{impl}", plain, rewritten,
                         params, x)


def test_dense_on_rows_matches_flax_dense(check):
  (x,) = _inputs((2, 3, 4, 5))
  plain, rewritten = nn.Dense(7), layers.dense(7)
  params = plain.init(jax.random.PRNGKey(0), x)
  jax.tree.map(np.testing.assert_array_equal, params, rewritten.init(jax.random.PRNGKey(0), x))
  _check_same_function(check, "dense_rows", plain, rewritten, _perturbed(params), x)


class _Attend(nn.Module):
  """layers.attend in one of its impls, or softmax weights first (the textbook order), on given
  q, k, v."""
  impl: str

  def __call__(self, q, k, v):
    if self.impl != "textbook":
      return layers.attend(q, k, v, self.impl)
    logits = jnp.einsum("bqkd,bmkd->bkqm", q, k) / jnp.sqrt(q.shape[-1])
    return jnp.einsum("bkqm,bmkd->bqkd", jax.nn.softmax(logits, axis=-1), v)


@pytest.mark.parametrize("impl", ["late", "fused"])
@pytest.mark.parametrize("queries,keys", [(6, 6), (9, 4)])
def test_attention_impls_match_softmax_first(queries, keys, impl, check):
  """The CPU's late-normalised form, and jax.nn.dot_product_attention (what an accelerator runs;
  XLA's implementation here)."""
  q, k, v = _inputs((2, queries, 3, 5), (2, keys, 3, 5), (2, keys, 3, 5))
  q = 4 * q  # Peaked weights, where the order of normalisation matters most.
  _check_same_function(check, f"attention_{impl}_{queries}x{keys}", _Attend("textbook"), _Attend(impl), {},
                       q, k, v)


def _check_same_torch_function(check, name, plain, rewritten, *inputs):
  """plain, rewritten: functions of torch tensors q, k, v; outputs and the gradients of a random
  projection of them wrt q, k, v."""
  out_shape = plain(*(torch.from_numpy(x) for x in inputs)).shape
  weights = torch.from_numpy(_inputs(tuple(out_shape), seed=1)[0])

  def outputs_and_grads(attention):
    q, k, v = (torch.tensor(x, requires_grad=True) for x in inputs)
    out = attention(q, k, v)
    (out * weights).sum().backward()
    return ({"out": out.detach().numpy()},
            {name: t.grad.numpy() for name, t in zip("qkv", (q, k, v))})

  (out_plain, grads_plain), (out_new, grads_new) = map(outputs_and_grads, (plain, rewritten))
  check(compare(out_plain, out_new, FORWARD_ATOL, model=f"rewrite/{name}", direction="none",
                check="forward"),
        compare(grads_plain, grads_new, GRAD_ATOL, model=f"rewrite/{name}", direction="none",
                check="gradients"))


@pytest.mark.parametrize("queries,keys", [(6, 6), (9, 4)])
def test_torch_fused_attention_matches_softmax_first(queries, keys, check):
  inputs = _inputs((2, queries, 3, 5), (2, keys, 3, 5), (2, keys, 3, 5))
  inputs[0] = 4 * inputs[0]

  def softmax_first(q, k, v):
    logits = torch.einsum("bqkd,bmkd->bkqm", q, k) / q.shape[-1] ** 0.5
    return torch.einsum("bkqm,bmkd->bqkd", torch.softmax(logits, dim=-1), v)

  _check_same_torch_function(check, f"torch_attention_{queries}x{keys}", softmax_first,
                             torch_layers.attend, *inputs)


def _vector_attention_inputs(queries, keys):
  """q [B, Q, C], k and v [B, M, C], with peaked weights and mixed-sign logits."""
  q, k, v = _inputs((2, queries, 5), (2, keys, 5), (2, keys, 5))
  return 3 * q, k, v


def _vector_attention_autodiffed(q, k, v):
  """The textbook form, differentiated by autodiff: [B, Q, M, C] weights, softmax over keys."""
  weights = jax.nn.softmax(q[:, :, None, :] * k[:, None, :, :], axis=2)
  return jnp.einsum("bqmc,bmc->bqc", weights, v)


@pytest.mark.parametrize("queries,keys", [(6, 6), (9, 4)])
def test_vector_attention_backward_matches_autodiff(queries, keys, check):
  _check_same_function(check, f"vector_attention_{queries}x{keys}",
                       lambda p, *qkv: _vector_attention_autodiffed(*qkv),
                       lambda p, *qkv: mixers.channel_attention(*qkv), {},
                       *_vector_attention_inputs(queries, keys))


@pytest.mark.parametrize("queries,keys", [(6, 6), (9, 4)])
def test_torch_vector_attention_backward_matches_autograd(queries, keys, check):
  def autograd(q, k, v):
    weights = torch.softmax(q[:, :, None, :] * k[:, None, :, :], dim=2)
    return torch.einsum("bqmc,bmc->bqc", weights, v)

  _check_same_torch_function(check, f"torch_vector_attention_{queries}x{keys}", autograd,
                             torch_mixers.channel_attention, *_vector_attention_inputs(queries, keys))


@pytest.mark.parametrize("kind", ["vit", "video"])
def test_models_compute_one_function_whatever_the_conv_impl(kind, check):
  """The FLOP counter lowers conv_impl='xla'; training on CPU runs 'taps'."""
  if kind == "vit":
    config = tj.ViTConfig(num_classes=3, image_size=16, in_channels=1, patch_size=4, hidden_size=8,
                          num_layers=2, num_heads=2, mlp_dim=16, token_reduction="tokenlearner",
                          num_tokens=4, tokenlearner_at=1, fuser="tokenfuser", bottleneck_dim=8)
    (x,) = _inputs((2, 16, 16, 1))
  else:
    config = tj.VideoConfig(num_classes=3, num_frames=2, image_size=32, in_channels=1, stem_width=8,
                            stage_widths=(16,), module_width=12, mlp_dim=16, num_tokens=4,
                            num_heads=2, tokenizer="tokenlearner", fuser="tokenfuser")
    (x,) = _inputs((2, 2, 32, 32, 1))
  taps, plain = (tj.build_model(config).clone(conv_impl=impl) for impl in ("taps", "xla"))
  params = _perturbed(plain.init(jax.random.PRNGKey(0), x))
  logits = lambda model: lambda p, images: model.apply(p, images)[0]
  _check_same_function(check, f"{kind}_conv_impls", logits(plain), logits(taps), params, x)


def test_unknown_conv_options_are_refused():
  (x,) = _inputs((1, 4, 4, 2))
  with pytest.raises(ValueError, match="conv impl='dense' is not one of"):
    layers.Conv(2, (3, 3), impl="dense").init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match="padding='CIRCULAR'"):
    layers.Conv(2, (3, 3), padding="CIRCULAR", impl="taps").init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match="SAME only for odd kernels"):
    layers.DepthwiseConv((2, 2), "taps").init(jax.random.PRNGKey(0), x)
