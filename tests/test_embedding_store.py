"""The on-disk embedding store: Arrow shards, refused files, concurrent writers, merging."""

from __future__ import annotations

import multiprocessing
import os
import shutil

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")

from skdgm.encoders import _store  # noqa: E402
from skdgm.encoders._cache import document_digests  # noqa: E402
from skdgm.encoders._store import EmbeddingStore, forget_stores, open_store  # noqa: E402

DIM, KEY = 8, "settings-key"


def vectors_of(digests: np.ndarray) -> np.ndarray:
    """A vector made from each digest's bytes: any writer of a key writes the same vector."""
    raw = np.frombuffer(np.ascontiguousarray(digests).tobytes(), dtype=np.uint8)
    return raw.reshape(len(digests), 20)[:, :DIM].astype(np.float32) / 7.0


def digests(n: int, start: int = 0) -> np.ndarray:
    return document_digests([f"document {i}" for i in range(start, start + n)])


@pytest.fixture(autouse=True)
def _fresh_stores():
    forget_stores()
    yield
    forget_stores()


def shard_files(folder) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".arrow"))


def test_round_trip_in_a_fresh_process_index(tmp_path):
    keys = digests(50)
    store = open_store(tmp_path, DIM, KEY)
    store.write(keys[:30], vectors_of(keys[:30]))
    store.write(keys[30:], vectors_of(keys[30:]))
    assert len(shard_files(tmp_path)) == 2
    forget_stores()  # as a new process would: nothing known but the files
    asked = np.concatenate([keys[::-3], digests(5, start=1000)])
    found, vectors = open_store(tmp_path, DIM, KEY).read(asked)
    np.testing.assert_array_equal(found, [True] * len(keys[::-3]) + [False] * 5)
    np.testing.assert_array_equal(vectors, vectors_of(asked[found]))
    assert vectors.dtype == np.float32 and vectors.flags.writeable


def test_a_store_sees_shards_other_processes_write(tmp_path):
    keys = digests(20)
    reader = open_store(tmp_path, DIM, KEY)
    assert not reader.read(keys)[0].any()
    EmbeddingStore(tmp_path, DIM, KEY).write(keys, vectors_of(keys))  # another process
    found, vectors = reader.read(keys)
    assert found.all()
    np.testing.assert_array_equal(vectors, vectors_of(keys))


def test_empty_or_missing_folder(tmp_path):
    store = open_store(tmp_path / "absent", DIM, KEY)
    found, vectors = store.read(digests(3))
    assert not found.any() and vectors.shape == (0, DIM)
    found, vectors = store.read(digests(0))
    assert found.shape == (0,)


def _refused(tmp_path, damage, match):
    keys = digests(10)
    EmbeddingStore(tmp_path, DIM, KEY).write(keys, vectors_of(keys))
    (shard,) = [tmp_path / name for name in shard_files(tmp_path)]
    damage(shard)
    with pytest.warns(UserWarning, match=match):
        found, _ = open_store(tmp_path, DIM, KEY).read(keys)
    assert not found.any()


def test_a_half_written_shard_is_refused(tmp_path):
    def truncate(path):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    _refused(tmp_path, truncate, "not a whole Arrow IPC file")


def test_a_foreign_file_is_refused(tmp_path):
    def foreign(path):
        table = pa.table({"key": [b"x" * 20], "vector": [[1.0] * DIM]})
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)

    _refused(tmp_path, foreign, "not a shard of this store: its format is None")


def test_random_bytes_are_refused(tmp_path):
    _refused(tmp_path, lambda path: path.write_bytes(os.urandom(300)), "not a whole Arrow")


@pytest.mark.parametrize(("dim", "key"), [(DIM + 1, KEY), (DIM, "other-key")])
def test_a_shard_of_other_settings_is_refused(tmp_path, dim, key):
    keys = digests(10)
    EmbeddingStore(tmp_path, DIM, KEY).write(keys, vectors_of(keys))
    with pytest.warns(UserWarning, match="not a shard of this store"):
        found, _ = open_store(tmp_path, dim, key).read(keys)
    assert not found.any()


def test_partial_files_are_never_read(tmp_path, monkeypatch):
    keys = digests(10)
    store = open_store(tmp_path, DIM, KEY)

    def crash(source, target):
        raise KeyboardInterrupt  # killed between the write and the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write(keys, vectors_of(keys))
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []  # the partial file is removed
    assert not store.read(keys)[0].any()


def test_many_writes_are_merged_into_few_files(tmp_path, monkeypatch):
    monkeypatch.setattr(_store, "MAX_SHARDS", 4)
    store = open_store(tmp_path, DIM, KEY)
    keys = digests(60)
    for start in range(0, 60, 5):
        store.write(keys[start : start + 5], vectors_of(keys[start : start + 5]))
        assert len(shard_files(tmp_path)) <= 4
    store.write(keys[:7], vectors_of(keys[:7]))  # rows already there: read once
    forget_stores()
    found, vectors = open_store(tmp_path, DIM, KEY).read(keys)
    assert found.all()
    np.testing.assert_array_equal(vectors, vectors_of(keys))


def _write_many(folder: str, start: int, n_writes: int, max_shards: int) -> None:
    """One writer process: overlapping key ranges, a write at a time, merging as it goes."""
    _store.MAX_SHARDS = max_shards
    store = EmbeddingStore(folder, DIM, KEY)
    for i in range(n_writes):
        keys = digests(10, start=start + 5 * i)  # overlaps its previous write and the other's
        store.write(keys, vectors_of(keys))


def test_two_processes_writing_at_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_write_many, args=(str(tmp_path), start, 40, 6))
        for start in (0, 100)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    keys = digests(5 * 39 + 10 + 100)
    found, vectors = open_store(tmp_path, DIM, KEY).read(keys)
    assert found.all()
    np.testing.assert_array_equal(vectors, vectors_of(keys))
    assert len(shard_files(tmp_path)) <= 6 + 2  # each writer merges at its next write
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_copied_folder_reads_the_same(tmp_path):
    keys = digests(12)
    EmbeddingStore(tmp_path / "a", DIM, KEY).write(keys, vectors_of(keys))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    found, vectors = open_store(tmp_path / "b", DIM, KEY).read(keys)
    assert found.all()
    np.testing.assert_array_equal(vectors, vectors_of(keys))
