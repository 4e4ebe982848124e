"""The embedding cache: a bounded one in memory for the process, and a store on disk.

In memory, the most recently used embeddings, keyed by (settings key, SHA-1 of the
document), are shared by every encoder of the process, so that clones (cross-validation
folds, grid-search candidates) embed each distinct document once. The cache holds at most
``set_embedding_cache_limit`` bytes (256 MiB by default, about 170,000 embeddings of 384
dimensions) and forgets the least recently used beyond: a transform of millions of
documents does not keep every vector twice. On disk, with ``cache_dir``, the embeddings
go to an :class:`~skdgm.encoders._store.EmbeddingStore` (Arrow files of many embeddings
each, ``cache_dir/embeddings/<settings key>/``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ._store import KEY_BYTES, forget_stores, open_store

_LOCK = threading.Lock()
#: Bytes counted for an entry besides its vector (the key and the dict's bookkeeping).
_ENTRY_OVERHEAD = 200
#: Bytes of embeddings computed (and written to disk) at a time.
_CHUNK_BYTES = 64 * 2**20


class _MemoryCache:
    """A least-recently-used map of (settings key, digest) to embedding, bounded in bytes."""

    def __init__(self, max_bytes: int | None):
        self.max_bytes = max_bytes
        self.n_bytes = 0
        self._entries: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, bytes]) -> np.ndarray | None:
        vector = self._entries.get(key)
        if vector is not None:
            self._entries.move_to_end(key)
        return vector

    def put(self, key: tuple[str, bytes], vector: np.ndarray) -> None:
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        vector = np.array(vector, dtype=np.float32)  # its own copy, not a view of a batch
        self._entries[key] = vector
        self.n_bytes += vector.nbytes + _ENTRY_OVERHEAD
        self._shrink()

    def _shrink(self) -> None:
        while self.max_bytes is not None and self.n_bytes > self.max_bytes and self._entries:
            _, vector = self._entries.popitem(last=False)
            self.n_bytes -= vector.nbytes + _ENTRY_OVERHEAD

    def keys(self):
        return self._entries.keys()

    def clear(self) -> None:
        self._entries.clear()
        self.n_bytes = 0


_MEMORY = _MemoryCache(256 * 2**20)


def clear_embedding_cache() -> None:
    """Empty the in-memory embedding cache that all encoders of this process share.

    The next :meth:`MultilingualEncoder.transform` runs the model again, or reads the
    on-disk cache (``cache_dir``), which is left as it is.
    """
    with _LOCK:
        _MEMORY.clear()
    forget_stores()


def set_embedding_cache_limit(max_bytes: int | None) -> int | None:
    """Bound the memory of the in-memory embedding cache that all encoders share.

    The least recently used embeddings are forgotten beyond the bound (a ``transform``
    still returns every embedding it was asked for).

    Parameters
    ----------
    max_bytes : int or None
        Bytes of embeddings (each counted with about 200 bytes of bookkeeping) the cache
        keeps at most; 256 MiB by default, about 170,000 embeddings of 384 dimensions.
        0 keeps nothing in memory; None removes the bound.

    Returns
    -------
    previous : int or None
        The bound before this call.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or int(max_bytes) != max_bytes):
        raise TypeError(f"max_bytes must be an int or None, got {max_bytes!r}")
    if max_bytes is not None and max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0 or None, got {max_bytes}")
    with _LOCK:
        previous = _MEMORY.max_bytes
        _MEMORY.max_bytes = None if max_bytes is None else int(max_bytes)
        _MEMORY._shrink()
    return previous


def settings_key(settings: dict) -> str:
    """The key of the embeddings made with ``settings`` (a JSON-able dict): a SHA-1."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def document_digests(documents: list[str]) -> np.ndarray:
    """The SHA-1 of each document's UTF-8 text, as an ``S20`` array."""
    joined = b"".join(
        hashlib.sha1(document.encode("utf-8", "surrogatepass")).digest() for document in documents
    )
    return np.frombuffer(joined, dtype=f"S{KEY_BYTES}", count=len(documents))


def cached_embeddings(documents: list[str], key: str, folder: Path | None, dim: int, embed):
    """The embeddings of ``documents``, float32 ``(n, dim)``, through the caches of ``key``.

    Each distinct document is looked up in memory, then in the store of ``folder``
    (None: memory only); ``embed(documents)`` computes the missing ones, about 64 MiB of
    vectors at a time, each chunk written to the store as it is done (an interrupted
    transform keeps what it finished).
    """
    digests = document_digests(documents)
    unique, first, inverse = np.unique(digests, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    embeddings = np.empty((len(documents), dim), dtype=np.float32)
    missing = []
    with _LOCK:
        for number, digest in enumerate(_as_bytes(unique)):
            vector = _MEMORY.get((key, digest))
            if vector is None:
                missing.append(number)
            else:
                embeddings[first[number]] = vector
    missing = np.asarray(missing, dtype=np.int64)
    store = None if folder is None else open_store(folder, dim, key)
    if store is not None and missing.size:
        found, vectors = store.read(unique[missing])
        embeddings[first[missing[found]]] = vectors
        _remember(key, unique[missing[found]], vectors)
        missing = missing[~found]
    chunk = max(1, _CHUNK_BYTES // (4 * dim))
    for start in range(0, missing.size, chunk):
        part = missing[start : start + chunk]
        vectors = np.asarray(embed([documents[row] for row in first[part]]), dtype=np.float32)
        embeddings[first[part]] = vectors
        if store is not None:
            store.write(unique[part], vectors)
        _remember(key, unique[part], vectors)
    repeated = first[inverse] != np.arange(len(documents))
    embeddings[repeated] = embeddings[first[inverse[repeated]]]
    return embeddings


def _remember(key: str, digests: np.ndarray, vectors: np.ndarray) -> None:
    with _LOCK:
        if _MEMORY.max_bytes is not None:
            # Only the last ones that fit would stay: skip the others.
            fit = _MEMORY.max_bytes // (vectors.shape[1] * 4 + _ENTRY_OVERHEAD)
            if fit == 0:
                return
            digests, vectors = digests[-fit:], vectors[-fit:]
        for digest, vector in zip(_as_bytes(digests), vectors):
            _MEMORY.put((key, digest), vector)


def _as_bytes(digests: np.ndarray) -> list[bytes]:
    """Each digest as 20 bytes (``tolist`` would drop trailing zero bytes)."""
    raw = np.ascontiguousarray(digests).tobytes()
    return [raw[start : start + KEY_BYTES] for start in range(0, len(raw), KEY_BYTES)]
