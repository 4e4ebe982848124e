"""The class prior p(y) and the class-marginal term of the unlabelled rows."""

import numpy as np
import pytest
import torch

from skdgm import SemiSupervisedVAEClassifier
from skdgm._sdgm._prior import class_prior
from skdgm._sdgm._training import TrainingConfig, _semi_supervised_loss

FAST = dict(max_epochs=15, hidden_dim=32, z1_dim=8, z2_dim=4, random_state=0)


@pytest.fixture(scope="module")
def skewed(blobs):
    """The blobs' rows with class 0 making up 70% of the unlabelled ones; 4 labels a class."""
    X, y, _ = blobs
    rng = np.random.default_rng(0)
    labelled = np.concatenate([np.flatnonzero(y == c)[:4] for c in range(3)])
    rest = np.setdiff1d(np.arange(len(y)), labelled)
    zeros, others = rest[y[rest] == 0], rest[y[rest] != 0]
    unlabelled = np.concatenate([zeros, rng.choice(others, len(zeros) * 3 // 7, replace=False)])
    return X, y, labelled, unlabelled


def test_uniform_and_labelled_priors(skewed):
    X, y, labelled, unlabelled = skewed
    uniform = class_prior("uniform", X, labelled, y[labelled], unlabelled, 3)
    np.testing.assert_allclose(uniform, 1 / 3)
    y_l = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(
        class_prior("labelled", X, labelled[:6], y_l, unlabelled, 3), [0.5, 1 / 6, 1 / 3]
    )


def test_estimated_prior_follows_the_unlabelled_rows(skewed):
    X, y, labelled, unlabelled = skewed
    prior = class_prior("estimated", X, labelled, y[labelled], unlabelled, 3)
    assert prior.shape == (3,) and np.isclose(prior.sum(), 1.0) and np.all(prior > 0)
    truth = np.bincount(y[unlabelled], minlength=3) / len(unlabelled)
    assert truth[0] == pytest.approx(0.7, abs=0.01)
    # The labels are balanced; the estimate is near the unlabelled rows' proportions.
    np.testing.assert_allclose(prior, truth, atol=0.08)
    # Without unlabelled rows: the labelled rows' proportions.
    np.testing.assert_allclose(
        class_prior("estimated", X, labelled, y[labelled], unlabelled[:0], 3), 1 / 3
    )


def test_marginal_term_is_its_weight_times_the_kl_of_the_batch_marginal():
    torch.manual_seed(0)
    t_l = {k: torch.rand(4) for k in ("nll", "kl_z1", "kl_z2")}
    t_l["logits"] = torch.randn(4, 3)
    probs = torch.softmax(torch.randn(6, 3), dim=1)
    t_u = {k: torch.rand(6) for k in ("nll", "kl_z1", "kl_z2")}
    t_u.update(logits=torch.log(probs), probs=probs)
    y_l = torch.tensor([0, 1, 2, 0])
    log_prior = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    config = dict(
        alpha=1.0, max_epochs=1, batch_size=4, learning_rate=1e-3, weight_decay=0.0,
        warm_up_epochs=0, kl_annealing_epochs=0, free_bits=0.0, n_iter_no_change=None,
    )  # fmt: skip
    off, parts_off = _semi_supervised_loss(
        t_l, t_u, y_l, log_prior, TrainingConfig(**config, marginal_weight=0.0), 1.0
    )
    on, parts = _semi_supervised_loss(
        t_l, t_u, y_l, log_prior, TrainingConfig(**config, marginal_weight=2.0), 1.0
    )
    marginal = probs.mean(0)
    kl = (marginal * (marginal.log() - log_prior)).sum()
    torch.testing.assert_close(on - off, 2.0 * kl)
    torch.testing.assert_close(parts["kl_marginal"], kl)
    assert "kl_marginal" not in parts_off


def test_marginal_weight_changes_the_fit_and_is_recorded(blobs):
    X, _, y_partial = blobs
    off = SemiSupervisedVAEClassifier(**FAST, marginal_weight=0.0).fit(X, y_partial)
    on = SemiSupervisedVAEClassifier(**FAST, marginal_weight=1.0).fit(X, y_partial)
    assert "kl_marginal" in on.history_[-1] and "kl_marginal" not in off.history_[-1]
    assert not np.allclose(on.predict_proba(X), off.predict_proba(X))
