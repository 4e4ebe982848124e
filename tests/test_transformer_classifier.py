"""TransformerClassifier: the supervised fine-tuned transformer baseline (tiny models only)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import TINY_CORPUS
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import skdgm._transformer_training as training_module
from skdgm import TransformerClassifier, documents_as_array
from skdgm.encoders import MultilingualEncoder

# The topic of each sentence of TINY_CORPUS (weather, tables, reports), in five languages.
TOPICS = ["weather", "table", "report", "weather", "table", "report"]
TOPICS += ["weather", "table", "weather", "table", "weather", "table"]
# 36 distinct documents, 3 per sentence.
DOCS = [f"{sentence} ({copy})" for copy in range(3) for sentence in TINY_CORPUS]
LABELS = np.array(TOPICS * 3, dtype=object)
# High learning rates so that three epochs visibly move a random tiny model.
FAST = dict(
    fine_tune_layers=1,
    max_epochs=3,
    batch_size=8,
    learning_rate=1e-3,
    head_learning_rate=1e-2,
    random_state=0,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: more threads only contend on a busy machine (as in test_benchmark.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def encoder(tiny_wordpiece_model):
    return MultilingualEncoder(tiny_wordpiece_model)


@pytest.fixture(scope="module")
def pretrained(tiny_wordpiece_model):
    """The tiny model's weights as saved on disk."""
    from transformers import BertModel

    return {
        k: v.clone()
        for k, v in BertModel.from_pretrained(tiny_wordpiece_model).state_dict().items()
    }


def _layer(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _changed(tuned: dict, original: dict) -> list[str]:
    assert tuned.keys() == original.keys()
    return [k for k in tuned if not torch.equal(tuned[k].float(), original[k].float())]


# ------------------------------------------------------------------------- fit / predict


def test_fit_predict_with_string_labels(encoder):
    y = LABELS.copy()
    y[::3] = -1  # unlabelled rows mixed with string labels
    clf = TransformerClassifier(encoder, **FAST).fit(DOCS, y)
    np.testing.assert_array_equal(clf.classes_, ["report", "table", "weather"])
    proba = clf.predict_proba(DOCS[:7])
    assert proba.shape == (7, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(DOCS[:7])), proba)
    predictions = clf.predict(DOCS[:7])
    np.testing.assert_array_equal(predictions, clf.classes_[proba.argmax(1)])
    # score counts the labelled rows only, as the SDGM's does.
    labelled = np.array([label != -1 for label in y])
    expected = np.mean(clf.predict(DOCS)[labelled] == y[labelled])
    assert clf.score(DOCS, y) == pytest.approx(expected)
    assert clf.score(DOCS, LABELS) == pytest.approx(np.mean(clf.predict(DOCS) == LABELS))
    assert clf.n_iter_ == len(clf.history_) == FAST["max_epochs"]
    assert set(clf.history_[0]) == {"epoch", "loss", "train_accuracy", "duration"}
    assert clf.tuned_layers_ == clf.encoder_.tuned_layers_ == 1
    assert clf.device_ == "cpu" and not hasattr(clf, "best_epoch_")
    assert not hasattr(encoder, "model_path_")  # the parameter is cloned, never fitted


def test_training_lowers_the_loss(encoder):
    clf = TransformerClassifier(encoder, **{**FAST, "max_epochs": 5}).fit(DOCS, LABELS)
    losses = [record["loss"] for record in clf.history_]
    assert losses[-1] < losses[0]


def test_unlabelled_rows_are_ignored(encoder):
    labelled = TransformerClassifier(encoder, **FAST).fit(DOCS[:12], LABELS[:12])
    # The same labelled rows in the same order, with unlabelled ones in between.
    docs, y = [], []
    for document, label, extra in zip(DOCS[:12], LABELS[:12], DOCS[12:24]):
        docs += [extra, document]
        y += [-1, label]
    mixed = TransformerClassifier(encoder, **FAST).fit(docs, np.array(y, dtype=object))
    np.testing.assert_array_equal(mixed.classes_, labelled.classes_)
    np.testing.assert_allclose(
        mixed.predict_proba(DOCS), labelled.predict_proba(DOCS), rtol=0, atol=1e-6
    )


# ------------------------------------------------------------------------- what trains


def test_only_the_top_layer_trains(encoder, pretrained):
    clf = TransformerClassifier(encoder, **FAST).fit(DOCS, LABELS)
    top = clf.encoder_._top.model.state_dict()
    # The tuned copy holds only the top layer (as its layer 0) and no embedding table.
    assert not any(k.startswith(("embeddings.", "encoder.layer.1.")) for k in top)
    tuned = _layer(top, "encoder.layer.0.")
    original = _layer(pretrained, "encoder.layer.1.")
    changed = _changed(tuned, original)
    matrices = [k for k, v in tuned.items() if v.ndim == 2]
    assert set(matrices) <= set(changed), "every weight matrix of the top layer trains"
    # Predictions go through the tuned layer.
    frozen = clone(encoder).fit(DOCS)
    assert not np.allclose(clf.encoder_.transform(DOCS[:3]), frozen.transform(DOCS[:3]))
    # The pretrained model (shared by every encoder of the process) is untouched.
    assert clf.encoder_._model is frozen._model
    assert _changed(frozen._model.state_dict(), pretrained) == []


def test_all_layers_train_but_not_the_embedding_table(encoder, pretrained):
    clf = TransformerClassifier(encoder, **{**FAST, "fine_tune_layers": "all"}).fit(DOCS, LABELS)
    assert clf.tuned_layers_ == 2
    top = clf.encoder_._top.model.state_dict()
    assert not any(k.startswith("embeddings.") for k in top)
    for index in range(2):
        tuned = _layer(top, f"encoder.layer.{index}.")
        changed = _changed(tuned, _layer(pretrained, f"encoder.layer.{index}."))
        assert {k for k, v in tuned.items() if v.ndim == 2} <= set(changed)
    assert _changed(clone(encoder).fit(["x"])._model.state_dict(), pretrained) == []


def test_lower_layers_run_once_per_document(encoder, monkeypatch):
    model = clone(encoder).fit(["x"])._model  # the process-wide copy that fit will use
    rows_through_bottom = []
    handle = model.encoder.layer[0].register_forward_hook(
        lambda module, args, output: rows_through_bottom.append(args[0].shape[0])
    )
    calls = []
    original = MultilingualEncoder._token_states

    def counting(self, documents, n_top):
        calls.append((len(documents), n_top))
        return original(self, documents, n_top)

    monkeypatch.setattr(MultilingualEncoder, "_token_states", counting)
    y = LABELS.copy()
    y[:6] = -1
    try:
        clf = TransformerClassifier(encoder, **{**FAST, "max_epochs": 4}).fit(DOCS, y)
    finally:
        handle.remove()
    clf.predict(DOCS[:1])  # loads the encoder_'s model (after the count)
    assert clf.encoder_._model is model
    assert calls == [(30, 1)]  # once, for the labelled documents only
    assert sum(rows_through_bottom) == 30  # one window per (short) document, all epochs


# ------------------------------------------------------------------------- randomness


def test_random_state_makes_fits_reproducible(encoder):
    # The legacy global numpy state is what must stay untouched.
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002
    torch_state = torch.get_rng_state()
    first = TransformerClassifier(encoder, **FAST).fit(DOCS, LABELS).predict_proba(DOCS)
    again = TransformerClassifier(encoder, **FAST).fit(DOCS, LABELS).predict_proba(DOCS)
    other = TransformerClassifier(encoder, **{**FAST, "random_state": 1}).fit(DOCS, LABELS)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other.predict_proba(DOCS))
    # Global random states are left as they were.
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)


# ------------------------------------------------------------------------- persistence


def test_pickle_clone_and_device_fallback(encoder):
    clf = TransformerClassifier(encoder, **FAST).fit(DOCS, LABELS)
    proba = clf.predict_proba(DOCS)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(DOCS), proba, rtol=0, atol=1e-6)
    assert restored.history_ == clf.history_
    fresh = clone(clf)
    assert not hasattr(fresh, "head_") and fresh.get_params()["max_epochs"] == 3
    # A model fitted on a GPU loads on a machine without one.
    state = clf.__getstate__()
    state["device_"] = "cuda"
    moved = TransformerClassifier.__new__(TransformerClassifier)
    moved.__setstate__(state)
    if not torch.cuda.is_available():
        assert moved.device_ == "cpu"
        np.testing.assert_allclose(moved.predict_proba(DOCS), proba, rtol=0, atol=1e-6)


def test_warm_start_goes_on_from_the_previous_fit(encoder):
    clf = TransformerClassifier(encoder, **FAST, warm_start=True).fit(DOCS, LABELS)
    first_encoder, proba = clf.encoder_, clf.predict_proba(DOCS)
    first_top = {k: v.clone() for k, v in first_encoder._top.state_dict().items()}
    # With (almost) no learning, a warm start keeps the previous weights...
    clf.set_params(max_epochs=1, learning_rate=1e-12, head_learning_rate=1e-12)
    clf.fit(DOCS, LABELS)
    np.testing.assert_allclose(clf.predict_proba(DOCS), proba, atol=1e-5)
    # ...and a cold start does not.
    cold = clone(clf).set_params(warm_start=False).fit(DOCS, LABELS)
    assert not np.allclose(cold.predict_proba(DOCS), proba, atol=1e-3)
    # Training on from a warm start changes the new copy, not the previous encoder_...
    clf.set_params(max_epochs=2, learning_rate=1e-3, head_learning_rate=1e-2).fit(DOCS, LABELS)
    trained = {k: v.clone() for k, v in clf.encoder_._top.state_dict().items()}
    assert _changed(trained, first_top)
    assert _changed(first_encoder._top.state_dict(), first_top) == []
    # ...and predictions use the new layers, also once the encoder_ reloads its model.
    clf.predict(DOCS[:2])
    assert _changed(clf.encoder_._top.state_dict(), trained) == []
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(DOCS[:12], np.where(LABELS[:12] == "report", "other", LABELS[:12]))
    with pytest.raises(ValueError, match="top 1 layers, but fine_tune_layers=2 means 2"):
        clf.set_params(fine_tune_layers=2).fit(DOCS, LABELS)


# ------------------------------------------------------------------------- meta-estimators


def test_grid_search(encoder):
    search = GridSearchCV(
        TransformerClassifier(encoder, **FAST), {"max_epochs": [1, 2]}, cv=2, n_jobs=1
    ).fit(DOCS, LABELS)
    assert search.best_params_["max_epochs"] in (1, 2)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.predict(DOCS[:4]).shape == (4,)


def test_self_training_on_encoded_documents(encoder):
    y = LABELS.copy()
    y[1::2] = -1
    X = documents_as_array(DOCS)
    with pytest.raises(ValueError):  # why the codec exists: scikit-learn issue #23323
        SelfTrainingClassifier(TransformerClassifier(encoder, **FAST)).fit(DOCS, y)
    self_training = SelfTrainingClassifier(
        TransformerClassifier(encoder, **{**FAST, "max_epochs": 2}),
        criterion="k_best",
        k_best=10,
        max_iter=2,
    ).fit(X, y)
    # 18 unlabelled rows: 10 get a label in the first round, the other 8 in the second.
    assert self_training.n_iter_ == 2
    assert self_training.termination_condition_ == "all_labeled"
    assert self_training.transduction_.shape == (len(DOCS),)
    assert not np.any(self_training.transduction_ == -1)
    np.testing.assert_array_equal(self_training.labeled_iter_[1::2].tolist().count(1), 10)
    np.testing.assert_array_equal(self_training.transduction_[::2], y[::2])
    test = documents_as_array(["Das Wetter ist schön.", "A table in the menu.", ""])
    assert set(self_training.predict(test)) <= set(self_training.classes_)
    assert self_training.predict_proba(test).shape == (3, 3)
    # The encoded documents give the same predictions as the documents themselves.
    inner = self_training.estimator_
    np.testing.assert_array_equal(
        inner.predict(test), inner.predict(["Das Wetter ist schön.", "A table in the menu.", ""])
    )


# ------------------------------------------------------------------------- early stopping


def test_early_stopping_runs(encoder):
    clf = TransformerClassifier(
        encoder, **{**FAST, "max_epochs": 4}, early_stopping=True, validation_fraction=0.25
    ).fit(DOCS, LABELS)
    assert 1 <= clf.best_epoch_ <= clf.n_iter_ <= 4
    assert {"valid_accuracy", "valid_loss"} <= set(clf.history_[0])
    # A later fit without early stopping drops the stale best_epoch_.
    assert not hasattr(clf.set_params(early_stopping=False).fit(DOCS, LABELS), "best_epoch_")


def test_early_stopping_restores_the_best_epoch(encoder, monkeypatch):
    scripted = iter([(0.5, 1.0), (0.9, 0.5), (0.6, 0.4), (0.9, 0.6), (1.0, 0.1)])
    snapshots = []

    def scripted_evaluate(embedder, head, rows, y_index):
        snapshots.append(
            (
                {k: v.clone() for k, v in embedder.top.state_dict().items()},
                {k: v.clone() for k, v in head.state_dict().items()},
            )
        )
        return next(scripted)

    monkeypatch.setattr(training_module, "_evaluate", scripted_evaluate)
    clf = TransformerClassifier(
        encoder,
        **{**FAST, "max_epochs": 10},
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=2,
    ).fit(DOCS, LABELS)
    # Epoch 2 is best; epochs 3 and 4 (a tie in accuracy, worse loss) do not improve.
    assert clf.best_epoch_ == 2 and clf.n_iter_ == 4 and len(snapshots) == 4
    top_state, head_state = snapshots[1]
    assert _changed(clf.head_.state_dict(), head_state) == []
    assert _changed(clf.encoder_._top.state_dict(), top_state) == []
    assert _changed(clf.head_.state_dict(), snapshots[3][1])  # not the last epoch's
    assert [r["valid_accuracy"] for r in clf.history_] == [0.5, 0.9, 0.6, 0.9]


def test_early_stopping_needs_labels_on_both_sides(encoder):
    y = np.full(len(DOCS), -1, dtype=object)
    y[[0, 1, 2, 3]] = ["weather", "table", "report", "weather"]
    clf = TransformerClassifier(encoder, **FAST, early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping=True needs at least 2 labelled rows"):
        clf.fit(DOCS, y)


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "X, y, error, match",
    [
        (DOCS[:4], [-1, -1, -1, -1], ValueError, "no labelled rows"),
        (DOCS[:4], ["a", "a", -1, "a"], ValueError, "single class"),
        (["fine", None, "fine"], [0, 1, 0], TypeError, r"X\[1\] is a NoneType"),
        ("one document", [0], TypeError, "single string"),
        (np.ones((3, 4)), [0, 1, 0], ValueError, "numeric matrix"),
        (DOCS[:4], [0, 1, 0], ValueError, "different lengths"),
    ],
    ids=["no-labels", "one-class", "none", "bare-string", "numbers", "lengths"],
)
def test_bad_input_raises_clear_errors(encoder, X, y, error, match):
    clf = TransformerClassifier(encoder, **FAST)
    with pytest.raises(error, match=match):
        clf.fit(X, np.array(y, dtype=object))
    assert not hasattr(clf, "classes_")  # a failed fit leaves nothing behind


def test_too_many_layers(encoder):
    clf = TransformerClassifier(encoder, **{**FAST, "fine_tune_layers": 5})
    with pytest.raises(ValueError, match="fine_tune_layers=5, but the encoder's model has 2"):
        clf.fit(DOCS, LABELS)


def test_encoder_that_cannot_be_tuned():
    clf = TransformerClassifier(TfidfVectorizer())
    with pytest.raises(InvalidParameterError, match="_token_states"):
        clf.fit(DOCS, LABELS)


def test_unfitted_estimator_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TransformerClassifier().predict(DOCS)


# ------------------------------------------------------------------------- sklearn API


def test_tags():
    tags = TransformerClassifier().__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.estimator_type == "classifier" and not tags.non_deterministic


# With ``two_d_array=False`` (documents in), ``parametrize_with_checks`` skips every check:
# sklearn's checks feed numeric 2-D arrays. These look only at the parameters and the
# constructor, so they apply; ``check_param_validation`` passes because parameters are
# validated before the data.
API_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_param_validation",
]


@pytest.mark.parametrize("check_name", API_CHECKS)
def test_sklearn_api_checks(check_name):
    getattr(estimator_checks, check_name)("TransformerClassifier", TransformerClassifier())


def test_auto_epochs_give_enough_steps_with_few_labels(encoder):
    few = LABELS.copy()
    few[8:] = -1  # 8 labels: one step a pass in batches of 16, so 100 passes
    clf = TransformerClassifier(encoder, **{**FAST, "max_epochs": "auto", "batch_size": 16})
    assert clf.fit(DOCS, few).n_iter_ == 100
    clf.set_params(batch_size=4).fit(DOCS, LABELS)  # 36 labels: 9 steps a pass, 20 passes
    assert clf.n_iter_ == 20


# ------------------------------------------------------------ divergence and Ctrl-C


def test_divergence_names_the_loss_and_keeps_the_previous_fit(encoder):
    clf = TransformerClassifier(encoder, **FAST).fit(DOCS, LABELS)
    expected = clf.predict_proba(DOCS)
    with pytest.raises(
        FloatingPointError, match="diverged at epoch 1, terms not finite: cross-entropy"
    ) as raised:
        clf.set_params(head_learning_rate=1e30, learning_rate=1e30).fit(DOCS, LABELS)
    assert "Lower learning_rate or head_learning_rate" in str(raised.value)
    np.testing.assert_array_equal(clf.predict_proba(DOCS), expected)


def test_ctrl_c_leaves_a_usable_estimator_with_a_warning(encoder, monkeypatch):
    shown = training_module.show_progress

    def interrupt_at_epoch_2(progress, record):
        shown(progress, record)
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training_module, "show_progress", interrupt_at_epoch_2)
    clf = TransformerClassifier(encoder, **{**FAST, "max_epochs": 5})
    with pytest.warns(UserWarning, match="interrupted after 2 complete epoch"):
        clf.fit(DOCS, LABELS)
    assert clf.n_iter_ == 2 and len(clf.history_) == 2
    proba = clf.predict_proba(DOCS)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0)
