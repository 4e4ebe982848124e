"""Reader for MLDoc files, which cannot be redistributed and so are not bundled."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

MLDOC_LANGUAGES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "ja": "japanese",
    "ru": "russian",
    "zh": "chinese",
}
MLDOC_LABELS = ("CCAT", "ECAT", "GCAT", "MCAT")
MLDOC_SPLITS = ("train", "train.1000", "train.2000", "train.5000", "train.10000", "dev", "test")
_TRAIN_SPLIT = re.compile(r"train\.[1-9][0-9]*")
_WHERE_FROM = (
    "MLDoc is not shipped with skdgm: it is built from the Reuters RCV1/RCV2 corpora, "
    "which must be requested from NIST (https://trec.nist.gov/data/reuters/reuters.html), "
    "with the scripts at https://github.com/facebookresearch/MLDoc."
)

_DESCR = """\
MLDoc
-----

MLDoc (Schwenk and Li, LREC 2018, https://github.com/facebookresearch/MLDoc): Reuters
news stories (RCV1 for English, RCV2 for the other languages) in eight languages,
balanced over four top-level topics: CCAT (corporate/industrial), ECAT (economics),
GCAT (government/social), MCAT (markets). Training sets of 1000, 2000, 5000 or 10000
documents, a dev set of 1000 and a test set of 4000 per language. The Reuters corpora
are licensed by NIST to their users and are not redistributed with skdgm.
"""


def _resolve_language(language: str) -> tuple[str, str]:
    """Return ``(iso_code, mldoc_name)`` for an ISO code or an MLDoc language name."""
    key = language.lower() if isinstance(language, str) else language
    for code, name in MLDOC_LANGUAGES.items():
        if key in (code, name):
            return code, name
    raise ValueError(
        f"Unknown MLDoc language {language!r}; use one of {list(MLDOC_LANGUAGES.values())} "
        f"or their codes {list(MLDOC_LANGUAGES)}."
    )


def _resolve_split(split: str) -> str:
    """Return the file suffix of a split: plain ``"train"`` means ``"train.1000"``."""
    key = split.lower() if isinstance(split, str) else split
    if key == "train":
        return "train.1000"
    if key in ("dev", "test") or (isinstance(key, str) and _TRAIN_SPLIT.fullmatch(key)):
        return key
    raise ValueError(
        f"Unknown MLDoc split {split!r}; use one of {list(MLDOC_SPLITS)} "
        "('train' means 'train.1000')."
    )


def _parse(path: Path) -> tuple[list[str], list[str]]:
    """Read ``LABEL<TAB>text`` lines; text may hold further tabs."""
    lines = path.read_bytes().split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    labels, texts = [], []
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}, line {number}: not valid UTF-8 ({exc}).") from None
        label, tab, text = line.partition("\t")
        if not tab or label not in MLDOC_LABELS or not text.strip():
            raise ValueError(
                f"{path}, line {number}: expected 'LABEL<TAB>text' with LABEL one of "
                f"{list(MLDOC_LABELS)}; the line starts {line[:60]!r}."
            )
        labels.append(label)
        texts.append(text)
    return labels, texts


def load_mldoc(
    path: str | os.PathLike,
    language: str,
    split: str,
    *,
    return_X_y: bool = False,
) -> Bunch | tuple[list[str], np.ndarray]:
    """Load one language and split of MLDoc from its files on disk.

    MLDoc cannot be redistributed: it is built from the Reuters RCV1/RCV2 corpora,
    which NIST licenses to each user, with the scripts at
    https://github.com/facebookresearch/MLDoc. This function reads the files those
    scripts write, ``<path>/<language>.train.1000`` (or ``.train.2000``,
    ``.train.5000``, ``.train.10000``), ``<language>.dev`` and ``<language>.test``,
    one document a line as ``LABEL<TAB>text``.

    Parameters
    ----------
    path : str or path-like
        The folder holding the MLDoc files.
    language : str
        An MLDoc language name (``"english"``, ``"german"``, ``"french"``,
        ``"spanish"``, ``"italian"``, ``"japanese"``, ``"russian"``, ``"chinese"``)
        or its ISO 639-1 code (``"en"``, ``"de"``, ``"fr"``, ``"es"``, ``"it"``,
        ``"ja"``, ``"ru"``, ``"zh"``).
    split : str
        ``"train.1000"``, ``"train.2000"``, ``"train.5000"``, ``"train.10000"``,
        ``"dev"`` or ``"test"``; plain ``"train"`` means ``"train.1000"``.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes, one entry per
        document, in file order.

        data : list of str
            The texts.
        target : ndarray of shape (n_documents,)
            Index of each document's class in ``target_names``.
        target_names : ndarray of str
            ``["CCAT", "ECAT", "GCAT", "MCAT"]``, whatever the file holds, so that
            targets agree across languages and splits.
        lang : ndarray of str of shape (n_documents,)
            ISO code of the language, as in
            :func:`~skdgm.datasets.load_libreoffice_help`.
        split : ndarray of str of shape (n_documents,)
            ``"train"``, ``"dev"`` or ``"test"``.
        filename : str
            The file read.
        DESCR : str
            Description of MLDoc.

    (data, target) : tuple if ``return_X_y`` is True
        The list of texts and the ndarray of class indices.

    Raises
    ------
    FileNotFoundError
        If the folder or the split's file does not exist.
    ValueError
        If the language or split is unknown, or a line is not ``LABEL<TAB>text``.
    """
    code, name = _resolve_language(language)
    suffix = _resolve_split(split)
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise ValueError(f"return_X_y must be True or False; got {return_X_y!r}.")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"MLDoc folder not found: {folder}. {_WHERE_FROM}")
    file = folder / f"{name}.{suffix}"
    if not file.is_file():
        raise FileNotFoundError(f"MLDoc file not found: {file}. {_WHERE_FROM}")

    labels, data = _parse(file)
    target_names = np.asarray(MLDOC_LABELS, dtype=str)
    target = np.searchsorted(target_names, labels).astype(np.int64)
    if return_X_y:
        return data, target
    n_documents = len(data)
    return Bunch(
        data=data,
        target=target,
        target_names=target_names,
        lang=np.full(n_documents, code),
        split=np.full(n_documents, suffix.partition(".")[0]),
        filename=str(file),
        DESCR=_DESCR + f"\nThis selection: {file.name}, {n_documents} documents.\n",
    )
