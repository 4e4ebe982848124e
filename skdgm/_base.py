"""What the package's classifiers share: accuracy on the labelled rows, progress bars,
and the advice given when a batch runs out of memory."""

from __future__ import annotations

import contextlib

import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.utils import _safe_indexing

from ._validation import unlabelled_mask


class LabelledScoreMixin:
    """``score`` as mean accuracy over the labelled rows: rows marked ``-1`` are ignored."""

    def score(self, X, y, sample_weight=None):
        """Accuracy on the labelled rows; rows marked ``-1`` are ignored.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or list of str
            What ``predict`` takes: numeric features, or documents.
        y : array-like of shape (n_samples,)
            True labels, ``-1`` for rows to ignore.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        score : float
            Mean accuracy of the predictions on the labelled rows.
        """
        y = np.asarray(y)
        labelled = ~unlabelled_mask(y)
        if not labelled.any():
            raise ValueError("score needs labelled rows: every entry of y is -1.")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)[labelled]
        X_labelled = _safe_indexing(X, np.flatnonzero(labelled))
        return accuracy_score(y[labelled], self.predict(X_labelled), sample_weight=sample_weight)


def progress_bar(total: int, verbose: int, name: str):
    """A tqdm bar over ``total`` epochs, or None when ``verbose`` is 0."""
    if not verbose:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="epoch")


def show_progress(progress, record: dict) -> None:
    """Advance the bar by one epoch and show the epoch's main figures."""
    if progress is None:
        return
    progress.update(1)
    keys = ("loss", "train_accuracy", "valid_accuracy")
    progress.set_postfix({k: round(record[k], 3) for k in keys if k in record})


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True  # torch.OutOfMemoryError (CUDA, MPS), Python's own MemoryError
    message = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in message or "can't allocate memory" in message
    )


@contextlib.contextmanager
def advise_on_memory(advice: str):
    """Turn running out of memory inside the block into a ``MemoryError`` saying what to do.

    ``advice`` names the settings to lower, e.g. ``"lower batch_size (now 64)"``.
    """
    try:
        yield
    except Exception as exc:
        if not _is_out_of_memory(exc):
            raise
        raise MemoryError(f"Ran out of memory: {advice}. ({type(exc).__name__}: {exc})") from exc


class DocumentTransformerMixin:
    """scikit-learn tags of a fitted transformer from documents (a list of str) to numbers."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.transformer_tags.preserves_dtype = []
        tags.target_tags.required = False
        tags.non_deterministic = False
        tags.requires_fit = True
        return tags
