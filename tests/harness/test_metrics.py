"""Evaluation metrics against scikit-learn's and by hand."""
import numpy as np
from sklearn.metrics import average_precision_score

from harness import metrics


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
