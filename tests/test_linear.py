"""The linear expert pooled with q(y | x): its maths, and how the estimator uses it."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import skdgm
from skdgm import SemiSupervisedVAEClassifier
from skdgm._sdgm._linear import (
    LinearExpert,
    confident_rows,
    fit_linear_expert,
    linear_features,
    piece_coverage,
    resolve_weight,
)
from skdgm.datasets import load_libreoffice_help
from skdgm.encoders import MultilingualEncoder

FAST = dict(max_epochs=6, hidden_dim=32, z1_dim=8, z2_dim=4, vocabulary_size=50, random_state=0)


def _log_softmax(a):
    a = a - a.max(1, keepdims=True)
    return a - np.log(np.exp(a).sum(1, keepdims=True))


def test_auto_weight_grows_with_the_labels_per_class():
    assert resolve_weight("auto", 8, 4) == pytest.approx(0.5)
    assert resolve_weight("auto", 32, 4) == pytest.approx(0.8)
    assert resolve_weight("auto", 128, 4) == pytest.approx(32 / 34)
    assert resolve_weight(0.25, 128, 4) == 0.25


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_expert_is_sklearns_logistic_regression(n_classes):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = np.arange(60) % n_classes
    X[:, 0] += y
    expert = fit_linear_expert(X, y, n_classes, 1.0, None)
    reference = LogisticRegression(C=10.0, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(np.exp(expert.log_proba(X)), reference.predict_proba(X), atol=1e-8)
    # weight 1: the regression alone; weight 0: q alone; in between, the log-linear pool.
    log_q = _log_softmax(rng.normal(size=(60, n_classes)))
    np.testing.assert_allclose(expert.pool(log_q, X), expert.log_proba(X), atol=1e-10)
    expert.weight = 0.0
    np.testing.assert_allclose(expert.pool(log_q, X), log_q, atol=1e-10)
    expert.weight = 0.3
    expected = _log_softmax(0.7 * log_q + 0.3 * np.log(reference.predict_proba(X)))
    np.testing.assert_allclose(expert.pool(log_q, X), expected, atol=1e-8)


def test_no_expert_without_a_label_in_every_class_or_without_weight():
    X = np.random.default_rng(0).normal(size=(10, 3))
    assert fit_linear_expert(X, np.zeros(10, dtype=int), 2, 0.5, None) is None
    assert fit_linear_expert(X, np.arange(10) % 3, 4, 0.5, None) is None
    assert fit_linear_expert(X, np.arange(10) % 2, 2, 0.0, None) is None


def test_features_undo_the_standardisation_and_normalise_the_embedding():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(20, 6)) + 3.0
    tfidf = sp.random(20, 9, density=0.3, random_state=0, format="csr")
    scaler = StandardScaler().fit(embedding)
    inputs = sp.hstack([sp.csr_matrix(scaler.transform(embedding)), tfidf], format="csr")
    features = linear_features(inputs, 6, scaler.mean_, scaler.scale_)
    unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    np.testing.assert_allclose(features[:, :6].toarray(), unit, atol=1e-10)
    np.testing.assert_allclose(features[:, 6:].toarray(), tfidf.toarray())
    assert linear_features(inputs, None, None, None) is inputs


@pytest.fixture(scope="module")
def documents():
    bunch = load_libreoffice_help(languages=["en"], split="train")
    rng = np.random.default_rng(1)
    index = rng.choice(len(bunch.data), 100, replace=False)
    docs = [bunch.data[i][:300] for i in index]
    y = np.full(len(index), -1)
    target = bunch.target[index]
    for c in range(4):
        y[np.flatnonzero(target == c)[:4]] = c
    return docs, y


@pytest.fixture(scope="module")
def fits(tiny_wordpiece_model, documents):
    """The same SDGM fitted with the expert as by default (self-trained), with the expert
    fitted on the labelled rows only, and without it."""
    docs, y = documents
    settings = {
        "default": {},
        "labelled only": {"linear_pseudo_labels": 0.0},
        "off": {"linear_weight": 0.0},
    }
    return {
        name: SemiSupervisedVAEClassifier(
            MultilingualEncoder(tiny_wordpiece_model), **kwargs, **FAST
        ).fit(docs, y)
        for name, kwargs in settings.items()
    }


@pytest.fixture(scope="module")
def pair(fits):
    """The SDGM with the expert fitted on the labelled rows, and without the expert."""
    return fits["labelled only"], fits["off"]


def test_auto_pools_a_regression_fitted_on_the_labelled_documents(pair, documents):
    docs, y = documents
    pooled, alone = pair
    assert pooled.linear_weight_ == pytest.approx(4 / 6)  # 4 labels per class
    assert alone.linear_weight_ == 0.0
    # The SDGM trains the same either way; only the predictions change.
    np.testing.assert_allclose(pooled.transform(docs), alone.transform(docs), atol=1e-6)
    # The documented pool, rebuilt with scikit-learn from the documented features.
    inputs = alone._model_inputs(docs)
    embedding = alone.encoder_.transform(docs)
    embedding = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    n_dense = embedding.shape[1]
    features = sp.hstack([sp.csr_matrix(embedding), inputs[:, n_dense:]], format="csr")
    labelled = y != -1
    regression = LogisticRegression(C=10.0, max_iter=1000).fit(features[labelled], y[labelled])
    w = pooled.linear_weight_
    expected = _log_softmax(
        (1 - w) * alone.predict_log_proba(docs) + w * np.log(regression.predict_proba(features))
    )
    # To lbfgs's tolerance (see the next test).
    np.testing.assert_allclose(pooled.predict_proba(docs), np.exp(expected), atol=5e-3)
    np.testing.assert_allclose(pooled.predict_proba(docs).sum(1), 1.0)
    # The same predictions, except where the solver's tolerance can flip a near tie.
    top_two = np.sort(expected, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 0.02
    assert clear.mean() > 0.8
    predicted = pooled.predict(docs)
    assert (predicted[clear] == pooled.classes_[expected.argmax(1)][clear]).all()
    # The transduction is the pooled model's prediction of the unlabelled rows.
    unlabelled = ~labelled
    assert (pooled.transduction_[unlabelled] == pooled.predict(docs)[unlabelled]).all()


def _documented_features(fitted, docs):
    """[embedding, L2-normalised ; TF-IDF of pieces], rebuilt from the public parts."""
    inputs = fitted._model_inputs(docs)
    embedding = fitted.encoder_.transform(docs)
    embedding = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    return sp.hstack([sp.csr_matrix(embedding), inputs[:, embedding.shape[1] :]], format="csr")


def test_the_regression_learns_again_from_the_pooled_models_surest_rows(fits, documents):
    docs, y = documents
    default, first, alone = fits["default"], fits["labelled only"], fits["off"]
    assert first.n_pseudo_labels_ == 0
    # The documented steps, with scikit-learn: the first pool's predictions of the
    # unlabelled rows, the surest half of each predicted class, the regression refitted.
    features = _documented_features(alone, docs)
    unlabelled = np.flatnonzero(y == -1)
    first_pool = first.predict_log_proba(docs)[unlabelled]
    predicted, top = first_pool.argmax(1), first_pool.max(1)
    taught = []
    for k in np.unique(predicted):
        rows = np.flatnonzero(predicted == k)
        keep = int(np.ceil(0.5 * rows.size))
        taught += list(unlabelled[rows[np.argsort(-top[rows], kind="stable")[:keep]]])
    taught = np.sort(taught)
    assert default.n_pseudo_labels_ == len(taught) >= len(unlabelled) // 2
    rows = np.r_[np.flatnonzero(y != -1), taught]
    # The weight: m / (m + 2), m the regression's rows per class (the pseudo-labels
    # counted as labels), times the coverage of those rows over the unlabelled rows left.
    pieces = features[:, alone.encoder_.transform(docs[:1]).shape[1] :]
    rest = np.setdiff1d(unlabelled, taught)
    coverage = piece_coverage(pieces[rows], pieces[rest])
    m = len(rows) / 4
    assert default.linear_weight_ == pytest.approx(m / (m + 2) * min(coverage, 1.0))
    assert default.linear_weight_ > resolve_weight("auto", 16, 4, coverage)
    labels = np.r_[y[y != -1], first.classes_[first.predict_log_proba(docs)[taught].argmax(1)]]
    regression = LogisticRegression(C=10.0, max_iter=1000).fit(features[rows], labels)
    w = default.linear_weight_
    expected = _log_softmax(
        (1 - w) * alone.predict_log_proba(docs) + w * np.log(regression.predict_proba(features))
    )
    # To the solver's tolerance (lbfgs stops at tol=1e-4: a 1e-8 change of the features
    # moves its log-probabilities by up to 1e-2 here), far closer than the first pool.
    got, expected = default.predict_proba(docs), np.exp(expected)
    np.testing.assert_allclose(got, expected, atol=5e-3)
    assert np.abs(got - expected).max() < 0.1 * np.abs(got - first.predict_proba(docs)).max()
    # The SDGM trains the same; only the regression changed.
    np.testing.assert_allclose(default.transform(docs), alone.transform(docs), atol=1e-6)


def test_confident_rows_keep_each_predicted_classs_surest_share():
    log_p = np.log(
        np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55], [0.8, 0.2]])
    )
    # class 0 predicted for rows 0, 1, 2, 5 (keep 2: rows 0 and 5); class 1 for 3, 4 (keep 1).
    np.testing.assert_array_equal(confident_rows(log_p, 0.5), [0, 3, 5])
    np.testing.assert_array_equal(confident_rows(log_p, 1.0), np.arange(6))
    assert confident_rows(log_p[:0], 0.5).size == 0


def test_the_expert_survives_pickle_and_save(fits, documents, tmp_path):
    docs, _ = documents
    pooled = fits["default"]
    expected = pooled.predict_proba(docs)
    restored = pickle.loads(pickle.dumps(pooled))
    np.testing.assert_allclose(restored.predict_proba(docs), expected, rtol=1e-6, atol=1e-9)
    skdgm.save(pooled, tmp_path / "model")
    loaded = skdgm.load(tmp_path / "model")
    assert loaded.linear_weight_ == pooled.linear_weight_
    assert loaded.n_pseudo_labels_ == pooled.n_pseudo_labels_ > 0
    np.testing.assert_allclose(loaded.predict_proba(docs), expected, rtol=1e-6, atol=1e-9)


def test_numeric_inputs_have_no_expert_unless_asked(blobs):
    X, _, y = blobs
    clf = SemiSupervisedVAEClassifier(max_epochs=3, random_state=0).fit(X, y)
    assert clf.linear_weight_ == 0.0
    assert clf.n_pseudo_labels_ == 0
    clf = SemiSupervisedVAEClassifier(max_epochs=3, linear_weight=0.5, random_state=0).fit(X, y)
    assert clf.linear_weight_ == 0.5
    # Half of each predicted class, rounded up.
    n_unlabelled, n_classes = (y == -1).sum(), len(clf.classes_)
    assert n_unlabelled / 2 <= clf.n_pseudo_labels_ <= n_unlabelled / 2 + n_classes
    assert isinstance(clf._linear, LinearExpert)
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "always"])
def test_a_bad_weight_is_a_clear_error(blobs, bad):
    X, _, y = blobs
    with pytest.raises(ValueError, match="linear_weight"):
        SemiSupervisedVAEClassifier(linear_weight=bad).fit(X, y)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half"])
def test_a_bad_pseudo_label_share_is_a_clear_error(blobs, bad):
    X, _, y = blobs
    with pytest.raises(ValueError, match="linear_pseudo_labels"):
        SemiSupervisedVAEClassifier(linear_pseudo_labels=bad).fit(X, y)


def test_piece_coverage_compares_unlabelled_rows_with_left_out_labelled_rows():
    # Pieces (columns) 0-3. Labelled rows: {0, 1}, {0, 2}; leave one out, row 0's piece 0 is
    # covered by row 1 and piece 1 is not (share 1/2 of its mass), and the same for row 1.
    labelled = sp.csr_matrix(np.array([[1.0, 1.0, 0, 0], [1.0, 0, 1.0, 0]]))
    # Unlabelled rows: {0, 3} (share 1/2), {1, 2} (share 1), {3} (share 0): mean 1/2.
    unlabelled = sp.csr_matrix(np.array([[2.0, 0, 0, 2.0], [0, 1.0, 3.0, 0], [0, 0, 0, 5.0]]))
    assert piece_coverage(labelled, unlabelled) == pytest.approx((1.5 / 3) / 0.5)
    # Nothing to compare: 1.
    assert piece_coverage(labelled[:1], unlabelled) == 1.0
    assert piece_coverage(labelled, unlabelled[:0]) == 1.0
    assert piece_coverage(labelled[:, :0], unlabelled[:, :0]) == 1.0
    assert piece_coverage(labelled, sp.csr_matrix((3, 4))) == 1.0  # empty unlabelled rows
    assert piece_coverage(sp.csr_matrix((2, 4)), unlabelled) == 1.0  # empty labelled rows


def test_piece_coverage_when_no_labelled_row_shares_a_piece():
    # Labelled rows {0}, {1}: leave one out, neither is covered, so no ratio. Unlabelled
    # rows on pieces nobody labelled: 0 (the regression would know none of them); on a
    # labelled piece: 1.
    labelled = sp.csr_matrix(np.eye(2, 4))
    assert piece_coverage(labelled, sp.csr_matrix([[0, 0, 1.0, 1.0]])) == 0.0
    assert piece_coverage(labelled, sp.csr_matrix([[1.0, 0, 1.0, 0]])) == 1.0


def test_auto_weight_treats_an_unknown_coverage_as_one():
    assert resolve_weight("auto", 4, 2, float("nan")) == resolve_weight("auto", 4, 2, 1.0)
    assert resolve_weight("auto", 4, 2, 3.0) == resolve_weight("auto", 4, 2, 1.0)
    assert resolve_weight("auto", 4, 2, 0.0) == 0.0


def test_piece_coverage_tells_labels_in_another_language():
    from sklearn.feature_extraction.text import TfidfVectorizer

    en = load_libreoffice_help(languages=["en"], split="train").data
    de = load_libreoffice_help(languages=["de"], split="train").data
    tfidf = TfidfVectorizer(sublinear_tf=True).fit(en + de)
    en, de = tfidf.transform(en), tfidf.transform(de)
    rng = np.random.default_rng(0)
    en, de = en[rng.permutation(en.shape[0])], de[rng.permutation(de.shape[0])]
    # Within a language, 16 labelled pages cover the other pages as they cover each
    # other (about 1); German pages share few words with English ones.
    assert piece_coverage(en[:16], en[16:]) > 0.8
    assert piece_coverage(de[:16], de[16:]) > 0.8
    assert piece_coverage(en[:16], de) < 0.5


@pytest.fixture(scope="module")
def labels_in_another_language():
    """16 labelled English pages, 80 unlabelled Russian ones (the same 4 classes)."""
    rng = np.random.default_rng(2)
    docs, y = [], []
    for language, labelled in (("en", True), ("ru", False)):
        bunch = load_libreoffice_help(languages=[language], split="train")
        for c in range(4):
            rows = rng.choice(np.flatnonzero(bunch.target == c), 4 if labelled else 20, False)
            docs += [bunch.data[i][:300] for i in rows]
            y += [c if labelled else -1] * len(rows)
    return docs, np.array(y)


def test_auto_weight_falls_when_the_labels_are_in_another_language(
    tiny_wordpiece_model, labels_in_another_language, documents
):
    docs, y = labels_in_another_language
    encoder = MultilingualEncoder(tiny_wordpiece_model)
    clf = SemiSupervisedVAEClassifier(encoder, linear_pseudo_labels=0.0, **FAST)
    clf.fit(docs, y)
    labelled = y != -1
    inputs = clf._model_inputs(docs)
    n_dense = clf.inputs_.mean_.shape[0]
    coverage = piece_coverage(inputs[labelled, n_dense:], inputs[~labelled, n_dense:])
    assert coverage < 0.6, coverage
    assert clf.linear_weight_ == pytest.approx(4 / 6 * coverage)
    # Self-trained (the default), the regression also learns from unlabelled rows, in
    # their language: its own rows cover the rest better, and it weighs more.
    taught = SemiSupervisedVAEClassifier(encoder, **FAST).fit(docs, y)
    assert taught.n_pseudo_labels_ > 0
    assert taught.linear_weight_ > clf.linear_weight_
    # Within one language the pieces cover each other: the weight is m / (m + 2).
    docs, y = documents
    clf.fit(docs, y)
    assert clf.linear_weight_ == pytest.approx(4 / 6)
