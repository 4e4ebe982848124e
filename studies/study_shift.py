"""When the labelled documents are in another language: what the linear expert should weigh.

The linear expert (``linear_weight``, ``docs/tuning.rst`` round 13) pools q(y | x) with a
logistic regression on [embedding ; TF-IDF of pieces] fitted on the labelled rows. Within
a language it gains 0.4 to 2.5 points; with labels in one language and the other
documents in another it costs up to 5 points at 64 labels: the regression has learnt the
source language's pieces, which the target's documents do not have.

This study fits, on each draw (every language, and cross-lingual pairs), the SDGM with
its defaults once (``random_state`` = seed + offset), and saves what any rule for the
regression's weight may use: the test rows' log q(y | x) and log p_lr(y | x), and the
training rows' TF-IDF block (labelled and unlabelled) as the model sees it. ``--score``
then scores weight rules on the saved draws without fitting again: ``w = m / (m + 2)``
times a factor that measures how well the labelled rows' pieces cover the unlabelled
rows' (see :func:`skdgm._sdgm._linear.piece_coverage`).

Run: ``python studies/study_shift.py --save DIR --sizes 16 64 --seeds 0 1``
(add ``--pairs en-de en-fr de-fr`` for the cross-lingual draws), then
``python studies/study_shift.py --score DIR``.
"""

from __future__ import annotations

import glob
import json
import os
import time

import numpy as np
import scipy.sparse as sp
from _study_draws import draws, study_main

from skdgm import SemiSupervisedVAEClassifier
from skdgm._sdgm._linear import HALF_WEIGHT_LABELS, piece_coverage


def fit_draws(args) -> None:
    """Fit the SDGM on every draw and save its ingredients under ``args.save``."""
    encoder, _, every_draw = draws(args)
    os.makedirs(args.save, exist_ok=True)
    for draw in every_draw:
        path = f"{args.save}/{draw.n}-{draw.language}-{draw.seed}.npz"
        if os.path.exists(path):
            continue
        task, train, test, seed = draw.task, draw.train, draw.test, draw.seed
        start = time.perf_counter()
        # The regression fitted on the labelled rows alone, as in round 14.
        clf = SemiSupervisedVAEClassifier(
            encoder, linear_pseudo_labels=0.0, random_state=seed + args.seed_offset
        ).fit(train, task.y_train)
        seconds = time.perf_counter() - start
        linear = clf._linear
        test_inputs = clf._model_inputs(test)
        train_inputs = clf._model_inputs(train)
        clf._linear = None  # q(y | x) alone
        log_q = clf._log_proba(test_inputs)
        mean, scale = clf.inputs_.mean_, clf.inputs_.scale_
        log_lr = linear.log_proba(linear.features(test_inputs, mean, scale))
        n_dense = linear.n_dense
        np.savez_compressed(
            path,
            log_q=log_q,
            log_lr=log_lr,
            y_test=np.searchsorted(clf.classes_, task.y_test),
            labelled=np.asarray(task.y_train) != -1,
            per_class=(np.asarray(task.y_train) != -1).sum() / len(clf.classes_),
            seconds=seconds,
        )
        sp.save_npz(
            path.replace(".npz", "-pieces.npz"),
            sp.csr_matrix(train_inputs[:, n_dense:]),
        )
        print(f"{path}: {seconds:.0f} s", flush=True)


def _rules(per_class: float, coverage: float) -> dict[str, float]:
    """The regression's weight under each rule, for one draw."""
    base = per_class / (per_class + HALF_WEIGHT_LABELS)
    rules = {"sdgm": 0.0, "auto": base}
    for power in (1, 2, 4, 8):
        rules[f"cov^{power}"] = base * min(coverage, 1.0) ** power
    for threshold in (0.8, 0.9, 0.95):
        rules[f"cov>{threshold}"] = base * float(coverage >= threshold)
    return rules


def score(folder: str) -> None:
    """Score every weight rule on the draws saved in ``folder``, per size and kind."""
    records = []
    for path in sorted(glob.glob(f"{folder}/*.npz")):
        if path.endswith("-pieces.npz"):
            continue
        saved = np.load(path)
        pieces = sp.load_npz(path.replace(".npz", "-pieces.npz"))
        labelled = saved["labelled"]
        coverage = piece_coverage(pieces[labelled], pieces[~labelled])
        name = os.path.basename(path)[:-4]
        n, language, seed = name.split("-", 1)[0], *name.split("-", 1)[1].rsplit("-", 1)
        scores = {}
        for rule, w in _rules(float(saved["per_class"]), coverage).items():
            pooled = (1 - w) * saved["log_q"] + w * saved["log_lr"]
            scores[rule] = float((pooled.argmax(1) == saved["y_test"]).mean())
        kind = "cross" if "-" in language else "in"
        records.append(
            {"n": int(n), "kind": kind, "language": language, "seed": int(seed),
             "coverage": coverage, "scores": scores}
        )  # fmt: skip
    for kind in ("in", "cross"):
        for n in sorted({r["n"] for r in records if r["kind"] == kind}):
            rows = [r for r in records if r["kind"] == kind and r["n"] == n]
            cov = np.array([r["coverage"] for r in rows])
            print(
                f"\n{kind}-language, n = {n}: {len(rows)} draws; coverage "
                f"min {cov.min():.3f} median {np.median(cov):.3f} max {cov.max():.3f}"
            )
            auto = np.array([r["scores"]["auto"] for r in rows])
            for rule in rows[0]["scores"]:
                acc = np.array([r["scores"][rule] for r in rows])
                d = 100 * (acc - auto)
                se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
                print(f"  {rule:10s} {acc.mean():.3f}  vs auto {d.mean():+5.1f} (s.e. {se:.1f})")
    print(json.dumps([{k: r[k] for k in ("n", "language", "seed", "coverage")} for r in records]))


def main(argv=None) -> None:
    study_main(__doc__, fit_draws, score, [16, 64], argv)


if __name__ == "__main__":
    main()
