"""skdgm._preprocessing.ModelInputs: what the SDGM sees and reconstructs."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import StandardScaler

from skdgm._preprocessing import ModelInputs

RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(40, 6)).astype(np.float32)
COUNTS = sp.random(40, 30, density=0.2, random_state=0, format="csr")
COUNTS.data = np.ceil(COUNTS.data * 5)


def test_dense_features_are_standardised_as_standard_scaler_does():
    inputs, target = ModelInputs("gaussian").fit(FEATURES).transform(FEATURES)
    expected = StandardScaler().fit_transform(FEATURES)
    np.testing.assert_allclose(inputs, expected, atol=1e-5)
    assert inputs.dtype == np.float32 and target is inputs


def test_a_constant_sparse_column_is_not_blown_up():
    # E[x^2] - E[x]^2 of a constant column is a rounding error, not 0: the hand-written
    # variance once scaled such a column by ~1,500.
    X = sp.csr_matrix(np.where(FEATURES > 0, FEATURES, 0.0))
    X[:, 3] = 2.0
    X = sp.csr_matrix(X)
    inputs, _ = ModelInputs("gaussian").fit(X).transform(X)
    assert sp.issparse(inputs)
    np.testing.assert_allclose(inputs[:, 3].toarray(), 2.0)  # scale 1: left as it was
    assert np.abs(inputs.toarray()).max() < 10


def test_tf_idf_block_is_log_scaled_with_smoothed_idf_and_unit_rows():
    model = ModelInputs("bow", vocabulary_size=20, counts_weight=0.5).fit(None, COUNTS)
    inputs, target = model.transform(None, COUNTS)
    kept = COUNTS[:, model.vocabulary_]
    logged = kept.copy()
    logged.data = np.log1p(logged.data)
    expected = 0.5 * TfidfTransformer().fit(kept).transform(logged).toarray()
    np.testing.assert_allclose(inputs.toarray(), expected, atol=1e-6)
    norms = np.linalg.norm(inputs.toarray(), axis=1)
    np.testing.assert_allclose(norms[norms > 0], 0.5, rtol=1e-5)
    np.testing.assert_array_equal(target.toarray(), kept.toarray())  # bow reconstructs counts
    assert len(model.vocabulary_) == 20


def test_state_round_trip_transforms_identically():
    for decoder, features in (("bow", FEATURES), ("gaussian", sp.csr_matrix(FEATURES))):
        model = ModelInputs(decoder, vocabulary_size=10).fit(features, COUNTS)
        rebuilt = ModelInputs.from_state(*model.get_state())
        for got, expected in zip(
            rebuilt.transform(features, COUNTS), model.transform(features, COUNTS)
        ):
            got = got.toarray() if sp.issparse(got) else got
            expected = expected.toarray() if sp.issparse(expected) else expected
            np.testing.assert_allclose(got, expected, atol=1e-6)
