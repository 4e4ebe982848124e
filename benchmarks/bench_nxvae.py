"""NXVAE on the bundled corpus: training time, peak memory, and how well it aligns languages.

Trains :class:`skdgm.encoders.NXVAE` on every page of the bundled LibreOffice help corpus
(5 languages, 8 classes, all splits; the labels are not used), with each page's language,
then measures whether it maps translations near each other. The corpus's pages are
translations of each other (a page has one ``doc_id`` in every language), but NXVAE never
sees which: the pairs are used only to score it.

- Translation retrieval: for each page of the source language that has a translation in
  the target language, rank the target language's pages (those that translate a source
  page) by cosine similarity to it; top-1 and top-5 accuracy of finding its translation,
  against chance (1 / the number of candidates). For NXVAE's posterior means, for the
  mean of its (normalised) piece embeddings over a page's pieces, for TF-IDF over NXVAE's
  shared piece vocabulary (its tokenizer; the first 128 pieces, as NXVAE reads, and the
  first 512), and with ``--with-transformer`` for the pretrained multilingual-e5-small
  (``skdgm.encoders.MultilingualEncoder()``, offline copy; adds several minutes).
- Cross-lingual nearest neighbours of a dozen English words in German, French and
  Russian (cosine on the shared embedding table; pieces written as the tokenizer writes
  them, "▁" marking a word's first piece). A piece that the target language uses too
  (English words in German help pages, say) is its own first neighbour there: it is
  marked and left out of the list.

The defaults are NXVAE's, except ``max_epochs=5``, so that the run fits in 15 minutes on
two busy CPU cores (run it with ``OMP_NUM_THREADS=1`` for one core)::

    OMP_NUM_THREADS=1 python benchmarks/bench_nxvae.py [--with-transformer]
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import time

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize

from skdgm.datasets import load_libreoffice_help
from skdgm.encoders import NXVAE

PAIRS = (("en", "de"), ("en", "fr"), ("en", "ru"), ("en", "zh"), ("de", "fr"))
WORDS = (
    "table",
    "cell",
    "column",
    "row",
    "chart",
    "formula",
    "function",
    "page",
    "print",
    "file",
    "insert",
    "font",
    "text",
    "menu",
)
NEIGHBOUR_LANGUAGES = ("de", "fr", "ru")


def translation_retrieval(vectors, lang, doc_id, source, target):
    """(top-1, top-5, chance, candidates) of finding each source page's translation."""
    first = {}
    for row, key in enumerate(zip(lang, doc_id)):
        first.setdefault(key, row)  # one page per language and doc_id
    shared = sorted(
        {d for (lg, d) in first if lg == source} & {d for (lg, d) in first if lg == target}
    )
    rows_source = [first[(source, d)] for d in shared]
    rows_target = [first[(target, d)] for d in shared]
    sims = normalize(vectors[rows_source]) @ normalize(vectors[rows_target]).T
    sims = sims.toarray() if sp.issparse(sims) else np.asarray(sims)
    rank = (sims > np.diag(sims)[:, None]).sum(1)  # pages scored above the translation
    return float(np.mean(rank == 0)), float(np.mean(rank < 5)), 1 / len(shared), len(shared)


def piece_counts(vae, documents, max_pieces):
    """Counts of each document's first ``max_pieces`` pieces, over NXVAE's vocabulary."""
    encoded = vae.tokenizer_.encode_batch(documents, add_special_tokens=False)
    rows = [np.asarray(e.ids[:max_pieces], dtype=np.int64) for e in encoded]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    counts = sp.csr_matrix(
        (np.ones(indptr[-1], dtype=np.float32), np.concatenate(rows), indptr),
        shape=(len(documents), vae.vocabulary_size_),
    )
    counts.sum_duplicates()
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--adversarial-weight", type=float, default=0.0)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--max-documents", type=int, default=None, help="pages (with their translations)"
    )
    parser.add_argument("--with-transformer", action="store_true")
    parser.add_argument(
        "--cache-dir", default=None, help="on-disk embedding cache for --with-transformer"
    )
    args = parser.parse_args(argv)

    corpus = load_libreoffice_help(classes="all")
    keep = np.arange(len(corpus.data))
    if args.max_documents is not None:
        # The first pages with their translations: a quick check of this script.
        pages = list(dict.fromkeys(corpus.doc_id))[: args.max_documents]
        keep = np.flatnonzero(np.isin(corpus.doc_id, pages))
    docs = [corpus.data[i] for i in keep]
    lang, doc_id = corpus.lang[keep], corpus.doc_id[keep]
    print(f"{datetime.date.today()}: NXVAE on the bundled LibreOffice help corpus")
    print(
        f"{len(docs)} pages ({', '.join(f'{lg} {np.sum(lang == lg)}' for lg in np.unique(lang))}"
        f"); torch threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start"
    )

    vae = NXVAE(
        vocabulary_size=args.vocabulary_size,
        max_length=args.max_length,
        max_epochs=args.max_epochs,
        adversarial_weight=args.adversarial_weight,
        random_state=args.random_state,
        verbose=1,
    )
    print(vae)
    start = time.perf_counter()
    vae.fit(docs, languages=lang)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    means = vae.transform(docs)
    transform_seconds = time.perf_counter() - start
    print(
        f"\nfit: {fit_seconds:.0f} s ({vae.n_iter_} epochs, vocabulary of "
        f"{vae.vocabulary_size_} pieces); transform of {len(docs)} pages: "
        f"{transform_seconds:.0f} s"
    )
    for record in vae.history_:
        print(
            f"  epoch {record['epoch']}: loss {record['loss']:.3f} per piece "
            f"(reconstruction {record['reconstruction']:.3f}, KL {record['kl']:.2f} a page), "
            f"{record['duration']:.0f} s"
        )

    table = vae.module_.embedding.weight.detach().cpu().numpy()
    counts_read = piece_counts(vae, docs, args.max_length)
    representations = {
        "NXVAE posterior means": means,
        "NXVAE mean piece embedding": normalize(counts_read) @ normalize(table),
        f"TF-IDF of NXVAE pieces (first {args.max_length})": TfidfTransformer(
            sublinear_tf=True
        ).fit_transform(counts_read),
        "TF-IDF of NXVAE pieces (first 512)": TfidfTransformer(sublinear_tf=True).fit_transform(
            vae.count_tokens(docs)
        ),
    }
    if args.with_transformer:
        from skdgm.encoders import MultilingualEncoder

        start = time.perf_counter()
        representations["multilingual-e5-small (pretrained)"] = (
            MultilingualEncoder(cache_dir=args.cache_dir).fit(docs).transform(docs)
        )
        print(f"multilingual-e5-small: {time.perf_counter() - start:.0f} s to embed the pages")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB")

    print("\nTranslation retrieval: top-1 / top-5 accuracy (chance = 1 / candidates)")
    header = "| representation | " + " | ".join(f"{s}->{t}" for s, t in PAIRS) + " |"
    print(header)
    print("|---" * (len(PAIRS) + 1) + "|")
    chance = {}
    for name, vectors in representations.items():
        cells = []
        for source, target in PAIRS:
            top1, top5, chance[source, target], n = translation_retrieval(
                vectors, lang, doc_id, source, target
            )
            chance[source, target] = (chance[source, target], n)
            cells.append(f"{top1:.3f} / {top5:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    cells = [f"{c:.4f} ({n} pages)" for c, n in (chance[pair] for pair in PAIRS)]
    print("| chance (candidates) | " + " | ".join(cells) + " |")

    print(
        "\nNearest neighbours of English pieces (cosine on the shared embedding table; "
        "*: the piece occurs in that language too, and is its own first neighbour there)"
    )
    print("| en | " + " | ".join(NEIGHBOUR_LANGUAGES) + " |")
    print("|---" * (len(NEIGHBOUR_LANGUAGES) + 1) + "|")
    for word in WORDS:
        cells = []
        for target in NEIGHBOUR_LANGUAGES:
            try:
                found = vae.nearest_words(word, "en", target, k=4)
            except ValueError:
                cells.append("(not one piece)")
                continue
            # A piece the target language uses too is its own nearest neighbour there:
            # marked with *, and the next three shown.
            shared = found[0][1] > 1 - 1e-9
            others = [f"{piece} {sim:.2f}" for piece, sim in found if sim <= 1 - 1e-9][:3]
            cells.append(("* " if shared else "") + ", ".join(others))
        print(f"| {word} | " + " | ".join(cells) + " |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
