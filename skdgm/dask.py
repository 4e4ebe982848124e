"""Encoding and prediction of a corpus in partitions, on a Dask cluster.

Fitting stays on one machine (on a sample of the unlabelled documents when there are
millions: see the user guide, "Many documents"); embedding and predicting the rest is
the same work for every document, split into partitions that Dask's workers take in
parallel. ``pip install 'skdgm[dask]'``.

The fitted estimator enters the task graph once: Dask sends it to each worker that
needs it once, and every partition that worker runs reads the same copy (its encoder
loads the pretrained model once per worker process, from the Hub, the cache or its
folder: the model's weights never travel). Results keep the input's order.

Examples
--------
>>> import dask.bag as db  # doctest: +SKIP
>>> from distributed import Client  # doctest: +SKIP
>>> import skdgm.dask  # doctest: +SKIP
>>> client = Client("tcp://scheduler:8786")  # doctest: +SKIP
>>> documents = db.read_text("s3://corpus/*.txt").map(str.strip)  # doctest: +SKIP
>>> labels = skdgm.dask.predict(clf, documents).compute()  # doctest: +SKIP
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ._documents import check_documents

__all__ = ["encode", "predict", "predict_proba"]


def encode(encoder, documents, *, partition_size: int = 10_000):
    """Embed documents with a fitted encoder, one task per partition.

    Parameters
    ----------
    encoder : fitted transformer
        E.g. a fitted :class:`~skdgm.encoders.MultilingualEncoder` (give it a
        ``cache_dir`` that every worker can reach to keep the embeddings), or any fitted
        estimator with ``transform`` on documents.
    documents : dask.bag.Bag, dask.dataframe.Series, dask.array.Array or list of str
        The documents. A list is cut into partitions of ``partition_size``.
    partition_size : int, default=10_000
        Documents a partition, for a list (Dask collections keep their partitions).

    Returns
    -------
    embeddings : dask.array.Array of shape (n_documents, n_features)
        Lazy: ``.compute()`` it, or store it (e.g. ``.to_zarr``). Rows follow
        ``documents``.
    """
    _check_fitted(encoder, "transform", "encode")
    return _map_partitions(encoder, documents, "transform", partition_size)


def predict(estimator, documents, *, partition_size: int = 10_000):
    """Predict the class of each document with a fitted classifier, one task per partition.

    Parameters
    ----------
    estimator : fitted classifier
        E.g. a fitted :class:`~skdgm.SemiSupervisedVAEClassifier` with an encoder, or a
        ``Pipeline`` whose first step embeds documents.
    documents : dask.bag.Bag, dask.dataframe.Series, dask.array.Array or list of str
        The documents. A list is cut into partitions of ``partition_size``.
    partition_size : int, default=10_000
        Documents a partition, for a list.

    Returns
    -------
    labels : dask.array.Array of shape (n_documents,)
        Lazy; rows follow ``documents``.
    """
    _check_fitted(estimator, "predict", "predict")
    return _map_partitions(estimator, documents, "predict", partition_size)


def predict_proba(estimator, documents, *, partition_size: int = 10_000):
    """Class probabilities of each document, one task per partition.

    Parameters
    ----------
    estimator : fitted classifier
        A fitted classifier with ``predict_proba``; columns follow its ``classes_``.
    documents : dask.bag.Bag, dask.dataframe.Series, dask.array.Array or list of str
        The documents. A list is cut into partitions of ``partition_size``.
    partition_size : int, default=10_000
        Documents a partition, for a list.

    Returns
    -------
    proba : dask.array.Array of shape (n_documents, n_classes)
        Lazy; rows follow ``documents``.
    """
    _check_fitted(estimator, "predict_proba", "predict_proba")
    return _map_partitions(estimator, documents, "predict_proba", partition_size)


# ---------------------------------------------------------------------------- internals
def _check_fitted(estimator, method: str, name: str) -> None:
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, method):
        raise TypeError(
            f"skdgm.dask.{name} needs an estimator with a {method} method; "
            f"{type(estimator).__name__} has none."
        )
    check_is_fitted(estimator)


def _run(estimator, method: str, part) -> np.ndarray:
    """One partition: its documents through ``estimator.<method>``, as an array."""
    documents = check_documents(part)
    if not documents:
        return _empty(estimator, method)
    return np.asarray(getattr(estimator, method)(documents))


def _empty(estimator, method: str) -> np.ndarray:
    if method == "predict":
        return np.empty(0, dtype=np.asarray(estimator.classes_).dtype)
    if method == "predict_proba":
        return np.empty((0, len(estimator.classes_)))
    width = estimator.get_feature_names_out().shape[0]
    return np.empty((0, width), dtype=np.float32)


def _map_partitions(estimator, documents, method: str, partition_size: int):
    try:
        import dask
        import dask.array as da
    except ImportError as error:
        raise ImportError(
            "skdgm.dask needs Dask: pip install 'skdgm[dask]' (or dask[distributed])."
        ) from error
    if isinstance(partition_size, bool) or not isinstance(partition_size, Integral):
        raise TypeError(f"partition_size must be an int, got {partition_size!r}")
    if partition_size < 1:
        raise ValueError(f"partition_size must be >= 1, got {partition_size}")
    parts, lengths = _partitions(documents, partition_size)
    # One key for the estimator: each worker receives it once, every partition reads it.
    model = dask.delayed(estimator, pure=True, traverse=False)
    meta = _empty(estimator, method)
    run = dask.delayed(_run, pure=True)
    blocks = [
        da.from_delayed(run(model, method, part), (length, *meta.shape[1:]), dtype=meta.dtype)
        for part, length in zip(parts, lengths)
    ]
    if not blocks:
        return da.from_array(meta, chunks=meta.shape or (0,))
    return da.concatenate(blocks, axis=0)


def _partitions(documents, partition_size: int):
    """(delayed partitions, their lengths or NaN) of any supported collection."""
    import dask
    import dask.array as da

    if isinstance(documents, da.Array):
        if documents.ndim != 1:
            raise ValueError(
                f"A Dask array of documents must be 1-D (one str per row); got "
                f"{documents.ndim} dimensions, shape {documents.shape}."
            )
        return list(documents.to_delayed().ravel()), list(documents.chunks[0])
    if type(documents).__module__.startswith("dask") and hasattr(documents, "to_delayed"):
        if getattr(documents, "ndim", 1) == 2:
            raise TypeError(
                "Pass one column of documents (e.g. frame['text']), not a whole Dask DataFrame."
            )
        parts = documents.to_delayed()  # a Bag or a dask DataFrame Series
        return parts, [np.nan] * len(parts)
    # In memory: a list (or anything check_documents accepts), cut into partitions.
    documents = check_documents(documents, min_documents=0)
    starts = range(0, len(documents), partition_size)
    parts = [dask.delayed(documents[s : s + partition_size], pure=True) for s in starts]
    return parts, [len(documents[s : s + partition_size]) for s in starts]
