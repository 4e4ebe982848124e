"""A grid search on a Dask cluster whose workers share the encoder's on-disk cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import joblib  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from skdgm import SemiSupervisedVAEClassifier  # noqa: E402
from skdgm.encoders import MultilingualEncoder, clear_embedding_cache  # noqa: E402

TOPICS = {0: "the weather is {} today at the beach", 1: "insert table {} with the menu"}


def cache_files(cache_dir: Path) -> dict:
    """{file: (inode, mtime)} of the cached embeddings.

    The encoder writes an embedding only after running the model on its document, to a
    new file renamed over the old one: a document embedded again changes its inode.
    """
    return {
        path: (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in cache_dir.rglob("*")
        if path.is_file()
    }


@pytest.mark.slow
def test_grid_search_on_dask_embeds_each_document_once(tiny_wordpiece_model, tmp_path):
    docs = [TOPICS[i % 2].format(i) for i in range(40)]
    y = np.where(np.arange(40) < 12, np.arange(40) % 2, -1)
    cache_dir = tmp_path / "embeddings"
    # Settings fixed rather than "auto", so that every process keys the cache alike.
    encoder = MultilingualEncoder(
        tiny_wordpiece_model, device="cpu", precision="float32", cache_dir=cache_dir
    )
    clear_embedding_cache()  # this process must run the model, and so write the files
    clone(encoder).fit(docs).transform(docs)  # every document embedded once, here
    written = cache_files(cache_dir)
    assert len(written) == len(set(docs))

    clf = SemiSupervisedVAEClassifier(
        encoder,
        max_epochs=3,
        hidden_dim=16,
        z1_dim=4,
        z2_dim=2,
        vocabulary_size=30,
        random_state=0,
    )
    search = GridSearchCV(clf, {"alpha": [1.0, 10.0], "z1_dim": [2, 4]}, cv=2)

    def documents_in_memory() -> set:  # sent by value: the workers need not import tests
        from skdgm.encoders import _cache

        return {d for vectors in _cache._EMBEDDING_CACHE.values() for d in vectors}

    # Worker processes, as on a real cluster: each has its own in-memory cache, so the
    # disk is what they share (threads would share this process's memory cache).
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
            search.fit(docs, y)
        in_memory = client.run(documents_in_memory)
    workers = {task["worker"] for task in tasks.data}
    # The fits (4 candidates x 2 folds) ran in the workers' processes, which together used
    # every document's embedding; and no cache file was written again: no worker ran the
    # model, they read the embeddings from the disk.
    assert workers and workers <= set(in_memory)
    assert set().union(*in_memory.values()) == {path.stem for path in written}
    assert cache_files(cache_dir) == written
    assert search.best_estimator_.predict(docs).shape == (len(docs),)
    assert set(search.best_estimator_.predict(docs)) <= {0, 1}
    # The same search with joblib's default backend, in this process: the same scores,
    # hence the same best candidate.
    local = clone(search).fit(docs, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert search.best_params_ == local.best_params_
    assert search.best_score_ == pytest.approx(local.best_score_)
