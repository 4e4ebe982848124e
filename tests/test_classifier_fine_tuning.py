"""The end-to-end SDGM: the encoder's top layers trained with the SDGM (fine_tune_layers > 0)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skdgm import SemiSupervisedVAEClassifier
from skdgm.datasets import load_libreoffice_help
from skdgm.encoders import MultilingualEncoder, _loading

FAST = dict(
    max_epochs=3,
    fine_tune_epochs=2,
    fine_tune_learning_rate=1e-3,
    hidden_dim=16,
    z1_dim=4,
    z2_dim=2,
    vocabulary_size=50,
    random_state=0,
)


@pytest.fixture(autouse=True)
def _fresh_models():
    _loading._LOADED_MODELS.clear()
    yield
    _loading._LOADED_MODELS.clear()


@pytest.fixture(scope="module")
def documents():
    """Short real help pages in two languages, 3 labels per class."""
    bunch = load_libreoffice_help(languages=["en", "de"], split="train")
    index = np.random.default_rng(0).choice(len(bunch.data), 48, replace=False)
    docs = [bunch.data[i][:200] for i in index]
    y = bunch.target[index]
    y_partial = np.full(len(y), -1)
    for c in range(4):
        y_partial[np.flatnonzero(y == c)[:3]] = c
    return docs, y_partial


def _layer_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_top_layers_train_and_lower_ones_do_not(tiny_wordpiece_model, documents):
    docs, y = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), fine_tune_layers=1, **FAST
    ).fit(docs, y)
    pretrained = clf.encoder_._model  # the shared, frozen model
    before_top = _layer_weights(pretrained.encoder.layer[1])
    tuned_top = clf.encoder_._top.model.encoder.layer[0]
    assert clf.encoder_.tuned_layers_ == 1
    changed = [
        name
        for name, value in tuned_top.state_dict().items()
        if not torch.allclose(value, before_top[name])
    ]
    assert len(changed) >= len(before_top) // 2, changed
    # The pretrained model (lower layer, embeddings, top) is untouched by training.
    fresh = MultilingualEncoder(tiny_wordpiece_model).fit(docs)
    _loading._LOADED_MODELS.clear()
    reloaded = MultilingualEncoder(tiny_wordpiece_model).fit(docs)._model
    for name, value in reloaded.state_dict().items():
        assert torch.equal(value, pretrained.state_dict()[name]), name
    assert [h["phase"] for h in clf.history_] == ["joint"] * 3 + ["fine-tune"] * 2
    # predict and transform run through the tuned layers.
    tuned_vectors = clf.encoder_.transform(docs)
    assert not np.allclose(tuned_vectors, fresh.transform(docs), atol=1e-4)


def test_lower_layers_run_once_per_document_per_fit(tiny_unigram_model, documents):
    docs, y = documents
    encoder = MultilingualEncoder(tiny_unigram_model)
    shared = encoder.fit(docs)._model  # the model every clone of this encoder shares
    rows = {"lower": 0, "top": 0}
    watched = {id(shared.encoder.layer[0]): "lower", id(shared.encoder.layer[1]): "top"}

    def count(module, inputs, output):
        if id(module) in watched:  # copies of the layer (which copy the hook) do not count
            rows[watched[id(module)]] += inputs[0].shape[0]

    hooks = [shared.encoder.layer[i].register_forward_hook(count) for i in (0, 1)]
    try:
        params = {**FAST, "max_epochs": 4, "fine_tune_epochs": 4}
        SemiSupervisedVAEClassifier(encoder, fine_tune_layers=1, **params).fit(docs, y)
    finally:
        for hook in hooks:
            hook.remove()
    assert rows["lower"] == len(docs)  # one pass over each document for the whole fit
    assert rows["top"] == 0  # training runs the trainable copy, never the shared layer


def test_fine_tuning_is_reproducible_and_pickles(tiny_wordpiece_model, documents):
    docs, y = documents
    make = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), fine_tune_layers=2, **FAST
    )
    first = clone(make).fit(docs, y)
    second = clone(make).fit(docs, y)
    proba = first.predict_proba(docs)
    np.testing.assert_array_equal(proba, second.predict_proba(docs))
    other = clone(make).set_params(random_state=1).fit(docs, y)
    assert not np.allclose(other.predict_proba(docs), proba)
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_allclose(restored.predict_proba(docs), proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(restored.predict(docs), first.predict(docs))
    assert restored.transform(docs).shape == (len(docs), FAST["z1_dim"])


def test_grid_search_and_warm_start(tiny_wordpiece_model, documents):
    docs, y = documents
    labelled = np.flatnonzero(y != -1)
    y_cv = y.copy()
    y_cv[labelled] = np.tile([0, 1, 2, 3], 3)[: len(labelled)]
    search = GridSearchCV(
        SemiSupervisedVAEClassifier(MultilingualEncoder(tiny_wordpiece_model), **FAST),
        {"fine_tune_layers": [0, 1]},
        cv=[(np.arange(len(docs)), labelled)],
    ).fit(docs, y_cv)
    assert set(search.cv_results_["param_fine_tune_layers"]) == {0, 1}
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), fine_tune_layers=1, warm_start=True, **FAST
    ).fit(docs, y)
    after_first = _layer_weights(clf.encoder_._top)
    clf.fit(docs, y)
    assert len(clf.history_) == FAST["max_epochs"] + FAST["fine_tune_epochs"]
    # The second fit went on from the first fit's tuned layers, not from the pretrained ones.
    pretrained = clone(clf.encoder).fit(docs)._tunable_top(1)
    first_step = {
        k: (after_first[k] - v).abs().max() for k, v in _layer_weights(pretrained).items()
    }
    second_step = {
        k: (clf.encoder_._top.state_dict()[k] - v).abs().max()
        for k, v in _layer_weights(pretrained).items()
    }
    assert sum(second_step.values()) > sum(first_step.values())


def _folder_fingerprint(folder: str) -> str:
    digest = hashlib.sha1()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_model_folder_and_frozen_cache_are_left_alone(tiny_unigram_model, documents, tmp_path):
    docs, y = documents
    before = _folder_fingerprint(tiny_unigram_model)
    frozen_encoder = MultilingualEncoder(tiny_unigram_model, cache_dir=tmp_path).fit(docs)
    frozen = frozen_encoder.transform(docs)
    on_disk = sorted(p.name for p in tmp_path.rglob("*.npy"))
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_unigram_model, cache_dir=tmp_path), fine_tune_layers=1, **FAST
    ).fit(docs, y)
    clf.predict(docs)
    assert _folder_fingerprint(tiny_unigram_model) == before
    # Neither cache serves one kind of vector for the other.
    np.testing.assert_array_equal(frozen_encoder.transform(docs), frozen)
    assert not np.allclose(clf.encoder_.transform(docs), frozen, atol=1e-4)
    assert sorted(p.name for p in tmp_path.rglob("*.npy")) == on_disk


def test_clear_errors(tiny_wordpiece_model, documents):
    docs, y = documents
    with pytest.raises(ValueError, match="has 2 layers; use 0 \\(frozen\\) to 2"):
        SemiSupervisedVAEClassifier(
            MultilingualEncoder(tiny_wordpiece_model), fine_tune_layers=3, **FAST
        ).fit(docs, y)
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="fine_tune_layers=1 fine-tunes the encoder, but"):
        SemiSupervisedVAEClassifier(fine_tune_layers=1).fit(X, np.r_[[0, 1] * 3, [-1] * 14])


def test_average_epochs_averages_the_tuned_layers_too(
    tiny_wordpiece_model, documents, monkeypatch
):
    from skdgm._sdgm import _training

    docs, y = documents
    seen, states = [], []
    add = _training._Average.add

    def spy(self, model, tuned_inputs):
        seen.append(tuned_inputs)
        states.append({k: v.detach().clone() for k, v in tuned_inputs.state_dict().items()})
        add(self, model, tuned_inputs)

    monkeypatch.setattr(_training._Average, "add", spy)
    SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), fine_tune_layers=1, average_epochs=2, **FAST
    ).fit(docs, y)
    assert len(states) == 2 and seen[0] is seen[1]
    changed = 0
    for key, value in seen[0].state_dict().items():
        if value.is_floating_point():
            mean = torch.stack([s[key].float() for s in states]).mean(0)
            torch.testing.assert_close(value.float(), mean.to(value.dtype).float())
            changed += not torch.equal(states[0][key], states[1][key])
    assert changed > 0  # the layers moved between the two epochs: a real average


def test_average_epochs_starts_with_the_tuning(tiny_wordpiece_model, documents, monkeypatch):
    # Epochs on the frozen encoder would average the layers' untrained weights into the
    # tuned ones: the window holds only the epochs that tune them.
    from skdgm._sdgm import _training

    docs, y = documents
    counts = []
    add = _training._Average.add

    def spy(self, model, tuned_inputs):
        counts.append(tuned_inputs)
        add(self, model, tuned_inputs)

    monkeypatch.setattr(_training._Average, "add", spy)
    params = dict(FAST, max_epochs=8, fine_tune_epochs=2)
    SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), fine_tune_layers=1, average_epochs=5, **params
    ).fit(docs, y)
    assert len(counts) == 2  # 5 asked, 5 of the 10 epochs allowed, 2 of them tuned
