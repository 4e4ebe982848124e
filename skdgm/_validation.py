"""Input checks that give clear errors before anything reaches torch."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def unlabelled_mask(y: np.ndarray) -> np.ndarray:
    """True where ``y`` marks a row as unlabelled (``-1``, or the string ``"-1"``)."""
    if y.dtype.kind in "iuf":
        return y == -1
    if y.dtype.kind in "US":
        return y == "-1"
    return np.array([_is_minus_one(v) for v in y], dtype=bool)


def _is_minus_one(value) -> bool:
    if isinstance(value, str):
        return value == "-1"
    try:
        return bool(value == -1)
    except (TypeError, ValueError):
        return False


def check_semi_supervised_labels(y: np.ndarray):
    """Check semi-supervised labels; return (labelled mask, classes, class index per labelled row).

    Raises a ``ValueError`` naming the problem for: no labelled row, a single labelled class,
    missing values, or float labels with fractions (regression targets, not classes).
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-dimensional, got shape {y.shape}.")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity. Mark unlabelled rows with -1, not NaN.")
        fractional = y != np.round(y)
        if fractional.any():
            raise ValueError(
                f"y holds floats with fractions (e.g. {float(y[fractional][0]):g}): a "
                "continuous (regression) target, not classes. A classifier needs discrete "
                "labels (integers or strings), with -1 for unlabelled rows."
            )
    elif y.dtype.kind == "O" and any(v is None for v in y):
        raise ValueError("y contains None. Mark unlabelled rows with -1, not None.")
    unlabelled = unlabelled_mask(y)
    labelled = ~unlabelled
    if not labelled.any():
        raise ValueError(
            "y has no labelled rows: every entry is -1. Label at least a few rows per class."
        )
    try:
        classes, y_index = np.unique(y[labelled], return_inverse=True)
    except TypeError as exc:
        raise ValueError(
            "y mixes label types that cannot be compared (e.g. strings and numbers). Use "
            "one type for the labels, and -1 for unlabelled rows."
        ) from exc
    if len(classes) < 2:
        raise ValueError(
            f"y has labelled rows of a single class ({classes.tolist()[0]!r}); a classifier "
            "needs at least 2 classes among the labelled rows."
        )
    return labelled, classes, y_index.ravel()


def check_labels_length(y, n_samples: int) -> np.ndarray:
    """Return ``y`` as an array; raise if it is not 1-D or has not one label per document."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-dimensional, got shape {y.shape}.")
    if len(y) != n_samples:
        raise ValueError(
            f"X and y have different lengths: {n_samples} documents and {len(y)} labels."
        )
    return y


def validation_split(y_index: np.ndarray, validation_fraction: float, random_state):
    """Stratified positions (in the labelled rows) to train on and to validate on.

    Raises a ``ValueError`` that says what to change when a class cannot be on both sides.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    all_pos = np.arange(len(y_index))
    counts = np.bincount(y_index)
    n_valid = int(np.ceil(validation_fraction * len(y_index)))
    if counts.min() < 2 or n_valid < len(counts) or len(y_index) - n_valid < len(counts):
        raise ValueError(
            f"early_stopping=True needs at least 2 labelled rows per class and a "
            f"validation_fraction that leaves every class on both sides; got class counts "
            f"{counts.tolist()} and validation_fraction={validation_fraction}. Label "
            "more rows, raise validation_fraction, or set early_stopping=False."
        )
    split = StratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=random_state)
    train_pos, valid_pos = next(split.split(all_pos, y_index))
    return np.sort(train_pos), np.sort(valid_pos)


def check_count_matrix(X):
    """Check that ``X`` holds non-negative integer counts (for ``decoder='bow'``)."""
    data = X.data if sp.issparse(X) else np.asarray(X)
    if data.size and data.min() < 0:
        raise ValueError(
            "decoder='bow' needs non-negative word counts, but X has negative values "
            f"(min {data.min():g}). Use decoder='gaussian' for real-valued features."
        )
    if data.size and np.any(data != np.round(data)):
        raise ValueError(
            "decoder='bow' needs integer word counts (e.g. CountVectorizer output), but X has "
            "non-integer values. Pass raw counts rather than TF-IDF, or use decoder='gaussian'."
        )
    return X


def refuse_text(X, estimator_name: str) -> None:
    """Raise a clear error when numeric input is expected but ``X`` holds documents."""
    if isinstance(X, str):
        first = X
    elif isinstance(X, np.ndarray) and X.dtype.kind in "OUS" and X.size:
        first = X.flat[0]
    elif isinstance(X, (list, tuple)) and X:
        first = X[0]
    else:
        return  # numbers, sparse matrices and data frames: scikit-learn checks them
    if isinstance(first, (str, bytes)):
        raise ValueError(
            f"X holds text ({first[:40]!r} ...), but {estimator_name} was given no encoder, "
            "so it takes numeric features. Pass encoder=skdgm.encoders.MultilingualEncoder() "
            "to classify documents, or encode them yourself first."
        )


def unlabelled_sample(labelled_mask: np.ndarray, max_unlabelled: int | None, seed: int):
    """The unlabelled rows a fit leaves out, and the rows it learns from (both sorted).

    With more than ``max_unlabelled`` unlabelled rows, a random sample of that many
    (seeded by ``seed``) is kept with every labelled row; otherwise every row is kept.
    """
    unlabelled = np.flatnonzero(~labelled_mask)
    if max_unlabelled is None or unlabelled.size <= max_unlabelled:
        return unlabelled[:0], np.arange(len(labelled_mask))
    rng = np.random.default_rng([seed, 27])
    kept = rng.choice(unlabelled, max_unlabelled, replace=False)
    left_out = np.setdiff1d(unlabelled, kept)
    return left_out, np.setdiff1d(np.arange(len(labelled_mask)), left_out)
