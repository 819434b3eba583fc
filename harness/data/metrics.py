"""Evaluation metrics in numpy, so that both frameworks are scored by the same code."""
import numpy as np

CHANCE = "test_chance"  # What a model that ignores its input scores; every evaluation logs it.


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of examples whose highest logit is the label; logits [N, K], labels [N]."""
  return float(np.mean(np.argmax(logits, axis=-1) == labels))


def chance_top1(labels: np.ndarray, num_classes: int) -> float:
  """Top-1 of always naming the test set's most frequent class: what a model that ignores its
  input reaches."""
  return float(np.bincount(labels, minlength=num_classes).max() / len(labels))


def chance_map(targets: np.ndarray) -> float:
  """Expected mAP of scores that ignore the input: a class's AP under random ranking is its
  prevalence, so the mean prevalence over the classes with a positive (as mAP averages)."""
  prevalence = targets.mean(axis=0)
  return float(prevalence[prevalence > 0].mean())


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
  """AP of one class: mean precision at the rank of each positive (ties broken by order)."""
  order = np.argsort(-scores, kind="stable")
  hits = targets[order] > 0
  if not hits.any():
    return float("nan")
  precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
  return float(precision[hits].mean())


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
  """mAP over the classes that have at least one positive (as Charades is scored)."""
  aps = [average_precision(scores[:, k], targets[:, k]) for k in range(scores.shape[1])]
  return float(np.nanmean(aps))
