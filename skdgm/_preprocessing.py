"""What the model sees and what it reconstructs, built from numeric features and token counts.

- Dense features (numeric X, or an encoder's embeddings) are standardised with statistics
  of the training rows (scikit-learn's ``StandardScaler``; scaled only, never centred, when
  sparse).
- Token counts (a count matrix, or the bag of subword pieces of each document) are kept on
  a vocabulary of the most frequent columns; the inference network sees their TF-IDF
  (log1p-scaled counts, smoothed idf from scikit-learn's ``TfidfTransformer``, L2-normalised
  rows) and the bag-of-words decoder reconstructs the counts.
- Token sequences (the subword ids of each document, in order) are mapped onto the same
  vocabulary, with ids for padding, the start and the end of a document and unknown pieces
  first, for the GRU decoder.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import StandardScaler

#: Standardised features are clipped to this many standard deviations of the training rows.
MAX_STANDARDISED = 1e6

#: Ids of the GRU decoder's special tokens; the vocabulary's pieces follow them.
PAD, BOS, EOS, UNK = 0, 1, 2, 3
N_SPECIAL = 4


class ModelInputs:
    """Fitted transformation of (features, counts) into (inputs, targets) of the SDGM.

    Parameters
    ----------
    decoder : {"gaussian", "bow", "gru"}
        ``"gaussian"`` reconstructs the standardised features, ``"bow"`` the counts,
        ``"gru"`` the sequence of pieces (:meth:`sequences`).
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
            # Centred and scaled; sparse features are scaled only, to stay sparse. Their
            # statistics are computed in float64: in float32, the squares of features
            # above 1.8e19 overflow (dense ones StandardScaler accumulates in float64).
            sparse = sp.issparse(features)
            self.scaler_ = StandardScaler(with_mean=not sparse).fit(
                features.astype(np.float64) if sparse else features
            )
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
            # Smoothed idf of the kept columns; the term frequencies are log1p-scaled in
            # counts_block (not TfidfTransformer's sublinear 1 + log), then rows L2-normalised.
            self.tfidf_ = TfidfTransformer(norm="l2", smooth_idf=True).fit(
                counts[:, self.vocabulary_]
            )
        return self

    @property
    def mean_(self):
        """Means subtracted from dense features (None when sparse or no features)."""
        scaler = getattr(self, "scaler_", None)
        if scaler is None or not scaler.with_mean:
            return None
        return scaler.mean_

    @property
    def scale_(self):
        """Scales dividing the features (1 where a feature is constant)."""
        scaler = getattr(self, "scaler_", None)
        return None if scaler is None else scaler.scale_

    @property
    def idf_(self):
        """Inverse document frequencies of the kept count columns."""
        tfidf = getattr(self, "tfidf_", None)
        return None if tfidf is None else tfidf.idf_

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

    def get_state(self) -> tuple[dict, dict]:
        """The settings (JSON-able) and the fitted arrays, for :func:`skdgm.save`."""
        settings = {
            "decoder": self.decoder,
            "vocabulary_size": self.vocabulary_size,
            "counts_weight": self.counts_weight,
            "has_features": self.has_features,
            "has_counts": self.has_counts,
            "widths": list(self.widths_),
        }
        arrays = {
            name: getattr(self, name)
            for name in ("mean_", "scale_", "vocabulary_", "idf_")
            if getattr(self, name, None) is not None
        }
        return settings, arrays

    @classmethod
    def from_state(cls, settings: dict, arrays: dict) -> ModelInputs:
        """Fitted inputs from :meth:`get_state`'s output.

        Raises a ``ValueError`` when an array is missing or does not fit the widths.
        """
        inputs = cls(settings["decoder"], settings["vocabulary_size"], settings["counts_weight"])
        inputs.has_features = bool(settings["has_features"])
        inputs.has_counts = bool(settings["has_counts"])
        inputs.widths_ = tuple(settings["widths"])
        n_features, n_counts = inputs.widths_
        expected = {}
        if inputs.has_features:
            expected["scale_"] = (n_features,)
            if "mean_" in arrays:  # sparse features are scaled only
                expected["mean_"] = (n_features,)
        if inputs.has_counts:
            n_kept = len(arrays.get("vocabulary_", ()))
            expected.update(vocabulary_=(n_kept,), idf_=(n_kept,))
        for name, shape in expected.items():
            if name not in arrays:
                raise ValueError(f"no array inputs.{name}")
            if arrays[name].shape != shape:
                raise ValueError(f"inputs.{name} has shape {arrays[name].shape}, expected {shape}")
        if inputs.has_features:
            mean = arrays.get("mean_")
            scaler = StandardScaler(with_mean=mean is not None)
            scaler.mean_ = mean
            scaler.scale_ = arrays["scale_"]
            scaler.var_ = scaler.scale_**2
            scaler.n_features_in_ = n_features
            scaler.n_samples_seen_ = 0  # not kept: only transform is used after loading
            inputs.scaler_ = scaler
        if inputs.has_counts:
            inputs.vocabulary_ = arrays["vocabulary_"]
            tfidf = TfidfTransformer(norm="l2", smooth_idf=True)
            tfidf.idf_ = arrays["idf_"]
            tfidf.n_features_in_ = len(inputs.vocabulary_)
            inputs.tfidf_ = tfidf
        if inputs.has_counts:
            columns = inputs.vocabulary_
            if not columns.size or columns.min() < 0 or columns.max() >= n_counts:
                raise ValueError(f"inputs.vocabulary_ holds columns outside 0..{n_counts - 1}")
        return inputs

    @property
    def sequence_vocabulary_size(self) -> int:
        """Ids of :meth:`sequences`: the special tokens, then the vocabulary's pieces."""
        return N_SPECIAL + len(self.vocabulary_)

    def sequences(self, token_ids, max_length: int) -> np.ndarray:
        """Each document's pieces as ids of the decoder's vocabulary, padded with ``PAD``.

        A row holds the document's first pieces then ``EOS``, cut at ``max_length`` (a
        document cut short has no ``EOS``); a piece outside the vocabulary becomes ``UNK``.

        Parameters
        ----------
        token_ids : list of list of int
            Each document's subword ids, as the encoder's tokenizer cuts it (the ids of
            the columns of the token counts).
        max_length : int
            Ids per row at most, ``EOS`` included.

        Returns
        -------
        sequences : ndarray of shape (n_documents, width), dtype int64
            ``width`` is the longest row's length (at most ``max_length``).
        """
        rows = []
        for ids in token_ids:
            ids = np.asarray(ids[:max_length], dtype=np.int64)
            position = np.searchsorted(self.vocabulary_, ids)
            known = position < len(self.vocabulary_)
            known[known] = self.vocabulary_[position[known]] == ids[known]
            compact = np.where(known, position + N_SPECIAL, UNK)
            rows.append(np.append(compact, EOS)[:max_length])
        width = max((len(row) for row in rows), default=1)
        padded = np.full((len(rows), width), PAD, dtype=np.int64)
        for row, sequence in zip(padded, rows):
            row[: len(sequence)] = sequence
        return padded

    def counts_block(self, counts):
        """The TF-IDF block of the inputs (log-scaled, L2-normalised rows), CSR float32."""
        kept = sp.csr_matrix(counts, dtype=np.float32)[:, self.vocabulary_]
        kept.data = np.log1p(kept.data)
        tfidf = self.tfidf_.transform(kept) * self.counts_weight
        return sp.csr_matrix(tfidf, dtype=np.float32)

    def transform(self, features=None, counts=None):
        """Return ``(inputs, targets)``: dense arrays, or CSR matrices when any part is sparse.

        ``targets`` is None for ``decoder="gru"``, whose targets are :meth:`sequences`.
        """
        blocks, target = [], None
        if self.has_features:
            # Clipped at a million standard deviations of the training rows: a feature
            # nearly constant there (a scale of 1e-35) turned a new row's value into
            # float32's infinity, and the probabilities into NaN.
            if sp.issparse(features):
                scaled = sp.csr_matrix(self.scaler_.transform(features), dtype=np.float64)
                np.clip(scaled.data, -MAX_STANDARDISED, MAX_STANDARDISED, out=scaled.data)
                scaled = scaled.astype(np.float32)
            else:
                scaled = np.clip(
                    self.scaler_.transform(features), -MAX_STANDARDISED, MAX_STANDARDISED
                ).astype(np.float32)
            blocks.append(scaled)
            target = scaled if self.decoder == "gaussian" else None
        if self.has_counts:
            blocks.append(self.counts_block(counts))
            if self.decoder == "bow":
                target = sp.csr_matrix(counts, dtype=np.float32)[:, self.vocabulary_]
        if len(blocks) == 1:
            inputs = blocks[0]
        else:
            inputs = sp.hstack([sp.csr_matrix(b) for b in blocks], format="csr", dtype=np.float32)
        return inputs, target
