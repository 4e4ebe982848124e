"""Benchmark the SDGM against supervised and semi-supervised baselines, as in the paper.

The protocol of Zhu et al. (EACL 2021) on MLDoc, applied to the bundled LibreOffice help
corpus (or to MLDoc files with ``--mldoc``): per language, per labelled size ``n`` and per
seed, ``n`` documents of the train split are drawn (stratified) and labelled, the rest of
the train split is unlabelled (``-1``), and every method is scored on the test split. All
methods see the same draws. Cross-lingual runs take the labels from one language's train
split, the unlabelled documents from another's, and test on the other's test split.

Documents are embedded once per language; the SDGM is then given a lookup encoder that
returns those embeddings and token counts, exactly what ``MultilingualEncoder`` returns
for the same text, so that no method re-encodes anything. The SDGM runs with its default
parameters: the benchmark measures the product, it does not tune it.

Run it with::

    python -m skdgm.benchmark --config demo
    skdgm-benchmark --config full --output benchmark_results/
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import math
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

__all__ = [
    "CONFIGS",
    "METHODS",
    "BenchmarkResults",
    "Method",
    "MethodContext",
    "draw_labelled",
    "format_table",
    "format_timings",
    "main",
    "plot_results",
    "run_benchmark",
    "write_results",
]

DEFAULT_ENCODER = "intfloat/multilingual-e5-small"
DEFAULT_LANGUAGES = ("en", "de", "fr", "ru", "zh")

#: The methods of the configurations timed as a whole (demo, cross-lingual): not yet
#: the GRU decoder nor the two-stage M1+M2, which ``full`` runs.
_TIMED_METHODS = (
    "SDGM", "SDGM-e2e", "LogisticRegression", "SelfTraining", "LabelSpreading",
    "TF-IDF+LR", "Emb+pieces+LR", "Transformer", "Transformer+ST", "SetFit",
)  # fmt: skip

#: Named settings of :func:`run_benchmark`. ``cross_lingual`` lists (source, target)
#: pairs (empty: none); ``cross_lingual_sizes`` None means the same as ``sizes``.
#: ``sdgm_params`` overrides SDGM defaults and belongs only to the smoke test;
#: ``method_limits`` runs slow methods on fewer draws (see :func:`run_benchmark`);
#: ``methods`` names the methods to run (absent: all of :data:`METHODS`).
CONFIGS: dict[str, dict] = {
    "smoke": {
        "languages": ("en", "de"),
        "sizes": (8,),
        "seeds": 1,
        "cross_lingual": (("en", "de"),),
        "cross_lingual_sizes": None,
        "sdgm_params": {"max_epochs": 3},
        "method_limits": None,
    },
    "demo": {
        "languages": DEFAULT_LANGUAGES,
        "sizes": (16, 64),
        "seeds": 3,
        "cross_lingual": (),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        # Slow methods on fewer draws, to keep the demo near 30 minutes on 2 CPU cores
        # (fit times measured on 2026-11-26 with 16 labels): the transformer (30-60 s)
        # on the first seed with 16 labels; the end-to-end SDGM (1-2 minutes) on English
        # and German; self-training (8 minutes: it refits on a growing set) and SetFit
        # (3 minutes here, its pairs growing with the labels) on English only.
        "methods": _TIMED_METHODS,
        "method_limits": {
            "SDGM-e2e": {"seeds": 1, "sizes": (16,), "tasks": ("en", "de")},
            "Transformer": {"seeds": 1, "sizes": (16,)},
            "Transformer+ST": {"seeds": 1, "sizes": (16,), "tasks": ("en",)},
            "SetFit": {"seeds": 1, "sizes": (16,), "tasks": ("en",)},
        },
    },
    "cross-lingual": {
        "languages": (),
        "sizes": (16, 64),
        "seeds": 3,
        "cross_lingual": (("en", "de"), ("en", "fr"), ("de", "fr")),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        "methods": _TIMED_METHODS,
        "method_limits": {
            "SDGM-e2e": {"seeds": 1},
            "Transformer": {"seeds": 1},
            "Transformer+ST": {"seeds": 1, "sizes": (16,)},
            "SetFit": {"seeds": 1, "sizes": (16,)},
        },
    },
    "full": {
        "languages": DEFAULT_LANGUAGES,
        "sizes": (16, 32, 64, 128, "all"),
        "seeds": 5,
        "cross_lingual": (("en", "de"), ("en", "fr"), ("de", "fr")),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        "methods": None,  # all of METHODS
        "method_limits": None,
    },
}


# --------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class MethodContext:
    """What a method factory may use to build its estimator for one run.

    Parameters
    ----------
    seed : int
        The run's seed.
    encoder : transformer
        Lookup encoder returning the precomputed embeddings and token counts of documents.
    device : str
        Device for torch models.
    sdgm_params : dict
        Overrides of the SDGM's parameters (empty in real benchmarks).
    model_name : str
        The encoder's model name or folder, for methods that load it themselves.
    """

    seed: int
    encoder: object
    device: str = "auto"
    sdgm_params: Mapping = field(default_factory=dict)
    model_name: str = DEFAULT_ENCODER


@dataclass(frozen=True)
class Method:
    """A benchmarked method: a factory and the view of the data it is fitted on.

    Parameters
    ----------
    build : callable
        ``build(context: MethodContext) -> estimator`` with ``fit`` and ``predict``.
    features : {"documents", "codes", "embeddings", "tfidf", "embeddings+pieces"}
        What ``X`` holds: the documents (for estimators with an encoder), the documents
        as numbers (:func:`~skdgm.documents_as_array`, for meta-estimators such as
        ``SelfTrainingClassifier`` that take numbers only), their
        precomputed embeddings, TF-IDF features fitted on the train split's text, or the
        embeddings followed by the TF-IDF of the encoder's subword pieces (what the
        SDGM's inference network sees), fitted on the train split.
    semi_supervised : bool
        Fit on labelled and unlabelled rows (``y = -1``); otherwise on labelled rows alone.
    requires : str or None, default=None
        An optional package the method needs; without it the method is skipped.
    """

    build: Callable[[MethodContext], object]
    features: str
    semi_supervised: bool
    requires: str | None = None


def _sdgm(context: MethodContext, settings: Mapping = ()):
    """The SDGM with ``settings`` over its defaults (and the context's overrides over both)."""
    from ._classifier import SemiSupervisedVAEClassifier

    return SemiSupervisedVAEClassifier(
        encoder=context.encoder,
        random_state=context.seed,
        device=context.device,
        **{**dict(settings), **dict(context.sdgm_params)},
    )


def _sdgm_end_to_end(context: MethodContext):
    # The paper's end-to-end model: the encoder's top layers train with the SDGM.
    return _sdgm(context, END_TO_END)


def _sdgm_gru(context: MethodContext):
    # The GRU decoder over the documents' first pieces instead of the bag of pieces.
    return _sdgm(context, {"decoder": "gru"})


def _sdgm_two_stage(context: MethodContext):
    # Kingma's two-stage M1+M2, the paper's baseline: M1 first, then M2 on frozen z1.
    return _sdgm(context, {"training": "two_stage"})


def _transformer(context: MethodContext):
    from ._transformer_classifier import TransformerClassifier

    # As many tuned layers as the end-to-end SDGM: the same depth of fine-tuning on both
    # sides, and the frozen layers' output computed once for both.
    return TransformerClassifier(
        context.encoder,
        fine_tune_layers=END_TO_END["fine_tune_layers"],
        random_state=context.seed,
        device=context.device,
    )


def _transformer_self_training(context: MethodContext):
    # The paper's BERT+ST: pseudo-labels of the confident unlabelled documents, refitted.
    return SelfTrainingClassifier(_transformer(context), threshold=0.9, max_iter=3)


def _setfit(context: MethodContext):
    from ._setfit import SetFitClassifier

    return SetFitClassifier(context.model_name, random_state=context.seed, device=context.device)


def _logistic_regression(context: MethodContext | None = None):
    return LogisticRegression(C=10, max_iter=2000)


#: What the end-to-end SDGM of the benchmark changes from the defaults: the top layer
#: of the encoder trains with the SDGM for 3 epochs (the setting of docs/tuning.rst,
#: round 5; 2 layers for 5 epochs cost about 3x as much on a CPU).
END_TO_END = {"fine_tune_layers": 1, "fine_tune_epochs": 3}

#: The methods by name. Add one with ``METHODS["name"] = Method(build, features, semi)``.
METHODS: dict[str, Method] = {
    "SDGM": Method(_sdgm, "documents", semi_supervised=True),
    "SDGM-e2e": Method(_sdgm_end_to_end, "documents", semi_supervised=True),
    "SDGM (GRU)": Method(_sdgm_gru, "documents", semi_supervised=True),
    "M1+M2 two-stage": Method(_sdgm_two_stage, "documents", semi_supervised=True),
    "LogisticRegression": Method(_logistic_regression, "embeddings", semi_supervised=False),
    "SelfTraining": Method(
        lambda context: SelfTrainingClassifier(_logistic_regression(), threshold=0.9),
        "embeddings",
        semi_supervised=True,
    ),
    "LabelSpreading": Method(
        lambda context: LabelSpreading(kernel="knn", n_neighbors=10),
        "embeddings",
        semi_supervised=True,
    ),
    "TF-IDF+LR": Method(_logistic_regression, "tfidf", semi_supervised=False),
    "Emb+pieces+LR": Method(_logistic_regression, "embeddings+pieces", semi_supervised=False),
    "Transformer": Method(_transformer, "documents", semi_supervised=False),
    "Transformer+ST": Method(_transformer_self_training, "codes", semi_supervised=True),
    "SetFit": Method(_setfit, "documents", semi_supervised=False, requires="setfit"),
}


_FEATURES = ("documents", "codes", "embeddings", "tfidf", "embeddings+pieces")


class _DocumentTable:
    """Precomputed embeddings and token counts of documents, looked up by exact text.

    With the fitted encoder and the texts, it also stores the output of the encoder's
    frozen lower layers for every document, once per number of tuned top layers, so that
    fine-tuning methods run the lower layers once per benchmark, not once per fit.
    """

    def __init__(self, row_of, embeddings, counts, encoder=None, texts=None, timings=None):
        self.row_of = row_of
        self.embeddings = embeddings
        self.counts = counts
        self.encoder = encoder
        self.texts = texts
        self.timings = timings if timings is not None else {}
        self._states: dict[int, object] = {}

    def states(self, n_top: int):
        """Token states below the top ``n_top`` layers of every document (computed once)."""
        if n_top not in self._states:
            if self.encoder is None:
                raise ValueError("This document table has no encoder to run the layers of.")
            start = time.perf_counter()
            self._states[n_top] = self.encoder._token_states(self.texts, n_top)
            self.timings[f"frozen layers below top {n_top}"] = time.perf_counter() - start
        return self._states[n_top]

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
        from .encoders._tuning import DocumentEmbedder

        return DocumentEmbedder(top, self.table.states(top.n_top)).embeddings(rows)

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
    def _token_states(self, X, n_top):
        return self.table.states(n_top).subset(self.table.rows(X))

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


# ------------------------------------------------------------------------------ draws
def draw_labelled(y_train, n, *, seed: int, language: str) -> np.ndarray:
    """Draw the labelled documents of one run from a train split, stratified.

    ``n // n_classes`` documents of each class (capped at what the class has) are drawn
    without replacement, with a generator seeded from ``(seed, language, n)``: the same
    arguments give the same draw in every process and for every method.

    Parameters
    ----------
    y_train : array-like of shape (n_train,)
        Class labels of the train split (and of nothing else).
    n : int or "all"
        Number of labelled documents; ``"all"`` labels the whole train split.
    seed : int
        The run's seed.
    language : str
        The language the labels come from (a code such as ``"en"``).

    Returns
    -------
    positions : ndarray of int
        Sorted positions in ``y_train`` of the labelled documents.
    """
    y_train = np.asarray(y_train)
    if n == "all":
        return np.arange(len(y_train))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int or 'all'; got {n!r}.")
    classes = np.unique(y_train)
    per_class = int(n) // len(classes)
    if per_class < 1:
        raise ValueError(
            f"n={n} is fewer than the {len(classes)} classes: a stratified draw needs at "
            "least one document per class."
        )
    rng = np.random.default_rng([int(seed), zlib.crc32(language.encode("utf-8")), int(n)])
    chosen = []
    for label in classes:
        members = np.flatnonzero(y_train == label)
        chosen.append(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


# ------------------------------------------------------------------------------- data
@dataclass
class _Language:
    train_rows: np.ndarray
    y_train: np.ndarray
    test_rows: np.ndarray
    y_test: np.ndarray
    train_ids: np.ndarray | None
    test_ids: np.ndarray | None
    target_names: np.ndarray


def _load_language(language: str, mldoc: str | None):
    """Return (train texts, y, doc ids, test texts, y, doc ids, target names)."""
    if mldoc is not None:
        from .datasets import load_mldoc

        train = load_mldoc(mldoc, language, "train")
        test = load_mldoc(mldoc, language, "test")
        return (train.data, train.target, None, test.data, test.target, None, train.target_names)
    from .datasets import load_libreoffice_help

    train = load_libreoffice_help(languages=language, split="train")
    test = load_libreoffice_help(languages=language, split="test")
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
        from .datasets._mldoc import MLDOC_LANGUAGES as known
    else:
        from .datasets._libreoffice import LANGUAGES as known
    unknown = [language for language in languages if language not in known]
    if unknown:
        corpus = "MLDoc" if mldoc is not None else "the LibreOffice help corpus"
        raise ValueError(f"Unknown language(s) {unknown} for {corpus}; use some of {list(known)}.")


def _encode_languages(languages, *, encoder, mldoc, device, cache_dir, verbose):
    """Load every language and embed its documents once.

    Returns the per-language data, the document table, the texts (by table row) and the
    timings.
    """
    from .encoders import MultilingualEncoder

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
        encoder, device=device, cache_dir=cache_dir, verbose=int(verbose > 1)
    )
    model.fit(["benchmark"])
    timings = {"load model": time.perf_counter() - start}
    data, embeddings, counts = {}, [], []
    for language in languages:
        train_x, y_train, train_ids, test_x, y_test, test_ids, names = _load_language(
            language, mldoc
        )
        if train_ids is not None and np.intersect1d(train_ids, test_ids).size:
            raise ValueError(f"{language}: a page is in both the train and the test split.")
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


def _run_one(method: Method, task: _Task, context: MethodContext, views) -> dict:
    labelled = task.y_train != -1
    rows = task.train_rows if method.semi_supervised else task.train_rows[labelled]
    y = task.y_train if method.semi_supervised else task.y_train[labelled]
    view = views(method.features, task)
    estimator = method.build(context)
    with warnings.catch_warnings():
        # n="all" leaves no unlabelled rows; LabelSpreading may stop before converging.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*(no unlabel|No unlabelled).*")
        start = time.perf_counter()
        estimator.fit(view(rows), y)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        predicted = estimator.predict(view(task.test_rows))
        predict_seconds = time.perf_counter() - start
    labels = np.unique(np.concatenate([task.y_test, task.y_train[labelled]]))
    return {
        "accuracy": float(accuracy_score(task.y_test, predicted)),
        "macro_f1": float(
            f1_score(task.y_test, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
    }


class BenchmarkResults(list):
    """The benchmark's runs: a list of dicts, one per (task, size, seed, method).

    Parameters
    ----------
    runs : iterable of dict, default=()
        The runs.
    timings : dict or None, default=None
        Seconds spent loading the encoder and encoding each language.
    settings : dict or None, default=None
        The settings the benchmark ran with.

    Attributes
    ----------
    timings : dict
        Seconds spent loading the encoder and encoding each language.
    settings : dict
        The settings the benchmark ran with.
    """

    def __init__(self, runs=(), *, timings=None, settings=None):
        super().__init__(runs)
        self.timings = dict(timings or {})
        self.settings = dict(settings or {})


def _resolve_seeds(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive number of seeds; got {seeds}.")
        return list(range(int(seeds)))
    return [int(seed) for seed in seeds]


def _resolve_methods(methods) -> dict[str, Method]:
    if methods is None:
        return dict(METHODS)
    if isinstance(methods, Mapping):
        return dict(methods)
    if isinstance(methods, str):
        methods = [methods]
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; use some of {list(METHODS)}.")
    return {name: METHODS[name] for name in methods}


def _check_sizes(sizes) -> list:
    sizes = list(sizes)
    for n in sizes:
        ok = n == "all" or (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0)
        if not ok:
            raise ValueError(f"sizes must hold positive ints or 'all'; got {n!r}.")
    return sizes


def _limits(method_limits, seed_list):
    """Check ``method_limits``; return ``allowed(name, source, target, n, seed) -> bool``."""
    checked = {}
    for name, limits in dict(method_limits or {}).items():
        unknown = set(limits) - {"seeds", "sizes", "tasks"}
        if unknown:
            raise ValueError(
                f"method_limits[{name!r}] has unknown keys {sorted(unknown)}; use 'seeds', "
                "'sizes' or 'tasks'."
            )
        count = limits.get("seeds", len(seed_list))
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(
                f"method_limits[{name!r}]['seeds'] must be a positive int; got {count!r}."
            )
        checked[name] = (
            set(seed_list[:count]),
            None if "sizes" not in limits else set(limits["sizes"]),
            None if "tasks" not in limits else set(limits["tasks"]),
        )

    def allowed(name, source, target, n, seed) -> bool:
        if name not in checked:
            return True
        seeds, sizes, labels = checked[name]
        label = target if source == target else f"{source}-{target}"
        return (
            seed in seeds
            and (sizes is None or n in sizes)
            and (labels is None or label in labels)
        )

    return allowed


def run_benchmark(
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    sizes: Sequence[int | str] = (16, 64),
    seeds: int | Iterable[int] = 3,
    methods: Sequence[str] | Mapping[str, Method] | None = None,
    *,
    cross_lingual: Iterable[tuple[str, str]] = (),
    cross_lingual_sizes: Sequence[int | str] | None = None,
    encoder: str = DEFAULT_ENCODER,
    mldoc: str | None = None,
    device: str = "auto",
    cache_dir: str | None = None,
    sdgm_params: Mapping | None = None,
    method_limits: Mapping[str, Mapping] | None = None,
    on_run: Callable[[dict], None] | None = None,
    verbose: int = 1,
) -> BenchmarkResults:
    """Run every method on the same draws of labelled documents and score it.

    Parameters
    ----------
    languages : sequence of str, default=("en", "de", "fr", "ru", "zh")
        Languages of the monolingual runs.
    sizes : sequence of int or "all", default=(16, 64)
        Numbers of labelled documents drawn from the train split; ``"all"`` labels it all.
    seeds : int or iterable of int, default=3
        A number of seeds (0, 1, ...) or the seeds themselves.
    methods : sequence of str, mapping of str to Method, or None, default=None
        Names from :data:`METHODS`, or methods of one's own; None runs all of ``METHODS``.
    cross_lingual : iterable of (str, str), default=()
        (source, target) pairs: labels from the source's train split, unlabelled
        documents from the target's train split, scores on the target's test split.
    cross_lingual_sizes : sequence of int or "all" or None, default=None
        Labelled sizes of the cross-lingual runs; None uses ``sizes``.
    encoder : str, default="intfloat/multilingual-e5-small"
        Hugging Face model name or folder of the :class:`~skdgm.encoders.MultilingualEncoder`.
    mldoc : str or None, default=None
        Folder of MLDoc files (see :func:`~skdgm.datasets.load_mldoc`): use them instead of
        the bundled LibreOffice help corpus (train = ``train.1000``, test = ``test``).
    device : str, default="auto"
        Device of the encoder and of the SDGM.
    cache_dir : str or None, default=None
        Folder of the encoder's on-disk embedding cache, so that later runs skip encoding.
    sdgm_params : mapping or None, default=None
        Overrides of the SDGM's parameters, for tests and smoke runs only: a benchmark
        measures the defaults.
    method_limits : mapping of str to dict or None, default=None
        Slow methods on fewer draws: ``{"SetFit": {"seeds": 1, "sizes": [16]}}`` fits
        SetFit on the draws of the first seed at 16 labels only, every other method on
        all of them. Keys: ``"seeds"`` (how many of the first seeds), ``"sizes"`` and
        ``"tasks"`` (languages, or ``"source-target"`` for cross-lingual pairs). The
        tables say which methods ran on fewer seeds.
    on_run : callable or None, default=None
        Called with each run's dict as soon as it is scored, e.g. to keep the runs of a
        long benchmark on disk as they come.
    verbose : int, default=1
        Show progress bars when > 0 (and the encoder's own when > 1).

    Returns
    -------
    results : BenchmarkResults
        A list of dicts, one per run, with keys ``setting`` ("monolingual" or
        "cross-lingual"), ``language`` (of the test documents), ``source``, ``target``,
        ``n`` (as asked), ``n_labelled``, ``n_unlabelled``, ``n_test``, ``seed``,
        ``draw`` (a fingerprint of the labelled documents, the same for every method),
        ``method``, ``accuracy``, ``macro_f1``, ``fit_seconds`` and ``predict_seconds``;
        its ``timings`` attribute holds the encoding times.
    """
    languages = list(dict.fromkeys(languages))
    pairs = [tuple(pair) for pair in cross_lingual]
    for pair in pairs:
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ValueError(
                f"Cross-lingual pairs are (source, target) of two languages; got {pair}."
            )
    sizes = _check_sizes(sizes)
    cl_sizes = sizes if cross_lingual_sizes is None else _check_sizes(cross_lingual_sizes)
    seed_list = _resolve_seeds(seeds)
    chosen = _resolve_methods(methods)
    if not chosen or not (languages or pairs) or not seed_list:
        raise ValueError("Nothing to run: give at least one language, method and seed.")
    for name, method in list(chosen.items()):
        if method.requires and importlib.util.find_spec(method.requires) is None:
            print(
                f"Skipping {name}: it needs the optional package {method.requires!r} "
                f"(pip install 'skdgm[{method.requires}]').",
                file=sys.stderr,
            )
            del chosen[name]
    bad_features = [name for name, m in chosen.items() if m.features not in _FEATURES]
    if bad_features:
        raise ValueError(f"Method(s) {bad_features} ask for features outside {_FEATURES}.")
    allowed = _limits(method_limits, seed_list)
    needed = list(dict.fromkeys([*languages, *(lg for pair in pairs for lg in pair)]))
    _check_languages(needed, mldoc)

    data, table, texts, timings = _encode_languages(
        needed, encoder=encoder, mldoc=mldoc, device=device, cache_dir=cache_dir, verbose=verbose
    )
    tasks = [
        (language, language, n, seed)
        for language in languages
        for n in sizes
        for seed in seed_list
    ]
    tasks += [(s, t, n, seed) for s, t in pairs for n in cl_sizes for seed in seed_list]
    encoder_view = _PrecomputedEncoder(table)
    tfidf_cache: dict[tuple[str, ...], tuple] = {}

    def views(features: str, task: _Task):
        if features == "documents":
            return lambda rows: [texts[row] for row in rows]
        if features == "codes":
            from ._documents import documents_as_array

            return lambda rows: documents_as_array([texts[row] for row in rows])
        if features == "embeddings":
            return lambda rows: table.embeddings[rows]
        key = tuple(dict.fromkeys([task.source, task.target]))
        if features == "embeddings+pieces":
            if ("pieces", key) not in tfidf_cache:
                tfidf_cache[("pieces", key)] = _embeddings_and_pieces(key, data, table)
            return lambda rows, matrix=tfidf_cache[("pieces", key)]: matrix[rows]
        if key not in tfidf_cache:
            start = time.perf_counter()
            tfidf_cache[key] = _tfidf(key, data, texts)
            timings[f"TF-IDF {'-'.join(key)}"] = time.perf_counter() - start
        matrix, position = tfidf_cache[key]
        return lambda rows: matrix[position[rows]]

    from tqdm.auto import tqdm

    runs = []
    total = sum(allowed(name, *task) for task in tasks for name in chosen)
    progress = tqdm(total=total, unit="run", disable=verbose <= 0)
    with progress:
        for source, target, n, seed in tasks:
            task = _make_task(source, target, n, seed, data)
            context = MethodContext(
                seed, encoder_view, device, dict(sdgm_params or {}), str(encoder)
            )
            for name, method in chosen.items():
                if not allowed(name, source, target, n, seed):
                    continue
                label = target if source == target else f"{source}-{target}"
                progress.set_postfix_str(f"{label} n={n} seed={seed} {name}")
                scores = _run_one(method, task, context, views)
                n_labelled = int((task.y_train != -1).sum())
                runs.append(
                    {
                        "setting": "monolingual" if source == target else "cross-lingual",
                        "language": target,
                        "source": source,
                        "target": target,
                        "n": n,
                        "n_labelled": n_labelled,
                        "n_unlabelled": len(task.y_train) - n_labelled,
                        "n_test": len(task.y_test),
                        "seed": seed,
                        "draw": task.draw,
                        "method": name,
                        **scores,
                    }
                )
                if on_run is not None:
                    on_run(runs[-1])
                progress.update()
    settings = {
        "languages": languages,
        "sizes": sizes,
        "seeds": seed_list,
        "methods": list(chosen),
        "cross_lingual": [list(pair) for pair in pairs],
        "cross_lingual_sizes": cl_sizes,
        "encoder": str(encoder),
        "data": f"MLDoc at {mldoc}" if mldoc is not None else "LibreOffice help (bundled)",
        "device": device,
        "sdgm_params": dict(sdgm_params or {}),
        "method_limits": {
            name: {key: list(v) if key != "seeds" else v for key, v in limits.items()}
            for name, limits in (method_limits or {}).items()
            if name in chosen
        },
    }
    return BenchmarkResults(runs, timings=timings, settings=settings)


# ---------------------------------------------------------------------------- reports
def _task_label(run: Mapping) -> str:
    if run.get("setting") == "cross-lingual":
        return f"{run['source']}-{run['target']}"
    return str(run["language"])


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def _size_order(n) -> tuple:
    return (1, 0) if n == "all" else (0, int(n))


def _summary(results, metric):
    """{(label, n): {method: [score per seed]}}, plus the per-n language averages."""
    cells: dict[tuple[str, object], dict[str, dict[int, float]]] = {}
    for run in results:
        key = (_task_label(run), run["n"])
        cells.setdefault(key, {}).setdefault(run["method"], {})[run["seed"]] = run[metric]
    averages: dict[object, dict[str, list[float]]] = {}
    mono = [run for run in results if run.get("setting", "monolingual") == "monolingual"]
    languages = _ordered(run["language"] for run in mono)
    if len(languages) > 1:
        for n in _ordered(run["n"] for run in mono):
            for method in _ordered(run["method"] for run in mono):
                per_seed = {}
                for seed in _ordered(run["seed"] for run in mono):
                    scores = [cells.get((lg, n), {}).get(method, {}).get(seed) for lg in languages]
                    if all(score is not None for score in scores):
                        per_seed[seed] = float(np.mean(scores))
                if per_seed:
                    averages.setdefault(n, {})[method] = list(per_seed.values())
    return cells, averages


def format_table(results: Sequence[Mapping], metric: str = "accuracy") -> str:
    """Format mean ± standard deviation over seeds, a row per (language, n).

    Parameters
    ----------
    results : sequence of dict
        Runs, as returned by :func:`run_benchmark` (or read back from ``results.json``).
    metric : {"accuracy", "macro_f1"}, default="accuracy"
        The score to show.

    Returns
    -------
    table : str
        One column per method; ``*`` marks the best mean of each row. Cross-lingual rows
        are labelled ``source-target``. With several languages, an "average" block gives,
        per ``n``, the mean over seeds of the average over languages. Standard deviations
        are over seeds (``ddof=1``).
    """
    if metric not in ("accuracy", "macro_f1"):
        raise ValueError(f"metric must be 'accuracy' or 'macro_f1'; got {metric!r}.")
    if not results:
        return "(no results)"
    cells, averages = _summary(results, metric)
    methods = _ordered(run["method"] for run in results)
    seeds = _ordered(run["seed"] for run in results)

    def row(label, n, scores_by_method):
        stats = {m: _mean_std(s) for m, s in scores_by_method.items() if len(s)}
        best = max(mean for mean, _ in stats.values()) if stats else None
        texts = []
        for method in methods:
            if method not in stats:
                texts.append("-")
                continue
            mean, std = stats[method]
            mark = "*" if math.isclose(mean, best, abs_tol=5e-4) else " "
            texts.append(f"{mean:.3f} ± {std:.3f}{mark}")
        return [label, str(n), *texts]

    cross = {_task_label(run) for run in results if run.get("setting") == "cross-lingual"}
    blocks = [[], [], []]  # monolingual, average over languages, cross-lingual
    for (label, n), by_method in cells.items():
        scores = {m: list(s.values()) for m, s in by_method.items()}
        blocks[2 if label in cross else 0].append(row(label, n, scores))
    for n in sorted(averages, key=_size_order):
        blocks[1].append(row("average", n, averages[n]))
    rows = []
    for block in blocks:
        if block:
            rows += [None, *block] if rows else block
    header = ["language", "n", *methods]
    widths = [
        max(len(header[i]), *(len(r[i]) for r in rows if r is not None))
        for i in range(len(header))
    ]

    def line(values):
        first = [values[0].ljust(widths[0]), values[1].rjust(widths[1])]
        return "  ".join(first + [v.rjust(w) for v, w in zip(values[2:], widths[2:])])

    title = {"accuracy": "Accuracy", "macro_f1": "Macro-F1"}[metric]
    out = [
        f"{title}: mean ± std over {len(seeds)} seed(s); * = best in the row",
        line(header),
        "  ".join("-" * w for w in widths),
    ]
    for r in rows:
        out.append("  ".join("-" * w for w in widths) if r is None else line(r))
    seeds_by_method = {
        method: len(_ordered(run["seed"] for run in results if run["method"] == method))
        for method in methods
    }
    fewer = [f"{m} ({k})" for m, k in seeds_by_method.items() if k < len(seeds)]
    if fewer:
        out.append(
            "Run on fewer seeds, so over fewer draws (not paired with the others on the "
            "rest): " + ", ".join(fewer)
        )
    return "\n".join(out)


def format_timings(results: BenchmarkResults | Sequence[Mapping]) -> str:
    """Format the encoding times and each method's total time.

    Parameters
    ----------
    results : BenchmarkResults or sequence of dict
        Runs from :func:`run_benchmark`; encoding times come from its ``timings``.

    Returns
    -------
    report : str
        One line per step; each method's line ends with its median fit time per run as a
        ratio to the SDGM's (on the frozen encoder), when the SDGM ran.
    """
    lines = ["Timings (seconds)"]
    timings = getattr(results, "timings", {})
    for step, seconds in timings.items():
        lines.append(f"  {step:<28} {seconds:9.1f}")
    if timings:
        lines.append(f"  {'preparation, total':<28} {sum(timings.values()):9.1f}")
    reference = [run["fit_seconds"] for run in results if run["method"] == "SDGM"]
    reference_fit = float(np.median(reference)) if reference else None
    for method in _ordered(run["method"] for run in results):
        runs = [run for run in results if run["method"] == method]
        fit = sum(run["fit_seconds"] for run in runs)
        predict = sum(run.get("predict_seconds", 0.0) for run in runs)
        ratio = ""
        if reference_fit:
            median = float(np.median([run["fit_seconds"] for run in runs]))
            ratio = f"; fit time x{median / reference_fit:.2f} the SDGM's"
        lines.append(
            f"  {method:<28} {fit + predict:9.1f}  ({len(runs)} runs, fit {fit:.1f}, "
            f"predict {predict:.1f}{ratio})"
        )
    return "\n".join(lines)


def plot_results(results: Sequence[Mapping], path: str | Path, metric: str = "accuracy") -> Path:
    """Plot the score against the number of labelled documents, one panel per language.

    Parameters
    ----------
    results : sequence of dict
        Runs, as returned by :func:`run_benchmark`.
    path : str or Path
        The image file to write (e.g. ``accuracy.png``).
    metric : {"accuracy", "macro_f1"}, default="accuracy"
        The score to plot.

    Returns
    -------
    path : Path
        The file written.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plot_results needs matplotlib: pip install 'skdgm[plot]'.") from exc
    cells, _ = _summary(results, metric)
    labels = _ordered(label for label, _ in cells)
    methods = _ordered(run["method"] for run in results)
    n_labelled = {}
    for run in results:
        n_labelled.setdefault((_task_label(run), run["n"]), []).append(run["n_labelled"])
    columns = min(len(labels), 4)
    rows = math.ceil(len(labels) / columns)
    figure = Figure(figsize=(4 * columns, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, label in zip(axes, labels):
        sizes = sorted((n for lab, n in cells if lab == label), key=_size_order)
        x = [float(np.mean(n_labelled[(label, n)])) for n in sizes]
        for method in methods:
            stats = [
                _mean_std(list(cells[(label, n)][method].values()))
                if method in cells[(label, n)]
                else (np.nan, np.nan)
                for n in sizes
            ]
            mean = np.array([s[0] for s in stats])
            std = np.array([s[1] for s in stats])
            (line,) = axis.plot(x, mean, marker="o", label=method)
            axis.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        axis.set_xscale("log", base=2)
        axis.set_xticks(x, [f"{v:.0f}" for v in x])
        axis.minorticks_off()
        axis.set_title(label)
        axis.set_xlabel("labelled documents")
        axis.set_ylabel(metric.replace("_", "-"))
        axis.grid(alpha=0.3)
    for axis in axes[len(labels) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


_CSV_FIELDS = (
    "setting",
    "language",
    "source",
    "target",
    "n",
    "n_labelled",
    "n_unlabelled",
    "n_test",
    "seed",
    "draw",
    "method",
    "accuracy",
    "macro_f1",
    "fit_seconds",
    "predict_seconds",
)


def write_results(
    results: BenchmarkResults | Sequence[Mapping], folder: str | Path, *, plot: bool = True
) -> list[Path]:
    """Write ``results.csv``, ``results.json`` and (with matplotlib) ``accuracy.png``.

    Parameters
    ----------
    results : BenchmarkResults or sequence of dict
        Runs from :func:`run_benchmark`.
    folder : str or Path
        Where to write; created if needed.
    plot : bool, default=True
        Also draw ``accuracy.png``; skipped with a message when matplotlib is missing.

    Returns
    -------
    paths : list of Path
        The files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "results.csv"
    fields = list(_CSV_FIELDS) + sorted({k for run in results for k in run} - set(_CSV_FIELDS))
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(results)
    json_path = folder / "results.json"
    payload = {
        "settings": getattr(results, "settings", {}),
        "timings": getattr(results, "timings", {}),
        "runs": list(results),
    }
    json_path.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
    paths = [csv_path, json_path]
    if plot:
        try:
            paths.append(plot_results(results, folder / "accuracy.png"))
        except ImportError as exc:
            print(f"Skipping the plot: {exc}", file=sys.stderr)
    return paths


# -------------------------------------------------------------------------------- CLI
def _parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_sizes(text: str) -> list:
    sizes = []
    for item in _parse_list(text):
        if item == "all":
            sizes.append("all")
        elif item.isdigit() and int(item) > 0:
            sizes.append(int(item))
        else:
            raise argparse.ArgumentTypeError(
                f"sizes are positive integers or 'all', comma-separated; got {item!r}."
            )
    return sizes


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    if text.strip().lower() == "none":
        return []
    pairs = []
    for item in _parse_list(text):
        source, dash, target = item.partition("-")
        if not dash or not source or not target:
            raise argparse.ArgumentTypeError(
                f"cross-lingual pairs are written source-target, e.g. en-de; got {item!r}."
            )
        pairs.append((source, target))
    return pairs


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}.")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m skdgm.benchmark",
        description="Compare the SDGM with supervised and semi-supervised baselines on the "
        "same draws of labelled documents (the protocol of Zhu et al., EACL 2021).",
    )
    parser.add_argument(
        "--config",
        choices=list(CONFIGS),
        default="demo",
        help="named settings (default: demo); the options below override them",
    )
    parser.add_argument("--languages", type=_parse_list, help="comma-separated, e.g. en,de")
    parser.add_argument("--sizes", type=_parse_sizes, help="labelled sizes, e.g. 16,64,all")
    parser.add_argument("--seeds", type=_positive_int, help="number of seeds (0, 1, ...)")
    parser.add_argument(
        "--methods", type=_parse_list, help=f"comma-separated among {', '.join(METHODS)}"
    )
    parser.add_argument(
        "--cross-lingual",
        type=_parse_pairs,
        help="source-target pairs, e.g. en-de,en-fr; 'none' turns them off",
    )
    parser.add_argument(
        "--encoder",
        default=DEFAULT_ENCODER,
        help=f"model name or folder (default {DEFAULT_ENCODER})",
    )
    parser.add_argument("--mldoc", metavar="PATH", help="folder of MLDoc files to use instead")
    parser.add_argument("--output", default="benchmark_results", help="folder of the results")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="on-disk embedding cache: later runs skip encoding"
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        help="torch CPU threads (default: torch's); 1 helps on a busy machine",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not draw accuracy.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line.

    Parameters
    ----------
    argv : sequence of str or None, default=None
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success. Invalid arguments exit with status 2 and a message.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    config = dict(CONFIGS[args.config])
    if args.sizes is not None:  # the sizes of this run, cross-lingual ones included
        config["sizes"], config["cross_lingual_sizes"] = args.sizes, None
    for option in ("languages", "seeds", "cross_lingual"):
        if getattr(args, option) is not None:
            config[option] = getattr(args, option)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)  # the command owns its process
    threads = torch.get_num_threads()
    try:
        results = run_benchmark(
            config["languages"],
            config["sizes"],
            config["seeds"],
            args.methods if args.methods is not None else config.get("methods"),
            cross_lingual=config["cross_lingual"],
            cross_lingual_sizes=config["cross_lingual_sizes"],
            encoder=args.encoder,
            mldoc=args.mldoc,
            device=args.device,
            cache_dir=args.cache_dir,
            sdgm_params=config["sdgm_params"],
            method_limits=config.get("method_limits"),
            verbose=0 if args.quiet else 1,
        )
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    results.settings["config"] = args.config
    results.settings["threads"] = threads
    print()
    print(format_table(results, "accuracy"))
    print()
    print(format_table(results, "macro_f1"))
    print()
    print(format_timings(results))
    paths = write_results(results, args.output, plot=not args.no_plot)
    print("\nWrote " + ", ".join(str(path) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
