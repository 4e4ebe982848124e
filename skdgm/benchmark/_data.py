"""The corpus encoded once, the lookup encoder the methods share, and each draw's data."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer

from ..datasets import draw_labelled

_FEATURES = ("documents", "codes", "embeddings", "tfidf", "embeddings+pieces")


class _DocumentTable:
    """Precomputed embeddings and token counts of documents, looked up by exact text.

    With the fitted encoder and the texts, it also stores the output of the encoder's
    frozen lower layers, once per number of tuned top layers, so that fine-tuning methods
    run the lower layers once per benchmark, not once per fit: of every document, or of
    the rows in ``state_rows`` when set (the runner sets it to the languages of the runs
    that fine-tune).
    """

    def __init__(self, row_of, embeddings, counts, encoder=None, texts=None, timings=None):
        self.row_of = row_of
        self.embeddings = embeddings
        self.counts = counts
        self.encoder = encoder
        self.texts = texts
        self.timings = timings if timings is not None else {}
        self._states: dict[int, object] = {}
        self.state_rows: np.ndarray | None = None

    def states(self, n_top: int, rows: np.ndarray):
        """Token states below the top ``n_top`` layers, and where ``rows`` are in them.

        The states are computed once, for the rows of ``state_rows`` (every row when
        None); a row outside them is an error.
        """
        if n_top not in self._states:
            if self.encoder is None:
                raise ValueError(
                    "This document table has no encoder to run the layers of: a method "
                    "that fine-tunes the encoder must say so, Method(..., needs_model=True)."
                )
            covered = np.arange(len(self.texts)) if self.state_rows is None else self.state_rows
            start = time.perf_counter()
            states = self.encoder._token_states([self.texts[row] for row in covered], n_top)
            self.timings[f"frozen layers below top {n_top}"] = time.perf_counter() - start
            position = np.full(len(self.texts), -1, dtype=np.intp)
            position[covered] = np.arange(len(covered))
            self._states[n_top] = (states, position)
        states, position = self._states[n_top]
        if (position[rows] < 0).any():
            raise ValueError(
                "A document's token states were not computed: its language is outside "
                "the document table's state_rows."
            )
        return states, position[rows]

    def rows(self, documents) -> np.ndarray:
        try:
            return np.fromiter((self.row_of[doc] for doc in documents), dtype=np.intp)
        except KeyError:
            raise ValueError(
                "A document was not encoded beforehand; the precomputed encoder only knows "
                "the benchmark's own documents."
            ) from None

    def __deepcopy__(self, memo):
        return self  # read-only: clones share it instead of copying the arrays


class _PrecomputedEncoder(TransformerMixin, BaseEstimator):
    """Return precomputed embeddings and token counts of documents, looked up by text.

    What the real encoder returns for the same documents, without running the model
    again for every fit of every run.

    Parameters
    ----------
    table : _DocumentTable
        The documents' embeddings and token counts.
    """

    def __init__(self, table=None):
        self.table = table

    def fit(self, X, y=None):
        """Check that every document is known.

        Parameters
        ----------
        X : list of str
            Documents.
        y : None
            Ignored.

        Returns
        -------
        self : _PrecomputedEncoder
            The encoder.
        """
        self.table.rows(X)
        self.embedding_dim_ = self.table.embeddings.shape[1]
        return self

    def transform(self, X):
        """Return the documents' embeddings.

        Parameters
        ----------
        X : list of str
            Documents.

        Returns
        -------
        embeddings : ndarray of shape (n_documents, embedding_dim_)
            The precomputed embeddings.
        """
        rows = self.table.rows(X)
        top = getattr(self, "top_", None)
        if top is None:
            return self.table.embeddings[rows]
        from ..encoders._tuning import DocumentEmbedder

        states, positions = self.table.states(top.n_top, rows)
        return DocumentEmbedder(top, states).embeddings(positions)

    def token_ids(self, X):
        """Return each document's subword ids, from the encoder's tokenizer (for decoder="gru").

        Parameters
        ----------
        X : list of str
            Documents.

        Returns
        -------
        token_ids : list of list of int
            What ``MultilingualEncoder.token_ids`` returns.
        """
        return self.table.encoder.token_ids(X)

    def count_tokens(self, X):
        """Return the documents' subword counts.

        Parameters
        ----------
        X : list of str
            Documents.

        Returns
        -------
        counts : scipy.sparse.csr_matrix of shape (n_documents, vocabulary_size)
            The precomputed token counts.
        """
        return self.table.counts[self.table.rows(X)]

    # The fine-tuning protocol of MultilingualEncoder, served from the table.
    @property
    def _model(self):
        """The encoder's model (fine_tune_layers="all" counts its layers), or None."""
        return None if self.table.encoder is None else getattr(self.table.encoder, "_model", None)

    def _token_states(self, X, n_top):
        states, positions = self.table.states(n_top, self.table.rows(X))
        return states.subset(positions)

    def _tunable_top(self, n_top, *, normalize=None):
        return self.table.encoder._tunable_top(n_top, normalize=normalize)

    def _with_tuned_top(self, top):
        import copy

        tuned = _PrecomputedEncoder(self.table).fit(list(self.table.row_of)[:1])
        tuned.top_ = copy.deepcopy(top).eval().requires_grad_(False)
        tuned.tuned_layers_ = top.n_top
        return tuned

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags


@dataclass
class _Language:
    train_rows: np.ndarray
    y_train: np.ndarray
    test_rows: np.ndarray
    y_test: np.ndarray
    train_ids: np.ndarray | None
    test_ids: np.ndarray | None
    target_names: np.ndarray


def _load_language(language: str, mldoc: str | None, split: str = "test", classes="mldoc"):
    """Return (train texts, y, doc ids, scored texts, y, doc ids, target names).

    The scored documents are those of ``split`` ("test", or "dev" for tuning).
    """
    if mldoc is not None:
        from ..datasets import load_mldoc

        train = load_mldoc(mldoc, language, "train")
        test = load_mldoc(mldoc, language, split)
        return (train.data, train.target, None, test.data, test.target, None, train.target_names)
    from ..datasets import load_libreoffice_help

    train = load_libreoffice_help(languages=language, split="train", classes=classes)
    test = load_libreoffice_help(languages=language, split=split, classes=classes)
    return (
        train.data,
        train.target,
        train.doc_id,
        test.data,
        test.target,
        test.doc_id,
        train.target_names,
    )


def _check_languages(languages: Iterable[str], mldoc: str | None) -> None:
    if mldoc is not None:
        from ..datasets._mldoc import MLDOC_LANGUAGES as known
    else:
        from ..datasets._libreoffice import LANGUAGES as known
    unknown = [language for language in languages if language not in known]
    if unknown:
        corpus = "MLDoc" if mldoc is not None else "the LibreOffice help corpus"
        raise ValueError(f"Unknown language(s) {unknown} for {corpus}; use some of {list(known)}.")


def _encode_languages(
    languages,
    *,
    encoder,
    mldoc,
    device,
    cache_dir,
    verbose,
    prefix="auto",
    split="test",
    classes="mldoc",
):
    """Load every language and embed its documents once (the scored ones from ``split``).

    Returns the per-language data, the document table, the texts (by table row) and the
    timings.
    """
    from ..encoders import MultilingualEncoder

    texts: list[str] = []
    row_of: dict[str, int] = {}

    def rows_of(documents):
        rows = np.empty(len(documents), dtype=np.intp)
        for position, document in enumerate(documents):
            row = row_of.get(document)
            if row is None:
                row = row_of[document] = len(texts)
                texts.append(document)
            rows[position] = row
        return rows

    start = time.perf_counter()
    model = MultilingualEncoder(
        encoder, prefix=prefix, device=device, cache_dir=cache_dir, verbose=int(verbose > 1)
    )
    model.fit(["benchmark"])
    timings = {"load model": time.perf_counter() - start}
    data, embeddings, counts = {}, [], []
    for language in languages:
        train_x, y_train, train_ids, test_x, y_test, test_ids, names = _load_language(
            language, mldoc, split, classes
        )
        if train_ids is not None and np.intersect1d(train_ids, test_ids).size:
            raise ValueError(f"{language}: a page is in both the train and the {split} split.")
        first_new = len(texts)
        data[language] = _Language(
            rows_of(train_x), y_train, rows_of(test_x), y_test, train_ids, test_ids, names
        )
        new_texts = texts[first_new:]
        start = time.perf_counter()
        if verbose:
            print(f"Encoding {language}: {len(new_texts)} documents", file=sys.stderr)
        embeddings.append(np.asarray(model.transform(new_texts), dtype=np.float32))
        counts.append(model.count_tokens(new_texts))
        timings[f"encode {language}"] = time.perf_counter() - start
    table = _DocumentTable(
        row_of,
        np.concatenate(embeddings),
        sp.vstack(counts, format="csr"),
        encoder=model,
        texts=texts,
        timings=timings,
    )
    return data, table, texts, timings


@dataclass
class _Task:
    """One draw: what every method sees."""

    source: str
    target: str
    n: int | str
    seed: int
    train_rows: np.ndarray  # labelled rows first, then unlabelled rows
    y_train: np.ndarray  # -1 for unlabelled rows
    test_rows: np.ndarray
    y_test: np.ndarray
    draw: str


def _make_task(source: str, target: str, n, seed: int, data) -> _Task:
    src, tgt = data[source], data[target]
    positions = draw_labelled(src.y_train, n, seed=seed, language=source)
    labelled_rows = src.train_rows[positions]
    if source == target:
        unlabelled_rows = np.delete(src.train_rows, positions)
    else:
        unlabelled_rows = tgt.train_rows
        if (
            src.train_ids is not None
            and np.intersect1d(src.train_ids[positions], tgt.test_ids).size
        ):
            raise ValueError(
                f"{source}-{target}: a labelled page is a translation of a test page."
            )
    train_rows = np.concatenate([labelled_rows, unlabelled_rows])
    y_train = np.concatenate(
        [src.y_train[positions], np.full(len(unlabelled_rows), -1, dtype=src.y_train.dtype)]
    )
    draw = hashlib.sha1(np.ascontiguousarray(labelled_rows).tobytes()).hexdigest()[:12]
    return _Task(source, target, n, seed, train_rows, y_train, tgt.test_rows, tgt.y_test, draw)


def _tfidf(languages: tuple[str, ...], data, texts):
    """TF-IDF features fitted on the train split of ``languages``.

    Returns the matrix of the languages' train and test documents and, for every row of
    the document table, its row in that matrix.
    """
    if "zh" in languages or "ja" in languages:
        vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2
        )
    else:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    train = np.unique(np.concatenate([data[language].train_rows for language in languages]))
    vectorizer.fit([texts[row] for row in train])
    rows = np.unique(
        np.concatenate([np.r_[data[lg].train_rows, data[lg].test_rows] for lg in languages])
    )
    position = np.full(len(texts), -1, dtype=np.intp)
    position[rows] = np.arange(len(rows))
    return vectorizer.transform([texts[row] for row in rows]), position


def _embeddings_and_pieces(languages: tuple[str, ...], data, table):
    """[embedding ; TF-IDF of subword pieces], the TF-IDF fitted on the train split.

    Returns the matrix of every row of the document table (rows outside ``languages``
    are computed too, and never used).
    """
    from sklearn.feature_extraction.text import TfidfTransformer

    train = np.unique(np.concatenate([data[language].train_rows for language in languages]))
    tfidf = TfidfTransformer(sublinear_tf=True).fit(table.counts[train])
    pieces = tfidf.transform(table.counts)
    return sp.hstack([sp.csr_matrix(table.embeddings), pieces], format="csr")
