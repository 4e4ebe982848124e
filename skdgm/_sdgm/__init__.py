"""The torch core: networks, losses and the training loop of the stacked M1+M2 model."""

from ._inputs import RowSource, TokenRows, TunedRows
from ._networks import SDGM
from ._training import TrainingConfig, encode_mean, predict_logits, train

__all__ = [
    "SDGM",
    "RowSource",
    "TokenRows",
    "TrainingConfig",
    "TunedRows",
    "encode_mean",
    "predict_logits",
    "train",
]
