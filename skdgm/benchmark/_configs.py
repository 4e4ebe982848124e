"""The benchmark's named configurations (``--config``) and its default languages and encoder."""

from __future__ import annotations

#: The encoder of :func:`run_benchmark` and of ``--encoder`` by default.
DEFAULT_ENCODER = "intfloat/multilingual-e5-small"
#: The languages of :func:`run_benchmark` by default, and of the demo and full configurations.
DEFAULT_LANGUAGES = ("en", "de", "fr", "ru", "zh")

#: The methods that need no model of their own: the frozen SDGM and the scikit-learn
#: baselines on the embeddings, the pieces or the words. A fit takes seconds (the SDGM
#: about half a minute on 2 CPU cores), so the demo runs them on every draw.
_FROZEN_METHODS = (
    "SDGM", "LogisticRegression", "SelfTraining", "LabelSpreading", "TF-IDF+LR",
    "Emb+pieces+LR",
)  # fmt: skip

#: The methods that train a transformer of their own (minutes a fit on a CPU): the
#: end-to-end SDGM, the paper's supervised transformer and BERT+ST (e5's top layer),
#: and SetFit. The "slow" configuration runs them beside the SDGM; not yet the
#: full-strength transformers (every layer), which ``full`` runs.
_SLOW_METHODS = ("SDGM-e2e", "Transformer", "Transformer+ST", "SetFit")

#: Named settings of :func:`run_benchmark`. ``cross_lingual`` lists (source, target)
#: pairs (empty: none); ``cross_lingual_sizes`` None means the same as ``sizes``.
#: ``sdgm_params`` overrides SDGM defaults and belongs only to the smoke test;
#: ``method_limits`` runs slow methods on fewer draws (see :func:`run_benchmark`);
#: ``methods`` names the methods to run (absent: all of :data:`METHODS`);
#: ``n_jobs`` is :func:`run_benchmark`'s (absent: 1); ``epilogue`` is printed after the
#: command line's tables.
CONFIGS: dict[str, dict] = {
    "smoke": {
        "languages": ("en", "de"),
        "sizes": (8,),
        "seeds": 1,
        "cross_lingual": (("en", "de"),),
        "cross_lingual_sizes": None,
        "sdgm_params": {"max_epochs": 3},
        "method_limits": None,
    },
    # The headline comparison, within 12 minutes on 2 CPU cores with a cold cache: every
    # language, 16 and 64 labels, 2 seeds, one cross-lingual pair; the methods without a
    # model of their own, two at a time (see the README and docs/benchmark.rst).
    "demo": {
        "languages": DEFAULT_LANGUAGES,
        "sizes": (16, 64),
        "seeds": 2,
        "cross_lingual": (("en", "de"),),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        "methods": _FROZEN_METHODS,
        "n_jobs": 2,
        "method_limits": None,
        "epilogue": (
            "The methods that fine-tune a transformer (the end-to-end SDGM, the paper's "
            "fine-tuned transformer and BERT+ST, SetFit) are left out of the demo: "
            "`python -m skdgm.benchmark --config slow` runs them beside the SDGM at 16 "
            "labels on every language, about 80 minutes on 2 CPU cores (an estimate); "
            "`make benchmark` runs every method on every size and seed. Every figure "
            "measured so far: docs/benchmark.rst."
        ),
    },
    # The methods that fine-tune a transformer, beside the SDGM, at 16 labels on one
    # seed: about 80 minutes on 2 CPU cores, estimated from their runs in the demo of
    # 2026-12-06 (BERT+ST 9 minutes a language, SetFit 4, the end-to-end SDGM 2.5, the
    # transformer 0.7).
    "slow": {
        "languages": DEFAULT_LANGUAGES,
        "sizes": (16,),
        "seeds": 1,
        "cross_lingual": (),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        "methods": ("SDGM", *_SLOW_METHODS),
        "n_jobs": 1,
        "method_limits": None,
    },
    "cross-lingual": {
        "languages": (),
        "sizes": (16, 64),
        "seeds": 3,
        "cross_lingual": (("en", "de"), ("en", "fr"), ("de", "fr")),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        "methods": (*_FROZEN_METHODS, *_SLOW_METHODS, "SDGM (NXVAE)"),
        "n_jobs": 2,
        "method_limits": {
            "SDGM (NXVAE)": {"seeds": 1},
            "SDGM-e2e": {"seeds": 1},
            "Transformer": {"seeds": 1},
            "Transformer+ST": {"seeds": 1, "sizes": (16,)},
            "SetFit": {"seeds": 1, "sizes": (16,)},
        },
    },
    "full": {
        "languages": DEFAULT_LANGUAGES,
        "sizes": (16, 32, 64, 128, "all"),
        "seeds": 5,
        "cross_lingual": (("en", "de"), ("en", "fr"), ("de", "fr")),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        "methods": None,  # all of METHODS
        "n_jobs": 2,
        # The GRU decoder costs about 10 minutes a fit on 2 CPU cores (a probe, 2026-11-26).
        # The whole encoder fine-tuned: minutes a fit; with self-training about 15 minutes
        # a draw at 16 labels (2 CPU cores, 2026-12-08).
        "method_limits": {
            "SDGM (GRU)": {"seeds": 2, "sizes": (16, 64)},
            "Transformer (all layers)": {"seeds": 2, "sizes": (16, 64)},
            "Transformer+ST (all layers)": {"seeds": 1, "sizes": (16,)},
        },
    },
}


# --------------------------------------------------------------------------- methods
