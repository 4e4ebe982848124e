"""What the model sees and what it reconstructs, built from numeric features and token counts.

- Dense features (numeric X, or an encoder's embeddings) are standardised with statistics
  of the training rows (scaled only, never centred, when sparse).
- Token counts (a count matrix, or the bag of subword pieces of each document) are kept on
  a vocabulary of the most frequent columns; the inference network sees their TF-IDF
  (log-scaled, L2-normalised rows) and the bag-of-words decoder reconstructs the counts.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.sparsefuncs import mean_variance_axis


class ModelInputs:
    """Fitted transformation of (features, counts) into (inputs, targets) of the SDGM.

    Parameters
    ----------
    decoder : {"gaussian", "bow"}
        ``"gaussian"`` reconstructs the standardised features, ``"bow"`` the counts.
    vocabulary_size : int or None
        Keep the most frequent count columns (None keeps all).
    counts_weight : float
        Scale of the TF-IDF block relative to the standardised features.
    """

    def __init__(self, decoder: str, vocabulary_size: int | None = None, counts_weight=1.0):
        self.decoder = decoder
        self.vocabulary_size = vocabulary_size
        self.counts_weight = counts_weight

    def fit(self, features=None, counts=None) -> ModelInputs:
        self.has_features = features is not None
        self.has_counts = counts is not None
        self.widths_ = self.widths(features, counts)
        if features is not None:
            # Statistics in float64 (in float32 the squares of features above 1.8e19
            # overflow), and for sparse features not as E[x^2] - E[x]^2, which cancels
            # into noise when the mean dwarfs the deviation (a constant column of 5 over
            # 9 rows got 1e-7).
            if sp.issparse(features):
                features = sp.csr_matrix(features, dtype=np.float64)
                self.mean_ = None
                self.scale_ = np.sqrt(mean_variance_axis(features, axis=0)[1])
            else:
                self.mean_ = features.mean(axis=0, dtype=np.float64).astype(features.dtype)
                self.scale_ = features.std(axis=0, dtype=np.float64)
            self.scale_ = np.where(self.scale_ > 1e-12, self.scale_, 1.0).astype(np.float32)
        if counts is not None:
            counts = sp.csr_matrix(counts)
            frequency = np.asarray(counts.sum(axis=0)).ravel()
            order = np.argsort(-frequency, kind="stable")
            order = order[frequency[order] > 0]
            if self.vocabulary_size is not None:
                order = order[: self.vocabulary_size]
            if len(order) == 0:  # no token at all: keep one column so shapes stay valid
                order = np.array([0])
            self.vocabulary_ = np.sort(order)
            kept = counts[:, self.vocabulary_]
            document_frequency = np.bincount(kept.indices, minlength=kept.shape[1])
            n = counts.shape[0]
            self.idf_ = (np.log((1 + n) / (1 + document_frequency)) + 1).astype(np.float32)
        return self

    @staticmethod
    def widths(features=None, counts=None) -> tuple:
        """Columns of ``features`` and of ``counts`` (None for a part not given)."""
        return tuple(None if part is None else part.shape[1] for part in (features, counts))

    def check_widths(self, features=None, counts=None, advice: str = "") -> None:
        """Raise a ``ValueError`` if the parts are not as wide as those ``fit`` saw."""
        got, fitted = self.widths(features, counts), getattr(self, "widths_", None)
        if fitted is not None and got != fitted:
            raise ValueError(
                f"The model's inputs were fitted on (features, token counts) of widths "
                f"{fitted}, and are now given widths {got}. {advice}".rstrip()
            )

    def counts_block(self, counts):
        """The TF-IDF block of the inputs (log-scaled, L2-normalised rows), CSR float32."""
        kept = sp.csr_matrix(counts, dtype=np.float32)[:, self.vocabulary_]
        kept.data = np.log1p(kept.data)
        tfidf = kept @ sp.diags(self.idf_)
        norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())
        tfidf = sp.diags(self.counts_weight / np.maximum(norms, 1e-12)) @ tfidf
        return sp.csr_matrix(tfidf, dtype=np.float32)

    def transform(self, features=None, counts=None):
        """Return ``(inputs, targets)``: dense arrays, or CSR matrices when any part is sparse."""
        blocks, target = [], None
        if self.has_features:
            if sp.issparse(features):
                scaled = sp.csr_matrix(features, dtype=np.float32) @ sp.diags(1 / self.scale_)
            else:
                scaled = ((features - self.mean_) / self.scale_).astype(np.float32)
            blocks.append(sp.csr_matrix(scaled) if sp.issparse(scaled) else scaled)
            target = scaled
        if self.has_counts:
            blocks.append(self.counts_block(counts))
            if self.decoder == "bow":
                target = sp.csr_matrix(counts, dtype=np.float32)[:, self.vocabulary_]
        if len(blocks) == 1:
            inputs = blocks[0]
        else:
            inputs = sp.hstack([sp.csr_matrix(b) for b in blocks], format="csr", dtype=np.float32)
        return inputs, target
