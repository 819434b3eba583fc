"""Evaluation metrics in numpy, so that both frameworks are scored by the same code."""
import numpy as np
from scipy import special

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


REPLICATES = 1000  # Resamples of the test items each run is scored on (item_replicates).
REPLICATE = "test_replicate"  # Its MLflow metric: the value on resample b at step b.
REPLICATES_SEED = 7_919  # The same resamples of the test items for every run: rows pair item by item.


def item_weights(num_items: int, count: int) -> np.ndarray:
  """[count, num_items]: how often each test item is drawn in each of `count` resamples of
  the test set with replacement, the same for every run scored on `num_items` items."""
  draws = np.random.default_rng(REPLICATES_SEED).integers(0, num_items, (count, num_items))
  return np.stack([np.bincount(d, minlength=num_items) for d in draws]).astype(np.float32)


def weighted_average_precision(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """average_precision of one class on each resample [R, N] of the items: an item drawn w times
  counts as w adjacent copies, the j-th of a positive's copies at precision (H + j) / (C + j),
  H and C the positives and items ranked before them; [R]."""
  order = np.argsort(-scores, kind="stable")
  hits = targets[order] > 0
  w = weights[:, order]  # [R, N], in rank order
  before = np.cumsum(w, axis=1) - w  # C: items ranked before each item's copies
  hits_before = np.cumsum(w * hits, axis=1) - w * hits  # H
  # sum over j = 1..w of (H + j) / (C + j) = w - (C - H) (psi(C + w + 1) - psi(C + 1)).
  summed = w - (before - hits_before) * (special.digamma(before + w + 1) - special.digamma(before + 1))
  positives = (w * hits).sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(positives > 0, (summed * hits).sum(axis=1) / positives, np.nan)


def item_replicates(logits: np.ndarray, labels: np.ndarray, multilabel: bool, count: int) -> np.ndarray:
  """The run's metric (top-1, or mAP over the classes with a positive), in percent, on `count`
  resamples of its test items (item_weights): [count]. The spread of a comparison over them
  is the part of its uncertainty that comes from which test items were drawn."""
  weights = item_weights(len(labels), count)
  if not multilabel:
    correct = (np.argmax(logits, axis=-1) == labels).astype(np.float32)
    return 100 * (weights @ correct) / weights.sum(axis=1)
  aps = np.stack([weighted_average_precision(logits[:, k], labels[:, k], weights)
                  for k in range(labels.shape[1])], axis=1)  # [count, K]
  return 100 * np.nanmean(aps, axis=1)
