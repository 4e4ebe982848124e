"""The labelled and unlabelled objectives of the stacked M1+M2 model.

Single reparameterised samples of z1 and z2; KL terms in closed form between diagonal
Gaussians; the class enumerated (never sampled) for unlabelled rows. Every function returns
per-row values so that the training loop decides how to weigh and average them.

- :func:`forward_terms`: the stacked model trained jointly (end to end).
- :func:`m1_terms` and :func:`m2_terms`: the two stages of Kingma's two-stage M1+M2, a VAE
  from x to z1, then M2 on z1 = the mean of the frozen q(z1 | x).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from ._likelihoods import gaussian_log_density

if TYPE_CHECKING:
    from ._networks import SDGM


def gaussian_kl(mu_q, logvar_q, mu_p=None, logvar_p=None) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) summed over the last axis; N(0, I) by default."""
    if mu_p is None:
        return 0.5 * (torch.exp(logvar_q) + mu_q.pow(2) - 1.0 - logvar_q).sum(-1)
    return 0.5 * (
        logvar_p
        - logvar_q
        + (torch.exp(logvar_q) + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p)
        - 1.0
    ).sum(-1)


def sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A reparameterised draw from N(mu, exp(logvar))."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def latent_kl(model: SDGM, z1, mu1, logvar1, y_onehot) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(q(z2 | z1, y) || N(0, I)) and KL(q(z1 | x) || p(z1 | y, z2)) for one class per row."""
    mu2, logvar2 = model.q_z2(z1, y_onehot)
    z2 = sample(mu2, logvar2)
    mu1_p, logvar1_p = model.p_z1(z2, y_onehot)
    return gaussian_kl(mu2, logvar2), gaussian_kl(mu1, logvar1, mu1_p, logvar1_p)


def forward_terms(model: SDGM, inputs, targets, y, free_bits: float = 0.0):
    """Per-row terms of the negative ELBO for a batch of labelled then unlabelled rows.

    The networks run once over the whole batch (one pass through each weight matrix is
    about twice as fast on CPU as one pass per kind of row).

    Parameters
    ----------
    model : SDGM
    inputs : Tensor of shape (n, in_dim)
        What q(z1 | x) sees; the first ``len(y)`` rows are labelled, the others not.
    targets : Tensor of shape (n, target_dim), or LongTensor of shape (n, T)
        What p(x | z1) reconstructs: features, counts, or token ids (GRU decoder).
    y : LongTensor of shape (n_labelled,)
        Class indices of the labelled rows; the class of every other row is enumerated.
    free_bits : float
        Nats of KL per latent dimension not penalised (0 disables).

    Returns
    -------
    labelled, unlabelled : dict of Tensors
        Each with ``nll`` (-log p(x | z1)), ``kl_z1``, ``kl_z2`` (expected under q(y | z1) for
        unlabelled rows) and ``logits``; ``unlabelled`` also has ``probs``, q(y | z1).
    """
    mu1, logvar1 = model.encode(inputs)
    z1 = sample(mu1, logvar1)
    nll = -model.decoder.log_likelihood(z1, targets)  # does not depend on y: once per row
    logits = model.classify(z1, inputs)
    rows, y_onehot = _class_rows(len(inputs), y, model.n_classes, z1)
    kl_z2, kl_z1 = latent_kl(model, z1[rows], mu1[rows], logvar1[rows], y_onehot)
    kl_z1 = _free(kl_z1, free_bits, z1)
    return _by_kind(len(y), logits, {"nll": nll}, {"kl_z1": kl_z1, "kl_z2": kl_z2})


def m1_terms(model: SDGM, inputs, targets, free_bits: float = 0.0) -> dict:
    """Per-row terms of M1's negative ELBO: a VAE from x to z1 with p(z1) = N(0, I).

    The first stage of the two-stage M1+M2 trains q(z1 | x) and the decoder alone, on
    every row; labels play no part.

    Returns
    -------
    terms : dict of Tensors of shape (n,)
        ``nll`` (-log p(x | z1)) and ``kl_z1`` (KL(q(z1 | x) || N(0, I)), with free bits).
    """
    mu1, logvar1 = model.encode(inputs)
    z1 = sample(mu1, logvar1)
    nll = -model.decoder.log_likelihood(z1, targets)
    return {"nll": nll, "kl_z1": _free(gaussian_kl(mu1, logvar1), free_bits, z1)}


def m2_terms(model: SDGM, inputs, y):
    """Per-row terms of M2 on z1 = E[z1 | x] under the frozen q(z1 | x) (two-stage M1+M2).

    As in Kingma et al. (2014): L(z1, y) = -log p(z1 | y, z2) + KL(q(z2 | z1, y) || N(0, I))
    - log p(y), and for unlabelled rows the expectation of the first two terms under
    q(y | z1) (the training loop adds KL(q(y | z1) || p(y))). z1 is data for M2: no
    gradient reaches q(z1 | x), which the training loop keeps frozen in evaluation mode so
    that its mean is deterministic.

    Returns
    -------
    labelled, unlabelled : dict of Tensors
        As :func:`forward_terms`, with ``nll`` = -log p(z1 | y, z2) and ``kl_z1`` = 0.
    """
    with torch.no_grad():
        z1 = model.encode(inputs)[0]
    logits = model.classify(z1, inputs)
    rows, y_onehot = _class_rows(len(inputs), y, model.n_classes, z1)
    mu2, logvar2 = model.q_z2(z1[rows], y_onehot)
    mu1_p, logvar1_p = model.p_z1(sample(mu2, logvar2), y_onehot)
    nll = -gaussian_log_density(z1[rows], mu1_p, logvar1_p)
    kl_z2 = gaussian_kl(mu2, logvar2)
    per_class = {"nll": nll, "kl_z1": torch.zeros_like(nll), "kl_z2": kl_z2}
    return _by_kind(len(y), logits, {}, per_class)


def _class_rows(n: int, y, k: int, like: torch.Tensor):
    """One row per labelled row with its class, K rows per unlabelled one, one class each.

    Returns the row of each and the one-hot classes.
    """
    n_l = len(y)
    device = like.device
    rows = torch.cat(
        [
            torch.arange(n_l, device=device),
            torch.arange(n_l, n, device=device).repeat_interleave(k),
        ]
    )
    eye = torch.eye(k, dtype=like.dtype, device=device)
    return rows, torch.cat([eye[y], eye.repeat(n - n_l, 1)])


def _by_kind(n_l: int, logits, per_row: dict, per_class: dict):
    """Split terms into labelled and unlabelled rows, the latter's per-class terms in expectation.

    ``per_row`` terms have one value per row, ``per_class`` ones the layout of
    :func:`_class_rows`.
    """
    n_u, k = logits.shape[0] - n_l, logits.shape[1]
    labelled = {name: value[:n_l] for name, value in {**per_row, **per_class}.items()}
    labelled["logits"] = logits[:n_l]
    probs = F.softmax(logits[n_l:], dim=1)
    unlabelled = {name: value[n_l:] for name, value in per_row.items()}
    for name, value in per_class.items():
        unlabelled[name] = (probs * value[n_l:].view(n_u, k)).sum(1)
    unlabelled.update(logits=logits[n_l:], probs=probs)
    return labelled, unlabelled


def _free(kl: torch.Tensor, free_bits: float, z1: torch.Tensor) -> torch.Tensor:
    """Free bits: no penalty below ``free_bits`` nats per dimension of z1 (on the row's sum)."""
    if free_bits <= 0:
        return kl
    return torch.clamp(kl, min=free_bits * z1.shape[1])


def categorical_kl(probs: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """KL(q(y | z1) || p(y)) per row."""
    return (probs * (torch.log(probs.clamp_min(1e-12)) - log_prior)).sum(1)
