"""The training budget at many documents: accuracy against ``epoch_size`` at 100,000 rows.

The corpus is real: paragraphs of Debian package descriptions in about twenty languages,
8 classes made of the packages' sections (``benchmarks/_debian_corpus.py``, shared with
the speed benchmarks), split by package (a package's paragraphs and their translations
fall in one split): 80 % train, 10 % dev, 10 % test. A run takes the first
``--n-documents`` train paragraphs (in a hashed order, so every language and class),
labels ``--labels`` of them (stratified, seeded), the rest unlabelled, fits
``SemiSupervisedVAEClassifier`` with its defaults (and ``--params``, as JSON) but for
the setting studied, and scores ``--n-eval`` paragraphs of the dev split (``--split
test`` for the final figures only). A setting is a ``+``-joined list of
parameters, each ``name=value`` (``none`` for None), e.g.:

- ``epoch_size=4096``: every epoch the next 4,096 unlabelled rows of a shuffled order
  carried on from epoch to epoch (``epoch_size=none``: every row, every epoch);
- ``max_unlabelled=16384+epoch_size=4096``: the fit learns from a random sample of
  16,384 unlabelled rows, in epochs of 4,096 of them.

Each run appends one JSON line to ``--out`` (runs already there are skipped, so a study
can be stopped and resumed, or split between processes by ``--seeds``). Run, e.g.:
``python studies/study_budget.py --settings epoch_size=1024,epoch_size=4096 --seeds 0,1``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

# The corpus reader is the speed benchmarks' (benchmarks/bench_documents.py reads it too).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _debian_corpus import debian_documents  # noqa: E402


def split_of(package: str) -> str:
    """train, dev or test, by a hash of the package name (80/10/10)."""
    bucket = int(hashlib.sha1(package.encode()).hexdigest(), 16) % 10
    return {0: "test", 1: "dev"}.get(bucket, "train")


def corpus_splits(n_documents: int, n_eval: int, split: str, languages: str = "all"):
    """(train texts, train labels, eval texts, eval labels, classes)."""
    corpus = debian_documents(verbose=False)
    splits = np.array([split_of(p) for p in corpus["package"]])
    if languages != "all":
        splits[~np.isin(corpus["lang"], languages.split(","))] = "other"
    text = corpus["text"]
    train = np.flatnonzero(splits == "train")[:n_documents]
    held = np.flatnonzero(splits == split)[:n_eval]
    label = corpus["label"]
    return (
        [text[i] for i in train],
        label[train],
        [text[i] for i in held],
        label[held],
        corpus["classes"],
    )


def labelled_draw(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Positions of ``n // n_classes`` rows of each class, seeded."""
    rng = np.random.default_rng([seed, n, 27])
    per_class = n // len(np.unique(y))
    return np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]
        )
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-documents", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--n-eval", type=int, default=5_000)
    parser.add_argument("--split", default="dev", choices=["dev", "test"])
    parser.add_argument("--languages", default="all", help="e.g. en or en,de (all: every one)")
    parser.add_argument("--settings", default="epoch_size=1024,epoch_size=4096")
    parser.add_argument("--params", default="{}", help="fixed parameters, as JSON")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--cache-dir", default=".cache/embeddings")
    parser.add_argument("--out", default="docs/results/budget-100k.jsonl")
    args = parser.parse_args(argv)

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from skdgm import SemiSupervisedVAEClassifier
    from skdgm.encoders import MultilingualEncoder

    if args.threads:
        torch.set_num_threads(args.threads)
    docs, y, eval_docs, y_eval, classes = corpus_splits(
        args.n_documents, args.n_eval, args.split, args.languages
    )
    encoder = MultilingualEncoder(cache_dir=args.cache_dir).fit(docs[:1])
    start = time.perf_counter()
    encoder.transform(docs + eval_docs)  # into the caches: every fit reads them
    print(f"encoded {len(docs) + len(eval_docs)} documents in {time.perf_counter() - start:.0f} s")

    out = Path(args.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            keys = ("setting", "params", "languages", "seed", "labels", "n_documents", "split")
            done.add(tuple(row[k] for k in keys))
    embeddings, eval_embeddings = encoder.transform(docs), encoder.transform(eval_docs)
    lr_accuracy = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        labelled = labelled_draw(y, args.labels, seed)
        y_partial = np.full(len(y), -1)
        y_partial[labelled] = y[labelled]
        # The baseline on the same draw: LogisticRegression(C=10) on the embeddings.
        regression = LogisticRegression(C=10, max_iter=2000).fit(embeddings[labelled], y[labelled])
        lr_accuracy[seed] = float(np.mean(regression.predict(eval_embeddings) == y_eval))
        for setting in args.settings.split(","):
            ident = (
                setting,
                args.params,
                args.languages,
                seed,
                args.labels,
                len(docs),
                args.split,
            )
            if ident in done:
                continue
            params = json.loads(args.params)
            for part in setting.split("+"):
                name, value = part.split("=")
                params[name] = None if value == "none" else int(value)
            clf = SemiSupervisedVAEClassifier(encoder, random_state=seed, **params)
            start = time.perf_counter()
            clf.fit(docs, y_partial)
            fit_s = time.perf_counter() - start
            predicted = clf.predict(eval_docs)
            row = {
                "setting": setting,
                "params": args.params,
                "languages": args.languages,
                "seed": seed,
                "labels": args.labels,
                "n_documents": len(docs),
                "split": args.split,
                "accuracy": float(np.mean(predicted == y_eval)),
                "macro_f1": float(f1_score(y_eval, predicted, average="macro")),
                "fit_s": fit_s,
                "epochs": clf.n_iter_,
                "lr_accuracy": lr_accuracy[seed],
                "threads": torch.get_num_threads(),
                "classes": list(classes),
            }
            print(json.dumps(row))
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
