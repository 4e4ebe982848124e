"""The decoders' log-likelihoods: a diagonal Gaussian, and a sequence of pieces.

They are what the networks' decoders (:mod:`._networks`) return for p(x | z1) and what the
two-stage M2 uses for p(z1 | y, z2); the objectives (:mod:`._losses`) combine them.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .._preprocessing import PAD

_LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(x, mu, logvar) -> torch.Tensor:
    """log N(x; mu, diag exp(logvar)) summed over the last axis."""
    return -0.5 * ((x - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


def sequence_log_likelihood(output, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per row, sum over its non-padding positions t of log softmax(output(states[t]))[tokens[t]].

    Parameters
    ----------
    output : callable
        The output layer: hidden states (m, hidden) -> logits (m, vocabulary).
    states : Tensor of shape (n, T, hidden)
        The decoder's state at t, which predicts ``tokens[:, t]``.
    tokens : LongTensor of shape (n, T)
        Target ids, ``PAD`` after the end of each row.

    Returns
    -------
    log_likelihood : Tensor of shape (n,)
        Padding changes nothing: the logits (the output layer is the dearest part of the
        decoder) are computed at the real positions only.
    """
    mask = tokens != PAD
    token_log_likelihood = -F.cross_entropy(output(states[mask]), tokens[mask], reduction="none")
    per_position = torch.zeros_like(tokens, dtype=token_log_likelihood.dtype)
    return per_position.masked_scatter(mask, token_log_likelihood).sum(dim=1)
