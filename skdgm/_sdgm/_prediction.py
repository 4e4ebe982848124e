"""What a fitted SDGM gives for new rows: log p(y | x), q(y | E[z1 | x]) pooled with the
linear expert when the fit has one, and the posterior means E[z1 | x]."""

from __future__ import annotations

import numpy as np
import torch

from ._ensemble import SDGMEnsemble
from ._inputs import RowSource
from ._linear import LinearExpert
from ._networks import SDGM
from ._training import encode_mean, predict_logits

#: Rows per forward pass when predicting.
_BATCH_SIZE = 1024


def predict_log_proba(
    module: SDGM | SDGMEnsemble,
    linear: LinearExpert | None,
    inputs,
    mean,
    scale,
    device: torch.device,
) -> np.ndarray:
    """log q(y | E[z1 | x]) of the rows of ``inputs``, pooled with ``linear`` unless None.

    ``inputs`` are the model's inputs (as :class:`~skdgm._preprocessing.ModelInputs`
    builds them), ``mean`` and ``scale`` the standardisation of their embedding columns,
    which the linear expert undoes. ``module`` is moved to ``device``. Returns float64
    log-probabilities, one row per row of ``inputs``.
    """
    module.to(device)
    logits = predict_logits(module, *_rows(inputs, device), _BATCH_SIZE).double().cpu()
    log_proba = torch.log_softmax(logits, dim=1).numpy()
    if linear is not None:
        log_proba = linear.pool(log_proba, linear.features(inputs, mean, scale))
    return log_proba


def posterior_means(module: SDGM | SDGMEnsemble, inputs, device: torch.device) -> np.ndarray:
    """E[z1 | x] of the rows of ``inputs`` (float32; an ensemble's members side by side).

    ``module`` is moved to ``device``.
    """
    module.to(device)
    return encode_mean(module, *_rows(inputs, device), _BATCH_SIZE).cpu().numpy()


def _rows(inputs, device: torch.device) -> tuple[RowSource, np.ndarray]:
    """The rows of ``inputs`` on ``device``, and the index of every row."""
    return RowSource(inputs, device), np.arange(inputs.shape[0])
