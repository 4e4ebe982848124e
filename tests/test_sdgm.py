"""The torch core's objective: one pass over a batch of labelled then unlabelled rows."""

import pytest
import torch

from skdgm._sdgm import _losses
from skdgm._sdgm._networks import SDGM


@pytest.fixture
def model():
    torch.manual_seed(0)
    net = SDGM(
        in_dim=6, target_dim=6, n_classes=3, decoder="gaussian",
        z1_dim=4, z2_dim=2, hidden_dim=8, n_layers=1, dropout=0.0,
    )  # fmt: skip
    return net.eval()


@pytest.fixture
def deterministic(monkeypatch):
    """Draws replaced by their means, so that terms can be compared row by row."""
    monkeypatch.setattr(_losses, "sample", lambda mu, logvar: mu)


def test_rows_do_not_depend_on_the_rest_of_the_batch(model, deterministic):
    x = torch.randn(5, 6)
    y = torch.tensor([2, 0])
    labelled, unlabelled = _losses.forward_terms(model, x, x, y)
    alone_l, _ = _losses.forward_terms(model, x[:2], x[:2], y)
    _, alone_u = _losses.forward_terms(model, x[2:], x[2:], y[:0])
    for key in ("nll", "kl_z1", "kl_z2", "logits"):
        torch.testing.assert_close(labelled[key], alone_l[key])
        torch.testing.assert_close(unlabelled[key], alone_u[key])
    assert labelled["nll"].shape == (2,) and unlabelled["probs"].shape == (3, 3)


def test_unlabelled_terms_are_expectations_over_the_classes(model, deterministic):
    x = torch.randn(4, 6)
    _, unlabelled = _losses.forward_terms(model, x, x, torch.zeros(0, dtype=torch.long))
    per_class = [
        _losses.forward_terms(model, x, x, torch.full((4,), k, dtype=torch.long))[0]
        for k in range(3)
    ]
    for key in ("kl_z1", "kl_z2"):
        stacked = torch.stack([terms[key] for terms in per_class], dim=1)
        torch.testing.assert_close(unlabelled[key], (unlabelled["probs"] * stacked).sum(1))
    torch.testing.assert_close(unlabelled["probs"].sum(1), torch.ones(4))
