"""Running every method on the same draws: :func:`run_benchmark`."""

from __future__ import annotations

import importlib.util
import pickle
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score

from ._calibration import calibration_scores
from ._configs import DEFAULT_ENCODER, DEFAULT_LANGUAGES
from ._data import (
    _FEATURES,
    _check_languages,
    _DocumentTable,
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


class _Views:
    """What each method's ``X`` holds, by the document table's rows.

    TF-IDF matrices are computed once per language set (:meth:`prepare`) and shared by
    every run; :meth:`portable` is a copy for worker processes.
    """

    def __init__(self, data, table, texts, timings):
        self.data = data
        self.table = table
        self.texts = texts
        self.timings = timings
        self.matrices: dict[tuple, object] = {}

    def prepare(self, features: str, source: str, target: str) -> None:
        key = tuple(dict.fromkeys([source, target]))
        if features == "embeddings+pieces" and ("pieces", key) not in self.matrices:
            self.matrices[("pieces", key)] = _embeddings_and_pieces(key, self.data, self.table)
        elif features == "tfidf" and key not in self.matrices:
            start = time.perf_counter()
            self.matrices[key] = _tfidf(key, self.data, self.texts)
            self.timings[f"TF-IDF {'-'.join(key)}"] = time.perf_counter() - start

    def __call__(self, features: str, task: _Task):
        """``view(rows) -> X`` of the method's features for the task's languages."""
        texts = self.texts
        if features == "documents":
            return lambda rows: [texts[row] for row in rows]
        if features == "codes":
            from .._documents import documents_as_array

            return lambda rows: documents_as_array([texts[row] for row in rows])
        if features == "embeddings":
            return lambda rows: self.table.embeddings[rows]
        self.prepare(features, task.source, task.target)
        key = tuple(dict.fromkeys([task.source, task.target]))
        if features == "embeddings+pieces":
            return lambda rows, matrix=self.matrices[("pieces", key)]: matrix[rows]
        matrix, position = self.matrices[key]
        return lambda rows: matrix[position[rows]]

    def portable(self) -> _Views:
        """A copy for worker processes: embeddings, token counts and texts, no encoder."""
        table = _DocumentTable(self.table.row_of, self.table.embeddings, self.table.counts)
        views = _Views(self.data, table, self.texts, {})
        views.matrices = self.matrices
        return views


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
        # Outside predict_seconds: a second pass for the probabilities' calibration.
        proba = (
            estimator.predict_proba(view(task.test_rows))
            if hasattr(estimator, "predict_proba")
            else None
        )
    labels = np.unique(np.concatenate([task.y_test, task.y_train[labelled]]))
    scores = {
        "accuracy": float(accuracy_score(task.y_test, predicted)),
        "macro_f1": float(
            f1_score(task.y_test, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
    }
    if proba is not None:
        scores.update(calibration_scores(task.y_test, proba, estimator.classes_))
    return scores


def _label(source: str, target: str) -> str:
    """A task's name in limits and messages: its language, or ``"source-target"``."""
    return target if source == target else f"{source}-{target}"


def _run_one_checked(method: Method, task: _Task, context: MethodContext, views, name) -> dict:
    try:
        return _run_one(method, task, context, views)
    except Exception as exc:
        raise BenchmarkRunError(
            f"{name} failed on {_label(task.source, task.target)} n={task.n} "
            f"seed={task.seed}: {type(exc).__name__}: {exc}"
        ) from exc


def _record(task: _Task, name: str, scores: dict) -> dict:
    n_labelled = int((task.y_train != -1).sum())
    return {
        "setting": "monolingual" if task.source == task.target else "cross-lingual",
        "language": task.target,
        "source": task.source,
        "target": task.target,
        "n": task.n,
        "n_labelled": n_labelled,
        "n_unlabelled": len(task.y_train) - n_labelled,
        "n_test": len(task.y_test),
        "n_classes": int(np.unique(task.y_test).size),
        "seed": task.seed,
        "draw": task.draw,
        "method": name,
        **scores,
    }


# ------------------------------------------------------------------- worker processes
def _poolable(method: Method) -> bool:
    """Whether the method's runs may go to worker processes (see ``n_jobs``)."""
    if method.needs_model:
        return False
    try:
        pickle.dumps(method)
    except Exception:  # e.g. a lambda factory of one's own: it runs in the main process
        return False
    return True


@dataclass(frozen=True)
class _Worker:
    """What a worker process needs to score one run of a method that needs no model."""

    views: _Views
    device: str
    sdgm_params: dict
    model_name: str

    def __call__(self, method: Method, name: str, key: tuple) -> dict:
        source, target, n, seed = key
        task = _make_task(source, target, n, seed, self.views.data)
        encoder = _PrecomputedEncoder(self.views.table)
        context = MethodContext(seed, encoder, self.device, self.sdgm_params, self.model_name)
        return _run_one_checked(method, task, context, self.views, name)


_WORKER: _Worker | None = None  # set in each worker process by _start_worker


def _start_worker(worker: _Worker, threads: int) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(threads)
    _WORKER = worker


def _score_in_worker(method: Method, name: str, key: tuple) -> dict:
    return _WORKER(method, name, key)


def _run_pooled(keys, methods, worker: _Worker, n_jobs: int, keep) -> None:
    """Score the runs ``keys`` in ``n_jobs`` processes; ``keep(key, task, scores)`` each."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    import torch

    # The processes share the cores: torch's threads divided between them, at least one.
    threads = max(1, torch.get_num_threads() // n_jobs)
    pool = ProcessPoolExecutor(
        n_jobs,
        mp_context=multiprocessing.get_context("spawn"),  # safe after torch's threads start
        initializer=_start_worker,
        initargs=(worker, threads),
    )
    try:
        futures = {
            pool.submit(_score_in_worker, methods[key[-1]], key[-1], key[:-1]): key for key in keys
        }
        for future in as_completed(futures):
            key = futures[future]
            try:
                scores = future.result()
            except BrokenProcessPool as exc:
                raise BenchmarkRunError(
                    f"A worker process died while running {key[-1]} ({exc}); it may have run "
                    "out of memory: run with n_jobs=1 (--jobs 1)."
                ) from exc
            keep(key, _make_task(*key[:-1], worker.views.data), scores)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


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
        return (
            seed in seeds
            and (sizes is None or n in sizes)
            and (labels is None or _label(source, target) in labels)
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
    n_jobs: int = 1,
    split: str = "test",
    classes: str = "mldoc",
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
    n_jobs : int, default=1
        Processes for the runs of the methods that need no model of their own (the
        frozen SDGM, the regressions, label spreading: :attr:`Method.needs_model` is
        False): with ``n_jobs > 1`` they run first, side by side in worker processes,
        each with torch's threads divided between them; the other methods then run in
        this process with all of them. Scores are the same (up to the rounding of a
        different thread count); fit times are those of runs sharing the cores, and
        the report says so. On 2 cores, 2 jobs of 1 thread fit the SDGM about 1.5 times
        faster in all than one run after another with 2 threads.
    split : {"test", "dev"}, default="test"
        The split every method is scored on. ``"dev"`` is for choosing settings
        (``docs/tuning.rst``); ``"test"`` for the final tables only.
    classes : {"mldoc", "all"}, default="mldoc"
        The bundled corpus's classes: the 4 most like MLDoc's, or all 8 (then ``n``
        labelled documents are ``n / 8`` a class). Ignored with ``mldoc``.
    verbose : int, default=1
        Show progress bars when > 0 (and the encoder's own when > 1).

    Returns
    -------
    results : BenchmarkResults
        A list of dicts, one per run, with keys ``setting`` ("monolingual" or
        "cross-lingual"), ``language`` (of the test documents), ``source``, ``target``,
        ``n`` (as asked), ``n_labelled``, ``n_unlabelled``, ``n_test``, ``seed``,
        ``draw`` (a fingerprint of the labelled documents, the same for every method),
        ``method``, ``accuracy``, ``macro_f1``, ``fit_seconds`` and ``predict_seconds``,
        and for methods with ``predict_proba`` the calibration of their probabilities
        (``log_loss``, ``brier``, ``ece`` and ``reliability``: see
        :func:`~skdgm.benchmark.calibration_scores`); its ``timings`` attribute holds the
        encoding times.
    """
    languages = list(dict.fromkeys(languages))
    pairs = [tuple(pair) for pair in cross_lingual]
    for pair in pairs:
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ValueError(
                f"Cross-lingual pairs are (source, target) of two languages; got {pair}."
            )
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int; got {n_jobs!r}.")
    if split not in ("test", "dev"):
        raise ValueError(f"split must be 'test' or 'dev' (for tuning); got {split!r}.")
    if classes not in ("mldoc", "all"):
        raise ValueError(
            f"classes must be 'mldoc' (4 classes) or 'all' (8 classes); got {classes!r}."
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
        split=split,
        classes=classes,
    )
    tasks = [
        (language, language, n, seed)
        for language in languages
        for n in sizes
        for seed in seed_list
    ]
    tasks += [(s, t, n, seed) for s, t in pairs for n in cl_sizes for seed in seed_list]
    views = _Views(data, table, texts, timings)
    todo = [
        (source, target, n, seed, name)
        for source, target, n, seed in tasks
        for name in chosen
        if allowed(name, source, target, n, seed)
    ]
    for source, target, *_, name in todo:  # features first: each TF-IDF timed once
        views.prepare(chosen[name].features, source, target)
    # The frozen layers' token states, for the languages of the methods that run the model.
    tuned = {lg for s, t, *_, name in todo if chosen[name].needs_model for lg in (s, t)}
    table.state_rows = np.unique(
        np.concatenate([np.r_[data[lg].train_rows, data[lg].test_rows] for lg in tuned] or [[]])
    ).astype(np.intp)
    pooled = {name for name, method in chosen.items() if n_jobs > 1 and _poolable(method)}
    records: dict[tuple, dict] = {}

    def keep(key, task: _Task, scores: dict) -> None:
        records[key] = _record(task, key[-1], scores)
        if on_run is not None:
            on_run(records[key])
        progress.update()

    from tqdm.auto import tqdm

    progress = tqdm(total=len(todo), unit="run", disable=verbose <= 0)
    with progress:
        if pooled:
            progress.set_postfix_str(f"{n_jobs} jobs: {', '.join(sorted(pooled))}")
            worker = _Worker(views.portable(), device, dict(sdgm_params or {}), str(encoder))
            _run_pooled([key for key in todo if key[-1] in pooled], chosen, worker, n_jobs, keep)
        encoder_view = _PrecomputedEncoder(table)
        for source, target, n, seed, name in todo:
            if name in pooled:
                continue
            task = _make_task(source, target, n, seed, data)
            context = MethodContext(
                seed, encoder_view, device, dict(sdgm_params or {}), str(encoder)
            )
            progress.set_postfix_str(f"{_label(source, target)} n={n} seed={seed} {name}")
            scores = _run_one_checked(chosen[name], task, context, views, name)
            keep((source, target, n, seed, name), task, scores)
    runs = [records[key] for key in todo]
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
        "split": split,
        "classes": classes if mldoc is None else "MLDoc's",
        "device": device,
        "n_jobs": int(n_jobs),
        "pooled_methods": [name for name in chosen if name in pooled],
        "sdgm_params": dict(sdgm_params or {}),
        "method_limits": {
            name: {key: list(v) if key != "seeds" else v for key, v in limits.items()}
            for name, limits in (method_limits or {}).items()
            if name in chosen
        },
    }
    return BenchmarkResults(runs, timings=timings, settings=settings)


# ---------------------------------------------------------------------------- reports
