"""documents_as_array / documents_from_array: documents as a numeric matrix, and back."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import TINY_CORPUS
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import StandardScaler
from sklearn.utils import _safe_indexing, check_array, safe_mask
from sklearn.utils._param_validation import InvalidParameterError

from skdgm import SemiSupervisedVAEClassifier, documents_as_array, documents_from_array
from skdgm._documents import MAX_DOCUMENT_LENGTH, check_documents, decode_documents
from skdgm.encoders import MultilingualEncoder

HARD = [
    "",
    "plain ascii",
    "Grüße aus Köln, naïve café",
    "Сегодня прекрасная погода",
    "今天天气很好",
    "مرحبا بالعالم",  # right to left
    "e\u0301 combining accent",
    "emoji 👋🏽 and a flag 🇩🇪",
    "\x00",
    "\x00\x00starts and ends with NUL\x00",
    "tab\tnew\nline\r",
    "lone surrogate \ud800 kept",
    "\U0010ffff highest code point",
]


def test_round_trip_of_hard_strings():
    X = documents_as_array(HARD)
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.int32
    assert X.shape == (len(HARD), MAX_DOCUMENT_LENGTH + 1)
    decoded = documents_from_array(X)
    assert decoded == HARD and all(type(d) is str for d in decoded)
    assert check_documents(X) == HARD


def test_layout_of_a_row():
    dense = documents_as_array(["Hi", "", "a\x00b"], n_columns=5).toarray()
    expected = [[-3, 72, 105, 0, 0], [-1, 0, 0, 0, 0], [-4, 97, 0, 98, 0]]
    np.testing.assert_array_equal(dense, expected)


def test_a_very_long_document():
    long = "".join(TINY_CORPUS) * 2000  # about 900,000 characters
    X = documents_as_array([long, "short"])
    assert X[0, 0] == -(len(long) + 1)
    assert documents_from_array(X) == [long, "short"]


def test_every_call_has_the_same_width():
    # scikit-learn checks that predict sees as many columns as fit.
    assert documents_as_array(["a"]).shape[1] == documents_as_array(HARD).shape[1]


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_dense_and_cast_copies_decode(dtype):
    X = documents_as_array(HARD, n_columns=64).toarray().astype(dtype)
    assert documents_from_array(X) == HARD
    assert documents_from_array(sp.csr_matrix(X)) == HARD


@pytest.mark.parametrize("fmt", ["coo", "csc", "lil", "dok"])
def test_other_sparse_formats_decode(fmt):
    X = documents_as_array(HARD[:5], n_columns=64).asformat(fmt)
    assert documents_from_array(X) == HARD[:5]


def test_sliced_rows_decode():
    X = documents_as_array(HARD)
    assert documents_from_array(X[[7, 0, 3]]) == [HARD[7], HARD[0], HARD[3]]
    assert documents_from_array(X[2:5]) == HARD[2:5]
    mask = np.arange(len(HARD)) % 2 == 0
    assert documents_from_array(X[safe_mask(X, mask)]) == HARD[::2]
    assert documents_from_array(_safe_indexing(X, [1, 1])) == [HARD[1], HARD[1]]
    dense = documents_as_array(HARD, n_columns=64).toarray()
    assert check_documents(dense[[8, 9]]) == HARD[8:10]


def test_scikit_learn_validation_keeps_the_matrix():
    X = documents_as_array(HARD)
    checked = check_array(X, accept_sparse=["csr", "csc", "lil", "dok"], ensure_all_finite=False)
    assert documents_from_array(checked) == HARD
    assert documents_from_array(check_array(X, accept_sparse="csr", dtype=np.float64)) == HARD


def test_encoding_twice_changes_nothing():
    X = documents_as_array(HARD)
    assert (documents_as_array(X) != X).nnz == 0


@pytest.mark.parametrize(
    "X",
    [
        np.ones((3, 4)),
        -np.ones((2, 3)) / 2,  # negative, but not integers
        np.zeros((0, 3)),
        np.array([[-1, 1], [2, 1]]),  # a row without the marker
        sp.csr_matrix(np.array([[0, 1], [-1, 0]])),  # the marker is not in column 0
        CountVectorizer().fit_transform(TINY_CORPUS),
        sp.csr_matrix(StandardScaler().fit_transform(np.arange(12.0).reshape(6, 2))),
        np.ones((2, 2), dtype=bool),
    ],
    ids=["ones", "fractions", "empty", "row-without", "column-1", "counts", "scaled", "bool"],
)
def test_numbers_without_markers_are_not_documents(X):
    assert decode_documents(X) is None
    with pytest.raises(ValueError, match="1-D list of documents, got a numeric matrix"):
        check_documents(X)
    with pytest.raises(ValueError, match="not a matrix of documents made by"):
        documents_from_array(X)


@pytest.mark.parametrize(
    "change, match",
    [
        ((0, 2, 0x110000), "not a Unicode code point"),
        ((0, 2, 0.5), "not a Unicode code point"),
        ((1, 0, -10), "more characters than the matrix has columns"),
        ((1, 3, 7), "beyond the characters its length marker announces"),
    ],
    ids=["too-high", "fraction", "too-long", "beyond"],
)
def test_damaged_matrices_name_the_row(change, match):
    X = documents_as_array(["abc", "d"], n_columns=5).toarray().astype(np.float64)
    row, column, value = change
    X[row, column] = value
    with pytest.raises(ValueError, match=rf"row {row} is damaged: .*{match}"):
        check_documents(X)


def test_bad_arguments():
    with pytest.raises(TypeError, match="single string"):
        documents_as_array("one document")
    with pytest.raises(TypeError, match=r"X\[1\] is a NoneType"):
        documents_as_array(["fine", None])
    with pytest.raises(ValueError, match="has 6 characters and needs 7 columns, but n_columns=4"):
        documents_as_array(["fine", "longer"], n_columns=4)
    with pytest.raises(InvalidParameterError, match="n_columns"):
        documents_as_array(["fine"], n_columns=0)


def test_no_documents():
    X = documents_as_array([])
    assert X.shape == (0, MAX_DOCUMENT_LENGTH + 1)
    with pytest.raises(ValueError, match="numeric matrix of shape"):
        check_documents(X)  # no row, no marker: nothing says these are documents


# ------------------------------------------------------------------- estimators decode it


def test_encoder_and_sdgm_take_encoded_documents(tiny_wordpiece_model):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: more threads only contend on a busy machine
    try:
        _check_estimators_on_encoded_documents(tiny_wordpiece_model)
    finally:
        torch.set_num_threads(threads)


def _check_estimators_on_encoded_documents(tiny_wordpiece_model):
    docs = [f"{sentence} {k}" for k in range(2) for sentence in TINY_CORPUS]
    y = np.array([i % 2 for i in range(len(docs))])
    y[::3] = -1
    X = documents_as_array(docs)
    encoder = MultilingualEncoder(tiny_wordpiece_model).fit(X)
    np.testing.assert_array_equal(encoder.transform(X[:5]), encoder.transform(docs[:5]))
    params = dict(max_epochs=2, hidden_dim=16, z1_dim=4, z2_dim=2, vocabulary_size=20)
    from_matrix = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), random_state=0, **params
    ).fit(X, y)
    from_list = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), random_state=0, **params
    ).fit(docs, y)
    np.testing.assert_allclose(from_matrix.predict_proba(X), from_list.predict_proba(docs))
    # Scored on the labelled rows only, the same from the array as from the list.
    labelled = y != -1
    assert from_matrix.score(X, y) == from_list.score(docs, y)
    assert from_matrix.score(X, y) == np.mean(from_matrix.predict(X[labelled]) == y[labelled])
