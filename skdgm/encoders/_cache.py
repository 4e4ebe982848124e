"""The embedding cache: in memory for the process, and on disk when ``cache_dir`` is given.

In memory, ``{settings key: {sha1 of a document: its embedding}}`` is shared by every encoder
of the process, so that clones (cross-validation folds, grid-search candidates) embed each
distinct document once. On disk, one ``.npy`` file a document under
``cache_dir/embeddings/<settings key>/``, written under a random name and renamed into
place, so that processes (and hosts) sharing the folder never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from pathlib import Path

import numpy as np

_EMBEDDING_CACHE: dict[str, dict[str, np.ndarray]] = {}
_LOCK = threading.Lock()


def clear_embedding_cache() -> None:
    """Empty the in-memory embedding cache that all encoders of this process share.

    The next :meth:`MultilingualEncoder.transform` runs the model again. The on-disk
    caches (``cache_dir``) are left as they are.
    """
    with _LOCK:
        _EMBEDDING_CACHE.clear()


def settings_key(settings: dict) -> str:
    """The key of the embeddings made with ``settings`` (a JSON-able dict): a SHA-1."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def cached_embeddings(documents: list[str], key: str, folder: Path | None, dim: int, embed):
    """The embeddings of ``documents``, float32 ``(n, dim)``, through the cache of ``key``.

    Each distinct document is looked up in memory, then in ``folder`` (None: memory
    only); ``embed(documents)`` computes the missing ones, which are then cached in both.
    """
    with _LOCK:
        memory = _EMBEDDING_CACHE.setdefault(key, {})
    hashes = [_document_key(document) for document in documents]
    missing: dict[str, str] = {}
    for digest, document in zip(hashes, documents):
        if digest in memory or digest in missing:
            continue
        vector = read_vector(folder, digest, dim)
        if vector is None:
            missing[digest] = document
        else:
            memory[digest] = vector
    if missing:
        vectors = embed(list(missing.values()))
        for digest, vector in zip(missing, vectors):
            memory[digest] = vector.copy()
            write_vector(folder, digest, memory[digest])
    embeddings = np.empty((len(documents), dim), dtype=np.float32)
    for row, digest in enumerate(hashes):
        embeddings[row] = memory[digest]
    return embeddings


def _document_key(document: str) -> str:
    return hashlib.sha1(document.encode("utf-8", "surrogatepass")).hexdigest()


def read_vector(folder: Path | None, digest: str, dim: int) -> np.ndarray | None:
    """The cached embedding of a document, or None if absent or not a float32 ``(dim,)``."""
    if folder is None:
        return None
    path = folder / digest[:2] / f"{digest}.npy"
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vector.shape != (dim,) or vector.dtype != np.float32:
        return None
    return vector


def write_vector(folder: Path | None, digest: str, vector: np.ndarray) -> None:
    """Store a document's embedding atomically (nothing when ``folder`` is None)."""
    if folder is None:
        return
    path = folder / digest[:2] / f"{digest}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    # A random name: processes on other hosts that share the folder may have the
    # same process and thread ids as this one.
    partial = path.with_name(f"{digest}.{uuid.uuid4().hex}.tmp")
    with open(partial, "xb") as handle:
        np.save(handle, vector, allow_pickle=False)
    os.replace(partial, path)  # atomic: readers never see half a file
