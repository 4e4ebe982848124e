"""Fit throughput and peak memory of SemiSupervisedVAEClassifier against the number of rows.

For 1k, 10k and 100k rows of 384-d features (the size of multilingual-e5-small embeddings),
5 % labelled, each size in a fresh process: seconds per epoch, rows per second, and peak
resident memory. The cost of an epoch must grow linearly with the rows (no n x n matrix):
the last column, microseconds per row and epoch, should stay flat. LabelSpreading's rbf
kernel, the counter-example, is run where its dense n x n matrix fits.

Prediction of every row is timed after the fit. ``--epochs 2 10`` fits each size twice:
the peak memory must not grow with the number of epochs.

Run: ``python benchmarks/bench_fit_scaling.py [--sizes 1000 10000 100000] [--epochs 2 10]``
(one CPU thread by default, so that other work on the machine disturbs the ratios less).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
n, epochs, method, threads = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
import torch
from threadpoolctl import threadpool_limits
torch.set_num_threads(threads)
threadpool_limits(threads)
rng = np.random.default_rng(0)
centers = rng.normal(size=(4, 384))
y = rng.integers(0, 4, size=n)
X = (centers[y] + rng.normal(scale=2.0, size=(n, 384))).astype(np.float32)
y_partial = np.where(rng.random(n) < 0.05, y, -1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if method == "sdgm":
    from skdgm import SemiSupervisedVAEClassifier
    clf = SemiSupervisedVAEClassifier(max_epochs=epochs, random_state=0, device="cpu")
    clf.fit(X, y_partial)
    per_epoch = float(np.mean([h["duration"] for h in clf.history_[1:] or clf.history_]))
    fit_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    clf.predict(X)
    predict_s = time.perf_counter() - start
else:
    from sklearn.semi_supervised import LabelSpreading
    model = LabelSpreading(kernel="rbf", max_iter=epochs).fit(X, y_partial)
    per_epoch = (time.perf_counter() - start) / epochs
    fit_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    model.predict(X[:1000])
    predict_s = (time.perf_counter() - start) * n / min(n, 1000)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "method": method, "epochs": epochs, "epoch_s": per_epoch,
                  "predict_s": predict_s, "fit_peak_mb": fit_peak / 1024,
                  "peak_mb": peak / 1024, "baseline_mb": before / 1024}))
"""


def measure(n: int, epochs: int, method: str, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(epochs), method, str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument(
        "--epochs",
        type=int,
        nargs="+",
        default=[2],
        help="epochs of each fit; several values show whether memory grows with epochs",
    )
    parser.add_argument(
        "--label-spreading-max", type=int, default=10000, help="largest n for rbf LabelSpreading"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (1 keeps timings stable on a busy machine)",
    )
    args = parser.parse_args(argv)
    rows = []
    for n in args.sizes:
        for epochs in args.epochs:
            rows.append(measure(n, epochs, "sdgm", args.threads))
        if n <= args.label_spreading_max:
            rows.append(measure(n, args.epochs[0], "labelspreading-rbf", args.threads))
    header = (
        f"{'method':<20}{'rows':>8}{'epochs':>7}{'s/epoch':>10}{'rows/s':>10}"
        f"{'predict s':>10}{'fit peak MB':>12}{'peak MB':>10}{'us/row':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['method']:<20}{r['n']:>8}{r['epochs']:>7}{r['epoch_s']:>10.2f}"
            f"{r['n'] / r['epoch_s']:>10.0f}{r['predict_s']:>10.2f}{r['fit_peak_mb']:>12.0f}"
            f"{r['peak_mb']:>10.0f}{1e6 * r['epoch_s'] / r['n']:>9.1f}"
        )
    sdgm = [r for r in rows if r["method"] == "sdgm" and r["epochs"] == args.epochs[0]]
    if len(sdgm) > 1:
        first, last = sdgm[0], sdgm[-1]
        growth = (last["epoch_s"] / first["epoch_s"]) / (last["n"] / first["n"])
        print(
            f"\nSDGM: time per epoch grew {last['epoch_s'] / first['epoch_s']:.1f}x for "
            f"{last['n'] / first['n']:.0f}x the rows (ratio {growth:.2f}; 1.00 = linear)."
        )


if __name__ == "__main__":
    main()
