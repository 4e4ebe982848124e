"""Semi-supervision pays off on real documents (slow: real corpus, full default training)."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from skdgm import SemiSupervisedVAEClassifier
from skdgm.datasets import load_libreoffice_help


@pytest.mark.slow
def test_unlabelled_documents_help_on_counts():
    """Word counts of English help pages, 32 labels: the SDGM trained with the unlabelled
    rest of the train split beats the same model trained on the 32 labelled rows alone."""
    train = load_libreoffice_help(languages="en", split="train")
    test = load_libreoffice_help(languages="en", split="test")
    vectorizer = CountVectorizer(min_df=2, max_features=1000).fit(train.data)
    X_train, X_test = vectorizer.transform(train.data), vectorizer.transform(test.data)
    gains = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        labelled = np.concatenate(
            [rng.choice(np.flatnonzero(train.target == c), 8, replace=False) for c in range(4)]
        )
        y = np.full(len(train.target), -1)
        y[labelled] = train.target[labelled]
        semi = SemiSupervisedVAEClassifier(decoder="bow", random_state=seed).fit(X_train, y)
        alone = SemiSupervisedVAEClassifier(decoder="bow", random_state=seed).fit(
            X_train[labelled], train.target[labelled]
        )
        gains.append(semi.score(X_test, test.target) - alone.score(X_test, test.target))
    assert np.mean(gains) > 0.01, gains
