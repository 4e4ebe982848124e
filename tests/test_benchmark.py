"""Smoke tests of the benchmark on a tiny random encoder (no download)."""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from skdgm.benchmark import (
    CONFIGS,
    METHODS,
    BenchmarkRunError,
    Method,
    MethodContext,
    format_table,
    format_timings,
    main,
    run_benchmark,
    write_results,
)

# NXVAE trains its own encoder for minutes: its factory is tested below, and the SDGM on
# NXVAE in tests/test_nxvae.py. The transformers with every layer trained are the same
# classes as "Transformer" and "Transformer+ST" with other parameters: their factories
# and one run are tested below.
FULL_STRENGTH = ("Transformer (all layers)", "Transformer+ST (all layers)")
RUN = [name for name in METHODS if name != "SDGM (NXVAE)" and name not in FULL_STRENGTH]


def _tiny_benchmark(model, methods, threads, **options):
    """en, de and en -> de at 8 labels, one seed, with ``threads`` torch threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return run_benchmark(
            ["en", "de"],
            [8],
            1,
            methods,
            cross_lingual=[("en", "de")],
            encoder=model,
            device="cpu",
            sdgm_params={"max_epochs": 2},
            verbose=0,
            **options,
        )
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def results(tiny_wordpiece_model):
    # Tiny models: more threads only contend on a busy machine.
    return _tiny_benchmark(tiny_wordpiece_model, RUN, threads=1)


def test_every_run_is_present_and_scored(results):
    expected = {
        (source, target, 8, 0, method)
        for source, target in [("en", "en"), ("de", "de"), ("en", "de")]
        for method in RUN
    }
    got = [(r["source"], r["target"], r["n"], r["seed"], r["method"]) for r in results]
    assert sorted(got) == sorted(expected)
    for run in results:
        # What the scores mean is tested below on estimators whose scores are known.
        assert {"accuracy", "macro_f1", "fit_seconds", "predict_seconds"} <= set(run)
        assert run["n_labelled"] == 8  # 2 per class, 4 classes
        assert run["n_classes"] == 4
        assert run["n_unlabelled"] > 100 and run["n_test"] > 100
    cross = [run for run in results if run["setting"] == "cross-lingual"]
    assert {run["language"] for run in cross} == {"de"}
    assert set(results.timings) >= {"load model", "encode en", "encode de"}


def test_methods_share_the_draws(results):
    draws = {}
    for run in results:
        draws.setdefault((run["source"], run["target"], run["n"], run["seed"]), set()).add(
            run["draw"]
        )
    assert all(len(fingerprints) == 1 for fingerprints in draws.values())
    # the cross-lingual run labels the same English documents as the English run
    assert draws[("en", "en", 8, 0)] == draws[("en", "de", 8, 0)]


def test_tables_and_files(results, tmp_path):
    table = format_table(results)
    assert table.startswith("Accuracy")
    lines = table.splitlines()
    assert all(method in lines[1] for method in RUN)
    assert any(line.startswith("average") for line in lines)
    assert any(line.startswith("en-de") for line in lines)
    assert all(line.count("*") >= 1 for line in lines if line[:2] in ("en", "de", "av"))
    assert format_table(results, "macro_f1").startswith("Macro-F1")
    calibration = format_table(results, "ece").splitlines()
    assert calibration[0].startswith("Expected calibration error")
    assert "SDGM" in calibration[1] and "Transformer+ST" in calibration[1]
    assert "SDGM" in format_timings(results)

    paths = write_results(results, tmp_path / "out")
    names = ["results.csv", "results.json", "accuracy.png", "reliability.png"]
    assert [path.name for path in paths] == names
    with open(paths[0], encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(results)
    saved = json.loads(paths[1].read_text(encoding="utf-8"))
    assert len(saved["runs"]) == len(results)
    assert format_table(saved["runs"]) == table  # the JSON reproduces the table
    assert paths[2].stat().st_size > 1000


def test_the_demo_says_how_to_run_the_slow_methods(results, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("skdgm.benchmark._cli.run_benchmark", lambda *a, **k: results)
    out = tmp_path / "out"
    assert main(["--config", "demo", "--output", str(out), "--no-plot"]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # the advice is wrapped
    assert printed.index("Accuracy") < printed.index("--config slow")
    # Asked for other methods, or another configuration: no advice about the demo's.
    assert main(["--config", "demo", "--methods", "SDGM", "--output", str(out), "--no-plot"]) == 0
    assert main(["--config", "smoke", "--output", str(out), "--no-plot"]) == 0
    assert "--config slow" not in " ".join(capsys.readouterr().out.split())


def test_full_strength_transformers_train_every_layer(tiny_wordpiece_model):
    for name in FULL_STRENGTH:
        built = METHODS[name].build(MethodContext(seed=3, encoder=None))
        model = getattr(built, "estimator", built)  # inside SelfTrainingClassifier
        assert (model.fine_tune_layers, model.learning_rate) == ("all", 2e-5)
    results = run_benchmark(
        ["en"],
        [8],
        1,
        ["Transformer (all layers)"],
        encoder=tiny_wordpiece_model,
        device="cpu",
        verbose=0,
    )
    assert results[0]["n_labelled"] == 8 and "log_loss" in results[0]


def test_gru_and_two_stage_sdgms_run_in_full_only(monkeypatch):
    gru = METHODS["SDGM (GRU)"].build(MethodContext(seed=3, encoder=None))
    two_stage = METHODS["M1+M2 two-stage"].build(MethodContext(seed=3, encoder=None))
    assert (gru.decoder, gru.training, gru.random_state) == ("gru", "joint", 3)
    assert (two_stage.decoder, two_stage.training) == ("auto", "two_stage")
    slow = {"SDGM (GRU)", "M1+M2 two-stage", *FULL_STRENGTH}
    assert set(CONFIGS["full"]["method_limits"]) >= set(FULL_STRENGTH)  # on fewer draws
    own_model = {name for name, method in METHODS.items() if method.needs_model}
    # The demo: every method without a model of its own but the NXVAE (which trains one);
    # the "slow" configuration: those with one (but the GRU and the full-strength ones).
    assert set(CONFIGS["demo"]["methods"]) == set(METHODS) - own_model - slow - {"SDGM (NXVAE)"}
    assert set(CONFIGS["slow"]["methods"]) == own_model - slow | {"SDGM"}
    assert CONFIGS["demo"]["method_limits"] is None  # every method on every draw
    assert CONFIGS["demo"]["cross_lingual"] and CONFIGS["demo"]["seeds"] >= 2
    assert set(CONFIGS["cross-lingual"]["methods"]) == set(METHODS) - slow
    nxvae = METHODS["SDGM (NXVAE)"].build(MethodContext(seed=3, encoder=None, device="cpu"))
    assert type(nxvae.encoder).__name__ == "NXVAE"
    assert (nxvae.encoder.random_state, nxvae.random_state, nxvae.encoder.device) == (3, 3, "cpu")
    assert CONFIGS["full"]["methods"] is None  # every method
    asked = {}

    def fake_run(*args, **kwargs):
        asked["methods"], asked["n_jobs"] = args[3], kwargs["n_jobs"]
        raise ValueError("stop here")

    monkeypatch.setattr("skdgm.benchmark._cli.run_benchmark", fake_run)
    for config, expected in [("demo", CONFIGS["demo"]["methods"]), ("full", None)]:
        with pytest.raises(SystemExit):
            main(["--config", config])
        assert asked["methods"] == expected
    with pytest.raises(SystemExit):
        main(["--config", "demo", "--methods", "SDGM (GRU)"])
    assert asked["methods"] == ["SDGM (GRU)"]
    for argv, n_jobs in [
        (["--config", "demo"], 2),
        (["--config", "smoke"], 1),
        (["--jobs", "3"], 3),
    ]:
        with pytest.raises(SystemExit):
            main(argv)
        assert asked["n_jobs"] == n_jobs


def test_bad_settings_raise_clear_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--config", "nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "nope" in err and "smoke" in err and "full" in err
    with pytest.raises(ValueError, match="Unknown method"):
        run_benchmark(["en"], [8], 1, ["SDGM", "Magic"])
    with pytest.raises(ValueError, match="Unknown language"):
        run_benchmark(["xx"], [8], 1)
    with pytest.raises(SystemExit):
        main(["--sizes", "8,lots"])
    assert "lots" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--jobs", "0"])
    assert "--jobs" in capsys.readouterr().err


def _write_mldoc_files(folder) -> None:
    """Small English MLDoc-style files: 12 train and 5 test documents per topic."""
    topics = {
        "CCAT": "company shares profit merger",
        "ECAT": "inflation economy growth rates",
        "GCAT": "election government minister vote",
        "MCAT": "market prices bonds trading",
    }
    rng = np.random.default_rng(0)
    for split, count in [("train.1000", 12), ("test", 5)]:
        lines = []
        for label, words in topics.items():
            for _ in range(count):
                text = " ".join(rng.choice(words.split() + ["the", "a", "of"], size=8))
                lines.append(f"{label}\t{text}")
        (folder / f"english.{split}").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_mldoc_files(tiny_wordpiece_model, tmp_path):
    _write_mldoc_files(tmp_path)
    results = run_benchmark(
        ["en"],
        [8, "all"],
        2,
        ["LogisticRegression", "TF-IDF+LR"],
        encoder=tiny_wordpiece_model,
        mldoc=str(tmp_path),
        device="cpu",
        verbose=0,
    )
    assert len(results) == 2 * 2 * 2
    assert {run["n_labelled"] for run in results} == {8, 48}
    assert all(run["n_test"] == 20 for run in results)
    tfidf = [run["accuracy"] for run in results if run["method"] == "TF-IDF+LR"]
    assert min(tfidf) > 0.5  # the topic words separate the classes
    with pytest.raises(ValueError, match="Unknown language"):
        run_benchmark(["xx"], [8], 1, mldoc=str(tmp_path))


def test_the_encoder_prefix_reaches_the_embeddings(tiny_wordpiece_model, tmp_path):
    from sklearn.linear_model import LogisticRegression

    _write_mldoc_files(tmp_path)
    seen = []  # the embeddings every method of a run reads

    def build(context):
        seen.append(context.encoder.table.embeddings.copy())
        return LogisticRegression()

    embeddings = {}
    for prefix in ("auto", "query: "):
        results = run_benchmark(
            ["en"],
            [8],
            1,
            {"probe": Method(build, "embeddings", semi_supervised=False)},
            encoder=tiny_wordpiece_model,
            encoder_prefix=prefix,
            mldoc=str(tmp_path),
            device="cpu",
            verbose=0,
        )
        assert results.settings["encoder_prefix"] == prefix
        embeddings[prefix] = seen[-1]
    assert embeddings["auto"].shape == embeddings["query: "].shape
    assert not np.allclose(embeddings["auto"], embeddings["query: "])


def test_slow_methods_run_on_fewer_seeds_and_say_so(tiny_wordpiece_model):
    results = run_benchmark(
        ["en"],
        [8],
        [0, 1],
        ["SDGM", "LogisticRegression"],
        encoder=tiny_wordpiece_model,
        device="cpu",
        sdgm_params={"max_epochs": 1},
        method_limits={"SDGM": {"seeds": 1}, "LogisticRegression": {"tasks": ["en"]}},
        on_run=(kept := []).append,
        verbose=0,
    )
    assert kept == list(results)  # every run, as it was scored
    seeds = {(run["method"], run["seed"]) for run in results}
    assert seeds == {("SDGM", 0), ("LogisticRegression", 0), ("LogisticRegression", 1)}
    assert results.settings["method_limits"]["SDGM"] == {"seeds": 1}
    assert "fewer seeds" in format_table(results) and "SDGM (1)" in format_table(results)
    timings = format_timings(results)
    assert "x1.00 the SDGM's" in timings  # the reference, against itself
    assert timings.count("the SDGM's") == 2
    for limits, match in [({"seeds": 0}, "positive int"), ({"size": [8]}, "unknown keys")]:
        with pytest.raises(ValueError, match=match):
            run_benchmark(
                ["en"],
                [8],
                1,
                ["SDGM"],
                encoder=tiny_wordpiece_model,
                method_limits={"SDGM": limits},
                verbose=0,
            )


class _Oracle(ClassifierMixin, BaseEstimator):
    """Knows every page's label by its text: perfect, certain scores (or a constant)."""

    def __init__(self, truth=None, constant=None, seconds=0.0):
        self.truth = truth
        self.constant = constant
        self.seconds = seconds

    def fit(self, X, y):
        time.sleep(self.seconds)
        self.classes_ = np.unique(y[y != -1])
        return self

    def predict_proba(self, X):
        if self.constant is not None:  # the first class at 0.5, the others sharing the rest
            proba = np.full((len(X), len(self.classes_)), 0.5 / (len(self.classes_) - 1))
            proba[:, 0] = 0.5
            return proba
        index = np.searchsorted(self.classes_, [self.truth[doc] for doc in X])
        return np.eye(len(self.classes_))[index]

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


def test_scores_mean_what_they_say(tiny_wordpiece_model):
    # A method that is always right, one that always says the first class at p = 0.5,
    # and one whose fit takes 0.3 s: the scores and times that each must get.
    from skdgm.datasets import load_libreoffice_help

    test = load_libreoffice_help(languages="en", split="test")
    truth = dict(zip(test.data, test.target))
    methods = {
        "oracle": Method(lambda c: _Oracle(truth), "documents", semi_supervised=True),
        "first": Method(lambda c: _Oracle(constant=True), "documents", semi_supervised=False),
        "slow": Method(lambda c: _Oracle(truth, seconds=0.3), "documents", False),
    }
    results = run_benchmark(
        ["en"], [8], 1, methods, encoder=tiny_wordpiece_model, device="cpu", verbose=0
    )
    runs = {run["method"]: run for run in results}
    oracle, first, slow = runs["oracle"], runs["first"], runs["slow"]
    assert oracle["accuracy"] == oracle["macro_f1"] == 1.0
    assert oracle["log_loss"] == pytest.approx(0.0, abs=1e-12)
    assert oracle["brier"] == oracle["ece"] == 0.0
    share = float(np.mean(test.target == 0))
    assert first["accuracy"] == pytest.approx(share)
    # F1 of class 0 = 2 share / (1 + share); the three other classes 0; macro over 4.
    assert first["macro_f1"] == pytest.approx(2 * share / (1 + share) / 4)
    assert first["log_loss"] == pytest.approx(
        -np.mean(np.log(np.where(test.target == 0, 0.5, 0.5 / 3)))
    )
    assert first["ece"] == pytest.approx(abs(0.5 - share))
    assert first["reliability"][5][:3] == [
        len(test.target),
        pytest.approx(0.5 * len(test.target)),
        int(share * len(test.target) + 0.5),
    ]
    assert slow["fit_seconds"] >= 0.3 > slow["predict_seconds"]
    assert oracle["fit_seconds"] < 0.3


def test_the_dev_split_and_eight_classes(tiny_wordpiece_model):
    from skdgm.datasets import load_libreoffice_help

    dev = load_libreoffice_help(languages="en", split="dev", classes="all")
    truth = dict(zip(dev.data, dev.target))
    results = run_benchmark(
        ["en"],
        [16],
        1,
        {"oracle": Method(lambda c: _Oracle(truth), "documents", semi_supervised=True)},
        encoder=tiny_wordpiece_model,
        device="cpu",
        split="dev",
        classes="all",
        verbose=0,
    )
    (run,) = results
    assert run["n_test"] == len(dev.target) and run["n_classes"] == 8
    assert run["accuracy"] == 1.0  # scored on the dev pages, 8 classes
    assert results.settings["split"] == "dev" and results.settings["classes"] == "all"
    with pytest.raises(ValueError, match="split must be 'test' or 'dev'"):
        run_benchmark(["en"], [8], 1, ["SDGM"], split="train")


class _FailsToFit(BaseEstimator):
    def fit(self, X, y):
        raise ValueError("this estimator cannot fit")


def test_a_method_that_fails_is_reported_as_a_failed_run_not_a_usage_error(
    tiny_wordpiece_model, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(
        METHODS, "Broken", Method(lambda context: _FailsToFit(), "embeddings", False)
    )
    with pytest.raises(BenchmarkRunError, match="Broken failed on en n=8 seed=0") as info:
        run_benchmark(["en"], [8], 1, ["Broken"], encoder=tiny_wordpiece_model, verbose=0)
    assert isinstance(info.value.__cause__, ValueError)
    status = main(
        [
            "--methods",
            "Broken",
            "--languages",
            "en",
            "--sizes",
            "8",
            "--seeds",
            "1",
            "--encoder",
            tiny_wordpiece_model,
            "--output",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "Broken failed on en n=8 seed=0: ValueError: this estimator cannot fit" in err
    assert "usage:" not in err


def test_jobs_score_the_runs_of_model_free_methods_in_worker_processes(
    tiny_wordpiece_model, results
):
    methods = ["SDGM", "LogisticRegression", "Emb+pieces+LR", "Transformer"]
    # Two workers of one thread each, as the fixture's runs.
    pooled = _tiny_benchmark(
        tiny_wordpiece_model, methods, threads=2, on_run=(kept := []).append, n_jobs=2
    )
    assert pooled.settings["n_jobs"] == 2
    assert pooled.settings["pooled_methods"] == methods[:3]  # the transformer needs its model
    keys = [(r["source"], r["target"], r["method"]) for r in pooled]
    expected = [(r["source"], r["target"], r["method"]) for r in results if r["method"] in methods]
    assert keys == expected  # the order of one process, whatever order the runs ended in
    assert sorted(map(str, kept)) == sorted(map(str, pooled))  # each run, as it was scored
    one_process = {(r["source"], r["target"], r["method"]): r for r in results}
    for run in pooled:  # the same draws and the same scores as in one process
        alone = one_process[(run["source"], run["target"], run["method"])]
        assert run["draw"] == alone["draw"]
        assert run["accuracy"] == pytest.approx(alone["accuracy"], abs=1e-12)
    assert "runs at a time sharing the cores" in format_timings(pooled)
    assert "sharing the cores" not in format_timings(results)
    # A run that fails in a worker is a failed run, named, not a broken pool.
    with pytest.raises(BenchmarkRunError, match="SDGM failed on en n=8 seed=0"):
        run_benchmark(
            ["en"],
            [8],
            1,
            ["SDGM"],
            encoder=tiny_wordpiece_model,
            device="cpu",
            sdgm_params={"max_epochs": -1},
            n_jobs=2,
            verbose=0,
        )
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="n_jobs must be a positive int"):
            run_benchmark(["en"], [8], 1, ["SDGM"], n_jobs=bad)


def test_token_states_only_for_the_languages_that_fine_tune(tiny_wordpiece_model):
    from skdgm.benchmark._data import _encode_languages, _PrecomputedEncoder

    data, table, texts, timings = _encode_languages(
        ["en", "de"],
        encoder=tiny_wordpiece_model,
        mldoc=None,
        device="cpu",
        cache_dir=None,
        verbose=0,
    )
    english = np.r_[data["en"].train_rows, data["en"].test_rows]
    table.state_rows = english
    encoder = _PrecomputedEncoder(table)
    states = encoder._token_states([texts[row] for row in english[:5]], 1)
    assert states.n_documents == 5
    assert "frozen layers below top 1" in timings
    with pytest.raises(ValueError, match="token states were not computed"):
        encoder._token_states([texts[data["de"].train_rows[0]]], 1)
    # The same states as computed over every document.
    data, every, texts, _ = _encode_languages(
        ["en", "de"],
        encoder=tiny_wordpiece_model,
        mldoc=None,
        device="cpu",
        cache_dir=None,
        verbose=0,
    )
    everything = _PrecomputedEncoder(every)._token_states([texts[row] for row in english[:5]], 1)
    assert np.array_equal(states.lengths, everything.lengths)
    size = int(states.offsets[-1])
    ours = torch_bf16(states._read(0, size))
    theirs = torch_bf16(everything._read(0, size))
    np.testing.assert_allclose(ours, theirs, atol=2e-2, rtol=2e-2)  # other batches: rounding


def torch_bf16(bits: np.ndarray) -> np.ndarray:
    import torch

    return torch.from_numpy(np.array(bits)).view(torch.bfloat16).float().numpy()


def test_calibration_scores_align_the_classes_the_estimator_knows():
    from skdgm.benchmark import calibration_scores

    y = np.array(["a", "b", "c", "c"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.6, 0.4]])  # never saw "c"
    scores = calibration_scores(y, proba, ["a", "b"])
    # "c" gets probability 0: its rows cost -log(1e-15) each.
    expected = -(np.log(0.9) + np.log(0.8) + 2 * np.log(1e-15)) / 4
    assert scores["log_loss"] == pytest.approx(expected)
    brier = ((0.1**2 + 0.1**2) + (0.2**2 + 0.2**2) + (0.25 + 0.25 + 1) + (0.36 + 0.16 + 1)) / 4
    assert scores["brier"] == pytest.approx(brier)
    # Bins: 0.5 and 0.6 (wrong), 0.8 and 0.9 (right).
    assert [b[0] for b in scores["reliability"]] == [0, 0, 0, 0, 0, 1, 1, 0, 1, 1]
    assert scores["ece"] == pytest.approx((0.5 + 0.6 + 0.2 + 0.1) / 4)
