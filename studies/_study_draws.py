"""What the studies behind the defaults share: the corpus encoded once, and its draws.

``study_shift.py`` and ``study_pseudo_expert.py`` fit the SDGM on the
benchmark's draws (every language, or cross-lingual pairs), each draw's documents read
through the embedding cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from skdgm.benchmark._data import _encode_languages, _make_task, _PrecomputedEncoder


@dataclass
class Draw:
    """One draw: its size, languages, seed, the benchmark's task and its documents."""

    n: int
    source: str
    target: str
    language: str  # "en", or "en-de" across languages
    seed: int
    task: object
    train: list
    test: list


def encode_corpus(languages, args):
    """(data, table, texts) of :func:`skdgm.benchmark._data._encode_languages`: the bundled
    corpus's ``languages`` through e5, read from ``args.cache_dir``, ``args.split`` scored,
    ``args.classes`` kept; sets torch's threads to ``args.threads`` first when given."""
    if args.threads:
        torch.set_num_threads(args.threads)
    data, table, texts, _ = _encode_languages(
        languages,
        encoder="intfloat/multilingual-e5-small",
        mldoc=None,
        device="auto",
        cache_dir=args.cache_dir,
        split=args.split,
        classes=args.classes,
        verbose=0,
    )
    return data, table, texts


def draws(args):
    """(encoder, data, draws): the encoder reading the cached embeddings, the encoded
    corpus, and a generator of :class:`Draw` over ``args.sizes`` x pairs x ``args.seeds``.

    ``args`` has ``pairs`` (e.g. ``["en-de"]``; empty: each of ``args.languages`` with
    itself), ``languages``, ``sizes``, ``seeds``, ``cache_dir`` and ``threads``.
    """
    pairs = [tuple(p.split("-")) for p in args.pairs] or [(lg, lg) for lg in args.languages]
    languages = list(dict.fromkeys(lg for pair in pairs for lg in pair))
    data, table, texts = encode_corpus(languages, args)

    def each():
        for n in args.sizes:
            for source, target in pairs:
                language = source if source == target else f"{source}-{target}"
                for seed in args.seeds:
                    task = _make_task(source, target, n, seed, data)
                    yield Draw(
                        n,
                        source,
                        target,
                        language,
                        seed,
                        task,
                        [texts[row] for row in task.train_rows],
                        [texts[row] for row in task.test_rows],
                    )

    return _PrecomputedEncoder(table), data, each()


def add_split_arguments(parser) -> None:
    """``--split`` (the split scored: dev by default, test for the final tables only) and
    ``--classes`` (the bundled corpus's 4 classes or all 8)."""
    parser.add_argument(
        "--split",
        choices=["dev", "test"],
        default="dev",
        help="the split scored (default dev: settings are chosen on dev, test is for the "
        "final tables only)",
    )
    parser.add_argument(
        "--classes", choices=["mldoc", "all"], default="mldoc", help="4 classes, or all 8"
    )


def study_main(doc: str, fit, score, sizes: list[int], argv=None) -> None:
    """The command line of a two-step study: ``--save DIR`` fits the draws (``fit(args)``),
    ``--score DIR`` scores the saved draws (``score(folder)``)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--score", help="score the rules on the draws saved here")
    parser.add_argument("--save", help="folder for each draw's ingredients")
    parser.add_argument("--languages", nargs="+", default=["en", "de", "fr", "ru", "zh"])
    parser.add_argument("--pairs", nargs="+", default=[], help="e.g. en-de (cross-lingual)")
    parser.add_argument("--sizes", nargs="+", type=int, default=sizes)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--seed-offset", type=int, default=1000)
    parser.add_argument("--cache-dir", default=".cache/embeddings")
    add_split_arguments(parser)
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.score:
        score(args.score)
    elif args.save:
        fit(args)
    else:
        parser.error("give --save DIR (fit) or --score DIR (score)")
