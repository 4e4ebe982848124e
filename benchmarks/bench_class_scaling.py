"""The SDGM's fit time against the number of classes, on the same documents.

The unlabelled term enumerates every class, so its cost may grow with the classes. This
benchmark fits the default SDGM on the same rows with K classes (K = 4, 8, 12, 16, 32 by
default): the bundled corpus's train pages of a few languages (all 8 classes' pages, real
embeddings and subword counts, through the embedding cache), labelled by K clusters of
their embeddings (k-means), so that the classes are as learnable as topics and only their
number changes; ``--labels-per-class`` labelled rows a class, the rest unlabelled. It prints
each fit's seconds and its ratio to the fit with the first number of classes.

Run: ``python benchmarks/bench_class_scaling.py --classes 4 8 12 16 32 --repeats 2``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.cluster import KMeans

from skdgm import SemiSupervisedVAEClassifier
from skdgm.benchmark._data import _encode_languages, _PrecomputedEncoder


def _labels(embeddings: np.ndarray, k: int, per_class: int, seed: int) -> np.ndarray:
    clusters = KMeans(k, n_init=3, random_state=seed).fit_predict(embeddings)
    rng = np.random.default_rng(seed)
    y = np.full(len(clusters), -1)
    for c in range(k):
        rows = np.flatnonzero(clusters == c)
        y[rng.choice(rows, min(per_class, len(rows)), replace=False)] = c
    return y


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", nargs="+", type=int, default=[4, 8, 12, 16, 32])
    parser.add_argument("--languages", nargs="+", default=["en", "de"])
    parser.add_argument("--labels-per-class", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's)")
    parser.add_argument("--cache-dir", default=".cache/embeddings")
    parser.add_argument("--output", help="append the runs here, one JSON line each")
    parser.add_argument("--params", default="{}", help="SDGM parameters, as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data, table, texts, _ = _encode_languages(
        args.languages,
        encoder="intfloat/multilingual-e5-small",
        mldoc=None,
        device="auto",
        cache_dir=args.cache_dir,
        verbose=0,
        classes="all",
    )
    rows = np.concatenate([data[lg].train_rows for lg in args.languages])
    documents = [texts[row] for row in rows]
    encoder = _PrecomputedEncoder(table)
    params = json.loads(args.params)
    print(f"{len(documents)} documents ({', '.join(args.languages)}), params {params}")
    reference = None
    for repeat in range(args.repeats):
        for k in args.classes:
            y = _labels(table.embeddings[rows], k, args.labels_per_class, seed=repeat)
            clf = SemiSupervisedVAEClassifier(encoder, random_state=repeat, **params)
            start = time.perf_counter()
            clf.fit(documents, y)
            seconds = time.perf_counter() - start
            if k == args.classes[0]:
                reference = seconds
            record = {
                "classes": k,
                "labelled": int((y != -1).sum()),
                "documents": len(documents),
                "repeat": repeat,
                "fit_seconds": round(seconds, 2),
                "ratio": round(seconds / reference, 2),
                "epochs": clf.n_iter_,
                "params": params,
            }
            print(json.dumps(record), flush=True)
            if args.output:
                with open(args.output, "a") as handle:
                    handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
