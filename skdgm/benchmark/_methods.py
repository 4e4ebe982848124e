"""The benchmarked methods (a factory and a view of the data each) and the registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

from ._configs import DEFAULT_ENCODER


@dataclass(frozen=True)
class MethodContext:
    """What a method factory may use to build its estimator for one run.

    Parameters
    ----------
    seed : int
        The run's seed.
    encoder : transformer
        Lookup encoder returning the precomputed embeddings and token counts of documents.
    device : str
        Device for torch models.
    sdgm_params : dict
        Overrides of the SDGM's parameters (empty in real benchmarks).
    model_name : str
        The encoder's model name or folder, for methods that load it themselves.
    """

    seed: int
    encoder: object
    device: str = "auto"
    sdgm_params: Mapping = field(default_factory=dict)
    model_name: str = DEFAULT_ENCODER


@dataclass(frozen=True)
class Method:
    """A benchmarked method: a factory and the view of the data it is fitted on.

    Parameters
    ----------
    build : callable
        ``build(context: MethodContext) -> estimator`` with ``fit`` and ``predict``.
    features : {"documents", "codes", "embeddings", "tfidf", "embeddings+pieces"}
        What ``X`` holds: the documents (for estimators with an encoder), the documents
        as numbers (:func:`~skdgm.documents_as_array`, for meta-estimators such as
        ``SelfTrainingClassifier`` that take numbers only), their
        precomputed embeddings, TF-IDF features fitted on the train split's text, or the
        embeddings followed by the TF-IDF of the encoder's subword pieces (what the
        SDGM's inference network sees), fitted on the train split.
    semi_supervised : bool
        Fit on labelled and unlabelled rows (``y = -1``); otherwise on labelled rows alone.
    requires : str or None, default=None
        An optional package the method needs; without it the method is skipped.
    needs_model : bool, default=False
        The method runs the encoder's model itself (fine-tuning, SetFit, the tokenizer).
        With ``run_benchmark(n_jobs=...)`` its runs stay in the main process, after the
        others, with all of torch's threads; the others go to worker processes, which
        see the precomputed embeddings only.
    """

    build: Callable[[MethodContext], object]
    features: str
    semi_supervised: bool
    requires: str | None = None
    needs_model: bool = False


def _sdgm(context: MethodContext, settings: Mapping = ()):
    """The SDGM with ``settings`` over its defaults (and the context's overrides over both)."""
    from .._classifier import SemiSupervisedVAEClassifier

    return SemiSupervisedVAEClassifier(
        encoder=context.encoder,
        random_state=context.seed,
        device=context.device,
        **{**dict(settings), **dict(context.sdgm_params)},
    )


def _sdgm_end_to_end(context: MethodContext):
    # The paper's end-to-end model: the encoder's top layers train with the SDGM.
    return _sdgm(context, END_TO_END)


def _sdgm_gru(context: MethodContext):
    # The GRU decoder over the documents' first pieces instead of the bag of pieces.
    return _sdgm(context, {"decoder": "gru"})


def _sdgm_two_stage(context: MethodContext):
    # Kingma's two-stage M1+M2, the paper's baseline: M1 first, then M2 on frozen z1.
    return _sdgm(context, {"training": "two_stage"})


def _sdgm_nxvae(context: MethodContext):
    # The paper's own encoder, trained from scratch on the run's train documents (labelled
    # and unlabelled, every language of the run, as one stream: the SDGM gives its encoder
    # no language codes), then frozen under the SDGM.
    from ..encoders import NXVAE

    nxvae = NXVAE(random_state=context.seed, device=context.device)
    return _sdgm(replace(context, encoder=nxvae))


def _transformer(context: MethodContext):
    from .._transformer_classifier import TransformerClassifier

    # As many tuned layers as the end-to-end SDGM: the same depth of fine-tuning on both
    # sides, and the frozen layers' output computed once for both.
    return TransformerClassifier(
        context.encoder,
        fine_tune_layers=END_TO_END["fine_tune_layers"],
        random_state=context.seed,
        device=context.device,
    )


def _transformer_self_training(context: MethodContext):
    # The paper's BERT+ST: pseudo-labels of the confident unlabelled documents, refitted.
    return SelfTrainingClassifier(_transformer(context), threshold=0.9, max_iter=3)


def _transformer_all_layers(context: MethodContext):
    from .._transformer_classifier import TransformerClassifier

    # The paper's supervised baseline at full strength: every layer fine-tuned at the
    # paper's learning rate (2e-5); epochs "auto" (100 passes over 16 labels).
    return TransformerClassifier(
        context.encoder,
        fine_tune_layers="all",
        learning_rate=2e-5,
        random_state=context.seed,
        device=context.device,
    )


def _transformer_all_layers_self_training(context: MethodContext):
    return SelfTrainingClassifier(_transformer_all_layers(context), threshold=0.9, max_iter=3)


def _setfit(context: MethodContext):
    from .._setfit import SetFitClassifier

    return SetFitClassifier(context.model_name, random_state=context.seed, device=context.device)


def _logistic_regression(context: MethodContext | None = None):
    return LogisticRegression(C=10, max_iter=2000)


# Named functions, not lambdas: a method's factory travels to worker processes by pickle.
def _self_training(context: MethodContext):
    return SelfTrainingClassifier(_logistic_regression(), threshold=0.9)


def _label_spreading(context: MethodContext):
    return LabelSpreading(kernel="knn", n_neighbors=10)


#: What the end-to-end SDGM of the benchmark changes from the defaults: the top layer
#: of the encoder trains with the SDGM for 3 epochs (the setting of docs/tuning.rst,
#: round 5; 2 layers for 5 epochs cost about 3x as much on a CPU).
END_TO_END = {"fine_tune_layers": 1, "fine_tune_epochs": 3}

#: The methods by name. Add one with ``METHODS["name"] = Method(build, features, semi)``.
METHODS: dict[str, Method] = {
    "SDGM": Method(_sdgm, "documents", semi_supervised=True),
    "SDGM-e2e": Method(_sdgm_end_to_end, "documents", semi_supervised=True, needs_model=True),
    # The GRU decoder reads the documents' pieces from the encoder's tokenizer.
    "SDGM (GRU)": Method(_sdgm_gru, "documents", semi_supervised=True, needs_model=True),
    "M1+M2 two-stage": Method(_sdgm_two_stage, "documents", semi_supervised=True),
    "SDGM (NXVAE)": Method(_sdgm_nxvae, "documents", semi_supervised=True),
    "LogisticRegression": Method(_logistic_regression, "embeddings", semi_supervised=False),
    "SelfTraining": Method(_self_training, "embeddings", semi_supervised=True),
    "LabelSpreading": Method(_label_spreading, "embeddings", semi_supervised=True),
    "TF-IDF+LR": Method(_logistic_regression, "tfidf", semi_supervised=False),
    "Emb+pieces+LR": Method(_logistic_regression, "embeddings+pieces", semi_supervised=False),
    "Transformer": Method(_transformer, "documents", semi_supervised=False, needs_model=True),
    "Transformer+ST": Method(
        _transformer_self_training, "codes", semi_supervised=True, needs_model=True
    ),
    "SetFit": Method(
        _setfit, "documents", semi_supervised=False, requires="setfit", needs_model=True
    ),
    # The paper's baselines at full strength (the whole encoder trained, lr 2e-5): on a
    # CPU, minutes a fit, and self-training about 15 minutes a draw at 16 labels.
    "Transformer (all layers)": Method(
        _transformer_all_layers, "documents", semi_supervised=False, needs_model=True
    ),
    "Transformer+ST (all layers)": Method(
        _transformer_all_layers_self_training, "codes", semi_supervised=True, needs_model=True
    ),
}
