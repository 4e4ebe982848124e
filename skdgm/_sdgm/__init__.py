"""The torch core: networks, losses, the training loop and the stages of one fit of the
stacked M1+M2 model."""

from ._ensemble import SDGMEnsemble, build_module
from ._fitting import FitResult, fit_sdgm, network_changes
from ._inputs import RowSource, TokenRows, TunedRows
from ._networks import SDGM
from ._training import TrainingConfig, encode_mean, predict_logits, train

__all__ = [
    "SDGM",
    "SDGMEnsemble",
    "build_module",
    "FitResult",
    "RowSource",
    "TokenRows",
    "TrainingConfig",
    "TunedRows",
    "encode_mean",
    "fit_sdgm",
    "network_changes",
    "predict_logits",
    "train",
]
