"""Running the training stages of one fit: the stages' settings (joint, or M1 then M2),
the ELBO's weight, the class prior, a new or copied SDGM (and whether a warm start can
copy the fitted one), seeded torch, advice on memory and the progress bar, and each
stage in turn through :func:`train`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._base import advise_on_memory, progress_bar
from .._device import fork_rng
from .._preprocessing import PAD
from ._ensemble import SDGMEnsemble, members
from ._inputs import RowSource, TokenRows, TunedRows
from ._linear import (
    LinearExpert,
    confident_rows,
    fit_linear_expert,
    linear_features,
    piece_coverage,
    resolve_weight,
)
from ._networks import SDGM
from ._prior import class_prior
from ._training import TrainingConfig, predict_logits, train

#: The estimator's parameters that shape the SDGM's networks.
_NETWORK_PARAMS = (
    "z1_dim",
    "z2_dim",
    "hidden_dim",
    "n_layers",
    "dropout",
    "classifier_sees_inputs",
    "word_dropout",
)


def network_changes(params: Mapping[str, Any], module_kwargs: Mapping[str, Any]) -> list[str]:
    """The parameters that shape the networks and differ from those of the fitted ones.

    A warm start goes on with the fitted networks: with any of these changed it would
    silently keep the old ones. Returns ``"name=new, previously old"`` for each.
    """
    return [
        f"{key}={params[key]!r}, previously {module_kwargs[key]!r}"
        for key in _NETWORK_PARAMS
        if key in module_kwargs and params[key] != module_kwargs[key]
    ]


def warm_start_changes(
    params: Mapping[str, Any],
    module_kwargs: Mapping[str, Any],
    *,
    classes: np.ndarray,
    fitted_classes: np.ndarray,
    decoder: str,
    fitted_decoder: str,
    documents: bool,
    fitted_documents: bool,
) -> list[str]:
    """Why a warm start cannot go on from the fitted model: one phrase per change.

    The networks' shape (:func:`network_changes`), the classes, the decoder, the
    ensemble's size and the kind of data (documents or numeric features) must be those
    of the fit that built ``module_kwargs``. An empty list: the warm start can go on.
    """
    problems = network_changes(params, module_kwargs)
    if not np.array_equal(classes, fitted_classes):
        problems.append(f"classes {classes.tolist()}, previously {fitted_classes.tolist()}")
    if decoder != fitted_decoder:
        problems.append(f"decoder {decoder!r}, previously {fitted_decoder!r}")
    fitted_size = module_kwargs.get("n_members", 1)
    if params["ensemble_size"] != fitted_size:
        problems.append(f"ensemble_size={params['ensemble_size']}, previously {fitted_size}")
    if documents != fitted_documents:
        kinds = ("numeric features", "documents")
        problems.append(f"{kinds[documents]}, previously {kinds[fitted_documents]}")
    return problems


@dataclass
class FitResult:
    """What one fit trained: the model, its history, and how the training ended."""

    module: SDGM
    module_kwargs: dict
    history: list[dict]
    n_epochs: int  # epochs run, all stages together
    planned: int  # epochs planned, all stages together
    best_epoch: int  # the epoch whose parameters were kept
    interrupted: bool  # Ctrl-C
    predicted: np.ndarray  # the class (position) the model gives every training row
    linear: LinearExpert | None = None  # the regression pooled with q(y | x), if any
    n_pseudo_labels: int = 0  # unlabelled rows the regression was refitted on
    members_kept: int = 1  # SDGMs in the model (an ensemble's members)
    members_planned: int = 1

    def interruption(self, early_stopping: bool) -> str:
        """What to tell the user when Ctrl-C stopped the training (``interrupted``)."""
        kept = (
            f"the parameters of its best epoch ({self.best_epoch})"
            if early_stopping and self.best_epoch
            else "the parameters reached when it stopped"
        )
        if self.members_planned > 1:
            kept += f", {self.members_kept} of its {self.members_planned} ensemble members"
        return (
            f"Training was interrupted after {self.n_epochs} complete epoch(s) of "
            f"{self.planned}; the estimator is fitted with {kept}. Fit again to "
            "train it fully."
        )


def fit_sdgm(
    params: Mapping[str, Any],
    *,
    decoder: str,
    inputs: np.ndarray,
    targets,
    y_index: np.ndarray,
    labelled_mask: np.ndarray,
    train_pos: np.ndarray,
    valid_pos: np.ndarray,
    n_classes: int,
    seed: int,
    device: torch.device,
    previous: tuple[SDGM, dict] | None = None,
    embedder=None,
    model_inputs=None,
    counts=None,
    linear_dense: int | None = None,
    name: str = "SDGM",
) -> FitResult:
    """Train an SDGM (or, on a warm start, a copy of ``previous``) on every training row.

    Parameters
    ----------
    params : mapping
        The estimator's parameters (``get_params(deep=False)``).
    decoder : str
        The resolved decoder.
    inputs, targets : arrays
        What the inference network sees and what the decoder reconstructs, one row each.
    y_index : ndarray
        The labelled rows' classes, as positions in the classes.
    labelled_mask : ndarray of bool
        Which rows are labelled.
    train_pos, valid_pos : ndarray
        Positions among the labelled rows trained on and held out for early stopping.
    n_classes : int
        Number of classes.
    seed : int
        Seeds torch (global random states are left alone) and the batches' order.
    device : torch.device
        Where the model trains.
    previous : (SDGM, dict) or None
        The previous fit's model and its constructor's arguments, on a warm start.
    embedder, model_inputs, counts : optional
        With fine-tuning: the trainable embedder of the documents (fine-tuning epochs
        train its top layers), the fitted ModelInputs and the documents' counts.
    linear_dense : int or None
        Leading columns of ``inputs`` that are a standardised embedding, for the linear
        expert (``params["linear_weight"]``; see :mod:`._linear`); None: it reads the
        inputs as they are.
    name : str
        The progress bar's label.
    """
    labelled = np.flatnonzero(labelled_mask)
    unlabelled = np.flatnonzero(~labelled_mask)
    prior = class_prior(
        params["prior"], inputs, labelled[train_pos], y_index[train_pos], unlabelled, n_classes
    )
    log_prior = torch.log(torch.as_tensor(prior, dtype=torch.float32, device=device))
    if previous is not None:
        module_kwargs = previous[1]
    else:
        module_kwargs = dict(
            in_dim=inputs.shape[1],
            target_dim=(
                model_inputs.sequence_vocabulary_size if decoder == "gru" else targets.shape[1]
            ),
            n_classes=n_classes,
            decoder=decoder,
            **{key: params[key] for key in _NETWORK_PARAMS},
        )
    stages = training_stages(
        params,
        embedder is not None,
        previous is not None,
        elbo_weight(decoder, targets),
        module_kwargs["z1_dim"],
    )
    tuned_inputs = None
    if embedder is not None:
        rest = model_inputs.counts_block(counts) if counts is not None else None
        tuned_inputs = TunedRows(
            embedder,
            model_inputs.mean_,
            model_inputs.scale_,
            RowSource(rest, device) if rest is not None else None,
        ).to(device)
    target_rows = (TokenRows if decoder == "gru" else RowSource)(targets, device)
    memory = (
        f"lower batch_size (now {params['batch_size']}), or the encoder's max_length or "
        f"fine_tune_layers when fine-tuning"
    )
    if decoder == "gru":
        memory += f", or max_decoder_length (now {params['max_decoder_length']})"
    n_members = params["ensemble_size"]
    planned = n_members * sum(config.max_epochs for config in stages)
    if previous is not None:
        # A warm start trains a copy: the previous model stays whole if this fit fails.
        starts = [copy.deepcopy(member) for member in members(previous[0])]
    else:
        starts = [None] * n_members
    history, trained, best_epochs = [], [], []
    interrupted = False
    with advise_on_memory(f"{memory}; device {device}"):
        progress = progress_bar(planned, params["verbose"], name)
        try:
            for index, start in enumerate(starts):
                # Member 0 trains as a single SDGM would: ensemble_size=1 is one such fit.
                member_seed = seed + index
                member_history: list[dict] = []
                with fork_rng(device, member_seed):
                    module = start if start is not None else SDGM(**_sdgm_kwargs(module_kwargs))
                    module = module.to(device)
                    best_epoch, interrupted, member_inputs = _train_stages(
                        module,
                        stages,
                        inputs,
                        target_rows,
                        labelled,
                        unlabelled,
                        y_index,
                        train_pos,
                        valid_pos,
                        log_prior,
                        np.random.default_rng(member_seed),
                        member_history,
                        progress,
                        tuned_inputs,
                        (embedder, model_inputs, counts),
                    )
                if n_members > 1:
                    for record in member_history:
                        record["member"] = index
                history += member_history
                best_epochs.append(best_epoch)
                # Ctrl-C: a member stopped part way joins the ensemble only if it is the first.
                if not interrupted or index == 0:
                    trained.append(module)
                if interrupted:
                    break
        finally:
            if progress is not None:
                progress.close()
    module = trained[0] if len(trained) == 1 else SDGMEnsemble(trained)
    inputs = member_inputs  # through the tuned layers when M2 read them
    tuned = embedder is not None and any(config.objective == "m2" for config in stages)
    if embedder is not None and not tuned:
        # The documents' embeddings through the tuned layers, then the model's inputs.
        inputs = _tuned_inputs(embedder, model_inputs, counts, inputs.shape[0])
    n_rows = inputs.shape[0]
    logits = predict_logits(module, RowSource(inputs, device), np.arange(n_rows), 1024)
    log_proba = torch.log_softmax(logits.double(), dim=1).cpu().numpy()
    linear, n_pseudo_labels = None, 0
    setting = params.get("linear_weight", 0.0)
    if setting == "auto" or setting > 0:
        mean, scale = getattr(model_inputs, "mean_", None), getattr(model_inputs, "scale_", None)
        features = linear_features(inputs, linear_dense, mean, scale)
        pieces = features[:, linear_dense or features.shape[1] :]
        rows = labelled[train_pos]
        coverage = piece_coverage(pieces[rows], pieces[unlabelled])
        weight = resolve_weight(setting, len(train_pos), n_classes, coverage)
        linear = fit_linear_expert(
            features[rows], y_index[train_pos], n_classes, weight, linear_dense
        )
        if linear is not None:
            log_q = log_proba
            log_proba = linear.pool(log_q, features)
            share = params.get("linear_pseudo_labels", 0.0)
            if share > 0 and unlabelled.size:
                # Self-training of the regression alone, one round: it learns again from
                # the labelled rows and the unlabelled rows the pooled model is surest of.
                chosen = confident_rows(log_proba[unlabelled], share)
                taught, rest = unlabelled[chosen], np.delete(unlabelled, chosen)
                rows = np.r_[rows, taught]
                labels = np.r_[y_index[train_pos], log_proba[taught].argmax(axis=1)]
                # The weight grows with the regression's rows, the pseudo-labelled ones
                # counted as labels (docs/tuning.rst, issue 28's re-check on the dev
                # split), times the coverage of those rows, which know the unlabelled
                # rows' pieces (across languages too: the taught rows are in the
                # unlabelled rows' language).
                coverage = piece_coverage(pieces[rows], pieces[rest])
                weight = resolve_weight(setting, rows.size, n_classes, coverage)
                linear = fit_linear_expert(features[rows], labels, n_classes, weight, linear_dense)
                # None only when that weight is 0 (no piece in common): q(y | x) alone.
                n_pseudo_labels = 0 if linear is None else taught.size
                log_proba = log_q if linear is None else linear.pool(log_q, features)
    return FitResult(
        module=module,
        module_kwargs={
            **_sdgm_kwargs(module_kwargs),
            **({"n_members": len(trained)} if len(trained) > 1 else {}),
        },
        history=history,
        n_epochs=len(history),
        planned=planned,
        best_epoch=best_epochs[0],
        interrupted=interrupted,
        predicted=log_proba.argmax(1),
        linear=linear,
        n_pseudo_labels=n_pseudo_labels,
        members_kept=len(trained),
        members_planned=n_members,
    )


def _sdgm_kwargs(module_kwargs: dict) -> dict:
    """One member's arguments: ``module_kwargs`` without the ensemble's size."""
    return {key: value for key, value in module_kwargs.items() if key != "n_members"}


def _train_stages(
    module: SDGM,
    stages: list[TrainingConfig],
    inputs: np.ndarray,
    target_rows,
    labelled: np.ndarray,
    unlabelled: np.ndarray,
    y_index: np.ndarray,
    train_pos: np.ndarray,
    valid_pos: np.ndarray,
    log_prior: torch.Tensor,
    generator: np.random.Generator,
    history: list,
    progress,
    tuned_inputs,
    tuning: tuple,
) -> tuple[int, bool, np.ndarray]:
    """Train one SDGM through every stage.

    Returns the best (or last) epoch, whether Ctrl-C stopped it, and the inputs the last
    stage read (through the tuned layers when M2 read them).
    """
    embedder, model_inputs, counts = tuning
    best_epoch, interrupted = 0, False
    for config in stages:
        if interrupted:
            break  # Ctrl-C in M1: no M2
        if config.objective == "m2" and embedder is not None:
            # M2 reads z1 through the layers tuned in M1, which stay fixed.
            inputs = _tuned_inputs(embedder, model_inputs, counts, inputs.shape[0])
        _, best_epoch, interrupted = train(
            module,
            RowSource(inputs, log_prior.device),
            target_rows,
            labelled[train_pos],
            y_index[train_pos],
            unlabelled,
            labelled[valid_pos],
            y_index[valid_pos],
            log_prior,
            config,
            generator,
            history,
            progress,
            tuned_inputs if config.fine_tune_epochs else None,
        )
    return best_epoch, interrupted, inputs


def training_stages(
    params: Mapping[str, Any], fine_tunes: bool, reuse: bool, elbo_weight: float, z1_dim: int
) -> list[TrainingConfig]:
    """The settings of each call of the training loop, in order.

    One for joint training; two, M1's then M2's, for ``training="two_stage"``.
    """
    fine_tune_epochs = params["fine_tune_epochs"] if fine_tunes else 0
    warm_up_epochs = 0 if reuse else params["warm_up_epochs"]  # warm-up is for a new model
    shared = dict(
        alpha=params["alpha"],
        batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        weight_decay=params["weight_decay"],
        kl_annealing_epochs=params["kl_annealing_epochs"],
        free_bits=params["free_bits"],
        n_iter_no_change=params["n_iter_no_change"],
        fine_tune_learning_rate=params["fine_tune_learning_rate"],
        average_epochs=params["average_epochs"],
        marginal_weight=params["marginal_weight"],
        epoch_size=params["epoch_size"],
    )
    max_epochs = params["max_epochs"]
    if params["training"] == "joint":
        return [
            TrainingConfig(
                **shared,
                max_epochs=warm_up_epochs + max_epochs + fine_tune_epochs,
                warm_up_epochs=warm_up_epochs,
                elbo_weight=elbo_weight,
                fine_tune_epochs=fine_tune_epochs,
            )
        ]
    return [
        TrainingConfig(
            **shared,
            max_epochs=max_epochs + fine_tune_epochs,
            warm_up_epochs=0,
            elbo_weight=elbo_weight,
            fine_tune_epochs=fine_tune_epochs,
            objective="m1",
        ),
        TrainingConfig(
            **shared,
            max_epochs=warm_up_epochs + max_epochs,
            warm_up_epochs=warm_up_epochs,
            elbo_weight=1.0 / z1_dim,  # M2 reconstructs z1
            objective="m2",
        ),
    ]


def elbo_weight(decoder: str, targets) -> float:
    """1 / the size of a row's reconstruction: tokens per document, or features.

    The ELBO grows with the length of documents (or the number of features) while the
    classifier's cross-entropy does not; dividing the ELBO by that size keeps ``alpha``
    meaningful across corpora (Kingma et al. instead scale alpha with the data).
    """
    if decoder in ("bow", "gru"):
        lengths = targets.sum(axis=1) if decoder == "bow" else (targets != PAD).sum(axis=1)
        tokens = float(np.asarray(lengths).mean()) if targets.shape[0] else 1.0
        return 1.0 / max(tokens, 1.0)
    return 1.0 / targets.shape[1]


def _tuned_inputs(embedder, model_inputs, counts, n_documents: int) -> np.ndarray:
    """The model's inputs with the documents' embeddings through the tuned layers."""
    features = embedder.embeddings(np.arange(n_documents))
    return model_inputs.transform(features, counts)[0]
