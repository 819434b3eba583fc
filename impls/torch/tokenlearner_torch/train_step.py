"""Optimizer, learning-rate schedule, losses and the train step.

The recipe is field-for-field the one of tokenlearner_jax.train_step, so that
the same OptimizerConfig (tokenlearner_spec) gives the same updates in both frameworks.
"""
import contextlib
import math
from typing import Callable, Tuple

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


def make_optimizer(model: torch.nn.Module, cfg: OptimizerConfig
                   ) -> Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
  params = model.parameters()
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
  return multilabel_loss if multilabel else classification_loss


def make_train_step(model: torch.nn.Module, cfg: OptimizerConfig, multilabel: bool = False,
                    precision: str = "float32", micro_batches: int = 1
                    ) -> Tuple[Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR], Callable]:
  """Returns ((optimizer, schedule), step) with step(inputs, labels) -> loss, updating the
  model in place. The optimizer and schedule hold the training state (JAX's opt_state).
  Dropout, if any, draws from torch's global generator. precision: the compute dtype
  (tokenlearner_spec.PRECISIONS; autocast, parameters stay float32); micro_batches: gradient
  accumulation, one update from the mean gradient of that many equal parts of the batch,
  part i holding examples i, i + k, ... as in tokenlearner_jax."""
  check_step(precision, micro_batches)
  opt, schedule = make_optimizer(model, cfg)
  loss_fn = loss_fn_for(multilabel)
  in_bfloat16 = precision == "bfloat16"

  def step(inputs, labels):
    check_step(precision, micro_batches, inputs.shape[0])
    model.train()
    opt.zero_grad(set_to_none=True)
    loss = 0.0
    for i in range(micro_batches):
      # Under DistributedDataParallel, gradients are all-reduced after the last part only.
      last = i == micro_batches - 1
      with contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
        with torch.autocast(inputs.device.type, torch.bfloat16, enabled=in_bfloat16):
          logits, _ = model(inputs[i::micro_batches])
        part = loss_fn(logits.float(), labels[i::micro_batches], cfg.label_smoothing) / micro_batches
        part.backward()
      loss = loss + part.detach()
    if cfg.grad_clip_norm:
      torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
    opt.step()
    schedule.step()
    return loss

  return (opt, schedule), step
