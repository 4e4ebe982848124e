"""glibc's allocator settings and the speed of fitting on a CPU.

On Linux, glibc's ``malloc`` hands every block above a threshold (at most 32 MB) back to
the system when it is freed, so each training step of a fine-tuned layer maps, faults in
and unmaps its large activations anew: on this project's 2-core machine a fifth to a
quarter of a fine-tuning fit's CPU time was system time. The environment variables below keep freed
memory in the process instead (no ``mmap`` for large blocks, no trimming), at the price of
a higher peak.

This script runs the same fits in child processes with and without them, alternating,
and prints seconds, user and system CPU time and peak memory for each, with the ratios:

- ``SemiSupervisedVAEClassifier(fine_tune_layers=1)`` (the end-to-end SDGM),
- ``TransformerClassifier(fine_tune_layers=1)``,
- the frozen SDGM (``fine_tune_layers=0``) on the same embeddings.

Run: ``python benchmarks/bench_allocator.py [--documents 300] [--rounds 2]``. The child
processes use one thread each (``OMP_NUM_THREADS=1``) and run one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SETTINGS = {
    "glibc defaults": {},
    "no mmap, no trim": {
        "MALLOC_MMAP_MAX_": "0",
        "MALLOC_TRIM_THRESHOLD_": "100000000000",
        "MALLOC_TOP_PAD_": "1000000000",
    },
}
WORKLOADS = ("sdgm-end-to-end", "transformer", "sdgm-frozen")


def _child(workload: str, n_documents: int, cache_dir: str) -> None:
    import numpy as np

    from skdgm import SemiSupervisedVAEClassifier, TransformerClassifier
    from skdgm.datasets import load_libreoffice_help
    from skdgm.encoders import MultilingualEncoder

    data = load_libreoffice_help(languages="de", split="train")
    rows = np.random.default_rng(0).permutation(len(data.data))[:n_documents]
    docs = [data.data[i] for i in rows]
    y = np.asarray(data.target)[rows]
    y[32:] = -1
    encoder = MultilingualEncoder(cache_dir=cache_dir)
    if workload == "transformer":
        model = TransformerClassifier(encoder, fine_tune_layers=1, random_state=0)
        labelled = y != -1
        fit = lambda: model.fit([d for d, r in zip(docs, labelled) if r], y[labelled])  # noqa: E731
    else:
        layers = 1 if workload == "sdgm-end-to-end" else 0
        model = SemiSupervisedVAEClassifier(
            encoder, max_epochs=10, fine_tune_layers=layers, fine_tune_epochs=2, random_state=0
        )
        fit = lambda: model.fit(docs, y)  # noqa: E731
    MultilingualEncoder(cache_dir=cache_dir).fit(docs).transform(docs)  # warm the cache
    start = time.perf_counter()
    fit()
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "user": usage.ru_utime,
                "system": usage.ru_stime,
                "peak_mb": usage.ru_maxrss / 1024,
            }
        )
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cache-dir", default=".cache/embeddings")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.documents, args.cache_dir)
        return
    results = {(w, s): [] for w in WORKLOADS for s in SETTINGS}
    for _ in range(args.rounds):
        for workload in WORKLOADS:
            for setting, variables in SETTINGS.items():
                env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
                env.update(variables, OMP_NUM_THREADS="1")
                command = [sys.executable, __file__, "--child", workload]
                command += ["--documents", str(args.documents), "--cache-dir", args.cache_dir]
                out = subprocess.run(command, env=env, capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{workload} / {setting} failed:\n{out.stderr[-2000:]}")
                results[workload, setting].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.documents} German help pages (32 labelled), one thread, {args.rounds} rounds")
    print("best of the rounds; CPU times and peak memory of the whole child process\n")
    print(f"{'fit':<17} {'allocator':<17} {'seconds':>8} {'user':>7} {'system':>7} {'peak MB':>8}")
    for workload in WORKLOADS:
        best = {}
        for setting in SETTINGS:
            runs = results[workload, setting]
            best[setting] = min(runs, key=lambda run: run["seconds"])
            run = best[setting]
            print(
                f"{workload:<17} {setting:<17} {run['seconds']:8.1f} {run['user']:7.1f} "
                f"{run['system']:7.1f} {run['peak_mb']:8.0f}"
            )
        base, tuned = (best[s] for s in SETTINGS)
        print(
            f"{'':<17} {'ratio':<17} {base['seconds'] / tuned['seconds']:7.2f}x faster, "
            f"peak x{tuned['peak_mb'] / base['peak_mb']:.2f}"
        )


if __name__ == "__main__":
    main()
