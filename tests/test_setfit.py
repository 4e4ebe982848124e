"""skdgm._setfit.SetFitClassifier: the few-shot baseline of the benchmark, on a tiny model."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import TINY_CORPUS

from skdgm._setfit import SetFitClassifier

pytest.importorskip("setfit")

DOCS = [f"{sentence} {i}" for i in range(2) for sentence in TINY_CORPUS]
TOPICS = ["weather", "table", "report"] * 8


def _global_draws():
    import random

    import torch

    return random.random(), np.random.random_sample(), torch.rand(1).item()  # noqa: NPY002


def test_fits_labelled_rows_and_predicts(tiny_wordpiece_model):
    import random

    import torch

    y = np.array(TOPICS, dtype=object)
    y[1::4] = -1
    random.seed(7), np.random.seed(7), torch.manual_seed(7)  # noqa: NPY002
    expected = _global_draws()
    random.seed(7), np.random.seed(7), torch.manual_seed(7)  # noqa: NPY002
    clf = SetFitClassifier(tiny_wordpiece_model, num_iterations=2, random_state=0).fit(DOCS, y)
    # setfit seeds the global generators; the estimator puts them back.
    assert _global_draws() == expected
    np.testing.assert_array_equal(clf.classes_, ["report", "table", "weather"])
    proba = clf.predict_proba(DOCS)
    assert proba.shape == (len(DOCS), 3)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(DOCS), clf.classes_[proba.argmax(1)])
    assert clf.prefix_ == ""  # not an e5 model
    # The encoder's length cap reaches the contrastive phase too (setfit applies its own
    # max_length to the head only).
    assert clf.model_.model_body.max_seq_length == 128
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(DOCS), proba)


def test_refuses_labels_it_cannot_learn(tiny_wordpiece_model):
    with pytest.raises(ValueError, match="no labelled rows"):
        SetFitClassifier(tiny_wordpiece_model).fit(DOCS, [-1] * len(DOCS))
    with pytest.raises(ValueError, match="different lengths|labels"):
        SetFitClassifier(tiny_wordpiece_model).fit(DOCS, [0, 1])
