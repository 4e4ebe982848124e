"""A grid search on a Dask cluster whose workers share the encoder's on-disk cache."""

from __future__ import annotations

import hashlib
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

    The encoder writes embeddings only after running the model on their documents, to a
    new file: a document embedded again adds a file.
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
    assert len(written) == 1  # one Arrow file of every document's embedding

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

        return {digest.hex() for _, digest in _cache._MEMORY.keys()}

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
    digests = {hashlib.sha1(doc.encode()).hexdigest() for doc in docs}
    assert set().union(*in_memory.values()) == digests
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


# ------------------------------------------------------------- skdgm.dask: partitions
@pytest.fixture(scope="module")
def fitted_on_documents(tiny_wordpiece_model):
    docs = [TOPICS[i % 2].format(i) for i in range(60)]
    y = np.where(np.arange(60) < 12, np.arange(60) % 2, -1)
    encoder = MultilingualEncoder(tiny_wordpiece_model, device="cpu", precision="float32")
    clf = SemiSupervisedVAEClassifier(
        encoder, max_epochs=3, hidden_dim=16, z1_dim=4, z2_dim=2, random_state=0
    )
    return clf.fit(docs, y), docs


@pytest.mark.slow
def test_encode_and_predict_on_two_worker_processes_equal_one_process(fitted_on_documents):
    import dask
    import dask.array as da
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd

    import skdgm.dask

    clf, docs = fitted_on_documents
    expected = {
        "predict": clf.predict(docs),
        "predict_proba": clf.predict_proba(docs),
        "encode": clf.encoder_.transform(docs),
    }
    collections = {
        "bag": db.from_sequence(docs, npartitions=3),
        "series": dd.from_pandas(pd.Series(docs, name="text"), npartitions=4),
        "array": da.from_array(np.array(docs, dtype=object), chunks=25),
        "list": docs,
    }
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        for name, documents in collections.items():
            lazy = {
                "predict": skdgm.dask.predict(clf, documents, partition_size=7),
                "predict_proba": skdgm.dask.predict_proba(clf, documents, partition_size=7),
                "encode": skdgm.dask.encode(clf.encoder_, documents, partition_size=7),
            }
            for method, result in lazy.items():
                # The estimator is one key of the graph, which every partition reads.
                graph = dict(result.__dask_graph__())
                held = [
                    key
                    for key, node in graph.items()
                    if getattr(node, "value", node) is clf
                    or getattr(node, "value", node) is clf.encoder_
                ]
                assert len(held) == 1, (name, method)
                with distributed.get_task_stream(client) as tasks:
                    got = result.compute()
                # Equal to one process (float32 embeddings computed in other batches:
                # to float precision), in the input's order.
                np.testing.assert_allclose(got, expected[method], rtol=1e-5, atol=1e-6)
                assert got.shape == expected[method].shape
            workers = {task["worker"] for task in tasks.data}
        assert len(workers) == 2  # the partitions of the last run were shared out
        # Each worker process loaded the pretrained model once for all its partitions.
        loaded = client.run(lambda: len(__import__("skdgm").encoders._loading._LOADED_MODELS))
        assert set(loaded.values()) == {1}
    with dask.config.set(scheduler="sync"):  # any scheduler, not only a cluster
        np.testing.assert_array_equal(
            skdgm.dask.predict(clf, docs[:5]).compute(), expected["predict"][:5]
        )


def test_dask_functions_refuse_bad_input(fitted_on_documents, tiny_wordpiece_model):
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd
    from sklearn.exceptions import NotFittedError

    import skdgm.dask

    clf, docs = fitted_on_documents
    with pytest.raises(NotFittedError):
        skdgm.dask.predict(SemiSupervisedVAEClassifier(), docs)
    with pytest.raises(TypeError, match="transform method"):
        skdgm.dask.encode(clf.module_, docs)
    with pytest.raises(ValueError, match="must be 1-D"):
        skdgm.dask.predict(clf, da.zeros((4, 2), chunks=2))
    frame = dd.from_pandas(pd.DataFrame({"text": docs}), npartitions=2)
    with pytest.raises(TypeError, match="one column"):
        skdgm.dask.predict(clf, frame)
    with pytest.raises(ValueError, match="partition_size"):
        skdgm.dask.predict(clf, docs, partition_size=0)
    with pytest.raises(TypeError, match="single string"):
        skdgm.dask.predict(clf, "one document")
    assert skdgm.dask.predict(clf, []).compute().shape == (0,)
