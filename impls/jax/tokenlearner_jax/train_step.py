"""Optimizer, learning-rate schedule, losses and the jitted train step.

The recipe is field-for-field the one of tokenlearner_torch.train_step, so that
the same OptimizerConfig (tokenlearner_spec) gives the same updates in both frameworks.
"""
import functools
import math
from typing import Callable, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from tokenlearner_spec.config import OptimizerConfig, check_step


def lr_factor(step, warmup_steps: int, total_steps: int):
  """Multiplier of the base learning rate at `step` (0-based): warm-up, then cosine to 0."""
  step = jnp.asarray(step, jnp.float32)
  warm = (step + 1) / warmup_steps if warmup_steps else 1.0
  if not total_steps:
    return jnp.minimum(warm, 1.0)
  progress = jnp.clip((step - warmup_steps) / max(total_steps - warmup_steps, 1), 0.0, 1.0)
  cosine = 0.5 * (1.0 + jnp.cos(math.pi * progress))
  return jnp.where(step < warmup_steps, warm, cosine)


def make_optimizer(cfg: OptimizerConfig) -> optax.GradientTransformation:
  """SGD with momentum (weight decay added to the gradient) or AdamW (decoupled weight decay)
  at cfg.learning_rate * lr_factor(step), the gradient's global norm first clipped to
  cfg.grad_clip_norm (if set). An optax transformation of gradients, holding no parameters:
  its state is tx.init(params)."""
  schedule = lambda step: cfg.learning_rate * lr_factor(step, cfg.warmup_steps, cfg.total_steps)
  clip = [optax.clip_by_global_norm(cfg.grad_clip_norm)] if cfg.grad_clip_norm else []
  if cfg.name == "sgd":
    decay = [optax.add_decayed_weights(cfg.weight_decay)] if cfg.weight_decay else []
    return optax.chain(*clip, *decay, optax.sgd(schedule, momentum=cfg.momentum))
  return optax.chain(*clip, optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                                        weight_decay=cfg.weight_decay))


def classification_loss(logits, labels, label_smoothing: float = 0.0):
  """Softmax cross-entropy; logits [B, K], integer labels [B]."""
  k = logits.shape[-1]
  targets = jax.nn.one_hot(labels, k) * (1.0 - label_smoothing) + label_smoothing / k
  return optax.softmax_cross_entropy(logits, targets).mean()


def multilabel_loss(logits, labels, label_smoothing: float = 0.0):
  """Sigmoid binary cross-entropy, mean over batch and classes; multi-hot labels [B, K]."""
  targets = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
  return optax.sigmoid_binary_cross_entropy(logits, targets).mean()


def loss_fn_for(multilabel: bool) -> Callable:
  """The training loss: multilabel_loss for multi-hot labels, else classification_loss."""
  return multilabel_loss if multilabel else classification_loss


def in_precision(tree, precision: str):
  """The floating leaves of `tree` in the compute dtype of `precision` (a no-op in float32).
  Cast inside the differentiated function, so gradients come back in the leaves' float32."""
  if precision == "float32":
    return tree
  dtype = jnp.dtype(precision)
  return jax.tree.map(lambda t: t.astype(dtype) if jnp.issubdtype(t.dtype, jnp.floating) else t, tree)


@functools.lru_cache(maxsize=None)
def loss_and_grads_fn(model: nn.Module, multilabel: bool, label_smoothing: float = 0.0,
                      input_grads: bool = False, train: bool = False,
                      precision: str = "float32") -> Callable:
  """Jitted f(params, inputs, labels[, dropout_key]) -> ((loss, intermediates), grads).

  grads is the params' gradient, or (params', inputs') with input_grads. train: the
  model in training mode, dropout drawing from dropout_key (without dropout, the
  same function). precision: the forward's compute dtype (params and inputs cast to it;
  the loss is taken in float32). Cached per model config, so every optimizer over one
  model shares one compilation.
  """
  loss_fn = loss_fn_for(multilabel)

  def loss_of(params, inputs, labels, *dropout_key):
    mode = {"train": True, "rngs": {"dropout": dropout_key[0]}} if train else {}
    logits, out = model.apply(*in_precision((params, inputs), precision), **mode)
    return loss_fn(logits.astype(jnp.float32), labels, label_smoothing), out

  return jax.jit(jax.value_and_grad(loss_of, argnums=(0, 1) if input_grads else 0, has_aux=True))


def micro_batch(array, micro_batches: int):
  """[B, ...] -> [k, B / k, ...], micro-batch i holding examples i, i + k, ...: strided rather
  than contiguous, so that each device's shard of a data-parallel batch feeds every micro-batch."""
  return array.reshape(-1, micro_batches, *array.shape[1:]).swapaxes(0, 1)  # Shape: [k, B / k, ...].


@functools.lru_cache(maxsize=None)
def accumulated_loss_and_grads_fn(model: nn.Module, multilabel: bool, label_smoothing: float,
                                  precision: str, micro_batches: int) -> Callable:
  """Jitted f(params, inputs, labels, dropout_key) -> (loss, grads), both the mean over
  `micro_batches` equal parts of the batch, taken one part after another (a scan), so that
  only one part's activations are held at a time: the gradient of the whole batch's mean
  loss, up to float rounding. Part i draws its dropout from fold_in(dropout_key, i)."""
  one_part = loss_and_grads_fn(model, multilabel, label_smoothing, train=True, precision=precision)

  def accumulate(params, inputs, labels, dropout_key):
    def add(total, part):
      i, x, y = part
      (loss, _), grads = one_part(params, x, y, jax.random.fold_in(dropout_key, i))
      return jax.tree.map(jnp.add, total, (loss, grads)), None

    zero = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
    parts = (jnp.arange(micro_batches), micro_batch(inputs, micro_batches),
             micro_batch(labels, micro_batches))
    total, _ = jax.lax.scan(add, zero, parts)
    return jax.tree.map(lambda t: t / micro_batches, total)

  return jax.jit(accumulate)


def make_train_step(model: nn.Module, cfg: OptimizerConfig, multilabel: bool = False,
                    precision: str = "float32", micro_batches: int = 1, compiled: bool = False
                    ) -> Tuple[optax.GradientTransformation, Callable]:
  """Returns (optimizer, step) with step(params, opt_state, inputs, labels, dropout_key) ->
  (params, opt_state, loss). The gradient and the update are jitted separately so
  that the gradient's (costly) compilation is shared across optimizers; `compiled` jits them
  as one program instead, which donates the old params' and opt_state's buffers to the new
  ones (the caller must not use them again): no second copy of the state on the device.
  precision: the compute dtype (tokenlearner_spec.PRECISIONS); micro_batches: gradient
  accumulation, one update from the mean gradient of that many equal parts of the batch."""
  check_step(precision, micro_batches)
  tx = make_optimizer(cfg)
  whole = loss_and_grads_fn(model, multilabel, cfg.label_smoothing, train=True, precision=precision)
  parts = accumulated_loss_and_grads_fn(model, multilabel, cfg.label_smoothing, precision,
                                        micro_batches) if micro_batches > 1 else None

  @jax.jit
  def update(grads, opt_state, params):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  def step(params, opt_state, inputs, labels, dropout_key):
    check_step(precision, micro_batches, inputs.shape[0])
    if parts is None:
      (loss, _), grads = whole(params, inputs, labels, dropout_key)
    else:
      loss, grads = parts(params, inputs, labels, dropout_key)
    params, opt_state = update(grads, opt_state, params)
    return params, opt_state, loss

  if not compiled:
    return tx, step
  fused = jax.jit(step, donate_argnums=(0, 1))  # The jitted pieces inline into one program.

  def compiled_step(params, opt_state, inputs, labels, dropout_key):
    check_step(precision, micro_batches, inputs.shape[0])  # Here, not only when it traces.
    return fused(params, opt_state, inputs, labels, dropout_key)

  return tx, compiled_step
