"""Embedding stores on disk, side by side: how fast they write, look up and read all.

Candidates, each holding ``--n`` embeddings of ``--dim`` float32 keyed by a document's
SHA-1, written in chunks as ``MultilingualEncoder.transform`` writes them:

- ``npy-per-file``: the cache before the Arrow store, one ``.npy`` file a document in
  two-letter subfolders, each written under a random name and renamed;
- ``sqlite``: one SQLite file (stdlib), a ``WITHOUT ROWID`` table keyed by the digest, one
  transaction a chunk (journal mode WAL);
- ``lmdb``: one LMDB environment (``pip install lmdb``; skipped without it);
- ``arrow``: skdgm's store (:mod:`skdgm.encoders._store`), one Arrow IPC file a chunk,
  memory-mapped for reading.

For each: seconds to write, files and bytes on disk, seconds to look up ``--lookups``
random keys from a cold start (a new reader, the files in the page cache), and to read
every embedding. Run: ``python benchmarks/bench_embedding_store.py --n 100000``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from skdgm.encoders._cache import document_digests
from skdgm.encoders._store import EmbeddingStore


class NpyPerFile:
    def __init__(self, folder: Path, dim: int):
        self.folder, self.dim = folder, dim

    def write(self, keys, vectors):
        for key, vector in zip(keys, vectors):
            name = bytes(key).hex()
            path = self.folder / name[:2] / f"{name}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{name}.{uuid.uuid4().hex}.tmp")
            with open(partial, "xb") as handle:
                np.save(handle, vector, allow_pickle=False)
            os.replace(partial, path)

    def read(self, keys):
        out = np.empty((len(keys), self.dim), np.float32)
        for row, key in enumerate(keys):
            name = bytes(key).hex()
            out[row] = np.load(self.folder / name[:2] / f"{name}.npy")
        return out


class SQLite:
    def __init__(self, folder: Path, dim: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.db = sqlite3.connect(folder / "embeddings.sqlite", timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS e (key BLOB PRIMARY KEY, vector BLOB) WITHOUT ROWID"
        )

    def write(self, keys, vectors):
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO e VALUES (?, ?)",
                ((bytes(k), v.tobytes()) for k, v in zip(keys, vectors)),
            )

    def read(self, keys):
        found = {}
        keys = [bytes(k) for k in keys]
        for start in range(0, len(keys), 900):
            part = keys[start : start + 900]
            marks = ",".join("?" * len(part))
            query = f"SELECT key, vector FROM e WHERE key IN ({marks})"
            found.update(self.db.execute(query, part))
        return np.stack([np.frombuffer(found[k], np.float32) for k in keys])


class LMDB:
    def __init__(self, folder: Path, dim: int):
        import lmdb

        folder.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.env = lmdb.open(str(folder), map_size=2**36)

    def write(self, keys, vectors):
        with self.env.begin(write=True) as txn:
            for key, vector in zip(keys, vectors):
                txn.put(bytes(key), vector.tobytes(), overwrite=False)

    def read(self, keys):
        with self.env.begin() as txn:
            return np.stack([np.frombuffer(txn.get(bytes(k)), np.float32) for k in keys])


class Arrow:
    def __init__(self, folder: Path, dim: int):
        self.store = EmbeddingStore(folder, dim, "bench")

    def write(self, keys, vectors):
        self.store.write(keys, vectors)

    def read(self, keys):
        found, vectors = self.store.read(keys)
        assert found.all()
        return vectors


def _disk(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--chunk", type=int, default=43_690, help="rows a write (64 MiB)")
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--stores", default="npy-per-file,sqlite,lmdb,arrow")
    args = parser.parse_args(argv)

    kinds = {"npy-per-file": NpyPerFile, "sqlite": SQLite, "lmdb": LMDB, "arrow": Arrow}
    keys = document_digests([f"document {i}" for i in range(args.n)])
    vectors = np.random.default_rng(0).standard_normal((args.n, args.dim)).astype(np.float32)
    lookup = np.random.default_rng(1).choice(args.n, args.lookups, replace=False)
    print(f"{args.n} embeddings of {args.dim} float32 ({args.n * args.dim * 4 / 2**20:.0f} MiB)")
    header = f"{'store':<14}{'write s':>9}{'files':>9}{'MiB':>8}{'lookup s':>10}{'read all s':>12}"
    print(header)
    for name in args.stores.split(","):
        try:
            kind = kinds[name]
            root = Path(tempfile.mkdtemp(prefix=f"store-{name}-", dir="."))
            writer = kind(root / "store", args.dim)
        except ImportError as error:
            print(f"{name:<14}skipped: {error}")
            continue
        try:
            start = time.perf_counter()
            for begin in range(0, args.n, args.chunk):
                end = begin + args.chunk
                writer.write(keys[begin:end], vectors[begin:end])
            write_s = time.perf_counter() - start
            files, size = _disk(root / "store")
            del writer
            start = time.perf_counter()
            got = kind(root / "store", args.dim).read(keys[lookup])  # a new reader
            lookup_s = time.perf_counter() - start
            np.testing.assert_array_equal(got, vectors[lookup])
            start = time.perf_counter()
            got = kind(root / "store", args.dim).read(keys)
            read_s = time.perf_counter() - start
            np.testing.assert_array_equal(got, vectors)
            print(
                f"{name:<14}{write_s:>9.2f}{files:>9}{size / 2**20:>8.0f}"
                f"{lookup_s:>10.3f}{read_s:>12.2f}"
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
