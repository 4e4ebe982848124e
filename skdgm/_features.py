"""What the SDGM reads: features and token counts from its encoder, or from numeric X.

An encoder turns documents into dense features; with ``decoder="bow"`` or ``"gru"`` it
also counts (or lists) each document's subword pieces. Without an encoder, numeric ``X``
is the features, or the counts with ``decoder="bow"``. :class:`ModelInputs` then makes
them the model's inputs and reconstruction targets.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import validate_data

from ._documents import check_documents
from ._preprocessing import ModelInputs
from ._validation import check_count_matrix, check_labels_length, refuse_text


def check_fit_input(estimator, X, y):
    """Validate ``fit``'s X and y; return (documents or None, numeric X or None, y).

    ``X`` holds documents when ``estimator.encoder`` is set, numbers otherwise; for
    numbers, scikit-learn's ``validate_data`` sets ``n_features_in_`` (and
    ``feature_names_in_``) on the estimator.
    """
    if estimator.ensemble_size > 1 and estimator.fine_tune_layers:
        raise ValueError(
            f"ensemble_size={estimator.ensemble_size} with "
            f"fine_tune_layers={estimator.fine_tune_layers}: the members of an ensemble "
            "share one encoder, so they cannot each tune its layers. Set ensemble_size=1 "
            "to fine-tune, or fine_tune_layers=0 for an ensemble on the frozen encoder."
        )
    if estimator.encoder is not None:
        docs = check_documents(X, min_documents=2)
        return docs, None, check_labels_length(y, len(docs))
    if estimator.fine_tune_layers:
        raise ValueError(
            f"fine_tune_layers={estimator.fine_tune_layers} fine-tunes the encoder, but "
            "encoder=None. Pass an encoder such as skdgm.encoders.MultilingualEncoder(), "
            "or set fine_tune_layers=0 for numeric features."
        )
    if estimator.decoder == "gru":
        raise ValueError(
            "decoder='gru' reconstructs each document's sequence of subword pieces, so it "
            "needs documents, but encoder=None (numeric X). Pass an encoder such as "
            "skdgm.encoders.MultilingualEncoder() and X as a list of str, or use "
            "decoder='gaussian' (or 'bow' for word counts) for numeric features."
        )
    refuse_text(X, type(estimator).__name__)
    X, y = validate_data(
        estimator,
        X,
        y,
        accept_sparse="csr",
        dtype=[np.float64, np.float32],
        y_numeric=False,
        multi_output=False,
        ensure_min_samples=2,
    )
    return None, X, y


def take_rows(docs, X, rows: np.ndarray):
    """The rows ``rows`` of :func:`check_fit_input`'s (documents or None, numeric X or None)."""
    if docs is not None:
        return [docs[i] for i in rows], None
    return None, X[rows]


def prediction_features(estimator, X):
    """(features, counts) of the rows to predict, read as the fitted estimator read its own."""
    if getattr(estimator, "encoder_", None) is not None:
        docs = check_documents(X, min_documents=1)
        return encode(estimator.encoder_, docs, estimator.decoder_)
    refuse_text(X, type(estimator).__name__)
    X = validate_data(
        estimator, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=False
    )
    return split_numeric(X, estimator.decoder_)


def resolve_decoder(decoder: str, encoder) -> str:
    """``decoder="auto"``: ``"bow"`` with an encoder that can count tokens, else ``"gaussian"``."""
    if decoder != "auto":
        return decoder
    if encoder is not None and hasattr(encoder, "count_tokens"):
        return "bow"
    return "gaussian"


def fit_encoder(encoder, docs, previous, fine_tune_layers: int, device, decoder: str):
    """Fit (a clone of) ``encoder`` on ``docs``.

    ``previous`` is the previous fit's fitted encoder on a warm start (None otherwise): its
    tuned layers, if any, are kept. Returns (features, counts, trainable embedder or None,
    fitted encoder); the embedder, with ``fine_tune_layers`` > 0, holds the stored token
    states below the top layers, which its caller closes (``embedder.states.close()``).
    """
    if fine_tune_layers:
        missing = [
            name
            for name in ("_token_states", "_tunable_top", "_with_tuned_top")
            if not hasattr(encoder, name)
        ]
        if missing:  # checked before the encoder is fitted, which may take long
            raise ValueError(
                f"fine_tune_layers={fine_tune_layers} needs an encoder whose layers can "
                f"be fine-tuned, such as skdgm.encoders.MultilingualEncoder; "
                f"{type(encoder).__name__} cannot. Use fine_tune_layers=0."
            )
    if previous is not None and getattr(previous, "tuned_layers_", 0):
        fitted = previous  # a warm start keeps (and goes on from) the layers tuned before
    else:
        # y=None given explicitly: sklearn's FrozenEstimator (a prefitted encoder that
        # fit leaves alone) requires it.
        fitted = clone(encoder).fit(docs, None)
    if fine_tune_layers == 0:
        return (*encode(fitted, docs, decoder), None, fitted)
    from .encoders._tuning import DocumentEmbedder

    states = fitted._token_states(docs, fine_tune_layers)
    try:
        embedder = DocumentEmbedder(fitted._tunable_top(fine_tune_layers), states)
        embedder.to(device)
        features = embedder.embeddings(np.arange(len(docs)))
        counts = token_counts(fitted, docs, decoder)
    except BaseException:
        states.close()
        raise
    return features, counts, embedder, fitted


def encode(encoder, docs, decoder: str):
    """The documents' features from a fitted encoder, and their token counts (or None)."""
    return encoder_features(encoder, docs), token_counts(encoder, docs, decoder)


def encoder_features(encoder, docs) -> np.ndarray:
    """``encoder.transform(docs)`` as a dense float32 matrix of one row a document.

    A sparse result (e.g. ``TfidfVectorizer`` as the encoder) is densified; anything that
    is not a matrix of numbers, one row a document, is refused with what the encoder gave.
    """
    import scipy.sparse

    output = encoder.transform(docs)
    name = type(encoder).__name__
    if scipy.sparse.issparse(output):
        output = output.toarray()
    try:
        features = np.asarray(output, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The encoder {name} returned {type(output).__name__} from transform, which is "
            "not a matrix of numbers. An encoder must return an array (or a sparse matrix) "
            "of shape (n_documents, n_features)."
        ) from exc
    if features.ndim != 2 or features.shape[0] != len(docs):
        raise ValueError(
            f"The encoder {name} returned an array of shape {features.shape} for "
            f"{len(docs)} documents; it must return one row a document, shape "
            f"({len(docs)}, n_features)."
        )
    return features


def token_counts(encoder, docs, decoder: str):
    """Each document's count of every subword piece, or None when the encoder cannot count."""
    if hasattr(encoder, "count_tokens"):
        return encoder.count_tokens(docs)
    if decoder in ("bow", "gru"):
        raise ValueError(
            f"decoder={decoder!r} needs token counts, but the encoder {type(encoder).__name__} "
            "has no count_tokens method. Use decoder='gaussian', or an encoder such as "
            "skdgm.encoders.MultilingualEncoder."
        )
    return None


def token_ids(encoder, docs):
    """Each document's subword ids, for ``decoder="gru"``."""
    missing = [name for name in ("token_ids", "count_tokens") if not hasattr(encoder, name)]
    if missing:
        raise ValueError(
            f"decoder='gru' needs the documents' subword pieces, but the encoder "
            f"{type(encoder).__name__} has no {' or '.join(missing)} method. Use "
            "decoder='gaussian', or an encoder such as skdgm.encoders.MultilingualEncoder."
        )
    return encoder.token_ids(docs)


def split_numeric(X, decoder: str):
    """Numeric ``X`` as (features, counts): counts with ``decoder="bow"``, else features."""
    if decoder == "bow":
        return None, check_count_matrix(X)
    return X, None


def training_inputs(
    decoder: str,
    features,
    counts,
    sequences,
    previous: ModelInputs | None,
    vocabulary_size: int | None,
    max_decoder_length: int,
):
    """The training rows' (ModelInputs, inputs, reconstruction targets).

    ``previous`` is the previous fit's ModelInputs on a warm start, reused once the
    widths are checked; otherwise new ones are fitted. ``sequences`` are the documents'
    subword ids with ``decoder="gru"``, whose targets they become.
    """
    if previous is not None:
        model_inputs = previous
        model_inputs.check_widths(
            features,
            counts,
            "warm_start=True needs data of the previous fit's width; set warm_start=False.",
        )
    else:
        model_inputs = ModelInputs(decoder, vocabulary_size).fit(features, counts)
    inputs, targets = model_inputs.transform(features, counts)
    if decoder == "gru":
        targets = model_inputs.sequences(sequences, max_decoder_length)
    return model_inputs, inputs, targets
