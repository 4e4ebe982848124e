"""An ensemble of SDGMs fitted on the same rows with different seeds.

Single fits of the SDGM on a few dozen labels differ by about 3 points of accuracy from
seed to seed (``docs/tuning.rst``, rounds 4, 5 and 9); averaging the class probabilities
of a few fits removes part of that noise. The ensemble reads like one SDGM for
prediction: :meth:`SDGMEnsemble.encode` gives every member's z1 side by side, and
:meth:`SDGMEnsemble.classify` the logarithm of the members' mean probabilities.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._networks import SDGM


class SDGMEnsemble(nn.Module):
    """SDGMs of the same shape whose class probabilities are averaged.

    Parameters
    ----------
    members : list of SDGM
        The fitted members, at least two, with the same number of classes.
    """

    def __init__(self, members: list[SDGM]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.n_classes = members[0].n_classes
        self._widths = [member.q_z1.mu.out_features for member in members]

    @property
    def z1_width(self) -> int:
        """Width of :meth:`encode`'s output: every member's z1, side by side."""
        return sum(self._widths)

    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's mean and log-variance of q(z1 | x), concatenated."""
        parts = [member.encode(inputs) for member in self.members]
        return torch.cat([mu for mu, _ in parts], dim=1), torch.cat([lv for _, lv in parts], 1)

    def classify(self, z1: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """log of the members' mean q(y | z1): logits whose softmax is that mean."""
        chunks = torch.split(z1, self._widths, dim=1)
        log_probs = torch.stack(
            [
                torch.log_softmax(member.classify(chunk, inputs), dim=1)
                for member, chunk in zip(self.members, chunks)
            ]
        )
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


def build_module(kwargs: dict) -> SDGM | SDGMEnsemble:
    """An untrained SDGM, or an ensemble of ``kwargs["n_members"]`` of them.

    ``kwargs`` are :class:`SDGM`'s arguments, plus ``n_members`` (1 when absent, as in
    models saved before ensembles existed).
    """
    kwargs = dict(kwargs)
    n_members = kwargs.pop("n_members", 1)
    if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 1:
        raise ValueError(f"n_members must be a positive integer, got {n_members!r}")
    if n_members == 1:
        return SDGM(**kwargs)
    return SDGMEnsemble([SDGM(**kwargs) for _ in range(n_members)])


def members(module: SDGM | SDGMEnsemble) -> list[SDGM]:
    """The SDGMs of ``module``: its members, or the SDGM itself."""
    return list(module.members) if isinstance(module, SDGMEnsemble) else [module]
