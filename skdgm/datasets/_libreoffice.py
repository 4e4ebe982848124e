"""Loader for the bundled LibreOffice help corpus."""

from __future__ import annotations

import json
import lzma
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

_DATA_FILE = "libreoffice_help.jsonl.xz"
LANGUAGES = ("en", "de", "fr", "ru", "zh")
MLDOC_CLASSES = ("sbasic", "scalc", "simpress", "swriter")
ALL_CLASSES = (
    "sbasic",
    "scalc",
    "schart",
    "sdatabase",
    "sdraw",
    "simpress",
    "smath",
    "swriter",
)
SPLITS = ("train", "dev", "test")

_DESCR = """\
LibreOffice help corpus
-----------------------

The LibreOffice 7.4 offline help pages in five languages (Debian bookworm packages
libreoffice-help-en-us, -de, -fr, -ru, -zh-cn): a small, real, multilingual
document-classification corpus whose pages are translations of one another.

Each document is the body of one help page (title, paragraphs, tables; navigation, menu
paths, "related topics" and code blocks removed; untranslated paragraphs dropped). The
target is the application module the page documents: scalc, swriter, sbasic, simpress
(the 4 classes most like MLDoc's, the default) or also smath, schart, sdraw, sdatabase.

- lang: en, de, fr, ru, zh.
- doc_id: the page's id, the same for its translations in every language.
- split: train (50 %), dev (10 %), test (40 %), by a hash of doc_id, so a page and its
  translations always fall in the same split. Never let a page's translation cross from
  train to test: use split, or group by doc_id.

Documents, 4 classes: en 1288, de 1271, fr 1300, ru 834, zh 852.
Documents, 8 classes: en 1537, de 1514, fr 1550, ru 980, zh 997.

Licence: the LibreOffice help is Copyright (c) The Document Foundation and contributors,
under the Mozilla Public License 2.0 (https://mozilla.org/MPL/2.0/). The full licence
text and how the corpus was built are shipped next to the data in
skdgm/datasets/data/ (LICENSE-MPL-2.0.txt, README.md).
"""


@lru_cache(maxsize=1)
def _read_corpus() -> dict[str, tuple[str, ...] | np.ndarray]:
    """Parse the bundled file once; columns are read-only so the cache stays intact."""
    path = resources.files(__package__).joinpath("data").joinpath(_DATA_FILE)
    with path.open("rb") as raw, lzma.open(raw, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    columns: dict[str, tuple[str, ...] | np.ndarray] = {"text": tuple(row["text"] for row in rows)}
    for field in ("label", "lang", "doc_id", "split"):
        column = np.asarray([row[field] for row in rows], dtype=str)
        column.flags.writeable = False
        columns[field] = column
    return columns


def _check_choices(
    name: str, value: str | Iterable[str] | None, allowed: tuple[str, ...]
) -> tuple[str, ...]:
    """Resolve None, one name or a list of names into a tuple of allowed names."""
    if value is None:
        return allowed
    values = [value] if isinstance(value, str) else value
    try:
        values = list(values)
    except TypeError:
        values = [value]
    bad = [v for v in values if not isinstance(v, str) or v not in allowed]
    if bad or not values:
        raise ValueError(
            f"{name} must be None, one of {list(allowed)} or a non-empty list of them; "
            f"got {value!r}."
        )
    return tuple(dict.fromkeys(values))


def _resolve_classes(classes: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(classes, str) and classes in ("mldoc", "all"):
        return MLDOC_CLASSES if classes == "mldoc" else ALL_CLASSES
    try:
        return _check_choices("classes", classes, ALL_CLASSES)
    except ValueError:
        raise ValueError(
            f"classes must be 'mldoc' (the 4 classes {list(MLDOC_CLASSES)}), 'all' "
            f"(the 8 classes {list(ALL_CLASSES)}) or a non-empty list of those class "
            f"names; got {classes!r}."
        ) from None


def load_libreoffice_help(
    *,
    languages: str | Iterable[str] | None = None,
    classes: str | Iterable[str] = "mldoc",
    split: str | Iterable[str] | None = None,
    return_X_y: bool = False,
) -> Bunch | tuple[list[str], np.ndarray]:
    """Load the LibreOffice help corpus, a small multilingual classification dataset.

    The LibreOffice 7.4 help pages in English, German, French, Russian and Chinese,
    labelled with the application module each page documents. Pages in one language
    are translations of pages in the others; the ``split`` column keeps a page and all
    its translations in the same split. The corpus ships with skdgm (about 2 MB) under
    the Mozilla Public License 2.0.

    =================  =======================================
    Classes            4 (``"mldoc"``, default) or 8 (``"all"``)
    Documents          5545 (4 classes) or 6578 (8 classes)
    Languages          en, de, fr, ru, zh
    Splits             train 50 %, dev 10 %, test 40 %
    =================  =======================================

    Parameters
    ----------
    languages : str, list of str or None, default=None
        Languages to keep, among ``"en"``, ``"de"``, ``"fr"``, ``"ru"``, ``"zh"``.
        None keeps all five.
    classes : {"mldoc", "all"} or list of str, default="mldoc"
        ``"mldoc"`` keeps the 4 classes most like MLDoc's (``scalc``, ``swriter``,
        ``sbasic``, ``simpress``), ``"all"`` the 8 modules (adding ``smath``,
        ``schart``, ``sdraw``, ``sdatabase``); or a list of those class names.
    split : str, list of str or None, default=None
        Splits to keep, among ``"train"``, ``"dev"``, ``"test"``. None keeps all.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes, one entry per
        document, in the bundled file's order.

        data : list of str
            The page texts.
        target : ndarray of shape (n_documents,)
            Index of each document's class in ``target_names``.
        target_names : ndarray of str
            The selected class names, sorted.
        lang : ndarray of str of shape (n_documents,)
            Language code of each document.
        doc_id : ndarray of str of shape (n_documents,)
            Page id, shared by a page and its translations.
        split : ndarray of str of shape (n_documents,)
            ``"train"``, ``"dev"`` or ``"test"``.
        DESCR : str
            Description of the corpus, its licence and the selection's counts.

    (data, target) : tuple if ``return_X_y`` is True
        The list of texts and the ndarray of class indices.

    Examples
    --------
    >>> from skdgm.datasets import load_libreoffice_help
    >>> corpus = load_libreoffice_help(languages="en")
    >>> len(corpus.data), corpus.target_names.tolist()
    (1288, ['sbasic', 'scalc', 'simpress', 'swriter'])
    >>> X_train, y_train = load_libreoffice_help(
    ...     languages="de", split="train", return_X_y=True
    ... )
    """
    languages = _check_choices("languages", languages, LANGUAGES)
    target_names = tuple(sorted(_resolve_classes(classes)))
    splits = _check_choices("split", split, SPLITS)
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise ValueError(f"return_X_y must be True or False; got {return_X_y!r}.")

    corpus = _read_corpus()
    keep = (
        np.isin(corpus["lang"], languages)
        & np.isin(corpus["label"], target_names)
        & np.isin(corpus["split"], splits)
    )
    indices = np.flatnonzero(keep)
    texts = corpus["text"]
    data = [texts[i] for i in indices]
    target_names_array = np.asarray(target_names, dtype=str)
    target = np.searchsorted(target_names_array, corpus["label"][indices]).astype(np.int64)
    if return_X_y:
        return data, target

    lang = corpus["lang"][indices]
    return Bunch(
        data=data,
        target=target,
        target_names=target_names_array,
        lang=lang,
        doc_id=corpus["doc_id"][indices],
        split=corpus["split"][indices],
        DESCR=_DESCR + _describe_selection(lang, target, target_names),
    )


def _describe_selection(
    lang: np.ndarray, target: np.ndarray, target_names: tuple[str, ...]
) -> str:
    per_lang = Counter(lang.tolist())
    per_class = np.bincount(target, minlength=len(target_names))
    return (
        f"\nThis selection: {len(target)} documents.\n"
        "- per language: "
        + ", ".join(f"{code} {per_lang[code]}" for code in LANGUAGES if code in per_lang)
        + "\n- per class: "
        + ", ".join(f"{name} {count}" for name, count in zip(target_names, per_class))
        + "\n"
    )
