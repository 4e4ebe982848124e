"""The linear expert: a logistic regression pooled with q(y | x) at prediction time.

With a few dozen labels the SDGM is ahead of a logistic regression on the same
documents; as labels grow the discriminative model catches up and passes it
(``docs/tuning.rst``, round 13). Pooling the two in log space,

    log p(y | x) = (1 - w) log q(y | x) + w log p_lr(y | x) + const,

with the regression's weight ``w = m / (m + 2)`` growing with ``m``, the labelled rows
per class, kept the SDGM's lead at 16 labels and passed both at 32 to 128. The
regression (``C=10``) reads the documents as [embedding, L2-normalised ; TF-IDF of
pieces]: the inference network's inputs, with the standardisation of the embedding
undone, so that neither block outweighs the other.

Where the labelled documents are in another language than the rest, the regression
knows few of the pieces it is asked about and cost up to 5 points; the weight is then
scaled by how well the labelled rows' pieces cover the unlabelled rows'
(:func:`piece_coverage`, round 14), which is about 1 within a language.

Then the regression learns from the SDGM (round 15): it is fitted again on the labelled
rows and the unlabelled rows the pooled model is surest of (:func:`confident_rows`),
with their predicted labels, and its coverage is that of those rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: ``w = m / (m + HALF_WEIGHT_LABELS)``: the labels per class at which w is one half.
HALF_WEIGHT_LABELS = 2.0

#: The regression's inverse regularisation strength (that of the benchmark's baselines).
C = 10.0


@dataclass
class LinearExpert:
    """A fitted multinomial logistic regression on :func:`linear_features`.

    ``coef`` has one row per class (a binary problem's single row is expanded), so
    that ``features @ coef.T + intercept`` are the logits of every class.
    """

    coef: np.ndarray  # (n_classes, n_columns)
    intercept: np.ndarray  # (n_classes,)
    weight: float
    n_dense: int | None  # leading embedding columns of the inputs (see linear_features)

    def features(self, inputs, mean, scale):
        """The regression's view of the model's ``inputs`` (:func:`linear_features`)."""
        return linear_features(inputs, self.n_dense, mean, scale)

    def log_proba(self, features) -> np.ndarray:
        """log p_lr(y | x), one row per row of ``features``."""
        logits = np.asarray(features @ self.coef.T, dtype=np.float64) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def pool(self, log_q: np.ndarray, features) -> np.ndarray:
        """The pooled log-probabilities (normalised) of ``log_q`` and the regression."""
        pooled = (1.0 - self.weight) * log_q + self.weight * self.log_proba(features)
        pooled -= pooled.max(axis=1, keepdims=True)
        return pooled - np.log(np.exp(pooled).sum(axis=1, keepdims=True))


def resolve_weight(weight, n_labelled: int, n_classes: int, coverage: float = 1.0) -> float:
    """The regression's weight: ``weight``, or for ``"auto"`` m / (m + 2) times the coverage.

    ``coverage`` is :func:`piece_coverage` of the labelled rows over the unlabelled ones,
    capped at 1: about 1 within a language, a fifth to a third when the labels are in
    another language than the rest (``docs/tuning.rst``, round 14), where the regression
    knows few of the pieces it is asked about and its weight falls with it.
    """
    if weight != "auto":
        return float(weight)
    per_class = n_labelled / max(n_classes, 1)
    if not np.isfinite(coverage):  # unknown: as within one language
        coverage = 1.0
    return per_class / (per_class + HALF_WEIGHT_LABELS) * min(max(coverage, 0.0), 1.0)


def linear_features(inputs, n_dense: int | None, mean, scale):
    """The regression's view of the model's inputs.

    ``n_dense`` leading columns are the standardised embedding (``None`` or 0: the inputs
    are read as they are, as for a numeric ``X``); they are brought back to the encoder's
    scale (``x * scale + mean``) and each row L2-normalised, and the TF-IDF block after
    them is kept.
    """
    if not n_dense:
        return inputs
    dense = inputs[:, :n_dense]
    dense = dense.toarray() if sp.issparse(dense) else np.asarray(dense)
    dense = dense.astype(np.float64) * scale + (0.0 if mean is None else mean)
    dense /= np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
    rest = inputs[:, n_dense:]
    if rest.shape[1] == 0:
        return dense
    return sp.hstack([sp.csr_matrix(dense), sp.csr_matrix(rest)], format="csr")


def fit_linear_expert(
    features, y_index: np.ndarray, n_classes: int, weight: float, n_dense: int | None
) -> LinearExpert | None:
    """Fit the regression on the labelled rows' ``features``; None when it cannot help.

    None when ``weight`` is 0 or when some class has no labelled row (the regression
    would give it no probability at all, and the pooled model could never predict it).
    """
    if not weight > 0 or len(np.unique(y_index)) < n_classes or n_classes < 2:
        return None
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=1000).fit(features, y_index)
    coef, intercept = model.coef_, model.intercept_
    if n_classes == 2:  # one row of logits for class 1; class 0's logit is 0
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.r_[0.0, intercept]
    return LinearExpert(
        np.asarray(coef, dtype=np.float64),
        np.asarray(intercept, dtype=np.float64),
        float(weight),
        n_dense,
    )


def confident_rows(log_proba: np.ndarray, share: float) -> np.ndarray:
    """The rows the pooled model is surest of: in each predicted class, the ``share`` of
    its rows with the highest probability (rounded up), as sorted positions.

    Per class, so that a class the model predicts less often keeps its share of the
    pseudo-labels rather than yielding them to the confident majority.
    """
    predicted = log_proba.argmax(axis=1)
    top = log_proba.max(axis=1)
    kept = []
    for k in np.unique(predicted):
        rows = np.flatnonzero(predicted == k)
        count = int(np.ceil(share * rows.size))
        kept.append(rows[np.argsort(-top[rows], kind="stable")[:count]])
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.intp)


def piece_coverage(labelled, unlabelled) -> float:
    """How well the labelled rows' pieces cover the unlabelled rows', as a ratio.

    For each unlabelled row, the share of its TF-IDF mass on pieces that some labelled
    row has; for each labelled row, the share on pieces that some *other* labelled row
    has (leave one out, so that both count the same kind of overlap whatever the number
    of labels). The ratio of the two means: about 1 when both come from one corpus and
    language, well under 1 when the labelled documents are in another language than the
    rest (the regression then knows few of the pieces it is asked about). 1 when there
    is nothing to compare (no unlabelled row, one labelled row, no TF-IDF block, no
    TF-IDF mass on either side). When no labelled row shares a piece with another (a
    few short labelled documents), the ratio is undefined: 1 if some unlabelled row
    shares a piece with a labelled one, 0 if none does.
    """
    if labelled.shape[1] == 0 or labelled.shape[0] < 2 or unlabelled.shape[0] == 0:
        return 1.0
    labelled = sp.csr_matrix(abs(labelled))
    unlabelled = sp.csr_matrix(abs(unlabelled))
    present = np.asarray((labelled > 0).sum(axis=0)).ravel()

    def share(rows, covered):
        total = np.asarray(rows.sum(axis=1)).ravel()
        on_covered = np.asarray(rows.multiply(covered).sum(axis=1)).ravel()
        keep = total > 0
        return float((on_covered[keep] / total[keep]).mean()) if keep.any() else None

    unlabelled_share = share(unlabelled, (present > 0).astype(np.float64)[None, :])
    # Leave one out: a labelled row's piece is covered when another labelled row has it.
    covered_by_others = labelled.copy()
    covered_by_others.data = (present[covered_by_others.indices] > 1).astype(np.float64)
    labelled_share = share(labelled, covered_by_others)
    if unlabelled_share is None or labelled_share is None:  # empty rows on one side
        return 1.0
    if labelled_share <= 0:
        return 1.0 if unlabelled_share > 0 else 0.0
    return unlabelled_share / labelled_share
