"""The labelled and unlabelled objectives of the stacked M1+M2 model.

Single reparameterised samples of z1 and z2; KL terms in closed form between diagonal
Gaussians; the class enumerated (never sampled) for unlabelled rows. Every function returns
per-row values so that the training loop decides how to weigh and average them.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

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


def forward_terms(model: SDGM, inputs, targets, y=None, free_bits: float = 0.0) -> dict:
    """Per-row terms of the negative ELBO.

    Parameters
    ----------
    model : SDGM
    inputs : Tensor of shape (n, in_dim)
        What q(z1 | x) sees.
    targets : Tensor of shape (n, target_dim)
        What p(x | z1) reconstructs.
    y : LongTensor of shape (n,) or None
        Class indices of labelled rows; None enumerates every class (unlabelled rows).
    free_bits : float
        Nats of KL per latent dimension not penalised (0 disables).

    Returns
    -------
    terms : dict of Tensors of shape (n,) (and ``logits``, ``probs`` of shape (n, K))
        ``nll`` (-log p(x | z1)), ``kl_z1``, ``kl_z2`` (expected under q(y | z1) when y is None),
        ``kl_y`` (KL(q(y | z1) || p(y)) only when y is None).
    """
    mu1, logvar1 = model.encode(inputs)
    z1 = sample(mu1, logvar1)
    nll = -model.decoder.log_likelihood(z1, targets)  # does not depend on y: once per row
    logits = model.classify(z1)
    n, k = inputs.shape[0], model.n_classes
    if y is not None:
        y_onehot = F.one_hot(y, k).to(z1.dtype)
        kl_z2, kl_z1 = latent_kl(model, z1, mu1, logvar1, y_onehot)
        return {"nll": nll, "kl_z1": _free(kl_z1, free_bits, z1), "kl_z2": kl_z2, "logits": logits}
    # Enumerate the classes: rows repeated K times, one class each.
    eye = torch.eye(k, dtype=z1.dtype, device=z1.device)
    y_onehot = eye.repeat(n, 1)
    rep = lambda t: t.repeat_interleave(k, dim=0)  # noqa: E731
    kl_z2, kl_z1 = latent_kl(model, rep(z1), rep(mu1), rep(logvar1), y_onehot)
    probs = F.softmax(logits, dim=1)
    return {
        "nll": nll,
        "kl_z1": (probs * _free(kl_z1, free_bits, z1).view(n, k)).sum(1),
        "kl_z2": (probs * kl_z2.view(n, k)).sum(1),
        "logits": logits,
        "probs": probs,
    }


def _free(kl: torch.Tensor, free_bits: float, z1: torch.Tensor) -> torch.Tensor:
    """Free bits: no penalty below ``free_bits`` nats per dimension of z1 (on the row's sum)."""
    if free_bits <= 0:
        return kl
    return torch.clamp(kl, min=free_bits * z1.shape[1])


def categorical_kl(probs: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """KL(q(y | z1) || p(y)) per row."""
    return (probs * (torch.log(probs.clamp_min(1e-12)) - log_prior)).sum(1)
