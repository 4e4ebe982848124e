"""ensemble_size: SDGMs fitted with their own seeds, their class probabilities averaged."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

import skdgm
from skdgm import SemiSupervisedVAEClassifier
from skdgm._sdgm import SDGM, RowSource, SDGMEnsemble, build_module, encode_mean, predict_logits

FAST = dict(max_epochs=12, hidden_dim=16, z1_dim=4, z2_dim=2, batch_size=32, random_state=0)


@pytest.fixture(scope="module")
def single(blobs):
    X, _, y_partial = blobs
    return SemiSupervisedVAEClassifier(**FAST).fit(X, y_partial)


@pytest.fixture(scope="module")
def ensemble(blobs):
    X, _, y_partial = blobs
    return SemiSupervisedVAEClassifier(**FAST, ensemble_size=3).fit(X, y_partial)


def _member_proba(member, clf, X):
    inputs = clf._model_inputs(X)
    logits = predict_logits(member, RowSource(inputs, torch.device("cpu")), np.arange(len(X)), 64)
    return torch.softmax(logits, dim=1).numpy()


def test_the_default_is_one_sdgm(single):
    assert type(single.module_) is SDGM
    assert "n_members" not in single._module_kwargs


def test_the_first_member_is_the_single_fit_and_the_others_differ(single, ensemble):
    assert isinstance(ensemble.module_, SDGMEnsemble)
    members = list(ensemble.module_.members)
    assert len(members) == 3
    first = members[0].state_dict()
    for name, value in single.module_.state_dict().items():
        torch.testing.assert_close(first[name], value, rtol=0, atol=0)
    weight = "q_z1.mu.weight"
    assert not torch.equal(members[1].state_dict()[weight], first[weight])
    assert not torch.equal(members[2].state_dict()[weight], members[1].state_dict()[weight])


def test_probabilities_are_the_mean_of_the_members(blobs, ensemble):
    X = blobs[0]
    proba = ensemble.predict_proba(X)
    expected = np.mean([_member_proba(m, ensemble, X) for m in ensemble.module_.members], axis=0)
    np.testing.assert_allclose(proba, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(ensemble.predict(X), ensemble.classes_[proba.argmax(1)])
    unlabelled = blobs[2] == -1
    np.testing.assert_array_equal(
        ensemble.transduction_[unlabelled], ensemble.predict(X)[unlabelled]
    )


def test_transform_gives_every_members_z1_side_by_side(blobs, single, ensemble):
    X = blobs[0]
    z1 = ensemble.transform(X)
    assert z1.shape == (len(X), 3 * FAST["z1_dim"])
    np.testing.assert_allclose(z1[:, : FAST["z1_dim"]], single.transform(X), rtol=1e-6)
    second = ensemble.module_.members[1]
    inputs = RowSource(ensemble._model_inputs(X), torch.device("cpu"))
    np.testing.assert_allclose(
        z1[:, FAST["z1_dim"] : 2 * FAST["z1_dim"]],
        encode_mean(second, inputs, np.arange(len(X)), 64).numpy(),
        rtol=1e-6,
    )


def test_history_holds_every_members_epochs(ensemble):
    assert ensemble.n_iter_ == len(ensemble.history_) == 3 * FAST["max_epochs"]
    assert [r["member"] for r in ensemble.history_[:: FAST["max_epochs"]]] == [0, 1, 2]
    assert [r["epoch"] for r in ensemble.history_[: FAST["max_epochs"]]] == list(
        range(1, FAST["max_epochs"] + 1)
    )
    assert ensemble.best_epoch_ == FAST["max_epochs"]


def test_same_random_state_same_ensemble(blobs, ensemble):
    X, _, y_partial = blobs
    again = clone(ensemble).fit(X, y_partial)
    np.testing.assert_array_equal(again.predict_proba(X), ensemble.predict_proba(X))


def test_pickle_and_save_round_trips_predict_identically(blobs, ensemble, tmp_path):
    X = blobs[0]
    proba = ensemble.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ensemble)).predict_proba(X), proba)
    skdgm.save(ensemble, tmp_path / "model")
    loaded = skdgm.load(tmp_path / "model")
    assert isinstance(loaded.module_, SDGMEnsemble)
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    np.testing.assert_array_equal(loaded.transform(X), ensemble.transform(X))


def test_warm_start_trains_every_member_on(blobs):
    X, _, y_partial = blobs
    clf = SemiSupervisedVAEClassifier(**FAST, ensemble_size=2).fit(X, y_partial)
    before = [m.state_dict()["q_y.1.weight"].clone() for m in clf.module_.members]
    clf.set_params(warm_start=True, max_epochs=2).fit(X, y_partial)
    assert clf.n_iter_ == 4 and isinstance(clf.module_, SDGMEnsemble)
    for member, weight in zip(clf.module_.members, before):
        assert not torch.equal(member.state_dict()["q_y.1.weight"], weight)
    with pytest.raises(ValueError, match="ensemble_size=3, previously 2"):
        clf.set_params(ensemble_size=3).fit(X, y_partial)


def test_fine_tuning_an_ensemble_is_refused_before_any_work(blobs, single):
    X, _, y_partial = blobs
    clf = clone(single).set_params(ensemble_size=2, fine_tune_layers=1)
    with pytest.raises(ValueError, match="ensemble_size=2 with fine_tune_layers=1.*share one"):
        clf.fit(X, y_partial)
    assert not hasattr(clf, "module_")


@pytest.mark.parametrize("size", [0, -1, 1.5, "2"])
def test_bad_sizes_are_refused(blobs, size):
    X, _, y_partial = blobs
    with pytest.raises(ValueError, match="ensemble_size"):
        SemiSupervisedVAEClassifier(**FAST, ensemble_size=size).fit(X, y_partial)


def test_ctrl_c_in_a_later_member_keeps_the_members_completed(blobs, monkeypatch):
    from skdgm._sdgm import _training

    X, _, y_partial = blobs
    shown = _training.show_progress
    records = []

    def interrupt_in_the_third_member(progress, record):
        shown(progress, record)
        records.append(record)
        if len(records) == 2 * FAST["max_epochs"] + 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(_training, "show_progress", interrupt_in_the_third_member)
    clf = SemiSupervisedVAEClassifier(**FAST, ensemble_size=3)
    with pytest.warns(UserWarning, match="2 of its 3 ensemble members"):
        clf.fit(X, y_partial)
    assert len(clf.module_.members) == 2 and clf._module_kwargs["n_members"] == 2
    assert np.isfinite(clf.predict_proba(X)).all()


def test_build_module_reads_saved_kwargs_without_a_size():
    kwargs = dict(
        in_dim=3, target_dim=3, n_classes=2, decoder="gaussian", z1_dim=2, z2_dim=2,
        hidden_dim=4, n_layers=1, dropout=0.0,
    )  # fmt: skip
    assert type(build_module(kwargs)) is SDGM
    assert len(build_module({**kwargs, "n_members": 2}).members) == 2
    with pytest.raises(ValueError, match="n_members must be a positive integer"):
        build_module({**kwargs, "n_members": 0})
