"""Running every method on the same draws: :func:`run_benchmark`."""

from __future__ import annotations

import importlib.util
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score

from ._configs import DEFAULT_ENCODER, DEFAULT_LANGUAGES
from ._data import (
    _FEATURES,
    _check_languages,
    _embeddings_and_pieces,
    _encode_languages,
    _make_task,
    _PrecomputedEncoder,
    _Task,
    _tfidf,
)
from ._methods import METHODS, Method, MethodContext


class BenchmarkRunError(RuntimeError):
    """A method failed while fitting or predicting in one run (not a bad argument)."""


def _run_one(method: Method, task: _Task, context: MethodContext, views) -> dict:
    labelled = task.y_train != -1
    rows = task.train_rows if method.semi_supervised else task.train_rows[labelled]
    y = task.y_train if method.semi_supervised else task.y_train[labelled]
    view = views(method.features, task)
    estimator = method.build(context)
    with warnings.catch_warnings():
        # n="all" leaves no unlabelled rows; LabelSpreading may stop before converging.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*(no unlabel|No unlabelled).*")
        start = time.perf_counter()
        estimator.fit(view(rows), y)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        predicted = estimator.predict(view(task.test_rows))
        predict_seconds = time.perf_counter() - start
    labels = np.unique(np.concatenate([task.y_test, task.y_train[labelled]]))
    return {
        "accuracy": float(accuracy_score(task.y_test, predicted)),
        "macro_f1": float(
            f1_score(task.y_test, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
    }


class BenchmarkResults(list):
    """The benchmark's runs: a list of dicts, one per (task, size, seed, method).

    Parameters
    ----------
    runs : iterable of dict, default=()
        The runs.
    timings : dict or None, default=None
        Seconds spent loading the encoder and encoding each language.
    settings : dict or None, default=None
        The settings the benchmark ran with.

    Attributes
    ----------
    timings : dict
        Seconds spent loading the encoder and encoding each language.
    settings : dict
        The settings the benchmark ran with.
    """

    def __init__(self, runs=(), *, timings=None, settings=None):
        super().__init__(runs)
        self.timings = dict(timings or {})
        self.settings = dict(settings or {})


def _resolve_seeds(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive number of seeds; got {seeds}.")
        return list(range(int(seeds)))
    return [int(seed) for seed in seeds]


def _resolve_methods(methods) -> dict[str, Method]:
    if methods is None:
        return dict(METHODS)
    if isinstance(methods, Mapping):
        return dict(methods)
    if isinstance(methods, str):
        methods = [methods]
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; use some of {list(METHODS)}.")
    return {name: METHODS[name] for name in methods}


def _check_sizes(sizes) -> list:
    sizes = list(sizes)
    for n in sizes:
        ok = n == "all" or (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0)
        if not ok:
            raise ValueError(f"sizes must hold positive ints or 'all'; got {n!r}.")
    return sizes


def _limits(method_limits, seed_list):
    """Check ``method_limits``; return ``allowed(name, source, target, n, seed) -> bool``."""
    checked = {}
    for name, limits in dict(method_limits or {}).items():
        unknown = set(limits) - {"seeds", "sizes", "tasks"}
        if unknown:
            raise ValueError(
                f"method_limits[{name!r}] has unknown keys {sorted(unknown)}; use 'seeds', "
                "'sizes' or 'tasks'."
            )
        count = limits.get("seeds", len(seed_list))
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(
                f"method_limits[{name!r}]['seeds'] must be a positive int; got {count!r}."
            )
        checked[name] = (
            set(seed_list[:count]),
            None if "sizes" not in limits else set(limits["sizes"]),
            None if "tasks" not in limits else set(limits["tasks"]),
        )

    def allowed(name, source, target, n, seed) -> bool:
        if name not in checked:
            return True
        seeds, sizes, labels = checked[name]
        label = target if source == target else f"{source}-{target}"
        return (
            seed in seeds and (sizes is None or n in sizes) and (labels is None or label in labels)
        )

    return allowed


def run_benchmark(
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    sizes: Sequence[int | str] = (16, 64),
    seeds: int | Iterable[int] = 3,
    methods: Sequence[str] | Mapping[str, Method] | None = None,
    *,
    cross_lingual: Iterable[tuple[str, str]] = (),
    cross_lingual_sizes: Sequence[int | str] | None = None,
    encoder: str = DEFAULT_ENCODER,
    encoder_prefix: str = "auto",
    mldoc: str | None = None,
    device: str = "auto",
    cache_dir: str | None = None,
    sdgm_params: Mapping | None = None,
    method_limits: Mapping[str, Mapping] | None = None,
    on_run: Callable[[dict], None] | None = None,
    verbose: int = 1,
) -> BenchmarkResults:
    """Run every method on the same draws of labelled documents and score it.

    Parameters
    ----------
    languages : sequence of str, default=("en", "de", "fr", "ru", "zh")
        Languages of the monolingual runs.
    sizes : sequence of int or "all", default=(16, 64)
        Numbers of labelled documents drawn from the train split; ``"all"`` labels it all.
    seeds : int or iterable of int, default=3
        A number of seeds (0, 1, ...) or the seeds themselves.
    methods : sequence of str, mapping of str to Method, or None, default=None
        Names from :data:`METHODS`, or methods of one's own; None runs all of ``METHODS``.
    cross_lingual : iterable of (str, str), default=()
        (source, target) pairs: labels from the source's train split, unlabelled
        documents from the target's train split, scores on the target's test split.
    cross_lingual_sizes : sequence of int or "all" or None, default=None
        Labelled sizes of the cross-lingual runs; None uses ``sizes``.
    encoder : str, default="intfloat/multilingual-e5-small"
        Hugging Face model name or folder of the :class:`~skdgm.encoders.MultilingualEncoder`.
    encoder_prefix : str, default="auto"
        The encoder's ``prefix``: text put before every document (``"auto"``: the
        encoder's own choice, ``"passage: "`` for e5 models).
    mldoc : str or None, default=None
        Folder of MLDoc files (see :func:`~skdgm.datasets.load_mldoc`): use them instead of
        the bundled LibreOffice help corpus (train = ``train.1000``, test = ``test``).
    device : str, default="auto"
        Device of the encoder and of the SDGM.
    cache_dir : str or None, default=None
        Folder of the encoder's on-disk embedding cache, so that later runs skip encoding.
    sdgm_params : mapping or None, default=None
        Overrides of the SDGM's parameters, for tests and smoke runs only: a benchmark
        measures the defaults.
    method_limits : mapping of str to dict or None, default=None
        Slow methods on fewer draws: ``{"SetFit": {"seeds": 1, "sizes": [16]}}`` fits
        SetFit on the draws of the first seed at 16 labels only, every other method on
        all of them. Keys: ``"seeds"`` (how many of the first seeds), ``"sizes"`` and
        ``"tasks"`` (languages, or ``"source-target"`` for cross-lingual pairs). The
        tables say which methods ran on fewer seeds.
    on_run : callable or None, default=None
        Called with each run's dict as soon as it is scored, e.g. to keep the runs of a
        long benchmark on disk as they come.
    verbose : int, default=1
        Show progress bars when > 0 (and the encoder's own when > 1).

    Returns
    -------
    results : BenchmarkResults
        A list of dicts, one per run, with keys ``setting`` ("monolingual" or
        "cross-lingual"), ``language`` (of the test documents), ``source``, ``target``,
        ``n`` (as asked), ``n_labelled``, ``n_unlabelled``, ``n_test``, ``seed``,
        ``draw`` (a fingerprint of the labelled documents, the same for every method),
        ``method``, ``accuracy``, ``macro_f1``, ``fit_seconds`` and ``predict_seconds``;
        its ``timings`` attribute holds the encoding times.
    """
    languages = list(dict.fromkeys(languages))
    pairs = [tuple(pair) for pair in cross_lingual]
    for pair in pairs:
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ValueError(
                f"Cross-lingual pairs are (source, target) of two languages; got {pair}."
            )
    sizes = _check_sizes(sizes)
    cl_sizes = sizes if cross_lingual_sizes is None else _check_sizes(cross_lingual_sizes)
    seed_list = _resolve_seeds(seeds)
    chosen = _resolve_methods(methods)
    if not chosen or not (languages or pairs) or not seed_list:
        raise ValueError("Nothing to run: give at least one language, method and seed.")
    for name, method in list(chosen.items()):
        if method.requires and importlib.util.find_spec(method.requires) is None:
            print(
                f"Skipping {name}: it needs the optional package {method.requires!r} "
                f"(pip install 'skdgm[{method.requires}]').",
                file=sys.stderr,
            )
            del chosen[name]
    bad_features = [name for name, m in chosen.items() if m.features not in _FEATURES]
    if bad_features:
        raise ValueError(f"Method(s) {bad_features} ask for features outside {_FEATURES}.")
    allowed = _limits(method_limits, seed_list)
    needed = list(dict.fromkeys([*languages, *(lg for pair in pairs for lg in pair)]))
    _check_languages(needed, mldoc)

    data, table, texts, timings = _encode_languages(
        needed,
        encoder=encoder,
        prefix=encoder_prefix,
        mldoc=mldoc,
        device=device,
        cache_dir=cache_dir,
        verbose=verbose,
    )
    tasks = [
        (language, language, n, seed)
        for language in languages
        for n in sizes
        for seed in seed_list
    ]
    tasks += [(s, t, n, seed) for s, t in pairs for n in cl_sizes for seed in seed_list]
    encoder_view = _PrecomputedEncoder(table)
    tfidf_cache: dict[tuple[str, ...], tuple] = {}

    def views(features: str, task: _Task):
        if features == "documents":
            return lambda rows: [texts[row] for row in rows]
        if features == "codes":
            from .._documents import documents_as_array

            return lambda rows: documents_as_array([texts[row] for row in rows])
        if features == "embeddings":
            return lambda rows: table.embeddings[rows]
        key = tuple(dict.fromkeys([task.source, task.target]))
        if features == "embeddings+pieces":
            if ("pieces", key) not in tfidf_cache:
                tfidf_cache[("pieces", key)] = _embeddings_and_pieces(key, data, table)
            return lambda rows, matrix=tfidf_cache[("pieces", key)]: matrix[rows]
        if key not in tfidf_cache:
            start = time.perf_counter()
            tfidf_cache[key] = _tfidf(key, data, texts)
            timings[f"TF-IDF {'-'.join(key)}"] = time.perf_counter() - start
        matrix, position = tfidf_cache[key]
        return lambda rows: matrix[position[rows]]

    from tqdm.auto import tqdm

    runs = []
    total = sum(allowed(name, *task) for task in tasks for name in chosen)
    progress = tqdm(total=total, unit="run", disable=verbose <= 0)
    with progress:
        for source, target, n, seed in tasks:
            task = _make_task(source, target, n, seed, data)
            context = MethodContext(
                seed, encoder_view, device, dict(sdgm_params or {}), str(encoder)
            )
            for name, method in chosen.items():
                if not allowed(name, source, target, n, seed):
                    continue
                label = target if source == target else f"{source}-{target}"
                progress.set_postfix_str(f"{label} n={n} seed={seed} {name}")
                try:
                    scores = _run_one(method, task, context, views)
                except Exception as exc:
                    raise BenchmarkRunError(
                        f"{name} failed on {label} n={n} seed={seed}: {type(exc).__name__}: {exc}"
                    ) from exc
                n_labelled = int((task.y_train != -1).sum())
                runs.append(
                    {
                        "setting": "monolingual" if source == target else "cross-lingual",
                        "language": target,
                        "source": source,
                        "target": target,
                        "n": n,
                        "n_labelled": n_labelled,
                        "n_unlabelled": len(task.y_train) - n_labelled,
                        "n_test": len(task.y_test),
                        "seed": seed,
                        "draw": task.draw,
                        "method": name,
                        **scores,
                    }
                )
                if on_run is not None:
                    on_run(runs[-1])
                progress.update()
    settings = {
        "languages": languages,
        "sizes": sizes,
        "seeds": seed_list,
        "methods": list(chosen),
        "cross_lingual": [list(pair) for pair in pairs],
        "cross_lingual_sizes": cl_sizes,
        "encoder": str(encoder),
        "encoder_prefix": encoder_prefix,
        "data": f"MLDoc at {mldoc}" if mldoc is not None else "LibreOffice help (bundled)",
        "device": device,
        "sdgm_params": dict(sdgm_params or {}),
        "method_limits": {
            name: {key: list(v) if key != "seeds" else v for key, v in limits.items()}
            for name, limits in (method_limits or {}).items()
            if name in chosen
        },
    }
    return BenchmarkResults(runs, timings=timings, settings=settings)


# ---------------------------------------------------------------------------- reports
