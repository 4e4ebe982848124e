"""The torch core: networks, losses, the training loop, the stages of one fit of the
stacked M1+M2 model, and its predictions."""

from ._ensemble import SDGMEnsemble, build_module
from ._fitting import FitResult, fit_sdgm, network_changes, warm_start_changes
from ._inputs import RowSource, TokenRows, TunedRows
from ._networks import SDGM
from ._prediction import posterior_means, predict_log_proba
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
    "posterior_means",
    "predict_log_proba",
    "predict_logits",
    "train",
    "warm_start_changes",
]
