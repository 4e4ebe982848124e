"""Properties of SemiSupervisedVAEClassifier on random input (hypothesis).

For random shapes, labels (integers or strings, with or without -1), dense or sparse
features, short random documents and batch sizes of 1, 3 and more than the rows:

- ``fit`` succeeds when there are 2 rows and 2 labelled classes or more; otherwise it
  raises an error of the table in ``docs/input_guards.rst``: the exception's class and a
  piece of its message (text between "..." and ";" in the table's last column, with the
  placeholders k, m, i, n matching any word) must appear in one row of that table;
- ``predict_proba`` is finite, its rows sum to 1 and its columns follow ``classes_``, the
  labelled classes; ``predict`` is ``classes_[argmax(predict_proba)]``; ``transduction_``
  keeps the given labels;
- the caller's X, y and documents are unchanged, whether ``fit`` succeeded or not;
- the units of numeric features do not matter (X times a power of 2, up to 2**100, gives
  the same model), and sparse features are scaled by the same standard deviations as
  dense ones: the two properties that found the defects fixed in ``_preprocessing.py``.

The examples are the same on every run (profile "ci" in ``conftest.py``); run
``pytest tests/test_properties.py --hypothesis-profile=explore`` to draw new ones.
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("hypothesis")
from hypothesis import assume, event, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from skdgm import SemiSupervisedVAEClassifier  # noqa: E402
from skdgm.encoders import MultilingualEncoder  # noqa: E402

GUARDS = Path(__file__).resolve().parents[1] / "docs" / "input_guards.rst"
TINY = dict(max_epochs=2, hidden_dim=8, z1_dim=2, z2_dim=2, random_state=0)
BATCH_SIZES = st.sampled_from([1, 3, 64])  # 64 is more than any drawn number of rows


def documented_errors() -> list[tuple[str, re.Pattern]]:
    """(exception class name, message pattern) for each error in docs/input_guards.rst."""
    table = GUARDS.read_text(encoding="utf-8").split(".. list-table::", 1)[1]
    found = []
    for row in table.split("\n   * - ")[2:]:  # [0]: the table's options, [1]: its header
        outcome = " ".join(row.split("\n     - ")[-1].split()).replace("``", "")
        for name, message in re.findall(
            r"(\w+(?:Error|Warning)): (.*?)(?= \w+Error: |$)", outcome
        ):
            message = re.sub(r"\([^)]*\)", "", message)  # "(S, T)", "(s)"
            for piece in re.split(r"\.\.\.|;| / ", message):
                piece = piece.strip(" .")
                if len(piece) >= 10:
                    pattern = re.sub(r"\b[kmin]\b", r"\\S+", re.escape(piece))
                    found.append((name, re.compile(pattern)))
    return found


DOCUMENTED = documented_errors()


def assert_documented(error: Exception) -> None:
    name, message = type(error).__name__, str(error)
    assert any(name == n and p.search(message) for n, p in DOCUMENTED), (
        f"{name}: {message!r} is not in {GUARDS.name}"
    )


def test_the_table_is_parsed():
    names = {name for name, _ in DOCUMENTED}
    assert {"ValueError", "TypeError", "FloatingPointError", "MemoryError"} <= names
    assert_documented(ValueError("y has labelled rows of a single class (0); a classifier..."))
    assert_documented(ValueError("X has 3 features, but Foo is expecting 5 features as input"))
    with pytest.raises(AssertionError):
        assert_documented(ValueError("something nobody wrote down"))


@st.composite
def semi_supervised_labels(draw, n_rows: int) -> np.ndarray:
    """Labels of 0 to 3 classes (ints, strings, or strings beside an int -1), -1 or not.

    Every class is on at least one row (as far as there are rows); a third of the draws
    has no -1.
    """
    kind = draw(st.sampled_from(["int", "str", "object"]))
    if kind == "int":
        unlabelled, values = -1, st.sampled_from([0, 1, 2, 7, -2, -3])
    else:
        unlabelled = -1 if kind == "object" else "-1"
        values = st.sampled_from(["a", "b", "ab", "é", "1", "10", "-2", "-1 "])
    n_classes = draw(st.sampled_from([2, 3, 2, 3, 1, 0]))  # 1 or 0: fit must refuse
    classes = draw(st.lists(values, min_size=n_classes, max_size=n_classes, unique=True))
    fully_labelled = classes and draw(st.sampled_from([False, False, True]))
    choices = classes if fully_labelled else [unlabelled, *classes]
    rows = draw(st.lists(st.sampled_from(choices), min_size=n_rows, max_size=n_rows))
    for row, label in zip(draw(st.permutations(range(n_rows))), classes):
        rows[row] = label
    return np.array(rows, dtype=object if kind == "object" else None)


@st.composite
def numeric_features(draw, n_rows, n_features, decoder, layout, values=None):
    """Dense (float32 or float64) or sparse features, many zeros; counts for "bow"."""
    if values is None and decoder == "bow":
        values = st.integers(0, 4).map(float)
    elif values is None:
        values = st.one_of(st.just(0.0), st.floats(-1e6, 1e6, width=32))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    flat = draw(st.lists(values, min_size=n_rows * n_features, max_size=n_rows * n_features))
    X = np.array(flat, dtype=dtype).reshape(n_rows, n_features)
    return X if layout == "dense" else sp.csr_matrix(X).asformat(layout)


@st.composite
def numeric_case(draw):
    n_rows, n_features = draw(st.integers(1, 24)), draw(st.integers(1, 5))
    decoder = draw(st.sampled_from(["gaussian", "bow"]))
    layout = draw(st.sampled_from(["dense", "csr", "csc"]))
    X = draw(numeric_features(n_rows, n_features, decoder, layout))
    X_new = draw(numeric_features(draw(st.integers(1, 4)), n_features, decoder, layout))
    y = draw(semi_supervised_labels(n_rows))
    return X, y, X_new, decoder, draw(BATCH_SIZES)


DOCUMENTS = st.text(max_size=30)  # any characters but surrogates


@st.composite
def text_case(draw):
    n_rows = draw(st.integers(1, 10))
    docs = draw(st.lists(DOCUMENTS, min_size=n_rows, max_size=n_rows))
    new_docs = draw(st.lists(DOCUMENTS, min_size=1, max_size=3))
    return docs, draw(semi_supervised_labels(n_rows)), new_docs, draw(BATCH_SIZES)


def can_fit(y: np.ndarray) -> bool:
    labelled = {value for value in y.tolist() if value not in (-1, "-1")}
    return len(y) >= 2 and len(labelled) >= 2


def unchanged(before, after) -> bool:
    if sp.issparse(before):
        return (
            after.format == before.format
            and after.dtype == before.dtype
            and after.shape == before.shape
            and (after != before).nnz == 0
        )
    if isinstance(before, np.ndarray):
        return after.dtype == before.dtype and np.array_equal(after, before)
    return after == before


def check_fit_and_predictions(clf, X, y, X_new):
    """Fit; check the properties of the module docstring."""
    X_before, y_before, new_before = copy.deepcopy(X), y.copy(), copy.deepcopy(X_new)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No unlabelled rows", UserWarning)
        event("fitted" if can_fit(y) else "refused")  # --hypothesis-show-statistics
        if not can_fit(y):
            with pytest.raises(ValueError) as raised:
                clf.fit(X, y)
            assert_documented(raised.value)
        else:
            clf.fit(X, y)
            labelled = np.array([value not in (-1, "-1") for value in y.tolist()])
            np.testing.assert_array_equal(clf.classes_, np.unique(y[labelled]))
            np.testing.assert_array_equal(clf.transduction_[labelled], y[labelled])
            for rows in (X, X_new):
                proba = clf.predict_proba(rows)
                assert proba.shape == (
                    len(rows) if isinstance(rows, list) else rows.shape[0],
                    len(clf.classes_),
                )
                assert np.isfinite(proba).all()
                np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-9)
                np.testing.assert_array_equal(
                    clf.predict(rows), clf.classes_[proba.argmax(axis=1)]
                )
    assert unchanged(X_before, X) and unchanged(new_before, X_new)
    assert unchanged(y_before, y)


# Found by hypothesis on 2026-12-08: a feature nearly constant in training (scale 4e-35)
# standardised a new row's value to float32's infinity, and the probabilities to NaN.
NEARLY_CONSTANT = (
    np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 8.38785818e-35]]),
    np.array([0, 1, -1]),
    np.array([[0.0, 13456.0]]),
    "gaussian",
    1,
)


@settings(max_examples=200)
@given(case=numeric_case())
@example(case=NEARLY_CONSTANT)
def test_numeric_features(case):
    X, y, X_new, decoder, batch_size = case
    clf = SemiSupervisedVAEClassifier(decoder=decoder, batch_size=batch_size, **TINY)
    check_fit_and_predictions(clf, X, y, X_new)


@settings(max_examples=100)
@given(case=text_case())
def test_documents(tiny_wordpiece_model, case):
    docs, y, new_docs, batch_size = case
    encoder = MultilingualEncoder(tiny_wordpiece_model, device="cpu")
    clf = SemiSupervisedVAEClassifier(encoder, vocabulary_size=20, batch_size=batch_size, **TINY)
    check_fit_and_predictions(clf, docs, y, new_docs)


@st.composite
def scalable_case(draw):
    """Dense or sparse float32 or float64 features, labels, and a power of 2 up to 2**100.

    Values are 0 or at least 2**-10 in magnitude, so that a column's standard deviation is 0
    or far above the 1e-12 under which the model takes a feature for a constant.
    """
    n_rows, n_features = draw(st.integers(2, 16)), draw(st.integers(1, 4))
    layout = draw(st.sampled_from(["dense", "csr"]))
    magnitudes = st.floats(2.0**-10, 1e6, width=32)
    values = st.one_of(st.just(0.0), magnitudes, magnitudes.map(lambda v: -v))
    X = draw(numeric_features(n_rows, n_features, "gaussian", layout, values))
    if layout != "dense":  # sparse columns are scaled, not centred: a constant stays
        dense = X.toarray()
        assume(not ((dense == dense[0]) & (dense[0] != 0)).all(axis=0).any())
    y = draw(semi_supervised_labels(n_rows).filter(can_fit))
    return X, y, 2.0 ** draw(st.integers(0, 100))


@settings(max_examples=30)
@given(case=scalable_case())
def test_the_units_of_the_features_do_not_matter(case):
    # The features are standardised (sparse ones scaled), so multiplying them by a power
    # of 2, which is exact in floating point, must not change the model at all, even when
    # the squares of the scaled features overflow float32.
    X, y, factor = case
    params = dict(decoder="gaussian", batch_size=3, **TINY)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No unlabelled rows", UserWarning)
        proba = SemiSupervisedVAEClassifier(**params).fit(X, y).predict_proba(X)
        X_scaled = X * X.dtype.type(factor)
        scaled = SemiSupervisedVAEClassifier(**params).fit(X_scaled, y)
    np.testing.assert_allclose(scaled.predict_proba(X_scaled), proba, rtol=1e-6, atol=1e-9)


@st.composite
def near_constant_columns(draw):
    """Dense features whose columns are often constant or nearly so, around large means."""
    n_rows, n_features = draw(st.integers(2, 16)), draw(st.integers(1, 4))
    means = draw(
        st.lists(st.floats(-1e7, 1e7, width=32), min_size=n_features, max_size=n_features)
    )
    noise = draw(
        numeric_features(
            n_rows, n_features, "gaussian", "dense", st.sampled_from([0.0, 0.0, 0.0, 0.1, 1.0])
        )
    )
    return (np.array(means, dtype=noise.dtype) + noise).astype(noise.dtype)


@settings(max_examples=50)
@given(X=near_constant_columns())
def test_sparse_features_are_scaled_by_their_standard_deviations(X):
    # Sparse features are divided by their standard deviations, as dense ones are: the
    # same numbers, however large the columns' means (constant columns: 1).
    y = np.r_[0, 1, np.full(len(X) - 2, -1)]
    params = {**TINY, "max_epochs": 0}  # no epoch: only the model's inputs are fitted
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No unlabelled rows", UserWarning)
        dense = SemiSupervisedVAEClassifier(**params).fit(X, y)
        sparse = SemiSupervisedVAEClassifier(**params).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.inputs_.scale_, dense.inputs_.scale_, rtol=1e-5)
