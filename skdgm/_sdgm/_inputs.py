"""What the networks read: rows of fixed inputs, or inputs whose dense block is trained.

- :class:`RowSource`: rows of a dense array or a CSR matrix, as float32 tensors.
- :class:`TunedRows`: rows whose dense block is the standardised output of a trainable
  embedder (the encoder's top layers), followed by a fixed sparse block (the TF-IDF of
  the document's pieces), so that the SDGM's gradients reach the encoder.
- :class:`TokenRows`: rows of padded token sequences (the GRU decoder's targets), each
  batch cut to its longest row.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._preprocessing import PAD

# Dense data up to this size is moved to the GPU once instead of batch by batch.
_MAX_BYTES_ON_DEVICE = 2**31


class RowSource:
    """Rows of a dense array or a CSR matrix, handed out as float32 tensors on ``device``.

    Only the requested rows are densified, so sparse inputs of any size stay sparse.
    """

    def __init__(self, matrix, device: torch.device):
        self.device = device
        self.sparse = sp.issparse(matrix)
        if self.sparse:
            self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        else:
            tensor = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
            if device.type != "cpu" and tensor.numel() * 4 <= _MAX_BYTES_ON_DEVICE:
                tensor = tensor.to(device)
            self.matrix = tensor
        self.shape = matrix.shape

    def __getitem__(self, index: np.ndarray) -> torch.Tensor:
        if self.sparse:
            rows = torch.from_numpy(self.matrix[index].toarray())
        else:
            rows = self.matrix[torch.as_tensor(index, device=self.matrix.device)]
        return rows.to(self.device, non_blocking=True)


class TokenRows:
    """Rows of a padded matrix of token ids, as int64 tensors on ``device``.

    A batch is cut to the length of its longest row (padding, ``PAD``, ends the rows),
    so that short documents do not pay for the longest one of the corpus.
    """

    def __init__(self, sequences: np.ndarray, device: torch.device):
        self.device = device
        self.matrix = torch.as_tensor(np.asarray(sequences, dtype=np.int64))
        self.lengths = (self.matrix != PAD).sum(dim=1)
        self.shape = tuple(self.matrix.shape)

    def __getitem__(self, index: np.ndarray) -> torch.Tensor:
        index = torch.as_tensor(index, dtype=torch.long)
        width = int(self.lengths[index].max()) if len(index) else 0
        return self.matrix[index, :width].to(self.device, non_blocking=True)


class TunedRows(nn.Module):
    """Rows ``[(embedder(rows) - mean) / scale ; rest[rows]]`` with gradients to the embedder.

    Parameters
    ----------
    embedder : nn.Module
        ``embedder(rows: ndarray) -> Tensor (len(rows), dim)``, trainable.
    mean, scale : ndarray of shape (dim,)
        The standardisation of the dense block, fixed at the start of training.
    rest : RowSource or None
        The columns after the dense block (e.g. TF-IDF), fixed.
    """

    def __init__(self, embedder: nn.Module, mean, scale, rest: RowSource | None):
        super().__init__()
        self.embedder = embedder
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float32)))
        self.rest = rest

    def forward(self, index: np.ndarray) -> torch.Tensor:
        dense = (self.embedder(index) - self.mean) / self.scale
        if self.rest is None:
            return dense
        return torch.cat([dense, self.rest[index].to(dense.device)], dim=1)

    def __getitem__(self, index: np.ndarray) -> torch.Tensor:
        return self(index)
