"""A corpus of many documents end to end: encoding, fit and prediction, time and memory.

Documents are paragraphs of the bundled help pages (every language; a paragraph of a page
is one document, labelled with its page's class), repeated with a numbered suffix when
more are asked for than the corpus holds, so that each document is distinct and really
encoded. 5 % are labelled. In one process, the script encodes them with the default
encoder into an on-disk cache (``--cache-dir``), fits ``SemiSupervisedVAEClassifier`` with
its defaults, predicts every document, and prints the seconds of each step, documents per
second, and the peak resident memory after each step (``ru_maxrss``).

Run: ``python benchmarks/bench_documents.py --n-documents 100000`` (on 2 CPU cores the
encoding dominates: about 1 hour for 100,000 documents; a second run reads the cache).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def _documents(n: int):
    from skdgm.datasets import load_libreoffice_help

    pages = load_libreoffice_help()
    docs, labels = [], []
    for text, label in zip(pages.data, pages.target):
        for paragraph in text.split("\n"):
            if len(paragraph.split()) >= 5:
                docs.append(paragraph)
                labels.append(label)
    base = len(docs)
    order = np.random.default_rng(0).permutation(base)  # every class among the first ones
    docs, labels = [docs[i] for i in order], [labels[i] for i in order]
    out_docs, out_labels = [], []
    for i in range(n):
        suffix = "" if i < base else f" ({i // base})"
        out_docs.append(docs[i % base] + suffix)
        out_labels.append(labels[i % base])
    return out_docs, np.asarray(out_labels), base


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-documents", type=int, default=100_000)
    parser.add_argument("--cache-dir", default=".cache/bench-documents")
    parser.add_argument("--max-epochs", type=int, default=None, help="default: the SDGM's")
    args = parser.parse_args(argv)

    from skdgm import SemiSupervisedVAEClassifier
    from skdgm.encoders import MultilingualEncoder

    docs, y, distinct = _documents(args.n_documents)
    rng = np.random.default_rng(0)
    y_partial = np.where(rng.random(len(y)) < 0.05, y, -1)
    report = {"n_documents": len(docs), "distinct_paragraphs": distinct}

    encoder = MultilingualEncoder(cache_dir=args.cache_dir)
    start = time.perf_counter()
    encoder.fit(docs[:1]).transform(docs)
    report["encode_s"] = time.perf_counter() - start
    report["peak_mb_after_encoding"] = _peak_mb()

    params = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    clf = SemiSupervisedVAEClassifier(encoder, random_state=0, **params)
    start = time.perf_counter()
    clf.fit(docs, y_partial)
    report["fit_s"] = time.perf_counter() - start
    report["epochs"] = clf.n_iter_
    report["peak_mb_after_fit"] = _peak_mb()

    start = time.perf_counter()
    predicted = clf.predict(docs)
    report["predict_s"] = time.perf_counter() - start
    report["peak_mb_after_predict"] = _peak_mb()
    unlabelled = y_partial == -1
    report["accuracy_on_unlabelled"] = float(np.mean(predicted[unlabelled] == y[unlabelled]))
    report["documents_per_s_encoding"] = len(docs) / report["encode_s"]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
