"""SemiSupervisedVAEClassifier: the scikit-learn contract, bad input, and determinism."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdgm import SemiSupervisedVAEClassifier

FAST = dict(max_epochs=15, hidden_dim=32, z1_dim=8, z2_dim=4, random_state=0)


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    topics = rng.dirichlet(np.full(40, 0.2), size=3)
    y = rng.integers(0, 3, size=200)
    X = np.stack([rng.multinomial(30, topics[c]) for c in y]).astype(float)
    y_partial = y.copy()
    y_partial[24:] = -1
    return X, y, y_partial


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _, y_partial = blobs
    return SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)


def test_fit_predict_and_fitted_attributes(blobs, fitted):
    X, y, y_partial = blobs
    clf = fitted
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_features_in_ == 6
    assert clf.n_iter_ == len(clf.history_) >= 1
    assert {"loss", "cross_entropy", "kl_z1", "kl_z2", "nll", "active_units"} <= set(
        clf.history_[-1]
    )
    assert clf.transduction_.shape == y.shape
    labelled = y_partial != -1
    np.testing.assert_array_equal(clf.transduction_[labelled], y[labelled])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    assert clf.transform(X).shape == (len(X), FAST["z1_dim"])
    assert clf.score(X, y) > 0.8  # well-separated blobs


def test_classifier_sees_inputs_auto_is_off_on_numeric_features(blobs, fitted):
    X, y, y_partial = blobs
    assert fitted.get_params()["classifier_sees_inputs"] == "auto"
    assert fitted.module_.q_y_inputs is None  # "auto" on a numeric X: q(y | z1)
    seeing = SemiSupervisedVAEClassifier(**FAST, classifier_sees_inputs=True).fit(X, y_partial)
    assert seeing.module_.q_y_inputs is not None
    assert not np.allclose(seeing.predict_proba(X), fitted.predict_proba(X))


def test_score_ignores_unlabelled_rows(blobs, fitted):
    X, y, _ = blobs
    y_masked = y.copy()
    y_masked[::2] = -1
    pred = fitted.predict(X)
    expected = np.mean(pred[1::2] == y[1::2])
    assert fitted.score(X, y_masked) == pytest.approx(expected)
    with pytest.raises(ValueError, match="labelled rows"):
        fitted.score(X, np.full(len(y), -1))


def test_string_labels_with_minus_one(blobs):
    X, y, _ = blobs
    names = np.array(["red", "green", "blue"], dtype=object)[y]
    names[30:] = -1
    clf = SemiSupervisedVAEClassifier(**FAST).fit(X, names)
    assert set(clf.classes_) == {"red", "green", "blue"}
    assert set(clf.predict(X)) <= {"red", "green", "blue"}


def test_same_random_state_same_predictions_and_global_rng_untouched(blobs):
    X, _, y_partial = blobs
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 (the legacy global state is what must stay untouched)
    torch_before, np_before = (
        torch.random.get_rng_state(),
        np.random.get_state()[1].copy(),  # noqa: NPY002
    )
    first = SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)
    assert torch.equal(torch.random.get_rng_state(), torch_before)
    np.testing.assert_array_equal(np.random.get_state()[1], np_before)  # noqa: NPY002
    second = SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    other = SemiSupervisedVAEClassifier(**{**FAST, "random_state": 1}).fit(X, y_partial)
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))


def test_clone_and_pickle_round_trip(blobs, fitted):
    X, _, _ = blobs
    unfitted = clone(fitted)
    assert unfitted.get_params() == fitted.get_params()
    assert not hasattr(unfitted, "classes_")
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))


def test_sparse_input_matches_dense(counts):
    X, y, y_partial = counts
    dense = SemiSupervisedVAEClassifier(decoder="bow", **FAST).fit(X, y_partial)
    sparse = SemiSupervisedVAEClassifier(decoder="bow", **FAST).fit(sp.csr_matrix(X), y_partial)
    np.testing.assert_allclose(dense.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X)))
    assert dense.score(X, y) > 0.6


def test_pipeline_and_grid_search_parallel(blobs):
    X, y, y_partial = blobs
    pipe = make_pipeline(StandardScaler(), SemiSupervisedVAEClassifier(**FAST))
    grid = GridSearchCV(
        pipe, {"semisupervisedvaeclassifier__alpha": [1.0, 10.0]}, cv=2, n_jobs=2
    ).fit(X, y_partial)
    assert np.isfinite(grid.best_score_)
    assert grid.predict(X).shape == y.shape


def test_warm_start_continues_training(blobs):
    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "warm_start": True, "max_epochs": 3})
    clf.fit(X, y_partial)
    first_module, first_start = clf.module_, clf.history_[0]["loss"]
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    proba = clf.predict_proba(X)
    # Zero more epochs: the parameters of the previous fit, untouched.
    clf.set_params(max_epochs=0).fit(X, y_partial)
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=1e-6)
    clf.set_params(max_epochs=3).fit(X, y_partial)
    assert clf.history_[0]["loss"] < first_start  # goes on from trained weights
    assert first_module is not clf.module_  # trained a copy ...
    for key, value in first_module.state_dict().items():  # ... leaving the old one whole
        assert torch.equal(value, before[key])
    clf.set_params(warm_start=False, max_epochs=0).fit(X, y_partial)
    assert not np.allclose(clf.predict_proba(X), proba, atol=1e-3)  # a fresh model


def test_warm_start_does_not_rerun_the_warm_up(blobs):
    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(
        **{**FAST, "warm_start": True, "max_epochs": 2, "warm_up_epochs": 2}
    ).fit(X, y_partial)
    assert [h["phase"] for h in clf.history_] == ["warm-up"] * 2 + ["joint"] * 2
    clf.fit(X, y_partial)
    assert [h["phase"] for h in clf.history_] == ["joint"] * 2
    assert clf.n_iter_ == 2


def test_warm_start_refuses_other_data(blobs, counts):
    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "warm_start": True, "max_epochs": 1})
    clf.fit(X, y_partial)
    with pytest.raises(ValueError, match="previous fit's width|n_features|features"):
        clf.fit(X[:, :4], y_partial)
    Xc, _, yc = counts
    with pytest.raises(ValueError, match="classes|decoder"):
        clf.set_params(decoder="bow").fit(Xc, yc)


@pytest.mark.parametrize(
    "change",
    [
        {"z1_dim": 6},
        {"z2_dim": 3},
        {"hidden_dim": 16},
        {"n_layers": 2},
        {"dropout": 0.3},
        {"word_dropout": 0.2},
        {"classifier_sees_inputs": True},
    ],
    ids=lambda change: next(iter(change)),
)
def test_warm_start_refuses_a_changed_network(blobs, change):
    # Before, the fit went on with the old networks and said nothing.
    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "warm_start": True, "max_epochs": 1})
    clf.fit(X, y_partial)
    module, proba = clf.module_, clf.predict_proba(X)
    name, value = next(iter(change.items()))
    with pytest.raises(ValueError, match=rf"{name}={value!r}, previously .*warm_start=False"):
        clf.set_params(**change).fit(X, y_partial)
    assert clf.module_ is module  # the refused fit changed nothing
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    clf.set_params(warm_start=False).fit(X, y_partial)  # a new network of the new shape
    assert clf._module_kwargs[name] == value


def test_set_params_after_fit_does_not_change_predictions(blobs, tiny_wordpiece_model):
    from skdgm.encoders import MultilingualEncoder

    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "max_epochs": 2}).fit(X, y_partial)
    expected = clf.predict_proba(X)
    clf.set_params(decoder="bow")  # would demand counts if predict read the parameter
    np.testing.assert_array_equal(clf.predict_proba(X), expected)

    docs = [f"document {i} about {'tables' if i % 2 else 'weather'}" for i in range(24)]
    y = np.where(np.arange(24) < 8, np.arange(24) % 2, -1)
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model, device="cpu"), **{**FAST, "max_epochs": 2}
    ).fit(docs, y)
    expected = clf.predict_proba(docs)
    clf.set_params(encoder=None, decoder="gaussian")
    np.testing.assert_array_equal(clf.predict_proba(docs), expected)


def test_ctrl_c_leaves_a_usable_estimator_with_a_warning(blobs, monkeypatch):
    from skdgm._sdgm import _training

    X, y, y_partial = blobs
    shown = _training.show_progress

    def interrupt_at_epoch_3(progress, record):
        shown(progress, record)
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(_training, "show_progress", interrupt_at_epoch_3)
    clf = SemiSupervisedVAEClassifier(**FAST)
    with pytest.warns(UserWarning, match="interrupted after 3 complete epoch") as caught:
        clf.fit(X, y_partial)
    assert caught[0].filename == __file__  # the warning points at the caller's fit
    assert clf.n_iter_ == 3 and len(clf.history_) == 3
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all() and clf.transduction_.shape == y.shape


def test_divergence_names_the_term_and_keeps_the_previous_fit(blobs):
    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "max_epochs": 2}).fit(X, y_partial)
    expected = clf.predict_proba(X)
    with pytest.raises(FloatingPointError, match="diverged at epoch 1, terms not finite: .*nll"):
        clf.set_params(learning_rate=1e6).fit(X, y_partial)
    np.testing.assert_array_equal(clf.predict_proba(X), expected)


def test_running_out_of_memory_says_to_lower_batch_size(blobs, monkeypatch):
    from skdgm._sdgm import _training

    X, _, y_partial = blobs

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(_training, "forward_terms", out_of_memory)
    with pytest.raises(MemoryError, match=r"lower batch_size \(now 64\)"):
        SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)
    with pytest.raises(MemoryError, match="can't allocate memory"):  # the CPU's wording
        monkeypatch.setattr(
            _training,
            "forward_terms",
            lambda *a, **k: (_ for _ in ()).throw(
                RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried ...")
            ),
        )
        SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)


def test_a_failed_fit_leaves_the_estimator_as_it_was(blobs):
    from sklearn.exceptions import NotFittedError

    X, y, y_partial = blobs
    y_few = np.full(len(y), -1)
    y_few[:6] = [0, 1, 2, 0, 1, 2]
    bad = dict(early_stopping=True, validation_fraction=0.1)  # too few labels to hold out
    clf = SemiSupervisedVAEClassifier(**{**FAST, **bad})
    with pytest.raises(ValueError, match="early_stopping=True needs"):
        clf.fit(X, y_few)
    assert not clf.__sklearn_is_fitted__()
    with pytest.raises(NotFittedError):
        clf.predict(X)
    clf.set_params(early_stopping=False).fit(X, y_partial)
    fitted = {k: v for k, v in clf.__dict__.items() if k.endswith("_") or k.startswith("_")}
    expected = clf.predict_proba(X)
    with pytest.raises(ValueError, match="early_stopping=True needs"):
        clf.set_params(**bad).fit(X[:, :4], y_few)
    now = {k: v for k, v in clf.__dict__.items() if k.endswith("_") or k.startswith("_")}
    assert now.keys() == fitted.keys()
    assert all(now[k] is v for k, v in fitted.items())  # n_features_in_ included
    np.testing.assert_array_equal(clf.predict_proba(X), expected)


def test_no_unlabelled_rows_warns(blobs):
    X, y, _ = blobs
    with pytest.warns(UserWarning, match="No unlabelled rows") as caught:
        SemiSupervisedVAEClassifier(**{**FAST, "max_epochs": 1}).fit(X, y)
    assert caught[0].filename == __file__  # the warning points at the caller's fit


def test_early_stopping_keeps_best_epoch(blobs):
    X, y, _ = blobs
    y_partial = y.copy()
    y_partial[90:] = -1
    params = {**FAST, "max_epochs": 60, "early_stopping": True, "n_iter_no_change": 3}
    params["learning_rate"] = 1e-2  # overfits the held-out rows within 60 epochs
    clf = SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    assert "valid_accuracy" in clf.history_[0]
    assert clf.n_iter_ == clf.best_epoch_ + 3 < 60  # stopped 3 epochs after the best
    scores = [(h["valid_accuracy"], -h["valid_loss"]) for h in clf.history_]
    assert clf.best_epoch_ == 1 + scores.index(max(scores))
    # The same fit, stopped at the best epoch: the parameters kept are that epoch's.
    at_best = SemiSupervisedVAEClassifier(**{**params, "max_epochs": clf.best_epoch_})
    at_best.fit(X, y_partial)
    assert at_best.n_iter_ == at_best.best_epoch_ == clf.best_epoch_
    np.testing.assert_allclose(at_best.predict_proba(X), clf.predict_proba(X), rtol=1e-5)
    with pytest.raises(ValueError, match="early_stopping=True needs"):
        y_few = np.full(len(y), -1)
        y_few[:6] = [0, 1, 2, 0, 1, 2]
        clf.set_params(early_stopping=True, validation_fraction=0.1).fit(X, y_few)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "make_y, error, match",
    [
        (lambda y: np.full(len(y), -1), ValueError, "no labelled rows"),
        (lambda y: np.where(np.arange(len(y)) < 10, 0, -1), ValueError, "single class"),
        (lambda y: y[:-5], ValueError, "inconsistent numbers of samples|different lengths"),
        (lambda y: y + 0.5, ValueError, "floats with fractions"),
        (lambda y: np.where(np.arange(len(y)) < 5, np.nan, y), ValueError, "NaN"),
    ],
    ids=["no-labels", "one-class", "lengths", "fractional", "nan-labels"],
)
def test_bad_labels_raise_clear_errors(blobs, make_y, error, match):
    X, y, _ = blobs
    with pytest.raises(error, match=match):
        SemiSupervisedVAEClassifier(**FAST).fit(X, make_y(y.astype(float)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_raise(blobs, bad):
    X, _, y_partial = blobs
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)


@pytest.mark.parametrize(
    "transform, match",
    [(lambda X: X - 1.0, "non-negative"), (lambda X: X * 0.5, "integer")],
    ids=["negative", "non-integer"],
)
def test_bow_decoder_needs_counts(counts, transform, match):
    X, _, y_partial = counts
    with pytest.raises(ValueError, match=match):
        SemiSupervisedVAEClassifier(decoder="bow", **FAST).fit(transform(X), y_partial)


def test_user_arrays_are_not_modified(blobs):
    X, _, y_partial = blobs
    X_sparse = sp.csr_matrix(np.abs(np.round(X)))
    copies = [X.copy(), y_partial.copy(), X_sparse.copy()]
    clf = SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)
    clf.predict(X)
    clf.score(X, y_partial)
    SemiSupervisedVAEClassifier(decoder="bow", **FAST).fit(X_sparse, y_partial)
    np.testing.assert_array_equal(X, copies[0])
    np.testing.assert_array_equal(y_partial, copies[1])
    assert (X_sparse != copies[2]).nnz == 0


def test_predict_before_fit_and_wrong_width(blobs, fitted):
    X, _, _ = blobs
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SemiSupervisedVAEClassifier().predict(X)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :3])


def test_unavailable_cuda_is_a_clear_error(blobs):
    X, _, y_partial = blobs
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        SemiSupervisedVAEClassifier(**{**FAST, "device": "cuda"}).fit(X, y_partial)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_and_pickle_to_cpu(blobs):
    X, y, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "device": "cuda"}).fit(X, y_partial)
    assert clf.device_.startswith("cuda")
    state = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(state.predict_proba(X), clf.predict_proba(X), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clf.score(X, y) > 0.8


# ------------------------------------------------------------ options, each exercised
def test_kl_annealing_raises_the_weight_linearly(blobs):
    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(
        **{**FAST, "max_epochs": 5, "kl_annealing_epochs": 4, "warm_up_epochs": 1}
    ).fit(X, y_partial)
    weights = [h["kl_weight"] for h in clf.history_]
    np.testing.assert_allclose(weights, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0])


def test_free_bits_leave_small_kl_unpenalised(blobs):
    import torch

    from skdgm._sdgm._losses import forward_terms

    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "max_epochs": 1}).fit(X, y_partial)
    inputs = torch.as_tensor(clf.inputs_.transform(X, None)[0][:40], dtype=torch.float32)
    y = torch.as_tensor(np.searchsorted(clf.classes_, y_partial[:20]))
    clf.module_.eval()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        plain = forward_terms(clf.module_, inputs, inputs, y, free_bits=0.0)[0]["kl_z1"]
        torch.manual_seed(0)
        floored = forward_terms(clf.module_, inputs, inputs, y, free_bits=5.0)[0]["kl_z1"]
    # Each of the z1_dim dimensions costs at least 5 nats: the total is at least 5 x 8.
    assert torch.all(floored >= 5.0 * clf.z1_dim - 1e-4)
    assert torch.all(floored >= plain - 1e-5) and not torch.allclose(floored, plain)


def test_labelled_prior_matters_only_when_the_labels_are_unbalanced(blobs):
    X, y, _ = blobs
    balanced = np.full(len(y), -1)
    for c in range(3):
        balanced[np.flatnonzero(y == c)[:8]] = c
    fits = {
        prior: SemiSupervisedVAEClassifier(**{**FAST, "prior": prior}).fit(X, balanced)
        for prior in ("uniform", "labelled")
    }
    np.testing.assert_allclose(
        fits["uniform"].predict_proba(X), fits["labelled"].predict_proba(X), rtol=1e-5
    )
    unbalanced = balanced.copy()
    unbalanced[np.flatnonzero(y == 0)[8:30]] = 0  # class 0: 30 labels, the others 8
    fits = {
        prior: SemiSupervisedVAEClassifier(**{**FAST, "prior": prior}).fit(X, unbalanced)
        for prior in ("uniform", "labelled")
    }
    assert not np.allclose(fits["uniform"].predict_proba(X), fits["labelled"].predict_proba(X))


def test_score_weights_rows_and_ignores_unlabelled_ones(blobs, fitted):
    from sklearn.metrics import accuracy_score

    X, y, _ = blobs
    predicted = fitted.predict(X)
    weights = np.random.default_rng(0).uniform(size=len(y))
    y_scored = y.copy()
    y_scored[::5] = -1  # ignored, whatever their weight
    kept = y_scored != -1
    expected = accuracy_score(y[kept], predicted[kept], sample_weight=weights[kept])
    assert fitted.score(X, y_scored, sample_weight=weights) == pytest.approx(expected)
    right = (predicted == y).astype(float)  # weight only the right predictions: 1.0
    assert fitted.score(X, y, sample_weight=right) == 1.0
    assert fitted.score(X, y, sample_weight=1 - right) == 0.0


def _record_averaged_states(monkeypatch):
    """Spy on the parameter averaging: the model's state at each averaged epoch."""
    from skdgm._sdgm import _training

    recorded = []
    add = _training._Average.add

    def spy(self, model, tuned_inputs):
        recorded.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        add(self, model, tuned_inputs)

    monkeypatch.setattr(_training._Average, "add", spy)
    return recorded


def test_average_epochs_ends_with_the_mean_of_the_last_epochs(blobs, monkeypatch):
    X, _, y_partial = blobs
    recorded = _record_averaged_states(monkeypatch)
    clf = SemiSupervisedVAEClassifier(**{**FAST, "max_epochs": 6}, average_epochs=3)
    clf.fit(X, y_partial)
    assert len(recorded) == 3  # epochs 4, 5 and 6
    final = clf.module_.state_dict()
    for key, value in final.items():
        if value.is_floating_point():
            mean = torch.stack([state[key] for state in recorded]).mean(0)
            torch.testing.assert_close(value, mean)
    # The mean is not the last epoch's parameters: averaging changed the model.
    assert not torch.equal(final["q_y.1.weight"], recorded[-1]["q_y.1.weight"])


def test_average_epochs_of_one_is_the_last_epoch(blobs):
    X, _, y_partial = blobs
    last = SemiSupervisedVAEClassifier(**FAST, average_epochs=0).fit(X, y_partial)
    averaged = SemiSupervisedVAEClassifier(**FAST, average_epochs=1).fit(X, y_partial)
    np.testing.assert_array_equal(averaged.predict_proba(X), last.predict_proba(X))
    default = SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)  # the last 7 of 15
    assert not np.array_equal(default.predict_proba(X), last.predict_proba(X))


def test_average_epochs_skips_warm_up_and_early_stopping(blobs, monkeypatch):
    X, y, _ = blobs
    recorded = _record_averaged_states(monkeypatch)
    y_partial = np.where(np.arange(len(y)) < 60, y, -1)
    params = {**FAST, "max_epochs": 5, "warm_up_epochs": 3, "average_epochs": 10}
    SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    assert len(recorded) == 2  # the second half of the 5 joint epochs, no warm-up epoch
    recorded.clear()
    SemiSupervisedVAEClassifier(**params, early_stopping=True).fit(X, y_partial)
    assert recorded == []  # the best epoch's parameters are kept instead


def test_an_epoch_passes_over_the_larger_set_of_rows(blobs, monkeypatch):
    # After pseudo-labelling, labelled rows can outnumber the unlabelled ones: an epoch
    # still sees every labelled row once, the few unlabelled rows cycling beside them.
    from skdgm._sdgm import _training

    X, y, _ = blobs
    y_partial = y.copy()
    y_partial[200:] = -1  # 200 labelled, 40 unlabelled
    batches = []
    forward_terms = _training.forward_terms

    def spy(model, inputs, targets, y_l, free_bits):
        batches.append((len(y_l), len(inputs) - len(y_l)))
        return forward_terms(model, inputs, targets, y_l, free_bits)

    monkeypatch.setattr(_training, "forward_terms", spy)
    params = dict(FAST, max_epochs=1, batch_size=32, average_epochs=0)
    SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    assert len(batches) == 7  # ceil(200 / 32), not ceil(40 / 32)
    assert all(n_l == 32 and n_u == 32 for n_l, n_u in batches)


def _unlabelled_batches(monkeypatch) -> list:
    """Record the unlabelled rows of each batch the training loop forms."""
    from skdgm._sdgm import _training

    rows: list = []
    forward_terms = _training.forward_terms

    def spy(model, inputs, targets, y_l, free_bits):
        rows.append(inputs[len(y_l) :].detach().clone())
        return forward_terms(model, inputs, targets, y_l, free_bits)

    monkeypatch.setattr(_training, "forward_terms", spy)
    return rows


def test_epoch_size_bounds_an_epoch_and_sees_every_row(blobs, monkeypatch):
    X, _, y_partial = blobs  # 30 labelled, 210 unlabelled
    batches = _unlabelled_batches(monkeypatch)
    params = dict(FAST, max_epochs=7, batch_size=32, average_epochs=0)
    SemiSupervisedVAEClassifier(**params, epoch_size=64).fit(X, y_partial)
    assert len(batches) == 7 * 2  # two batches of 32 an epoch, not ceil(210 / 32) = 7
    # The first 4 epochs take 4 x 64 = 256 rows of a shuffled order carried on: every one
    # of the 210 unlabelled rows once, then 46 of the next order.
    seen = torch.cat(batches[:8]).double().numpy()
    scaled = StandardScaler().fit(X).transform(X).astype(np.float32)
    unlabelled = scaled[y_partial == -1]
    first_pass = seen[:210]
    order = [int(np.abs(unlabelled - row).sum(1).argmin()) for row in first_pass]
    assert sorted(order) == list(range(210))


def test_epoch_size_above_the_rows_changes_nothing(blobs):
    X, _, y_partial = blobs
    params = dict(FAST, max_epochs=5)
    every = SemiSupervisedVAEClassifier(**params, epoch_size=None, max_unlabelled=None)
    every.fit(X, y_partial)
    capped = SemiSupervisedVAEClassifier(**params, epoch_size=210).fit(X, y_partial)
    np.testing.assert_array_equal(every.predict_proba(X), capped.predict_proba(X))
    assert [r["loss"] for r in every.history_] == [r["loss"] for r in capped.history_]
    # The defaults bound nothing on fewer unlabelled rows than they allow: a fit of a
    # corpus of the benchmark's size is the fit it was before they existed.
    default = SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    assert default.epoch_size >= 210 and default.max_unlabelled >= 210
    np.testing.assert_array_equal(every.predict_proba(X), default.predict_proba(X))


def _pickled_and_saved(clf, X, tmp_path):
    """``clf`` through pickle and through skdgm.save/load: both predict as it does."""
    import skdgm

    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    skdgm.save(clf, tmp_path / "model")
    restored = skdgm.load(tmp_path / "model")
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    return restored


def test_epoch_size_is_reproducible_and_keeps_warm_start_pickle_and_save(blobs, tmp_path):
    X, _, y_partial = blobs
    params = dict(FAST, max_epochs=4, epoch_size=50)
    first = SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    second = SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    differs = SemiSupervisedVAEClassifier(**dict(params, epoch_size=None)).fit(X, y_partial)
    assert not np.allclose(first.predict_proba(X), differs.predict_proba(X))
    first.set_params(warm_start=True).fit(X, y_partial)
    assert first.n_iter_ == 4 and first.get_params()["epoch_size"] == 50
    restored = _pickled_and_saved(first, X, tmp_path)
    assert restored.epoch_size == 50


@pytest.mark.parametrize("bad", [0, -5, 2.5, "all"])
def test_bad_epoch_size(blobs, bad):
    X, _, y_partial = blobs
    with pytest.raises(ValueError, match="epoch_size"):
        SemiSupervisedVAEClassifier(**FAST, epoch_size=bad).fit(X, y_partial)


def test_max_unlabelled_fits_on_a_sample_and_predicts_the_rest(blobs, tmp_path):
    X, _, y_partial = blobs  # 30 labelled, 210 unlabelled
    params = dict(FAST, max_epochs=5, max_unlabelled=50)
    clf = SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    # Every row gets a label: the given ones, the model's prediction for the others.
    labelled = y_partial != -1
    np.testing.assert_array_equal(clf.transduction_[labelled], y_partial[labelled])
    predicted = clf.predict(X)
    np.testing.assert_array_equal(clf.transduction_[~labelled], predicted[~labelled])
    # The sample is the fit's: reproducible, and the same as fitting on it by hand.
    from skdgm._validation import unlabelled_sample

    again = SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    left_out, rows = unlabelled_sample(labelled, 50, seed)
    assert len(left_out) == 160 and len(rows) == 80
    by_hand = SemiSupervisedVAEClassifier(**dict(params, max_unlabelled=None))
    by_hand.fit(X[rows], y_partial[rows])
    np.testing.assert_array_equal(by_hand.predict_proba(X), clf.predict_proba(X))
    # A warm start learns from the same sample; pickling and skdgm.save keep the model.
    clf.set_params(warm_start=True).fit(X, y_partial)
    assert clf.n_iter_ == 5 and len(clf.transduction_) == len(y_partial)
    assert _pickled_and_saved(clf, X, tmp_path).max_unlabelled == 50
    # Above the number of unlabelled rows it changes nothing.
    every = SemiSupervisedVAEClassifier(**dict(params, max_unlabelled=None)).fit(X, y_partial)
    same = SemiSupervisedVAEClassifier(**dict(params, max_unlabelled=210)).fit(X, y_partial)
    np.testing.assert_array_equal(every.predict_proba(X), same.predict_proba(X))
