"""The benchmark's named configurations (``--config``) and its default languages and encoder."""

from __future__ import annotations

#: The encoder of :func:`run_benchmark` and of ``--encoder`` by default.
DEFAULT_ENCODER = "intfloat/multilingual-e5-small"
#: The languages of :func:`run_benchmark` by default, and of the demo and full configurations.
DEFAULT_LANGUAGES = ("en", "de", "fr", "ru", "zh")

#: The methods of the configurations timed as a whole (demo, cross-lingual): not yet
#: the GRU decoder nor the two-stage M1+M2, which ``full`` runs. The cross-lingual
#: configuration adds the SDGM on NXVAE (the paper's own cross-lingual encoder).
_TIMED_METHODS = (
    "SDGM", "SDGM-e2e", "LogisticRegression", "SelfTraining", "LabelSpreading",
    "TF-IDF+LR", "Emb+pieces+LR", "Transformer", "Transformer+ST", "SetFit",
)  # fmt: skip

#: Named settings of :func:`run_benchmark`. ``cross_lingual`` lists (source, target)
#: pairs (empty: none); ``cross_lingual_sizes`` None means the same as ``sizes``.
#: ``sdgm_params`` overrides SDGM defaults and belongs only to the smoke test;
#: ``method_limits`` runs slow methods on fewer draws (see :func:`run_benchmark`);
#: ``methods`` names the methods to run (absent: all of :data:`METHODS`);
#: ``n_jobs`` is :func:`run_benchmark`'s (absent: 1).
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
    "demo": {
        "languages": DEFAULT_LANGUAGES,
        "sizes": (16, 64),
        "seeds": 3,
        "cross_lingual": (),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        # Slow methods on fewer draws: the end-to-end SDGM, the transformer, its
        # self-training and SetFit on English, the first seed, 16 labels. The other
        # methods' runs two at a time. The whole demo took 27.7 minutes on 2 idle CPU cores
        # with a cold cache on 2026-12-06 (docs/results/demo-jobs2-2026-12-06.txt): the
        # 180 runs without a model about 10 (the SDGM's 30 fits took 12.4 one after another
        # with 2 threads), self-training 8.8, SetFit 3.7, the end-to-end SDGM 2.5.
        "methods": _TIMED_METHODS,
        "n_jobs": 2,
        "method_limits": {
            "SDGM-e2e": {"seeds": 1, "sizes": (16,), "tasks": ("en",)},
            "Transformer": {"seeds": 1, "sizes": (16,), "tasks": ("en",)},
            "Transformer+ST": {"seeds": 1, "sizes": (16,), "tasks": ("en",)},
            "SetFit": {"seeds": 1, "sizes": (16,), "tasks": ("en",)},
        },
    },
    "cross-lingual": {
        "languages": (),
        "sizes": (16, 64),
        "seeds": 3,
        "cross_lingual": (("en", "de"), ("en", "fr"), ("de", "fr")),
        "cross_lingual_sizes": None,
        "sdgm_params": None,
        "methods": (*_TIMED_METHODS, "SDGM (NXVAE)"),
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
