"""The on-disk embedding store: Arrow IPC files of many embeddings each, in one folder.

A folder holds the embeddings of one settings key (model and settings), as files named
``part-<random>.arrow`` ("shards"): Apache Arrow's IPC file format, one record batch of
two columns, ``key`` (the 20-byte SHA-1 of a document) and ``vector`` (float32), with
the format's name and version, the settings key and the dimension in the schema's
metadata. Why Arrow (``benchmarks/bench_embedding_store.py`` measured the candidates):

- A shard is written once, under a temporary name, and renamed into place; it is never
  changed after. A reader never sees half a file, and writers on several hosts that
  share the folder (NFS, Lustre) never share a file or a lock: the guarantee of the
  one-file-per-document cache it replaces, for a bounded number of files. SQLite and
  LMDB need file locks, which network filesystems do not all honour.
- A shard is read through a memory map with no copy or decoding: looking up some
  documents reads their rows' pages only, and reading them all is as fast as the disk.
- Each process keeps an index of the keys (28 bytes a document) and maps the shards; the
  vectors stay in the files.

Every write adds one shard (``cached_embeddings`` writes one per chunk of about 64 MiB of
vectors); when a folder holds more than ``MAX_SHARDS``, the writer merges the smallest
into one and deletes them. Concurrent merges by two processes at worst write the same
rows twice (a key found in two shards is read from either: keys are content digests).
A file that is not a whole shard of this format, this settings key and this dimension
(truncated, or foreign) is refused with a warning and never read; the documents it
would have held are embedded again.
"""

from __future__ import annotations

import os
import threading
import uuid
import warnings
from pathlib import Path

import numpy as np

#: Name and version of the format, in each shard's schema metadata.
FORMAT, VERSION = "skdgm-embeddings", "1"
#: Shards a folder may hold before a write merges the smallest.
MAX_SHARDS = 64
#: Bytes of a SHA-1 digest: the key of a document.
KEY_BYTES = 20
_PREFIX, _SUFFIX = "part-", ".arrow"

_STORES: dict[tuple[str, int, str], EmbeddingStore] = {}
_STORES_LOCK = threading.Lock()


def open_store(folder: Path, dim: int, key: str) -> EmbeddingStore:
    """The process's store of ``folder`` (one object a folder, so its index is reused)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "The on-disk embedding cache (cache_dir) needs pyarrow: pip install "
            "'skdgm[text]' (or pyarrow), or set cache_dir=None."
        ) from error
    with _STORES_LOCK:
        ident = (os.fspath(folder), dim, key)
        store = _STORES.get(ident)
        if store is None:
            store = _STORES[ident] = EmbeddingStore(folder, dim, key)
        return store


def forget_stores() -> None:
    """Drop every store's index and memory maps (the files stay)."""
    with _STORES_LOCK:
        _STORES.clear()


class ShardRefused(ValueError):
    """A file in a store's folder that is not a readable shard of that store."""


class _Shard:
    """One shard, memory-mapped: its keys and vectors are views of the file."""

    def __init__(self, path: Path, dim: int, key: str):
        import pyarrow as pa

        try:
            source = pa.memory_map(os.fspath(path), "r")
            reader = pa.ipc.open_file(source)
            schema = reader.schema
            metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
            expected = {
                "format": FORMAT,
                "version": VERSION,
                "settings_key": key,
                "dim": str(dim),
            }
            wrong = [name for name, value in expected.items() if metadata.get(name) != value]
            if wrong:
                raise ShardRefused(
                    "not a shard of this store: its "
                    + ", ".join(f"{name} is {metadata.get(name)!r}" for name in wrong)
                    + f" (expected {', '.join(repr(expected[name]) for name in wrong)})"
                )
            if schema.names != ["key", "vector"] or reader.num_record_batches != 1:
                raise ShardRefused("its columns or record batches are not those of a shard")
            batch = reader.get_batch(0)
        except (pa.ArrowException, OSError) as error:
            if isinstance(error, FileNotFoundError):
                raise
            raise ShardRefused(f"not a whole Arrow IPC file ({error})") from error
        keys, vectors = batch.column(0), batch.column(1)
        if (
            keys.type != pa.binary(KEY_BYTES)
            or vectors.type != pa.list_(pa.float32(), dim)
            or keys.null_count
            or vectors.null_count
        ):
            raise ShardRefused("its columns have other types than a shard's")
        self.path = path
        self._source = source  # keeps the map open as long as the views live
        self.keys = np.frombuffer(
            keys.buffers()[1], dtype=f"S{KEY_BYTES}", count=len(keys), offset=keys.offset * 20
        )
        self.vectors = vectors.flatten().to_numpy(zero_copy_only=True).reshape(len(keys), dim)
        self.n_rows = len(keys)


class EmbeddingStore:
    """The shards of one folder: read embeddings by key, add new ones.

    Parameters
    ----------
    folder : Path
        The folder of the shards (created on the first write).
    dim : int
        Dimension of the embeddings.
    key : str
        The settings key the embeddings were made with.
    """

    def __init__(self, folder: Path, dim: int, key: str):
        self.folder = Path(folder)
        self.dim = dim
        self.key = key
        self._lock = threading.Lock()
        self._shards: dict[str, _Shard] = {}
        self._refused: set[str] = set()
        self._names: set[str] = set()
        self._sorted_keys = np.empty(0, dtype=f"S{KEY_BYTES}")
        self._location = np.empty((0, 2), dtype=np.int64)  # (shard number, row)
        self._order: list[_Shard] = []

    # ---------------------------------------------------------------- reading
    def read(self, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Look up documents by their digests (``S20``).

        Returns
        -------
        found : ndarray of bool, shape (n,)
            Which digests the store holds.
        vectors : ndarray of float32, shape (found.sum(), dim)
            Their embeddings, in the order of the found digests.
        """
        with self._lock:
            self._refresh()
            keys, location, shards = self._sorted_keys, self._location, self._order
        if not len(keys) or not len(digests):
            return np.zeros(len(digests), dtype=bool), np.empty((0, self.dim), np.float32)
        position = np.minimum(np.searchsorted(keys, digests), len(keys) - 1)
        found = keys[position] == digests
        where = location[position[found]]
        vectors = np.empty((len(where), self.dim), dtype=np.float32)
        for number in np.unique(where[:, 0]):
            mine = where[:, 0] == number
            rows = where[mine, 1]
            order = np.argsort(rows)  # pages in file order
            vectors[np.flatnonzero(mine)[order]] = shards[number].vectors[rows[order]]
        return found, vectors

    def _refresh(self) -> None:
        """Map the shards written since the last look, forget the deleted ones."""
        names = self._shard_names()
        if names == self._names:
            return
        self._names = names
        for name in set(self._shards) - names:
            del self._shards[name]
        for name in sorted(names - set(self._shards) - self._refused):
            try:
                self._shards[name] = _Shard(self.folder / name, self.dim, self.key)
            except FileNotFoundError:
                continue  # merged and deleted by another process since the listing
            except ShardRefused as refusal:
                self._refused.add(name)
                warnings.warn(
                    f"Embedding cache: ignoring {self.folder / name}, {refusal}. Its "
                    "documents are embedded again; delete the file to silence this.",
                    UserWarning,
                    stacklevel=2,
                )
        self._order = [self._shards[name] for name in sorted(self._shards)]
        if not self._order:
            self._sorted_keys = np.empty(0, dtype=f"S{KEY_BYTES}")
            self._location = np.empty((0, 2), dtype=np.int64)
            return
        keys = np.concatenate([shard.keys for shard in self._order])
        location = np.concatenate(
            [
                np.stack([np.full(s.n_rows, i), np.arange(s.n_rows)], axis=1)
                for i, s in enumerate(self._order)
            ]
        )
        sorted_keys, first = np.unique(keys, return_index=True)  # a key in two shards: once
        self._sorted_keys, self._location = sorted_keys, location[first]

    def _shard_names(self) -> set[str]:
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return set()
        return {e.name for e in entries if e.name.startswith(_PREFIX) and e.name.endswith(_SUFFIX)}

    # ---------------------------------------------------------------- writing
    def write(self, digests: np.ndarray, vectors: np.ndarray) -> None:
        """Add embeddings as one new shard; merge the smallest shards when there are many."""
        if not len(digests):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_shard(digests, vectors)
        with self._lock:
            self._refresh()
            if len(self._shards) > MAX_SHARDS:
                self._merge_smallest()

    def _write_shard(self, digests: np.ndarray, vectors: np.ndarray) -> Path:
        import pyarrow as pa

        digests = np.ascontiguousarray(digests, dtype=f"S{KEY_BYTES}")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(digests), self.dim):
            raise ValueError(f"vectors of shape {vectors.shape} for {len(digests)} keys")
        keys = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(KEY_BYTES), len(digests), [None, pa.py_buffer(digests.tobytes())]
        )
        values = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), self.dim)
        metadata = {"format": FORMAT, "version": VERSION, "settings_key": self.key}
        schema = pa.schema(
            [("key", pa.binary(KEY_BYTES)), ("vector", pa.list_(pa.float32(), self.dim))],
            metadata={**metadata, "dim": str(self.dim)},
        )
        batch = pa.record_batch([keys, values], schema=schema)
        # A random name: writers on other hosts may share this folder, with the same
        # process and thread ids as this one. The partial file does not end in .arrow,
        # so no reader ever opens it.
        name = f"{_PREFIX}{uuid.uuid4().hex}{_SUFFIX}"
        partial = self.folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with pa.OSFile(os.fspath(partial), "wb") as sink:
                with pa.ipc.new_file(sink, schema) as writer:
                    writer.write_batch(batch)
            os.replace(partial, self.folder / name)  # atomic: readers see all or nothing
        finally:
            if partial.exists():
                partial.unlink()
        return self.folder / name

    def _merge_smallest(self) -> None:
        """Merge the smallest shards into one, so that half the limit remains."""
        by_size = sorted(self._shards.values(), key=lambda shard: shard.n_rows)
        chosen = by_size[: len(by_size) - MAX_SHARDS // 2 + 1]
        keys, first = np.unique(np.concatenate([s.keys for s in chosen]), return_index=True)
        vectors = np.concatenate([s.vectors for s in chosen])[first]
        self._write_shard(keys, vectors)
        for shard in chosen:
            try:
                os.remove(shard.path)
            except OSError:
                pass  # another process merged it first (or the system keeps it open)
        self._refresh()
