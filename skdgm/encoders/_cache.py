"""The embedding cache: in memory for the process, and on disk when ``cache_dir`` is given.

In memory, ``{settings key: {sha1 of a document: its embedding}}`` is shared by every encoder
of the process, so that clones (cross-validation folds, grid-search candidates) embed each
distinct document once. On disk, one ``.npy`` file a document under
``cache_dir/embeddings/<settings key>/``, written under a random name and renamed into
place, so that processes (and hosts) sharing the folder never read half a file.
"""

from __future__ import annotations

import hashlib
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
