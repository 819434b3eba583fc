"""Evaluation metrics against scikit-learn's and by hand."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from harness.data import metrics


def test_top1():
  logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
  assert metrics.top1(logits, np.array([1, 1, 1])) == 2 / 3


def test_average_precision_by_hand():
  # Ranked: pos, neg, pos -> precision 1 at the first hit, 2/3 at the second.
  assert metrics.average_precision(np.array([0.9, 0.5, 0.2]), np.array([1, 0, 1])) == (1 + 2 / 3) / 2


def test_mean_average_precision_matches_scikit_learn_and_skips_empty_classes():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=(200, 6))
  targets = (rng.random((200, 6)) < 0.3).astype(np.float32)
  targets[:, 5] = 0  # A class without positives is left out, as in Charades' mAP.
  expected = np.mean([average_precision_score(targets[:, k], scores[:, k]) for k in range(5)])
  np.testing.assert_allclose(metrics.mean_average_precision(scores, targets), expected, rtol=1e-12)


def test_chance_levels_are_what_input_blind_scores_reach():
  labels = np.array([0, 1, 1, 2, 1, 0])
  assert metrics.chance_top1(labels, 4) == 0.5  # Always naming class 1.
  targets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]], np.float32)
  assert metrics.chance_map(targets) == 0.5  # Prevalences 0.5, 0.5; the class with no positive skipped.
  rng = np.random.default_rng(0)  # Random scores: each class's AP averages its prevalence.
  many = (rng.random((4000, 3)) < [0.1, 0.3, 0.6]).astype(np.float32)
  aps = [metrics.mean_average_precision(rng.random(many.shape), many) for _ in range(20)]
  assert abs(np.mean(aps) - metrics.chance_map(many)) < 0.01


def test_weighted_ap_is_the_ap_of_the_items_copied_as_drawn():
  rng = np.random.default_rng(0)
  scores, targets = rng.normal(size=200), (rng.random(200) < 0.2).astype(float)
  scores += targets
  counts = np.bincount(rng.integers(0, 200, 200), minlength=200).astype(float)
  order = np.argsort(-scores, kind="stable")
  copies = np.repeat(order, counts[order].astype(int))  # Each item as often as drawn, in rank order.
  got = metrics.weighted_average_precision(scores, targets, counts[None])
  assert got[0] == pytest.approx(metrics.average_precision(-np.arange(len(copies), dtype=float), targets[copies]))
  assert metrics.weighted_average_precision(scores, targets, np.ones((1, 200)))[0] == pytest.approx(
      metrics.average_precision(scores, targets))


def test_item_replicates_are_the_same_resamples_for_every_run():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 10, 500)
  logits = rng.normal(size=(500, 10))
  first = metrics.item_replicates(logits, labels, False, 50)
  assert first.shape == (50,) and np.array_equal(first, metrics.item_replicates(logits, labels, False, 50))
  weights = metrics.item_weights(500, 50)
  assert (weights.sum(axis=1) == 500).all()
  correct = (logits.argmax(-1) == labels).astype(float)
  assert first == pytest.approx(100 * weights @ correct / 500)
  assert abs(first.mean() - 100 * correct.mean()) < 3 * first.std()
