"""Kingma's two-stage M1+M2 (training="two_stage"): M1 on every row, then M2 on frozen z1."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skdgm import SemiSupervisedVAEClassifier
from skdgm._sdgm import _fitting, _losses, _training
from skdgm._sdgm._networks import SDGM
from skdgm.datasets import load_libreoffice_help
from skdgm.encoders import MultilingualEncoder

FAST = dict(training="two_stage", max_epochs=4, hidden_dim=16, z1_dim=4, z2_dim=2, random_state=0)
M1_NETWORKS = ("q_z1", "decoder")
M2_NETWORKS = ("q_y", "q_z2", "p_z1")


@pytest.fixture
def stages(monkeypatch):
    """Each call of the training loop: its objective, the model's weights before and after
    it, and the trainable encoder it was given."""
    calls = []
    original = _fitting.train
    signature = inspect.signature(original)

    def spy(*args, **kwargs):
        arguments = signature.bind(*args, **kwargs).arguments
        model, tuned = arguments["model"], arguments.get("tuned_inputs")
        before = _weights(model)
        result = original(*args, **kwargs)
        calls.append(
            {
                "objective": arguments["config"].objective,
                "before": before,
                "after": _weights(model),
                "tuned": tuned,
                "tuned_after": None if tuned is None else _weights(tuned),
            }
        )
        return result

    monkeypatch.setattr(_fitting, "train", spy)
    return calls


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, after: dict, network: str) -> bool:
    names = [name for name in before if name.split(".")[0] == network]
    assert names, network
    return any(not torch.equal(before[name], after[name]) for name in names)


def test_stage_two_leaves_the_z1_encoder_unchanged(blobs, stages, monkeypatch):
    X, _, y = blobs
    modes = []
    original = _training.m2_terms

    def spy(model, inputs, y):
        modes.append(model.q_z1.training)
        return original(model, inputs, y)

    monkeypatch.setattr(_training, "m2_terms", spy)
    # With a warm-up, whose classifier-only steps read z1 too.
    clf = SemiSupervisedVAEClassifier(**{**FAST, "warm_up_epochs": 2}).fit(X, y)
    assert modes and not any(modes)  # q(z1 | x) in evaluation mode: z1 is its mean
    m1, m2 = stages
    assert (m1["objective"], m2["objective"]) == ("m1", "m2")
    # Stage 1 trains q(z1 | x) and the decoder, nothing of M2.
    assert all(_changed(m1["before"], m1["after"], net) for net in M1_NETWORKS)
    assert not any(_changed(m1["before"], m1["after"], net) for net in M2_NETWORKS)
    # Stage 2 trains M2 and leaves every weight of q(z1 | x) (and the decoder) as M1 left it.
    assert not any(_changed(m2["before"], m2["after"], net) for net in M1_NETWORKS)
    assert all(_changed(m2["before"], m2["after"], net) for net in M2_NETWORKS)
    for name, value in clf.module_.state_dict().items():
        if name.split(".")[0] in M1_NETWORKS:
            assert torch.equal(value, m1["after"][name]), name
    # Frozen for stage 2 only: the fitted model's parameters all take gradients again.
    assert all(parameter.requires_grad for parameter in clf.module_.parameters())


def test_epochs_of_each_stage_in_history(blobs):
    X, _, y = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "warm_up_epochs": 2}).fit(X, y)
    phases = [record["phase"] for record in clf.history_]
    assert phases == ["m1"] * 4 + ["warm-up"] * 2 + ["m2"] * 4
    assert [record["epoch"] for record in clf.history_] == list(range(1, 11))
    assert clf.n_iter_ == clf.best_epoch_ == 10
    for record in clf.history_:
        assert 0 <= record["active_units"] <= FAST["z1_dim"]
        assert ("train_accuracy" in record) == (record["phase"] != "m1")
    # z1 is fixed in stage 2: its active units no longer move.
    assert len({record["active_units"] for record in clf.history_[4:]}) == 1
    assert {"nll", "kl_z1", "m1_loss"} <= set(clf.history_[0])
    assert {"nll", "kl_z2", "kl_y", "cross_entropy"} <= set(clf.history_[-1])


def test_early_stopping_applies_to_stage_two(blobs):
    X, y, _ = blobs
    y_partial = y.copy()
    y_partial[90:] = -1
    # Shuffled labels: the held-out rows stop improving soon (the blobs are too easy).
    y_partial[:90] = np.random.default_rng(0).permutation(y_partial[:90])
    params = {**FAST, "max_epochs": 60, "early_stopping": True, "n_iter_no_change": 3}
    params["learning_rate"] = 1e-2
    clf = SemiSupervisedVAEClassifier(**params).fit(X, y_partial)
    m1 = [record for record in clf.history_ if record["phase"] == "m1"]
    assert len(m1) == 60 and not any("valid_accuracy" in record for record in m1)
    assert clf.n_iter_ == clf.best_epoch_ + 3 < 120  # stopped in stage 2, 3 after the best
    scores = [(h["valid_accuracy"], -h["valid_loss"]) for h in clf.history_[60:]]
    assert clf.best_epoch_ == 61 + scores.index(max(scores))


def test_two_stage_predicts_pickles_and_is_reproducible(blobs):
    X, y_true, y = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "max_epochs": 30}).fit(X, y)
    assert clf.score(X[30:], y_true[30:]) > 0.6
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(clone(clf).fit(X, y).predict_proba(X), clf.predict_proba(X))
    joint = clone(clf).set_params(training="joint").fit(X, y)
    assert not np.allclose(joint.predict_proba(X), clf.predict_proba(X))


def test_pickles_of_models_without_a_unit_for_z1_still_load(blobs):
    X, _, y = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "training": "joint"}).fit(X, y)
    state = clf.__getstate__()
    del state["module_"]["z1_unit"]  # as pickled before the two-stage model existed
    restored = SemiSupervisedVAEClassifier.__new__(SemiSupervisedVAEClassifier)
    restored.__setstate__(state)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


def test_bad_training_value_is_refused(blobs):
    X, _, y = blobs
    with pytest.raises(ValueError, match="'training' parameter"):
        SemiSupervisedVAEClassifier(training="m1+m2").fit(X, y)


# ----------------------------------------------------------------------- the torch core
@pytest.fixture
def model():
    torch.manual_seed(0)
    return SDGM(
        in_dim=6, target_dim=6, n_classes=3, decoder="gaussian",
        z1_dim=4, z2_dim=2, hidden_dim=8, n_layers=1, dropout=0.0,
    ).eval()  # fmt: skip


def test_m2_terms_take_z1_as_data(model, monkeypatch):
    monkeypatch.setattr(_losses, "sample", lambda mu, logvar: mu)  # draws -> means
    x = torch.randn(5, 6)
    y = torch.tensor([2, 0])
    labelled, unlabelled = _losses.m2_terms(model, x, y)
    z1 = model.encode(x)[0]
    eye = torch.eye(3)
    mu2, logvar2 = model.q_z2(z1[:2], eye[y])
    mu_p, logvar_p = model.p_z1(mu2, eye[y])
    by_hand = torch.distributions.Normal(mu_p, torch.exp(0.5 * logvar_p)).log_prob(z1[:2])
    torch.testing.assert_close(labelled["nll"], -by_hand.sum(1))
    torch.testing.assert_close(labelled["kl_z1"], torch.zeros(2))
    assert unlabelled["nll"].shape == (3,) and unlabelled["probs"].shape == (3, 3)
    loss = labelled["nll"].sum() + unlabelled["nll"].sum() + labelled["logits"].sum()
    loss.backward()
    assert all(p.grad is None for p in model.q_z1.parameters())  # no gradient to q(z1 | x)
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is not None for p in model.p_z1.parameters())


# --------------------------------------------------------------------------- documents
@pytest.fixture(scope="module")
def documents():
    bunch = load_libreoffice_help(languages=["en", "de"], split="train")
    index = np.random.default_rng(0).choice(len(bunch.data), 48, replace=False)
    docs = [bunch.data[i][:200] for i in index]
    y = bunch.target[index]
    y_partial = np.full(len(y), -1)
    for c in range(4):
        y_partial[np.flatnonzero(y == c)[:3]] = c
    return docs, y_partial


def test_fine_tuned_layers_train_in_stage_one_only(tiny_wordpiece_model, documents, stages):
    docs, y = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model),
        decoder="gru",
        fine_tune_layers=1,
        fine_tune_epochs=2,
        fine_tune_learning_rate=1e-3,
        vocabulary_size=50,
        max_decoder_length=16,
        **{**FAST, "max_epochs": 3},
    ).fit(docs, y)
    phases = [record["phase"] for record in clf.history_]
    assert phases == ["m1"] * 3 + ["m1-fine-tune"] * 2 + ["m2"] * 3
    m1, m2 = stages
    assert m1["tuned"] is not None and m2["tuned"] is None
    # The encoder's layers kept are those M1 tuned; stage 2 did not touch them.
    tuned_top = m1["tuned_after"]
    for name, value in clf.encoder_._top.state_dict().items():
        assert torch.equal(value, tuned_top[f"embedder.top.{name}"]), name
    assert not any(_changed(m2["before"], m2["after"], net) for net in M1_NETWORKS)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(docs), clf.predict(docs))
    np.testing.assert_allclose(restored.predict_proba(docs), clf.predict_proba(docs), atol=1e-6)
