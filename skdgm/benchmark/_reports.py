"""What a benchmark reports: tables, timings, a plot, and files of runs."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._runner import BenchmarkResults

_TITLES = {
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "log_loss": "Log-loss of predict_proba (lower is better)",
    "brier": "Brier score of predict_proba (lower is better)",
    "ece": "Expected calibration error of predict_proba, 10 bins (lower is better)",
}
_LOWER_IS_BETTER = ("log_loss", "brier", "ece")


def _task_label(run: Mapping) -> str:
    if run.get("setting") == "cross-lingual":
        return f"{run['source']}-{run['target']}"
    return str(run["language"])


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def _size_order(n) -> tuple:
    return (1, 0) if n == "all" else (0, int(n))


def _summary(results, metric):
    """{(label, n): {method: [score per seed]}}, plus the per-n language averages."""
    cells: dict[tuple[str, object], dict[str, dict[int, float]]] = {}
    for run in results:
        key = (_task_label(run), run["n"])
        cells.setdefault(key, {}).setdefault(run["method"], {})[run["seed"]] = run[metric]
    averages: dict[object, dict[str, list[float]]] = {}
    mono = [run for run in results if run.get("setting", "monolingual") == "monolingual"]
    languages = _ordered(run["language"] for run in mono)
    if len(languages) > 1:
        for n in _ordered(run["n"] for run in mono):
            for method in _ordered(run["method"] for run in mono):
                per_seed = {}
                for seed in _ordered(run["seed"] for run in mono):
                    scores = [cells.get((lg, n), {}).get(method, {}).get(seed) for lg in languages]
                    if all(score is not None for score in scores):
                        per_seed[seed] = float(np.mean(scores))
                if per_seed:
                    averages.setdefault(n, {})[method] = list(per_seed.values())
    return cells, averages


def format_table(results: Sequence[Mapping], metric: str = "accuracy") -> str:
    """Format mean ± standard deviation over seeds, a row per (language, n).

    Parameters
    ----------
    results : sequence of dict
        Runs, as returned by :func:`run_benchmark` (or read back from ``results.json``).
    metric : {"accuracy", "macro_f1", "log_loss", "brier", "ece"}, default="accuracy"
        The score to show; the last three (the calibration of ``predict_proba``: lower is
        better) skip the methods without probabilities.

    Returns
    -------
    table : str
        One column per method; ``*`` marks the best mean of each row (the highest, or
        the lowest for the calibration scores). Cross-lingual rows
        are labelled ``source-target``. With several languages, an "average" block gives,
        per ``n``, the mean over seeds of the average over languages. Standard deviations
        are over seeds (``ddof=1``).
    """
    if metric not in _TITLES:
        raise ValueError(f"metric must be one of {list(_TITLES)}; got {metric!r}.")
    results = [run for run in results if metric in run]
    if not results:
        return "(no results)"
    pick = min if metric in _LOWER_IS_BETTER else max
    cells, averages = _summary(results, metric)
    methods = _ordered(run["method"] for run in results)
    seeds = _ordered(run["seed"] for run in results)

    def row(label, n, scores_by_method):
        stats = {m: _mean_std(s) for m, s in scores_by_method.items() if len(s)}
        best = pick(mean for mean, _ in stats.values()) if stats else None
        texts = []
        for method in methods:
            if method not in stats:
                texts.append("-")
                continue
            mean, std = stats[method]
            mark = "*" if math.isclose(mean, best, abs_tol=5e-4) else " "
            texts.append(f"{mean:.3f} ± {std:.3f}{mark}")
        return [label, str(n), *texts]

    cross = {_task_label(run) for run in results if run.get("setting") == "cross-lingual"}
    blocks = [[], [], []]  # monolingual, average over languages, cross-lingual
    for (label, n), by_method in cells.items():
        scores = {m: list(s.values()) for m, s in by_method.items()}
        blocks[2 if label in cross else 0].append(row(label, n, scores))
    for n in sorted(averages, key=_size_order):
        blocks[1].append(row("average", n, averages[n]))
    rows = []
    for block in blocks:
        if block:
            rows += [None, *block] if rows else block
    header = ["language", "n", *methods]
    widths = [
        max(len(header[i]), *(len(r[i]) for r in rows if r is not None))
        for i in range(len(header))
    ]

    def line(values):
        first = [values[0].ljust(widths[0]), values[1].rjust(widths[1])]
        return "  ".join(first + [v.rjust(w) for v, w in zip(values[2:], widths[2:])])

    title = _TITLES[metric]
    out = [
        f"{title}: mean ± std over {len(seeds)} seed(s); * = best in the row",
        line(header),
        "  ".join("-" * w for w in widths),
    ]
    for r in rows:
        out.append("  ".join("-" * w for w in widths) if r is None else line(r))
    seeds_by_method = {
        method: len(_ordered(run["seed"] for run in results if run["method"] == method))
        for method in methods
    }
    fewer = [f"{m} ({k})" for m, k in seeds_by_method.items() if k < len(seeds)]
    if fewer:
        out.append(
            "Run on fewer seeds, so over fewer draws (not paired with the others on the "
            "rest): " + ", ".join(fewer)
        )
    return "\n".join(out)


def format_timings(results: BenchmarkResults | Sequence[Mapping]) -> str:
    """Format the encoding times and each method's total time.

    Parameters
    ----------
    results : BenchmarkResults or sequence of dict
        Runs from :func:`run_benchmark`; encoding times come from its ``timings``.

    Returns
    -------
    report : str
        One line per step; each method's line ends with its median fit time per run as a
        ratio to the SDGM's (on the frozen encoder), when the SDGM ran.
    """
    lines = ["Timings (seconds)"]
    timings = getattr(results, "timings", {})
    for step, seconds in timings.items():
        lines.append(f"  {step:<28} {seconds:9.1f}")
    if timings:
        lines.append(f"  {'preparation, total':<28} {sum(timings.values()):9.1f}")
    reference = [run["fit_seconds"] for run in results if run["method"] == "SDGM"]
    reference_fit = float(np.median(reference)) if reference else None
    for method in _ordered(run["method"] for run in results):
        runs = [run for run in results if run["method"] == method]
        fit = sum(run["fit_seconds"] for run in runs)
        predict = sum(run.get("predict_seconds", 0.0) for run in runs)
        ratio = ""
        if reference_fit:
            median = float(np.median([run["fit_seconds"] for run in runs]))
            ratio = f"; fit time x{median / reference_fit:.2f} the SDGM's"
        lines.append(
            f"  {method:<28} {fit + predict:9.1f}  ({len(runs)} runs, fit {fit:.1f}, "
            f"predict {predict:.1f}{ratio})"
        )
    settings = getattr(results, "settings", {})
    pooled = settings.get("pooled_methods") or []
    if pooled and settings.get("n_jobs", 1) > 1:
        lines.append(
            f"  {', '.join(pooled)}: {settings['n_jobs']} runs at a time sharing the cores "
            "(n_jobs), the other methods one at a time: their fit times and ratios to the "
            "SDGM's are not those of one fit alone against another."
        )
    return "\n".join(lines)


#: One marker a method, so that lines drawn on top of each other stay visible.
_MARKERS = "osD^vP<>Xp*h"


def _new_figure(caller: str, **kwargs):
    """A matplotlib figure drawn off-screen (Agg), or an ImportError naming ``caller``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"{caller} needs matplotlib: pip install 'skdgm[plot]'.") from exc
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def plot_results(results: Sequence[Mapping], path: str | Path, metric: str = "accuracy") -> Path:
    """Plot the score against the number of labelled documents, one line per method.

    With several languages the first panel is the mean over the languages, the panels
    after it one per language and one per cross-lingual pair.

    Parameters
    ----------
    results : sequence of dict
        Runs, as returned by :func:`run_benchmark`.
    path : str or Path
        The image file to write (e.g. ``accuracy.png``).
    metric : {"accuracy", "macro_f1"}, default="accuracy"
        The score to plot: the mean over seeds, with error bars of one standard
        deviation over seeds (of the average over languages, in the first panel).

    Returns
    -------
    path : Path
        The file written.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    cells, averages = _summary(results, metric)
    methods = _ordered(run["method"] for run in results)
    n_labelled = {}
    for run in results:
        n_labelled.setdefault((_task_label(run), run["n"]), []).append(run["n_labelled"])
    panels = []  # (title, {n: {method: [score per seed]}}, {n: mean labelled documents})
    if averages:
        mono = [run for run in results if run.get("setting", "monolingual") == "monolingual"]
        n_languages = len(_ordered(run["language"] for run in mono))
        x = {n: float(np.mean([r["n_labelled"] for r in mono if r["n"] == n])) for n in averages}
        panels.append((f"mean over {n_languages} languages", averages, x))
    for label in _ordered(label for label, _ in cells):
        by_n = {n: {m: list(s.values()) for m, s in by_method.items()}
                for (lab, n), by_method in cells.items() if lab == label}  # fmt: skip
        x = {n: float(np.mean(n_labelled[(label, n)])) for n in by_n}
        panels.append((label, by_n, x))
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    figure = _new_figure("plot_results", figsize=(4.5 * columns, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, (title, by_n, x_of) in zip(axes, panels):
        sizes = sorted(by_n, key=_size_order)
        x = [x_of[n] for n in sizes]
        for i, method in enumerate(methods):
            stats = [_mean_std(by_n[n][method]) if method in by_n[n] else (np.nan, np.nan)
                     for n in sizes]  # fmt: skip
            axis.errorbar(
                x,
                [mean for mean, _ in stats],
                yerr=[std for _, std in stats],
                marker=_MARKERS[i % len(_MARKERS)],
                linestyle="-" if i < 10 else "--",  # matplotlib's 10 colours, then dashes
                capsize=3,
                label=method,
            )
        axis.set_xscale("log", base=2)
        axis.set_xticks(x, [f"{v:.0f}" for v in x])
        axis.minorticks_off()
        axis.set_title(title, fontweight="bold" if title.startswith("mean over") else None)
        axis.set_xlabel("labelled documents")
        axis.set_ylabel(metric.replace("_", "-"))
        axis.grid(alpha=0.3)
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="outside lower center", ncols=min(len(names), 5))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def plot_reliability(results: Sequence[Mapping], path: str | Path) -> Path:
    """Draw each method's reliability diagram, its runs pooled: accuracy against confidence.

    Parameters
    ----------
    results : sequence of dict
        Runs, as returned by :func:`run_benchmark`; those without ``reliability`` (no
        ``predict_proba``) are left out.
    path : str or Path
        The image file to write (e.g. ``reliability.png``).

    Returns
    -------
    path : Path
        The file written.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    from ._calibration import expected_calibration_error

    pooled: dict[str, np.ndarray] = {}
    for run in results:
        if "reliability" in run:
            bins = np.asarray(run["reliability"], dtype=float)
            pooled[run["method"]] = pooled.get(run["method"], 0) + bins
    figure = _new_figure("plot_reliability", figsize=(5.5, 4.5), layout="constrained")
    axis = figure.subplots()
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    for method, bins in pooled.items():
        filled = bins[:, 0] > 0
        confidence = bins[filled, 1] / bins[filled, 0]
        accuracy = bins[filled, 2] / bins[filled, 0]
        ece = expected_calibration_error(bins)
        axis.plot(confidence, accuracy, marker="o", label=f"{method} (ECE {ece:.3f})")
    axis.set_xlabel("mean confidence of the predicted class (bins of 0.1)")
    axis.set_ylabel("accuracy in the bin")
    axis.set_xlim(0, 1.02)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


_CSV_FIELDS = (
    "setting",
    "language",
    "source",
    "target",
    "n",
    "n_labelled",
    "n_unlabelled",
    "n_test",
    "seed",
    "draw",
    "method",
    "accuracy",
    "macro_f1",
    "log_loss",
    "brier",
    "ece",
    "fit_seconds",
    "predict_seconds",
)


def write_results(
    results: BenchmarkResults | Sequence[Mapping], folder: str | Path, *, plot: bool = True
) -> list[Path]:
    """Write ``results.csv``, ``results.json`` and (with matplotlib) the plots.

    The plots: ``accuracy.png`` (:func:`plot_results`) and, when runs have
    probabilities, ``reliability.png`` (:func:`plot_reliability`). The CSV file leaves
    out each run's reliability bins (in the JSON file).

    Parameters
    ----------
    results : BenchmarkResults or sequence of dict
        Runs from :func:`run_benchmark`.
    folder : str or Path
        Where to write; created if needed.
    plot : bool, default=True
        Also draw ``accuracy.png``; skipped with a message when matplotlib is missing.

    Returns
    -------
    paths : list of Path
        The files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "results.csv"
    extra = {k for run in results for k in run} - set(_CSV_FIELDS) - {"reliability"}
    fields = list(_CSV_FIELDS) + sorted(extra)
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    json_path = folder / "results.json"
    payload = {
        "settings": getattr(results, "settings", {}),
        "timings": getattr(results, "timings", {}),
        "runs": list(results),
    }
    json_path.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
    paths = [csv_path, json_path]
    if plot:
        try:
            paths.append(plot_results(results, folder / "accuracy.png"))
            if any("reliability" in run for run in results):
                paths.append(plot_reliability(results, folder / "reliability.png"))
        except ImportError as exc:
            print(f"Skipping the plot: {exc}", file=sys.stderr)
    return paths
