"""Cost of the end-to-end SDGM against the number of tuned layers and of documents.

For k = 0, 1, 2, 4 tuned top layers of multilingual-e5-small (the offline copy) and for
1,000 and 10,000 documents of 256 tokens (real help pages of the bundled corpus, five
languages, joined until each fills the 256 tokens), 5 % labelled, each setting in a fresh
process: seconds per epoch on the frozen encoder and per fine-tuning epoch, the time
outside epochs (for k > 0 mostly the one pass of the frozen lower layers over every
document), and peak resident memory (``ru_maxrss``). Token states
over 1 GiB go to a temporary file, so memory should stay flat as documents grow.

Run: ``python benchmarks/bench_fine_tuning.py [--sizes 1000 10000] [--layers 0 1 2 4]``
(one CPU thread by default, so that other work on the machine disturbs the ratios less;
a 10,000-document epoch at k = 4 takes most of an hour on one thread).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
n, k, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
import torch
from threadpoolctl import threadpool_limits
torch.set_num_threads(threads)
threadpool_limits(threads)
from skdgm import SemiSupervisedVAEClassifier
from skdgm.datasets import load_libreoffice_help
from skdgm.encoders import MultilingualEncoder

pages = load_libreoffice_help()
encoder = MultilingualEncoder(max_length=256).fit(pages.data[:1])
rng = np.random.default_rng(0)
order = rng.permutation(len(pages.data))
docs, labels, position = [], [], 0
while len(docs) < n:  # join pages of one language until a document fills 256 tokens
    first = order[position % len(order)]
    text = pages.data[first]
    position += 1
    while len(encoder._content_ids([text])[0]) < 260:
        same = order[position % len(order)]
        position += 1
        if pages.lang[same] == pages.lang[first]:
            text += "\n" + pages.data[same]
    docs.append(text)
    labels.append(pages.target[first])
y = np.asarray(labels)
y_partial = np.where(rng.random(n) < 0.05, y, -1)
encoder.transform(docs)  # the one-off encoding (cached), not part of the fit's cost
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
clf = SemiSupervisedVAEClassifier(
    encoder, fine_tune_layers=k, max_epochs=1, fine_tune_epochs=1, random_state=0, device="cpu"
)
start = time.perf_counter()
clf.fit(docs, y_partial)
total = time.perf_counter() - start
epochs = {h["phase"]: h["duration"] for h in clf.history_}
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "k": k, "fit_s": total, "frozen_epoch_s": epochs["joint"],
                  "tuned_epoch_s": epochs.get("fine-tune"), "peak_mb": peak / 1024,
                  "before_fit_mb": before / 1024}))
"""


def measure(n: int, k: int, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(k), str(threads)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"n={n}, k={k} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    args = parser.parse_args(argv)
    header = (
        f"{'docs':>7}{'k':>3}{'fit s':>9}{'frozen s/ep':>13}{'tuned s/ep':>12}"
        f"{'outside epochs s':>18}{'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for n in args.sizes:
        for k in args.layers:
            r = measure(n, k, args.threads)
            rows.append(r)
            tuned = r["tuned_epoch_s"] or 0.0
            outside = r["fit_s"] - r["frozen_epoch_s"] - tuned
            print(
                f"{n:>7}{k:>3}{r['fit_s']:>9.1f}{r['frozen_epoch_s']:>13.2f}"
                f"{tuned:>12.1f}{outside:>18.1f}{r['peak_mb']:>9.0f}",
                flush=True,
            )
    for k in args.layers:
        by_n = {r["n"]: r for r in rows if r["k"] == k and r["tuned_epoch_s"]}
        if len(by_n) > 1:
            small, large = by_n[min(by_n)], by_n[max(by_n)]
            print(
                f"k={k}: a tuned epoch grew {large['tuned_epoch_s'] / small['tuned_epoch_s']:.1f}x"
                f" for {large['n'] / small['n']:.0f}x the documents; peak memory "
                f"{small['peak_mb']:.0f} -> {large['peak_mb']:.0f} MB."
            )


if __name__ == "__main__":
    main()
