"""Throughput of ``skdgm.dask`` on a local cluster of 1 and of 2 worker processes.

Real documents (paragraphs of Debian package descriptions, ``_debian_corpus.py``): a
``SemiSupervisedVAEClassifier`` with the default encoder is fitted in this process on
``--n-fit`` of them (64 labelled), then ``skdgm.dask.encode`` embeds ``--n-documents``
others and ``skdgm.dask.predict`` predicts them, on a ``LocalCluster`` of one worker
process, then of two, each with one thread. Encoding runs with an empty cache; prediction
reads the embeddings the encoding wrote to a shared ``cache_dir``, so that it measures
what prediction adds (tokenising, the networks, the linear expert). Each worker loads the
model before the clock starts. Prints documents per second and the ratio of 2 workers to
1. Run: ``python benchmarks/bench_dask.py --n-documents 4000``.

Prediction is about 50 times faster than encoding, so a few thousand documents time the
scheduler more than the workers: ``--steps predict --predict-documents 60000
--predict-cache-dir DIR`` predicts that many paragraphs whose embeddings a store in
``DIR`` already holds (``bench_documents.py`` puts the first 100,000 there). Prediction
also reports the CPUs each worker process and this process (the client and the
LocalCluster's scheduler) kept busy: a worker with one dask thread may use more than one
core (the tokenizer's own threads; ``TOKENIZERS_PARALLELISM=false`` keeps it to one).
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import shutil
import tempfile
import time

import numpy as np
from _debian_corpus import debian_documents


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-documents", type=int, default=4000)
    parser.add_argument("--n-fit", type=int, default=2000)
    parser.add_argument("--partition-size", type=int, default=250)
    parser.add_argument(
        "--predict-documents",
        type=int,
        help="predict this many documents instead, read from --predict-cache-dir, where "
        "they were embedded before (prediction takes about 1/50 of encoding's time: a "
        "few thousand documents measure the scheduler more than the workers)",
    )
    parser.add_argument("--predict-cache-dir", help="the store of --predict-documents")
    parser.add_argument("--steps", default="encode,predict")
    args = parser.parse_args(argv)

    import distributed

    import skdgm.dask
    from skdgm import SemiSupervisedVAEClassifier
    from skdgm.encoders import MultilingualEncoder

    corpus = debian_documents(verbose=False)
    text, label = corpus["text"], corpus["label"]
    fit_docs, fit_y = text[: args.n_fit], label[: args.n_fit].copy()
    documents = text[args.n_fit : args.n_fit + args.n_documents]
    keep = np.zeros(args.n_fit, dtype=bool)
    for c in np.unique(fit_y):
        keep[np.flatnonzero(fit_y == c)[:8]] = True
    fit_y[~keep] = -1
    cache = tempfile.mkdtemp(prefix="bench-dask-", dir=".")
    # Fixed device and precision: every process keys the cache alike.
    encoder = MultilingualEncoder(device="cpu", precision="bfloat16", cache_dir=cache)
    clf = SemiSupervisedVAEClassifier(encoder, random_state=0).fit(fit_docs, fit_y)
    steps = args.steps.split(",")
    predictor, to_predict = clf, documents
    if args.predict_documents:
        # The same fitted model reading another store, where these documents are.
        predictor = pickle.loads(pickle.dumps(clf))
        predictor.encoder_.cache_dir = args.predict_cache_dir
        to_predict = text[args.n_fit : args.n_fit + args.predict_documents]
    report = {
        "n_documents": len(documents),
        "predict_documents": len(to_predict),
        "partition_size": args.partition_size,
    }
    try:
        for n_workers in (1, 2):
            cluster = distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            with cluster, distributed.Client(cluster) as client:
                client.wait_for_workers(n_workers)
                # Warm-up: every worker loads the model (not timed).
                client.run(lambda: clf.encoder_.transform(["warm up"]))
                client.run(lambda: predictor.encoder_.transform(to_predict[:1]))
                part = args.partition_size
                if "encode" in steps:
                    shutil.rmtree(cache, ignore_errors=True)  # encoding starts from nothing
                    start = time.perf_counter()
                    embeddings = skdgm.dask.encode(clf.encoder_, documents, partition_size=part)
                    embeddings = embeddings.compute()
                    encode_s = time.perf_counter() - start
                    assert embeddings.shape[0] == len(documents)
                    report[f"encode_docs_per_s_{n_workers}_workers"] = len(documents) / encode_s
                if "predict" in steps:
                    before = client.run(time.process_time)
                    start, cpu = time.perf_counter(), time.process_time()
                    predicted = skdgm.dask.predict(predictor, to_predict, partition_size=part)
                    predicted = predicted.compute()
                    predict_s = time.perf_counter() - start
                    after = client.run(time.process_time)
                    # CPUs each worker process kept busy (its threads: torch's, the
                    # tokenizer's): above 1, one worker already used more than one core.
                    report[f"predict_cpus_a_worker_{n_workers}_workers"] = [
                        (after[w] - before[w]) / predict_s for w in sorted(after)
                    ]
                    # This process holds the client and the LocalCluster's scheduler: the
                    # CPU they take is CPU the two workers do not get on a 2-core machine.
                    busy = (time.process_time() - cpu) / predict_s
                    report[f"predict_client_and_scheduler_cpus_{n_workers}_workers"] = busy
                    assert predicted.shape[0] == len(to_predict)
                    report[f"predict_docs_per_s_{n_workers}_workers"] = len(to_predict) / predict_s
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    for step in steps:
        one, two = (report[f"{step}_docs_per_s_{n}_workers"] for n in (1, 2))
        report[f"{step}_ratio_2_to_1"] = two / one
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
