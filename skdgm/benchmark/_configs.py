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
#: ``methods`` names the methods to run (absent: all of :data:`METHODS`).
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
        # Slow methods on fewer draws (the whole demo took 41 minutes on 2 idle CPU
        # cores with a cold cache on 2026-12-03, the end-to-end SDGM then on English
        # and German; fit times with 16 labels): the transformer (36 s) on the first
        # seed with 16 labels; the end-to-end SDGM (3.5 minutes), self-training (10
        # minutes: it refits on a growing set) and SetFit (4 minutes, its pairs growing
        # with the labels) on English only.
        "methods": _TIMED_METHODS,
        "method_limits": {
            "SDGM-e2e": {"seeds": 1, "sizes": (16,), "tasks": ("en",)},
            "Transformer": {"seeds": 1, "sizes": (16,)},
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
        # The GRU decoder costs about 10 minutes a fit on 2 CPU cores (a probe, 2026-11-26).
        "method_limits": {"SDGM (GRU)": {"seeds": 2, "sizes": (16, 64)}},
    },
}


# --------------------------------------------------------------------------- methods
