"""Documents as estimators take them: checked as a list of str, or encoded as numbers.

:func:`check_documents` turns what an estimator is given as ``X`` (a list, tuple, 1-D
array or pandas Series of str, or a matrix made by :func:`documents_as_array`) into a list
of str, or raises an error that says what to change.

scikit-learn's :class:`~sklearn.semi_supervised.SelfTrainingClassifier` validates ``X`` as a
numeric (possibly sparse) matrix before it hands rows to its estimator, so a list of
documents never gets through (scikit-learn issue #23323). :func:`documents_as_array`
encodes documents losslessly as a sparse integer matrix, one row per document, and every
skdgm estimator that takes documents decodes such a matrix where it expects documents.

Row layout: column 0 holds ``-(length + 1)``, a negative marker that gives the document's
length in characters (so no count or feature matrix can be mistaken for documents, and
NUL characters, which CSR leaves implicit, come back); columns ``1 .. length`` hold the
Unicode code points. Every value is an integer below 2**24 in magnitude, exact in float32
and float64 too, so a meta-estimator that casts the matrix loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["MAX_DOCUMENT_LENGTH", "documents_as_array", "documents_from_array"]

#: Longest document (in characters) :func:`documents_as_array` can encode by default.
MAX_DOCUMENT_LENGTH = 2**24 - 1
_N_COLUMNS = MAX_DOCUMENT_LENGTH + 1
_MAX_CODE_POINT = 0x10FFFF


@validate_params(
    {
        "documents": "no_validation",
        "n_columns": [None, Interval(Integral, 1, _N_COLUMNS, closed="both")],
    },
    prefer_skip_nested_validation=True,
)
def documents_as_array(documents, *, n_columns=None):
    """Encode documents as a sparse integer matrix that scikit-learn accepts as ``X``.

    Meta-estimators that validate ``X`` as numbers, such as
    :class:`~sklearn.semi_supervised.SelfTrainingClassifier`, refuse a list of
    documents. Encoded documents pass their checks and row slicing, and skdgm's
    estimators (:class:`~skdgm.TransformerClassifier`,
    :class:`~skdgm.SemiSupervisedVAEClassifier` with an encoder,
    :class:`~skdgm.encoders.MultilingualEncoder`) decode them wherever they expect
    documents. The encoding is lossless: any str, empty, with NUL characters or lone
    surrogates, comes back unchanged.

    Parameters
    ----------
    documents : list of str
        Documents (a list, tuple, 1-D array or pandas Series of str). An already encoded
        matrix is accepted too.
    n_columns : int or None, default=None
        Columns of the matrix. None gives ``MAX_DOCUMENT_LENGTH + 1`` (2**24) columns on
        every call, so that matrices encoded separately (training and test documents)
        have the same number of columns, as scikit-learn's ``n_features_in_`` check
        demands. A smaller value, at least the longest document's length + 1, gives a
        matrix small enough to densify with ``.toarray()``.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_documents, n_columns), dtype int32
        Row ``i``: ``-(len(documents[i]) + 1)`` in column 0, the code points of the
        document's characters in columns 1 to ``len(documents[i])`` (NULs left implicit).

    See Also
    --------
    documents_from_array : The inverse.

    Examples
    --------
    >>> from skdgm import documents_as_array, documents_from_array
    >>> X = documents_as_array(["Hello", "Grüße 👋", ""])
    >>> X.shape
    (3, 16777216)
    >>> documents_from_array(X)
    ['Hello', 'Grüße 👋', '']
    >>> documents_as_array(["Hi"], n_columns=4).toarray()
    array([[ -3,  72, 105,   0]], dtype=int32)
    """
    documents = check_documents(documents)
    codes = [np.frombuffer(d.encode("utf-32-le", "surrogatepass"), dtype="<u4") for d in documents]
    lengths = np.array([len(c) for c in codes], dtype=np.int64)
    width = _N_COLUMNS if n_columns is None else int(n_columns)
    longest = int(lengths.max(initial=0))
    if longest + 1 > width:
        raise ValueError(
            f"The longest document has {longest} characters and needs {longest + 1} "
            f"columns, but n_columns={width}. "
            + (
                "Raise n_columns, or leave it None."
                if n_columns is not None
                else f"Documents longer than {MAX_DOCUMENT_LENGTH} characters cannot be "
                "encoded; shorten them."
            )
        )
    filled = [np.flatnonzero(code) for code in codes]  # NULs stay implicit
    indptr = np.concatenate([[0], np.cumsum([len(f) + 1 for f in filled], dtype=np.int64)])
    empty = [np.zeros(0, dtype=np.int64)]
    indices = np.concatenate([np.concatenate([[0], f + 1]) for f in filled] or empty)
    data = np.concatenate(
        [np.concatenate([[-(n + 1)], c[f]]) for n, c, f in zip(lengths, codes, filled)] or empty
    )
    return sp.csr_matrix(
        (data.astype(np.int32), indices.astype(np.int64), indptr),
        shape=(len(documents), width),
    )


def documents_from_array(X) -> list[str]:
    """Decode a matrix made by :func:`documents_as_array` back into documents.

    Parameters
    ----------
    X : {sparse matrix, ndarray} of shape (n_documents, n_columns)
        The encoded documents: the matrix itself, rows of it, or the same values
        densified or cast to another numeric dtype.

    Returns
    -------
    documents : list of str
        The decoded documents, one per row of ``X``.

    Raises
    ------
    ValueError
        If ``X`` is not such a matrix, or is a damaged one (the message names the row).

    Examples
    --------
    >>> from skdgm import documents_as_array, documents_from_array
    >>> documents_from_array(documents_as_array(["naïve", "你好"])[[1]])
    ['你好']
    """
    documents = decode_documents(X)
    if documents is None:
        raise ValueError(
            f"X (shape {getattr(X, 'shape', None)}) is not a matrix of documents made by "
            "skdgm.documents_as_array: its column 0 must hold a negative length marker "
            "on every row."
        )
    return documents


def check_documents(X, *, min_documents: int = 0) -> list[str]:
    """Return ``X`` as a list of str, or raise an error that says what to change.

    A matrix made by :func:`~skdgm.documents_as_array` (sparse, or rows of it, densified)
    is decoded into its documents.
    """
    if isinstance(X, str):
        raise TypeError(
            "X must be a list of documents, got a single string; wrap it in a list: [X]."
        )
    if isinstance(X, (bytes, bytearray)):
        raise TypeError(
            "X must be a list of documents (str), got bytes; decode it first, e.g. "
            "[X.decode('utf-8')]."
        )
    if hasattr(X, "columns"):
        raise TypeError(
            "X must be a 1-D list of documents, got a DataFrame; pass one column, e.g. X['text']."
        )
    if isinstance(X, (Mapping, Set)):
        raise TypeError(
            f"X must be a list of documents, got a {type(X).__name__}, which has no order "
            "of rows; pass a list."
        )
    if getattr(X, "ndim", 1) != 1:
        documents = decode_documents(X)  # a matrix made by skdgm.documents_as_array
        numeric = getattr(X, "dtype", np.dtype(object)).kind in "iufb"
        if documents is None and numeric:
            raise ValueError(
                f"X must be a 1-D list of documents, got a numeric matrix of shape "
                f"{X.shape}. Pass the documents themselves, or documents encoded by "
                "skdgm.documents_as_array (whose column 0 holds negative length markers) "
                "where a meta-estimator needs numbers."
            )
        if documents is None:
            raise ValueError(
                f"X must be a 1-D list of documents, got an array of shape {X.shape}; select "
                "the text column as a 1-D array (e.g. X[:, 0] or df['text'])."
            )
    else:
        if not isinstance(X, Iterable):
            raise TypeError(f"X must be a list of documents (str), got {type(X).__name__}.")
        documents = list(X)
        for index, document in enumerate(documents):
            if not isinstance(document, str):
                raise TypeError(
                    f"Every document must be a str, but X[{index}] is a "
                    f"{type(document).__name__} ({document!r:.40}). Convert the documents to "
                    "str and replace missing ones (None, NaN) with ''."
                )
    if len(documents) < min_documents:
        raise ValueError(
            f"X holds {len(documents)} documents; at least {min_documents} is needed."
        )
    return [str(document) for document in documents]  # np.str_ -> str


def decode_documents(X) -> list[str] | None:
    """The documents of a matrix made by :func:`documents_as_array`; None for anything else.

    Anything else: not a 2-D numeric matrix, or one without a negative integer in column
    0 of every row. A matrix with the markers but damaged values raises a ``ValueError``.
    """
    matrix = _canonical_csr(X)
    if matrix is None or not _has_markers(matrix):
        return None
    return _decode(matrix)


def _canonical_csr(X):
    """``X`` as a CSR matrix with sorted, unique indices; None if not a 2-D numeric matrix."""
    if sp.issparse(X):
        if X.ndim != 2 or X.dtype.kind not in "iuf":
            return None
        # Never through CSC or column slicing: they allocate per column (2**24 of them).
        matrix = X.tocsr()
        if not matrix.has_canonical_format:
            matrix = matrix.copy()
            matrix.sum_duplicates()
        return matrix
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "iuf":
        if X.shape[0] == 0 or X.shape[1] == 0 or not np.all(X[:, 0] < 0):
            return None  # cheap rejection before building a sparse copy
        return sp.csr_matrix(X)
    return None


def _row_starts(matrix) -> np.ndarray:
    return matrix.indptr[:-1].astype(np.int64)


def _has_markers(matrix) -> bool:
    """Every row starts with a negative integral value stored in column 0."""
    n_rows = matrix.shape[0]
    if n_rows == 0 or matrix.shape[1] == 0:
        return False
    starts = _row_starts(matrix)
    if np.any(matrix.indptr[1:] <= matrix.indptr[:-1]):
        return False  # an empty row has no marker
    if np.any(matrix.indices[starts] != 0):
        return False
    markers = matrix.data[starts]
    return bool(np.all(markers < 0) and np.all(markers == np.round(markers)))


def _decode(matrix) -> list[str]:
    """Documents of a CSR matrix with markers; a ValueError names the first damaged row."""
    n_rows, n_columns = matrix.shape
    starts = _row_starts(matrix)
    lengths = -matrix.data[starts].astype(np.float64) - 1
    row_of = np.repeat(np.arange(n_rows), np.diff(matrix.indptr))
    is_code = np.ones(matrix.nnz, dtype=bool)
    is_code[starts] = False
    rows, columns, values = row_of[is_code], matrix.indices[is_code], matrix.data[is_code]
    not_code_point = ~np.isfinite(values) | (values != np.round(values))
    not_code_point |= (values < 0) | (values > _MAX_CODE_POINT)
    checks = [
        (
            lengths > n_columns - 1,
            "its length marker announces more characters than the matrix has columns",
        ),
        (
            _flag_rows(rows[not_code_point], n_rows),
            "it holds a value that is not a Unicode code point (an integer from 0 to 0x10FFFF)",
        ),
        (
            _flag_rows(rows[columns > lengths[rows]], n_rows),
            "it holds values beyond the characters its length marker announces",
        ),
    ]
    for damaged, problem in checks:
        if np.any(damaged):
            raise ValueError(
                "X looks like documents encoded by skdgm.documents_as_array (negative length "
                f"markers in column 0), but row {int(np.flatnonzero(damaged)[0])} is damaged: "
                f"{problem}. Encode the documents again with skdgm.documents_as_array."
            )
    offsets = np.concatenate([[0], np.cumsum(lengths.astype(np.int64))])
    buffer = np.zeros(int(offsets[-1]), dtype="<u4")
    buffer[offsets[rows] + columns.astype(np.int64) - 1] = values.astype(np.uint32)
    text = buffer.tobytes().decode("utf-32-le", "surrogatepass")
    return [text[offsets[i] : offsets[i + 1]] for i in range(n_rows)]


def _flag_rows(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Boolean mask of the rows that appear in ``rows``."""
    return np.bincount(rows, minlength=n_rows) > 0
