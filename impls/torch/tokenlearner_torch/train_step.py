"""Optimizer, learning-rate schedule, losses and the train step.

The recipe is field-for-field the one of tokenlearner_jax.train_step, so that
the same OptimizerConfig (tokenlearner_spec) gives the same updates in both frameworks.
"""
import contextlib
import math
from typing import Callable, Iterable, Tuple

import torch
from torch.nn import functional as F

from tokenlearner_spec.config import OptimizerConfig, check_step


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
  """Multiplier of the base learning rate at `step` (0-based): warm-up, then cosine to 0."""
  warm = (step + 1) / warmup_steps if warmup_steps else 1.0
  if not total_steps:
    return min(warm, 1.0)
  progress = min(max((step - warmup_steps) / max(total_steps - warmup_steps, 1), 0.0), 1.0)
  cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
  return warm if step < warmup_steps else cosine


def make_optimizer(cfg: OptimizerConfig, params: Iterable[torch.nn.Parameter]
                   ) -> Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
  """SGD with momentum (weight decay added to the gradient) or AdamW (decoupled weight decay)
  at cfg.learning_rate * lr_factor(step); the train step clips the gradient's global norm to
  cfg.grad_clip_norm (if set), which torch's optimizers do not. Returns (optimizer, schedule):
  a torch optimizer updates the parameters given here in place and holds their state."""
  if cfg.name == "sgd":
    opt = torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
  else:
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.b1, cfg.b2), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
  schedule = torch.optim.lr_scheduler.LambdaLR(
      opt, lambda step: lr_factor(step, cfg.warmup_steps, cfg.total_steps))
  return opt, schedule


def classification_loss(logits, labels, label_smoothing: float = 0.0):
  """Softmax cross-entropy; logits [B, K], integer labels [B]."""
  return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def multilabel_loss(logits, labels, label_smoothing: float = 0.0):
  """Sigmoid binary cross-entropy, mean over batch and classes; multi-hot labels [B, K]."""
  targets = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
  return F.binary_cross_entropy_with_logits(logits, targets)


def loss_fn_for(multilabel: bool) -> Callable:
  """The training loss: multilabel_loss for multi-hot labels, else classification_loss."""
  return multilabel_loss if multilabel else classification_loss


def in_precision(model: torch.nn.Module, inputs, precision: str):
  """model(inputs) computed in `precision` (tokenlearner_spec.precision): in bfloat16, on
  bfloat16 copies of the floating parameters and of the inputs, made here, inside autograd, so
  the gradients reach the float32 parameters (and inputs) in float32; in float32, model(inputs)."""
  if precision == "float32":
    return model(inputs)
  dtype = torch.bfloat16
  copies = {name: p.to(dtype) if p.is_floating_point() else p for name, p in model.named_parameters()}
  inputs = inputs.to(dtype) if inputs.is_floating_point() else inputs
  return torch.func.functional_call(model, copies, (inputs,))


def loss_and_grads_fn(model: torch.nn.Module, multilabel: bool, label_smoothing: float = 0.0,
                      train: bool = False, precision: str = "float32") -> Callable:
  """f(inputs, labels, parts=1) -> (loss / parts, intermediates), its gradient added to the
  parameters' .grad (and to the inputs' where they require it).

  train: the model in training mode, dropout drawing from torch's global generator (without
  dropout, the same function). precision: the forward's compute dtype (the loss is taken in
  float32). parts: the loss is one of that many equal parts of a batch, whose gradients add
  up to that of the batch's mean loss.
  """
  loss_fn = loss_fn_for(multilabel)

  def loss_and_grads(inputs, labels, parts: int = 1):
    model.train(train)
    logits, out = in_precision(model, inputs, precision)
    loss = loss_fn(logits.float(), labels, label_smoothing) / parts
    loss.backward()
    return loss.detach(), out

  return loss_and_grads


def micro_batch(array, micro_batches: int):
  """[B, ...] -> k parts [B / k, ...], part i holding examples i, i + k, ...: strided rather
  than contiguous, as tokenlearner_jax splits a batch."""
  return [array[i::micro_batches] for i in range(micro_batches)]


def accumulated_loss_and_grads_fn(model: torch.nn.Module, multilabel: bool, label_smoothing: float,
                                  precision: str, micro_batches: int) -> Callable:
  """f(inputs, labels) -> loss, the mean over `micro_batches` equal parts of the batch, taken
  one part after another, so that only one part's activations are held at a time; the parts'
  gradients add up in the parameters' .grad to the gradient of the whole batch's mean loss, up
  to float rounding. Under DistributedDataParallel, gradients are all-reduced after the last
  part only."""
  one_part = loss_and_grads_fn(model, multilabel, label_smoothing, train=True, precision=precision)

  def accumulate(inputs, labels):
    loss = 0.0
    parts = zip(micro_batch(inputs, micro_batches), micro_batch(labels, micro_batches))
    for i, (x, y) in enumerate(parts):
      last = i == micro_batches - 1
      with contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
        part, _ = one_part(x, y, micro_batches)
      loss = loss + part
    return loss

  return accumulate


def make_train_step(model: torch.nn.Module, cfg: OptimizerConfig, multilabel: bool = False,
                    precision: str = "float32", micro_batches: int = 1, compiled: bool = False
                    ) -> Tuple[Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR], Callable]:
  """Returns ((optimizer, schedule), step) with step(inputs, labels) -> loss, updating the
  model in place. The optimizer and schedule hold the training state (JAX's opt_state).
  Dropout, if any, draws from torch's global generator. precision: the compute dtype
  (tokenlearner_spec.precision; parameters stay float32); micro_batches: gradient
  accumulation, one update from the mean gradient of that many equal parts of the batch;
  `compiled`: the step's forward (and so its backward) under torch.compile; the model itself,
  its state dict and its evaluation, stay as they are."""
  check_step(precision, micro_batches)
  opt, schedule = make_optimizer(cfg, model.parameters())
  forward = torch.compile(model) if compiled else model  # Shares the model's parameters.
  whole = loss_and_grads_fn(forward, multilabel, cfg.label_smoothing, train=True, precision=precision)
  parts = accumulated_loss_and_grads_fn(forward, multilabel, cfg.label_smoothing, precision,
                                        micro_batches) if micro_batches > 1 else None

  def update():
    if cfg.grad_clip_norm:
      torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
    opt.step()
    schedule.step()

  def step(inputs, labels):
    check_step(precision, micro_batches, inputs.shape[0])
    opt.zero_grad(set_to_none=True)
    if parts is None:
      loss, _ = whole(inputs, labels)
    else:
      loss = parts(inputs, labels)
    update()
    return loss

  return (opt, schedule), step
