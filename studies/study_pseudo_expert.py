"""The linear expert fitted on pseudo-labels: does a regression taught by the SDGM help?

The linear expert (``linear_weight``, ``docs/tuning.rst`` rounds 13 and 14) is a logistic
regression on [embedding ; TF-IDF of pieces] fitted on the labelled rows only, pooled
with q(y | x). With 32 labels (8 a class) it has seen few documents; the pooled model
labels the unlabelled rows far better than chance. This study asks whether refitting the
regression on the labelled rows plus the unlabelled rows the pooled model is surest of
(self-training, one round, at the cost of a second regression) lifts the pooled model,
within a language and across languages (where the regression fitted on the source
language's pieces knows few of the target's, and a regression fitted on target pages
labelled by the SDGM would).

``--save DIR`` fits the SDGM with its defaults once a draw (``random_state`` = seed +
offset) and saves what any rule needs: log q(y | x) (without the expert) on the training
and test rows, the regression's features of both, the labels, the true labels of the
unlabelled rows (to report the pseudo-labels' accuracy, never used by a rule) and the
expert's weight. ``--score DIR`` scores the rules on the saved draws without refitting
the SDGM.

Run: ``python studies/study_pseudo_expert.py --save DIR --sizes 16 32 64 128 --seeds 0 1``
(``--pairs en-de en-fr de-fr`` for the cross-lingual draws), then ``--score DIR``.
"""

from __future__ import annotations

import glob
import os
import time

import numpy as np
import scipy.sparse as sp
from _study_draws import draws, study_main

from skdgm import SemiSupervisedVAEClassifier
from skdgm._sdgm._linear import HALF_WEIGHT_LABELS, fit_linear_expert, piece_coverage


def fit_draws(args) -> None:
    """Fit the SDGM on every draw and save its ingredients under ``args.save``."""
    encoder, data, every_draw = draws(args)
    os.makedirs(args.save, exist_ok=True)
    for draw in every_draw:
        path = f"{args.save}/{draw.n}-{draw.language}-{draw.seed}.npz"
        if os.path.exists(path):
            continue
        task, train, test = draw.task, draw.train, draw.test
        source, target, seed = draw.source, draw.target, draw.seed
        # The unlabelled rows' true labels, for the report only.
        src, tgt = data[source], data[target]
        if source == target:
            labelled_rows = task.train_rows[np.asarray(task.y_train) != -1]
            keep = ~np.isin(src.train_rows, labelled_rows)
            truth = src.y_train[keep]
        else:
            truth = tgt.y_train
        start = time.perf_counter()
        # The expert of round 14 (labelled rows only): the rules start from it.
        clf = SemiSupervisedVAEClassifier(
            encoder, linear_pseudo_labels=0.0, random_state=seed + args.seed_offset
        ).fit(train, task.y_train)
        seconds = time.perf_counter() - start
        linear = clf._linear
        train_inputs = clf._model_inputs(train)
        test_inputs = clf._model_inputs(test)
        clf._linear = None  # q(y | x) alone
        mean, scale = clf.inputs_.mean_, clf.inputs_.scale_
        n_dense = linear.n_dense
        y_index = np.full(len(train), -1)
        labelled = np.asarray(task.y_train) != -1
        y_index[labelled] = np.searchsorted(clf.classes_, task.y_train[labelled])
        np.savez_compressed(
            path,
            log_q_train=clf._log_proba(train_inputs),
            log_q_test=clf._log_proba(test_inputs),
            y_train=y_index,
            y_unlabelled_true=np.searchsorted(clf.classes_, truth),
            y_test=np.searchsorted(clf.classes_, task.y_test),
            weight=linear.weight,
            n_dense=n_dense,
            seconds=seconds,
        )
        for name, inputs in (("train", train_inputs), ("test", test_inputs)):
            sp.save_npz(
                path.replace(".npz", f"-{name}.npz"),
                sp.csr_matrix(linear.features(inputs, mean, scale)),
            )
        print(f"{path}: {seconds:.0f} s", flush=True)


def _normalise(log_p):
    log_p = log_p - log_p.max(axis=1, keepdims=True)
    return log_p - np.log(np.exp(log_p).sum(axis=1, keepdims=True))


def _pool(log_q, log_lr, w):
    return _normalise((1 - w) * log_q + w * log_lr)


def _confident(log_p, share: float, n_classes: int) -> np.ndarray:
    """Rows kept: per predicted class, the ``share`` of its rows with the highest probability."""
    predicted = log_p.argmax(1)
    top = log_p.max(1)
    keep = np.zeros(len(log_p), dtype=bool)
    for k in range(n_classes):
        rows = np.flatnonzero(predicted == k)
        if rows.size:
            count = int(np.ceil(share * rows.size))
            keep[rows[np.argsort(-top[rows])[:count]]] = True
    return keep


def _rules(saved, features_train, features_test):
    """Each rule's test log-probabilities for one draw, and its pseudo-labels' accuracy."""
    y = saved["y_train"]
    labelled = y != -1
    n_classes = saved["log_q_test"].shape[1]
    n_dense = int(saved["n_dense"])
    weight = float(saved["weight"])
    per_class = labelled.sum() / n_classes
    truth = saved["y_unlabelled_true"]
    expert = fit_linear_expert(features_train[labelled], y[labelled], n_classes, 1.0, n_dense)
    lr_train = expert.log_proba(features_train)
    lr_test = expert.log_proba(features_test)
    out = {
        "sdgm": (saved["log_q_test"], None),
        "auto": (_pool(saved["log_q_test"], lr_test, weight), None),
    }
    pooled_train = _pool(saved["log_q_train"], lr_train, weight)
    unlabelled = np.flatnonzero(~labelled)
    pieces = features_train[:, n_dense:]
    for source_name, source, shares in (
        ("pool", pooled_train, (0.25, 0.5, 0.75, 1.0)),
        ("q", saved["log_q_train"], (0.5,)),
    ):
        for share in shares:
            keep = _confident(source[unlabelled], share, n_classes)
            rows = np.r_[np.flatnonzero(labelled), unlabelled[keep]]
            labels = np.r_[y[labelled], source[unlabelled[keep]].argmax(1)]
            if len(np.unique(labels)) < n_classes:
                continue
            accuracy = float((labels[labelled.sum() :] == truth[keep]).mean())
            refit = fit_linear_expert(features_train[rows], labels, n_classes, 1.0, n_dense)
            lr2 = refit.log_proba(features_test)
            # Coverage of the new labelled set over the rest (about 1 once target rows join).
            rest = np.setdiff1d(np.arange(len(y)), rows)
            coverage = piece_coverage(pieces[rows], pieces[rest]) if rest.size else 1.0
            m_new = len(rows) / n_classes
            for wname, w in (
                ("w", weight),
                ("w-cov", per_class / (per_class + HALF_WEIGHT_LABELS) * min(coverage, 1.0)),
                ("0.5", 0.5),
                ("M", m_new / (m_new + HALF_WEIGHT_LABELS) * min(coverage, 1.0)),
            ):
                out[f"{source_name}{share:.0%}-{wname}"] = (
                    _pool(saved["log_q_test"], lr2, w),
                    accuracy,
                )
            out[f"{source_name}{share:.0%}-lr-only"] = (lr2, accuracy)
    return out


#: Rules whose calibration ``score`` reports, and the temperatures it tries on them.
CALIBRATED = ("sdgm", "auto", "pool50%-w-cov", "pool50%-M")
TEMPERATURES = (0.6, 0.8, 1.0, 1.2)


def _calibration(log_p, y, temperature=1.0):
    """(log-loss, Brier, ECE, mean top probability) of ``softmax(log_p / temperature)``."""
    from skdgm.benchmark import calibration_scores

    proba = np.exp(_normalise(log_p / temperature))
    scores = calibration_scores(y, proba, np.arange(proba.shape[1]))
    return scores["log_loss"], scores["brier"], scores["ece"], float(proba.max(1).mean())


def score(folder: str) -> None:
    """Score every rule on the draws saved in ``folder``, per size and kind.

    Each rule against ``auto`` (round 14's rule), then the rules paired with round 15's
    default (``pool50%-w-cov``), then the calibration of a few rules' probabilities and
    of the new default at a few temperatures.
    """
    records = []
    for path in sorted(glob.glob(f"{folder}/*.npz")):
        if path.endswith(("-train.npz", "-test.npz")):
            continue
        saved = np.load(path)
        features_train = sp.load_npz(path.replace(".npz", "-train.npz"))
        features_test = sp.load_npz(path.replace(".npz", "-test.npz"))
        name = os.path.basename(path)[:-4]
        n, rest = name.split("-", 1)
        language, seed = rest.rsplit("-", 1)
        scores, pseudo, calibration = {}, {}, {}
        for rule, (log_p, accuracy) in _rules(saved, features_train, features_test).items():
            scores[rule] = float((log_p.argmax(1) == saved["y_test"]).mean())
            pseudo[rule] = accuracy
            if rule in CALIBRATED:
                calibration[rule] = _calibration(log_p, saved["y_test"])
            if rule == "pool50%-M":
                for t in TEMPERATURES:
                    calibration[f"{rule} T={t}"] = _calibration(log_p, saved["y_test"], t)
        kind = "cross" if "-" in language else "in"
        records.append(
            {"n": int(n), "kind": kind, "language": language, "seed": int(seed),
             "scores": scores, "pseudo": pseudo, "calibration": calibration}
        )  # fmt: skip
    for kind in ("in", "cross"):
        for n in sorted({r["n"] for r in records if r["kind"] == kind}):
            rows = [r for r in records if r["kind"] == kind and r["n"] == n]
            print(f"\n{kind}-language, n = {n}: {len(rows)} draws")
            for rule in rows[0]["scores"]:
                present = [r for r in rows if rule in r["scores"]]
                acc = np.array([r["scores"][rule] for r in present])
                base = np.array([r["scores"]["auto"] for r in present])
                d = 100 * (acc - base)
                se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
                pa = [r["pseudo"][rule] for r in present if r["pseudo"][rule] is not None]
                extra = f"  pseudo-label acc {np.mean(pa):.3f}" if pa else ""
                print(
                    f"  {rule:16s} {acc.mean():.3f}  vs auto {d.mean():+5.1f} (s.e. {se:.1f})"
                    f" ahead {int((d > 0).sum())}/{len(d)} [{len(present)}]{extra}"
                )
            print("  paired with round 15's default, pool50%-w-cov:")
            for rule in ("pool50%-M", "pool50%-lr-only", "pool75%-M", "pool75%-w-cov", "sdgm"):
                d = 100 * np.array(
                    [r["scores"][rule] - r["scores"]["pool50%-w-cov"] for r in rows]
                )
                se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
                print(
                    f"    {rule:16s} {d.mean():+5.1f} (s.e. {se:.1f}) ahead "
                    f"{int((d > 0).sum())}/{len(d)}, behind {int((d < 0).sum())}/{len(d)}"
                )
            print("  calibration: log-loss, Brier, ECE (10 bins), mean top probability")
            for rule in rows[0]["calibration"]:
                values = np.mean([r["calibration"][rule] for r in rows], axis=0)
                print(f"    {rule:20s} " + "  ".join(f"{v:.3f}" for v in values))


def main(argv=None) -> None:
    study_main(__doc__, fit_draws, score, [16, 32, 64, 128], argv)


if __name__ == "__main__":
    main()
