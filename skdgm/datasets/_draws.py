"""Stratified draws of labelled documents, the same in every process and for every method."""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["draw_labelled"]


def draw_labelled(y_train, n, *, seed: int, language: str) -> np.ndarray:
    """Draw the labelled documents of one run from a train split, stratified.

    ``n // n_classes`` documents of each class (capped at what the class has) are drawn
    without replacement, with a generator seeded from ``(seed, language, n)``: the same
    arguments give the same draw in every process and for every method.

    Parameters
    ----------
    y_train : array-like of shape (n_train,)
        Class labels of the train split (and of nothing else).
    n : int or "all"
        Number of labelled documents; ``"all"`` labels the whole train split.
    seed : int
        The run's seed.
    language : str
        The language the labels come from (a code such as ``"en"``).

    Returns
    -------
    positions : ndarray of int
        Sorted positions in ``y_train`` of the labelled documents.
    """
    y_train = np.asarray(y_train)
    if n == "all":
        return np.arange(len(y_train))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int or 'all'; got {n!r}.")
    classes = np.unique(y_train)
    per_class = int(n) // len(classes)
    if per_class < 1:
        raise ValueError(
            f"n={n} is fewer than the {len(classes)} classes: a stratified draw needs at "
            "least one document per class."
        )
    rng = np.random.default_rng([int(seed), zlib.crc32(language.encode("utf-8")), int(n)])
    chosen = []
    for label in classes:
        members = np.flatnonzero(y_train == label)
        chosen.append(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))
