"""Whether predicted probabilities mean what they say: log-loss, Brier score, calibration error.

Each run of the benchmark scores ``predict_proba`` on the scored split with
:func:`calibration_scores`; :func:`reliability_bins` keeps what a reliability diagram
needs (per bin of top-label confidence: how many rows, their summed confidence, how many
were right), so that runs pool into one diagram per method.
"""

from __future__ import annotations

import numpy as np

#: Bins of the top-label confidence, equal widths over [0, 1].
N_BINS = 10


def _aligned(y_true, proba, classes):
    """Probabilities over the classes of ``y_true`` and ``classes`` together.

    A class the estimator never saw gets probability 0 (and an infinite log-loss, clipped
    as scikit-learn clips it), rather than a silently shifted column.
    """
    y_true = np.asarray(y_true)
    classes = np.asarray(classes)
    labels = np.union1d(classes, y_true)
    full = np.zeros((len(y_true), len(labels)))
    full[:, np.searchsorted(labels, classes)] = np.asarray(proba, dtype=float)
    return full, np.searchsorted(labels, y_true), labels


def reliability_bins(y_true, proba, classes, n_bins: int = N_BINS) -> list[list[float]]:
    """Per bin of top-label confidence: [rows, summed confidence, rows predicted right].

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    proba : array-like of shape (n, len(classes))
        Predicted probabilities.
    classes : array-like
        The labels of ``proba``'s columns.
    n_bins : int, default=10
        Equal-width bins over [0, 1].

    Returns
    -------
    bins : list of [int, float, int]
        One entry per bin, lowest confidence first.
    """
    full, truth, _ = _aligned(y_true, proba, classes)
    confidence = full.max(1)
    right = full.argmax(1) == truth
    which = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return [
        [
            int((which == b).sum()),
            float(confidence[which == b].sum()),
            int(right[which == b].sum()),
        ]
        for b in range(n_bins)
    ]


def expected_calibration_error(bins) -> float:
    """The rows' weighted mean of |accuracy - mean confidence| over the bins."""
    bins = np.asarray(bins, dtype=float)
    total = bins[:, 0].sum()
    return float(np.abs(bins[:, 2] - bins[:, 1]).sum() / total) if total else float("nan")


def calibration_scores(y_true, proba, classes) -> dict:
    """Log-loss, multi-class Brier score and expected calibration error (10 bins).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    proba : array-like of shape (n, len(classes))
        Predicted probabilities.
    classes : array-like
        The labels of ``proba``'s columns.

    Returns
    -------
    scores : dict
        ``log_loss`` (mean negative log-probability of the true class, probabilities
        clipped at 1e-15), ``brier`` (mean over rows of the squared distance between the
        probabilities and the one-hot truth, summed over classes: 0 is perfect, 2 the
        worst), ``ece`` (expected calibration error of the top label) and
        ``reliability`` (:func:`reliability_bins`).
    """
    full, truth, _ = _aligned(y_true, proba, classes)
    rows = np.arange(len(truth))
    onehot = np.zeros_like(full)
    onehot[rows, truth] = 1.0
    bins = reliability_bins(y_true, proba, classes)
    return {
        "log_loss": float(-np.log(np.clip(full[rows, truth], 1e-15, 1.0)).mean()),
        "brier": float(((full - onehot) ** 2).sum(1).mean()),
        "ece": expected_calibration_error(bins),
        "reliability": bins,
    }
