"""Many documents end to end: encode, fit with the defaults, predict; time and peak memory.

The documents are real: paragraphs of Debian package descriptions in about forty
languages, 8 classes made of the packages' sections (``_debian_corpus.py``: 411,835
distinct paragraphs). Beyond those (or beyond ``--real-limit``), documents are
recombined: two paragraphs of the same class and language joined into one, each pair
distinct and drawn at random, so that every document is distinct (the embedding cache
keys on the text: repeated documents would cost nothing and flatter the figures). The
benchmark says how many of each it used. ``--labels`` documents are labelled
(stratified), the rest unlabelled.

Each step runs in a process of its own, so that its peak resident memory
(``ru_maxrss``) is its own:

1. **encode**: ``MultilingualEncoder(cache_dir=...).transform`` of every document into the
   on-disk store (a second run finds them there: pass a new ``--cache-dir`` to measure
   encoding again); with ``--averaged``, of the real paragraphs only;
2. **average** (``--averaged`` only; not the model's work, and not an encoding time):
   each recombined document's embedding written into the store as the normalised mean
   of its two paragraphs' embeddings, so that fit and predict find every document
   there. This measures fit and prediction at a million rows without the hours of
   encoding them on a small machine; the encoding time of such a corpus follows from
   the documents per second of step 1;
3. **fit**: ``SemiSupervisedVAEClassifier`` with its defaults (or ``--params``, as JSON)
   on every document (the embeddings read from the store), saved with ``skdgm.save``;
4. **predict**: the saved model loaded and ``predict`` on every document.

Prints one JSON object (``--out``: also to a file): seconds, documents per second and
peak memory of each step, accuracy of the predictions on the unlabelled documents. Run:
``python benchmarks/bench_documents.py --n-documents 100000``, or for a million rows
from 100,000 encoded paragraphs: ``python benchmarks/bench_documents.py --n-documents
1000000 --real-limit 100000 --averaged --steps encode,average,fit,predict``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _debian_corpus import debian_documents


def documents(n: int, real_limit: int | None = None):
    """(texts, labels, languages, pairs): ``n`` distinct documents.

    The first ``min(n, real_limit)`` paragraphs of the corpus, then documents made of two
    of those paragraphs of the same class and language, whose positions ``pairs`` holds
    (one row a recombined document, in order).
    """
    corpus = debian_documents(verbose=False)
    real = min(n, len(corpus["text"]), real_limit or n)
    text = list(corpus["text"][:real])
    label, lang = np.asarray(corpus["label"])[:real], np.asarray(corpus["lang"])[:real]
    seen = set(text)
    rng = np.random.default_rng(0)
    groups = {}
    for row, key in enumerate(zip(label.tolist(), lang.tolist())):
        groups.setdefault(key, []).append(row)
    keys = [k for k, rows in groups.items() if len(rows) >= 2]
    sizes = np.array([len(groups[k]) for k in keys], dtype=float)
    texts, labels, langs, pairs = list(text), list(label), list(lang), []
    while len(texts) < n:  # pairs drawn in bulk, a group in proportion to its size
        need = n - len(texts)
        groups_drawn = rng.choice(len(keys), size=need, p=sizes / sizes.sum())
        size = sizes[groups_drawn].astype(np.int64)
        first = (rng.random(need) * size).astype(np.int64)
        second = (rng.random(need) * (size - 1)).astype(np.int64)
        second += second >= first  # two different paragraphs of the group
        for group, i, j in zip(groups_drawn.tolist(), first.tolist(), second.tolist()):
            key = keys[group]
            a, b = groups[key][i], groups[key][j]
            joined = f"{text[a]} {text[b]}"
            if joined not in seen and len(texts) < n:
                seen.add(joined)
                texts.append(joined)
                labels.append(key[0])
                langs.append(key[1])
                pairs.append((a, b))
    return texts, np.asarray(labels), np.asarray(langs), np.asarray(pairs, dtype=np.int64)


def labelled(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` with ``n // n_classes`` rows of each class kept, the others -1 (seeded)."""
    rng = np.random.default_rng(0)
    y_partial = np.full(len(y), -1)
    for c in np.unique(y):
        rows = rng.choice(np.flatnonzero(y == c), n // len(np.unique(y)), replace=False)
        y_partial[rows] = c
    return y_partial


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _step(args) -> dict:
    """One step, in this process: returns its figures."""
    import skdgm
    from skdgm import SemiSupervisedVAEClassifier
    from skdgm.encoders import MultilingualEncoder

    docs, y, _, pairs = documents(args.n_documents, args.real_limit)
    y_partial = labelled(y, args.labels)
    real = len(docs) - len(pairs)
    result = {}
    start = time.perf_counter()
    if args.step == "encode":
        encoder = MultilingualEncoder(cache_dir=args.cache_dir).fit(docs[:1])
        encoded = docs[:real] if args.averaged else docs
        encoder.transform(encoded)
        seconds = time.perf_counter() - start
        result = {"documents": len(encoded)}
        docs = encoded
    elif args.step == "average":
        # Not the model's embeddings: each recombined document's vector is the normalised
        # mean of its two paragraphs' (read from the store), written into the store under
        # the encoder's settings key so that fit and predict find every document there.
        from skdgm.encoders._cache import document_digests
        from skdgm.encoders._store import open_store

        encoder = MultilingualEncoder(cache_dir=args.cache_dir).fit(docs[:1])
        parts = encoder.transform(docs[:real])
        key = encoder._settings_key()
        store = open_store(encoder._disk_folder(key), parts.shape[1], key)
        for begin in range(0, len(pairs), 100_000):
            chunk = pairs[begin : begin + 100_000]
            vectors = parts[chunk[:, 0]] + parts[chunk[:, 1]]
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            chunk_docs = docs[real + begin : real + begin + len(chunk)]
            store.write(document_digests(chunk_docs), vectors.astype(np.float32))
        seconds = time.perf_counter() - start
        result = {"documents": len(pairs)}
        docs = docs[real:]
    elif args.step == "fit":
        params = json.loads(args.params)
        clf = SemiSupervisedVAEClassifier(
            MultilingualEncoder(cache_dir=args.cache_dir), random_state=0, **params
        )
        clf.fit(docs, y_partial)
        seconds = time.perf_counter() - start
        skdgm.save(clf, args.model)
        result = {"epochs": clf.n_iter_, "params": params}
    else:
        clf = skdgm.load(args.model)
        predicted = clf.predict(docs)
        seconds = time.perf_counter() - start
        unlabelled = y_partial == -1
        accuracy = np.mean(predicted[unlabelled] == y[unlabelled])
        result = {"accuracy_on_unlabelled": float(accuracy)}
    figures = {"seconds": seconds, "documents_per_s": len(docs) / seconds, "peak_mb": _peak_mb()}
    return figures | result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-documents", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--cache-dir", default=".cache/bench-documents")
    parser.add_argument("--params", default="{}", help="SDGM parameters, as JSON")
    parser.add_argument(
        "--real-limit", type=int, help="real paragraphs at most (the rest recombined from them)"
    )
    parser.add_argument(
        "--averaged",
        action="store_true",
        help="encode the real paragraphs only; give each recombined document the "
        "normalised mean of its paragraphs' embeddings (step 'average')",
    )
    parser.add_argument("--out", help="also write the report (JSON) to this file")
    parser.add_argument("--steps", default="encode,fit,predict")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        print(json.dumps(_step(args)))
        return

    docs, y, langs, pairs = documents(args.n_documents, args.real_limit)
    report = {
        "n_documents": len(docs),
        "real_paragraphs": len(docs) - len(pairs),
        "recombined": len(pairs),
        "recombined_embeddings": "averaged from their paragraphs'" if args.averaged else "encoded",
        "languages": len(set(langs.tolist())),
        "classes": len(set(y.tolist())),
        "labels": args.labels,
        "threads": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as folder:
        model = str(Path(folder) / "model")
        for step in args.steps.split(","):
            command = [sys.executable, __file__, *(argv or sys.argv[1:])]
            command += ["--step", step, "--model", model]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            report[step] = json.loads(done.stdout.strip().splitlines()[-1])
            print(step, json.dumps(report[step]), file=sys.stderr)
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
