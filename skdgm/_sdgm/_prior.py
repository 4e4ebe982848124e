"""The class prior p(y): uniform, the labelled rows' proportions, or estimated."""

from __future__ import annotations

import numpy as np

#: Smallest probability the estimated prior gives a class (before renormalising).
_FLOOR = 1e-3


def class_prior(
    kind: str,
    inputs,
    labelled: np.ndarray,
    y_labelled: np.ndarray,
    unlabelled: np.ndarray,
    n_classes: int,
) -> np.ndarray:
    """p(y) as an array of ``n_classes`` probabilities.

    Parameters
    ----------
    kind : {"uniform", "labelled", "estimated"}
        ``"estimated"``: the mean class probability that a logistic regression fitted on
        the labelled rows' inputs gives the unlabelled rows. A stratified draw of labels
        says nothing about how common each class is; the unlabelled rows do.
    inputs : ndarray or sparse matrix
        What the inference network sees, one row per document.
    labelled, unlabelled : ndarray of int
        Rows of ``inputs`` (the labelled ones being those trained on).
    y_labelled : ndarray of int
        Classes of the ``labelled`` rows, as positions in the classes.
    n_classes : int
        Number of classes.
    """
    counts = np.bincount(y_labelled, minlength=n_classes)
    if kind == "uniform":
        return np.full(n_classes, 1.0 / n_classes)
    if kind == "labelled" or len(unlabelled) == 0 or np.count_nonzero(counts) < 2:
        return counts / counts.sum()
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=10.0, max_iter=1000).fit(inputs[labelled], y_labelled)
    prior = np.zeros(n_classes)
    prior[model.classes_] = model.predict_proba(inputs[unlabelled]).mean(0)
    prior = np.maximum(prior, _FLOOR)
    return prior / prior.sum()
