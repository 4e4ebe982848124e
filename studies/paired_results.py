"""Pair the runs of result files by draw and compare every method with a reference.

The README's comparisons come from runs made on different days (the slow baselines
were not re-run with every new SDGM default): a draw (language, size, seed, classes) is
the same labelled pages whatever the day, so runs of two methods on the same draw pair
up. This script reads ``results.csv``/``.json`` files of
``python -m skdgm.benchmark`` and the JSON lines of ``tune_defaults.py``, keeps the last
run of each (method, draw), the reference's from its own files only, and prints, per
setting and labelled size, each method's mean
accuracy beside the reference's on the draws they share, the paired difference with its
standard error, and on how many draws the reference is ahead and behind, with the mean
macro-F1, log-loss and ECE where the runs have them and the median fit-time ratio.

Run, e.g.::

    python studies/paired_results.py docs/results/round14-st-*.jsonl \\
        --reference-files docs/results/round17-test-*.csv --only Transformer+ST SetFit
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np


def _runs(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    if path.suffix == ".json":
        return json.loads(text)["runs"]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def load(paths, rename: dict[str, str]) -> dict[tuple, dict]:
    """{(method, setting, n, draw): run}, later files overriding earlier ones."""
    runs = {}
    for path in paths:
        for run in _runs(Path(path)):
            method = rename.get(run["method"], run["method"])
            setting = run.get("setting") or (
                "monolingual" if run["source"] == run["target"] else "cross-lingual"
            )
            # A draw is its languages, size, seed and classes (draw_labelled's positions
            # in the train split); the "draw" fingerprint hashes rows of the run's own
            # document table, which differ between runs that loaded other languages.
            draw = (run["source"], run["target"], str(run["seed"]), str(run.get("n_classes") or 4))
            runs[(method, setting, str(run["n"]), draw)] = {**run, "method": method}
    return runs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="runs of the methods to compare")
    parser.add_argument(
        "--reference-files",
        nargs="+",
        required=True,
        help="runs of the reference (its runs in the other files are ignored: earlier defaults)",
    )
    parser.add_argument("--reference", default="SDGM")
    parser.add_argument("--only", nargs="*", help="the methods to compare (default: all)")
    parser.add_argument(
        "--rename",
        nargs="*",
        default=[],
        help="old=new method names in the compared files, e.g. SDGM=round15",
    )
    args = parser.parse_args(argv)
    rename = dict(item.split("=", 1) for item in args.rename)
    runs = {key: run for key, run in load(args.files, rename).items() if key[0] != args.reference}
    reference = {
        key[1:]: run
        for key, run in load(args.reference_files, {}).items()
        if key[0] == args.reference
    }
    methods = sorted({key[0] for key in runs} - {args.reference})
    if args.only:
        methods = [m for m in args.only if m in methods]
    cells = sorted({key[:2] for key in reference}, key=lambda c: (c[0], _number(c[1]) or 0))
    for setting, n in cells:
        print(f"\n{setting}, n = {n}  (reference: {args.reference})")
        for method in methods:
            pairs = [
                (reference[(setting, n, draw)], run)
                for (m, s, size, draw), run in runs.items()
                if m == method and s == setting and size == n and (s, n, draw) in reference
            ]
            if not pairs:
                continue
            ref = np.array([float(a["accuracy"]) for a, _ in pairs])
            other = np.array([float(b["accuracy"]) for _, b in pairs])
            d = 100 * (ref - other)
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            extra = []
            for metric in ("macro_f1", "log_loss", "ece"):
                values = [(_number(a.get(metric)), _number(b.get(metric))) for a, b in pairs]
                values = [(x, y) for x, y in values if x is not None and y is not None]
                if len(values) == len(pairs):
                    mean = np.mean(values, axis=0)
                    extra.append(f"{metric} {mean[0]:.3f}/{mean[1]:.3f}")
            ratios = [
                float(b["fit_seconds"]) / float(a["fit_seconds"])
                for a, b in pairs
                if _number(a.get("fit_seconds")) and _number(b.get("fit_seconds"))
            ]
            if ratios:
                extra.append(f"fit time x{np.median(ratios):.2f}")
            print(
                f"  {method:28s} {len(d):2d} draws  {ref.mean():.3f} vs {other.mean():.3f}  "
                f"{d.mean():+5.1f} (s.e. {se:.1f})  ahead {int((d > 0).sum())}, behind "
                f"{int((d < 0).sum())}  " + "  ".join(extra)
            )


if __name__ == "__main__":
    main()
