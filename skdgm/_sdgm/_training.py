"""The training loop: mini-batches mixing labelled and unlabelled rows, Adam, optional
classifier-only warm-up, KL annealing, early stopping on held-out labelled rows, and
fine-tuning epochs in which the encoder's top layers train with the SDGM; the same loop
runs each stage of the two-stage M1+M2."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._base import show_progress
from ._ensemble import SDGMEnsemble, members
from ._inputs import RowSource, TokenRows, TunedRows
from ._losses import categorical_kl, forward_terms, m1_terms, m2_terms
from ._networks import SDGM

# Gradient-norm caps: the SDGM's networks, and the encoder's layers (as in BERT fine-tuning).
_CLIP_SDGM, _CLIP_ENCODER = 10.0, 1.0


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite: names the terms that did and what to try."""

    def __init__(self, epoch: int, terms: dict, advice: str | None = None):
        bad = [f"{name} = {value}" for name, value in terms.items() if not math.isfinite(value)]
        self.epoch, self.terms = epoch, terms
        if advice is None:
            advice = (
                "Lower learning_rate (or fine_tune_learning_rate), or scale the features "
                "(e.g. StandardScaler)."
            )
        super().__init__(
            f"Training diverged at epoch {epoch}, terms not finite: "
            f"{', '.join(bad) or 'the loss'}. {advice} The estimator keeps the state it "
            "had before this fit."
        )


@dataclass
class TrainingConfig:
    """Settings of one call of :func:`train`; see the estimator for their meaning.

    ``objective`` is what the call trains: ``"joint"``, the stacked model end to end;
    ``"m1"`` and ``"m2"``, the two stages of Kingma's two-stage M1+M2 (a VAE from x to z1
    on every row, then M2 on the mean of the frozen q(z1 | x)).
    """

    alpha: float
    max_epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    warm_up_epochs: int
    kl_annealing_epochs: int
    free_bits: float
    n_iter_no_change: int | None
    elbo_weight: float = 1.0
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = 5e-5
    objective: str = "joint"
    average_epochs: int = 0
    marginal_weight: float = 0.0
    epoch_size: int | None = None


#: The networks each objective trains (every other one stays as it is).
_TRAINED = {
    "joint": None,  # all of them
    "m1": ("q_z1", "decoder"),
    "m2": ("q_y", "q_y_inputs", "q_z2", "p_z1"),
}


def train(
    model: SDGM,
    inputs: RowSource,
    targets: RowSource | TokenRows | None,
    labelled: np.ndarray,
    y: np.ndarray,
    unlabelled: np.ndarray,
    validation: np.ndarray,
    y_validation: np.ndarray,
    log_prior: torch.Tensor,
    config: TrainingConfig,
    generator: np.random.Generator,
    history: list,
    progress=None,
    tuned_inputs: TunedRows | None = None,
) -> tuple[int, int, bool]:
    """Train ``model`` in place; append one dict per epoch to ``history``.

    With validation rows, the parameters of the epoch with the best validation accuracy
    (ties broken by validation cross-entropy) are restored at the end, and training stops
    after ``config.n_iter_no_change`` epochs without improvement. Epochs are numbered on
    from those already in ``history`` (a second stage goes on from the first).

    ``config.objective="m1"`` trains q(z1 | x) and the decoder alone on every row given
    (labelled, unlabelled and validation rows, labels unused): no classifier, no
    validation, no early stopping. ``"m2"`` trains the classifier, q(z2 | z1, y) and
    p(z1 | y, z2) on the mean of q(z1 | x), which stays frozen, in evaluation mode, in
    a unit fixed at the start (see :func:`_set_z1_unit`); the decoder is not used
    (``targets`` may be None).

    With ``tuned_inputs``, the last ``config.fine_tune_epochs`` epochs read them instead of
    ``inputs`` and train their embedder too (AdamW, ``config.fine_tune_learning_rate``
    decaying linearly to 0 over those epochs); ``inputs`` must hold what ``tuned_inputs``
    gave before training.

    With ``config.average_epochs`` = k > 0 and no validation rows, the model ends with the
    mean of its parameters (the tuned encoder layers' too) at the end of each of the last
    k epochs, at most the second half of the epochs after the warm-up and, with
    ``tuned_inputs``, only epochs that tune them (Polyak averaging): one fit's training
    noise averaged out at no extra cost.

    A semi-supervised epoch passes over the unlabelled rows, or over the labelled rows
    when they are the more numerous; the other set cycles beside it. With
    ``config.epoch_size`` = k, an epoch passes over k of them at most: the next k of a
    shuffled order that carries on from one epoch to the next (see :class:`_RowStream`).

    A ``KeyboardInterrupt`` (Ctrl-C) ends training where it is: the model keeps the best
    epoch's parameters (with validation rows) or its current ones, and ``interrupted``
    says so.

    Returns
    -------
    n_epochs : int
        The number of epochs completed in this call.
    best_epoch : int
        The epoch (numbered as in ``history``) whose parameters the model holds: the best
        one on the validation rows, or the last one without validation rows.
    interrupted : bool
        Whether training was stopped by a ``KeyboardInterrupt``.
    """
    device = log_prior.device
    objective = config.objective
    trained = _TRAINED[objective]
    parameters = [
        parameter
        for name, parameter in model.named_parameters()
        if trained is None or name.split(".")[0] in trained
    ]
    frozen = [] if trained is None else [m for n, m in model.named_children() if n not in trained]
    optimizer = torch.optim.Adam(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
    )
    y_all = torch.as_tensor(y, device=device)
    best = (-math.inf, -math.inf)
    best_state, since_best, best_epoch = None, 0, 0
    n_l, n_u, bs = len(labelled), len(unlabelled), config.batch_size
    every = np.concatenate([labelled, unlabelled, validation])  # M1's rows
    classifies = objective != "m1"
    first_tuned = math.inf
    if tuned_inputs is not None and config.fine_tune_epochs > 0:
        first_tuned = max(config.max_epochs - config.fine_tune_epochs, config.warm_up_epochs) + 1
    encoder_optimizer = None
    first_record = len(history)
    stream = _RowStream(len(every) if objective == "m1" else n_u, config.epoch_size, generator)
    cap = math.inf if config.epoch_size is None else config.epoch_size
    average_from = math.inf
    # At most the second half of the epochs after the warm-up: early epochs are not yet
    # near a solution, and a short fit should not average them in.
    n_averaged = min(config.average_epochs, (config.max_epochs - config.warm_up_epochs) // 2)
    if n_averaged > 0 and not len(validation):
        # Nor before the encoder's layers start to train: the networks fitted to the
        # frozen encoder's inputs, and the layers' untrained weights, would dilute the
        # tuned ones.
        average_from = config.max_epochs - n_averaged + 1
        if first_tuned < math.inf:
            average_from = max(average_from, first_tuned)
    averaged = _Average()
    interrupted = False
    _set_z1_unit(model, inputs if objective == "m2" else None, every)
    restore = _freeze(*frozen)
    try:
        for epoch in range(1, config.max_epochs + 1):
            start = time.perf_counter()
            warm_up = epoch <= config.warm_up_epochs
            tuning = epoch >= first_tuned
            source = tuned_inputs if tuning else inputs
            if config.kl_annealing_epochs > 0:
                kl_weight = min(1.0, (epoch - config.warm_up_epochs) / config.kl_annealing_epochs)
            else:
                kl_weight = 1.0
            kl_weight = max(kl_weight, 0.0)
            if objective == "m1":
                n_steps = math.ceil(min(len(every), cap) / bs)
            elif warm_up or n_u == 0:
                n_steps = math.ceil(min(n_l, cap) / bs)
            else:
                # A pass over the larger of the two sets: the other cycles (labelled rows
                # are usually the few; after pseudo-labelling they may be the many).
                n_steps = math.ceil(min(max(n_u, n_l), cap) / bs)
            if tuning and encoder_optimizer is None:
                encoder_optimizer, schedule = _encoder_optimizer(
                    tuned_inputs, config, n_steps * (config.max_epochs - epoch + 1)
                )
            perm_l = generator.permutation(n_l)
            perm_u = stream.next_epoch()
            sums: dict[str, float] = {}
            correct = 0
            seen = 0
            model.train()
            for module in frozen:
                module.eval()  # dropout off: the mean of a frozen q(z1 | x) is fixed
            if tuning:
                tuned_inputs.train()
            for step in range(n_steps):
                if objective == "m1":
                    rows = every[perm_u[step * bs : (step + 1) * bs]]
                    loss, parts = _m1_loss(model, source[rows], targets[rows], config, kl_weight)
                else:
                    # The labelled rows cycle through the epoch: every step sees labels.
                    lab_pos = (
                        perm_l
                        if n_l <= bs
                        else perm_l[np.arange(step * bs, (step + 1) * bs) % n_l]
                    )
                    lab = labelled[lab_pos]
                    y_l = y_all[lab_pos]
                    if warm_up:
                        batch = source[lab]
                        mu1, _ = model.encode(batch)
                        logits = model.classify(mu1, batch)
                        ce = F.cross_entropy(logits, y_l)
                        loss = config.alpha * ce
                        parts = {"cross_entropy": ce}
                    else:
                        if n_u >= n_l or n_u == 0:
                            unl = unlabelled[perm_u[step * bs : (step + 1) * bs]]
                        else:  # fewer unlabelled than labelled rows: they cycle
                            cycle = np.arange(step * bs, (step + 1) * bs) % len(perm_u)
                            unl = unlabelled[perm_u[cycle]]
                        rows = np.concatenate([lab, unl])
                        if objective == "m2":
                            t_l, t_u = m2_terms(model, source[rows], y_l)
                        else:
                            t_l, t_u = forward_terms(
                                model, source[rows], targets[rows], y_l, config.free_bits
                            )
                        loss, parts = _semi_supervised_loss(
                            t_l, t_u, y_l, log_prior, config, kl_weight
                        )
                        logits = t_l["logits"]
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        first_record + epoch, {k: float(v.detach()) for k, v in parts.items()}
                    )
                optimizer.zero_grad(set_to_none=True)
                if tuning:
                    encoder_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(parameters, _CLIP_SDGM)
                optimizer.step()
                if tuning:
                    torch.nn.utils.clip_grad_norm_(tuned_inputs.parameters(), _CLIP_ENCODER)
                    encoder_optimizer.step()
                    schedule.step()
                parts["loss"] = loss
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                if classifies:
                    correct += int((logits.argmax(1) == y_l).sum())
                    seen += len(y_l)
            record = {key: value / n_steps for key, value in sums.items()}
            record.update(
                epoch=first_record + epoch,
                phase=_phase(objective, warm_up, tuning),
                kl_weight=kl_weight if not warm_up else 0.0,
            )
            if classifies:
                record["train_accuracy"] = correct / max(seen, 1)
            if len(validation) and classifies:
                logits_v = predict_logits(model, source, validation, bs * 4)
                y_v = torch.as_tensor(y_validation, device=logits_v.device)
                val_acc = float((logits_v.argmax(1) == y_v).float().mean())
                val_ce = float(F.cross_entropy(logits_v, y_v))
                record.update(valid_accuracy=val_acc, valid_loss=val_ce)
            record["active_units"] = active_units(model, source, every)
            record["duration"] = time.perf_counter() - start
            if epoch >= average_from:
                averaged.add(model, tuned_inputs)
            history.append(record)
            show_progress(progress, record)
            if len(validation) and classifies and not warm_up:
                score = (record["valid_accuracy"], -record["valid_loss"])
                if score > best:
                    best, since_best, best_epoch = score, 0, first_record + epoch
                    best_state = [copy.deepcopy(model.state_dict())]
                    if tuned_inputs is not None:
                        best_state.append(copy.deepcopy(tuned_inputs.state_dict()))
                else:
                    since_best += 1
                    if (
                        config.n_iter_no_change is not None
                        and since_best >= config.n_iter_no_change
                    ):
                        break
    except KeyboardInterrupt:
        # Ctrl-C: keep what has been trained (the best epoch with validation rows).
        interrupted = True
    finally:
        restore()

    n_epochs = len(history) - first_record
    if best_state is None:
        averaged.load_into(model, tuned_inputs)
        return n_epochs, len(history), interrupted
    model.load_state_dict(best_state[0])
    if tuned_inputs is not None:
        tuned_inputs.load_state_dict(best_state[1])
    return n_epochs, best_epoch, interrupted


class _RowStream:
    """The rows each epoch passes over: all of them, or the next ``size`` of a shuffled order.

    With ``size`` None or ``n`` rows at most, every epoch is a new permutation of all the
    rows. With more, an epoch takes the next ``size`` positions of a permutation and the
    next epoch goes on from there, a new permutation starting when one is used up: every
    row is seen once before any row is seen again, and an epoch costs the same whatever
    ``n``.
    """

    def __init__(self, n: int, size: int | None, generator: np.random.Generator):
        self.n, self.size, self.generator = n, size, generator
        self.order = np.empty(0, dtype=np.int64)
        self.cursor = 0

    def next_epoch(self) -> np.ndarray:
        if self.size is None or self.n <= self.size:
            return self.generator.permutation(self.n)
        parts, needed = [], self.size
        while needed:
            if self.cursor == len(self.order):
                self.order, self.cursor = self.generator.permutation(self.n), 0
            part = self.order[self.cursor : self.cursor + needed]
            self.cursor += len(part)
            needed -= len(part)
            parts.append(part)
        return np.concatenate(parts)


class _Average:
    """A running mean of a model's floating-point parameters and buffers over epochs."""

    def __init__(self):
        self.n = 0
        self.means: list[dict] = []

    @staticmethod
    def _modules(model, tuned_inputs):
        return [model] if tuned_inputs is None else [model, tuned_inputs]

    @torch.no_grad()
    def add(self, model, tuned_inputs) -> None:
        states = [m.state_dict() for m in self._modules(model, tuned_inputs)]
        if not self.means:
            floats = [{k: v for k, v in s.items() if v.is_floating_point()} for s in states]
            self.means = [
                {k: torch.zeros_like(v, dtype=torch.float32) for k, v in f.items()} for f in floats
            ]
        self.n += 1
        for mean, state in zip(self.means, states):
            for key, value in mean.items():
                value.add_(state[key].float() - value, alpha=1.0 / self.n)

    @torch.no_grad()
    def load_into(self, model, tuned_inputs) -> None:
        """Give the model (and the tuned layers) the mean; nothing if no epoch was added."""
        for module, mean in zip(self._modules(model, tuned_inputs), self.means):
            state = module.state_dict()
            for key, value in mean.items():
                state[key].copy_(value.to(state[key].dtype))


def _m1_loss(model: SDGM, inputs, targets, config: TrainingConfig, kl_weight: float):
    """M1's negative ELBO over a batch (divided by the size of a reconstruction), and its parts."""
    terms = m1_terms(model, inputs, targets, config.free_bits)
    elbo = (terms["nll"] + kl_weight * terms["kl_z1"]).mean()
    parts = {"m1_loss": elbo, "nll": terms["nll"].mean(), "kl_z1": terms["kl_z1"].mean()}
    return config.elbo_weight * elbo, parts


def _semi_supervised_loss(t_l, t_u, y_l, log_prior, config: TrainingConfig, kl_weight: float):
    """Labelled ELBO + alpha x cross-entropy + unlabelled ELBO over a batch, and its parts.

    The ELBO terms are divided by the size of a reconstruction (``config.elbo_weight``).
    """
    ce = F.cross_entropy(t_l["logits"], y_l)
    labelled_loss = (
        t_l["nll"] + kl_weight * (t_l["kl_z1"] + t_l["kl_z2"]) - log_prior[y_l]
    ).mean()
    loss = config.elbo_weight * labelled_loss + config.alpha * ce
    parts = {
        "cross_entropy": ce,
        "labelled_loss": labelled_loss,
        "nll": t_l["nll"].mean(),
        "kl_z1": t_l["kl_z1"].mean(),
        "kl_z2": t_l["kl_z2"].mean(),
    }
    if len(t_u["logits"]):
        kl_y = categorical_kl(t_u["probs"], log_prior)
        unlabelled_loss = (t_u["nll"] + kl_weight * (t_u["kl_z1"] + t_u["kl_z2"]) + kl_y).mean()
        loss = loss + config.elbo_weight * unlabelled_loss
        parts["unlabelled_loss"] = unlabelled_loss
        parts["kl_y"] = kl_y.mean()
        if config.marginal_weight:
            # KL(mean of q(y | x) over the batch's unlabelled rows || p(y)): the predicted
            # class proportions stay near the prior, so that no class swallows another.
            marginal = t_u["probs"].mean(0)
            kl_marginal = (marginal * (torch.log(marginal + 1e-8) - log_prior)).sum()
            loss = loss + config.marginal_weight * kl_marginal
            parts["kl_marginal"] = kl_marginal
    return loss, parts


def _phase(objective: str, warm_up: bool, tuning: bool) -> str:
    """The name of an epoch in ``history_``."""
    if warm_up:
        return "warm-up"
    if tuning:
        return "fine-tune" if objective == "joint" else f"{objective}-fine-tune"
    return objective


def _set_z1_unit(model: SDGM, inputs, rows: np.ndarray) -> None:
    """Set the unit in which ``model.encode`` measures z1: M2's, or 1 (``inputs=None``).

    M2 reads the posterior means of z1 divided by one number, their root-mean-square
    spread over ``rows``: a change of unit that keeps z1's geometry (a dimension M1 left
    nearly constant stays small; M1's prior N(0, I) keeps the means centred), while M2's
    step sizes no longer depend on how much M1 shrank z1. Joint training and M1 use 1.
    """
    model.z1_unit.fill_(1.0)
    if inputs is None or len(rows) < 2:
        return
    mu = encode_mean(model, inputs, rows, 1024).float()
    model.z1_unit.fill_(float(mu.var(dim=0).mean().sqrt().clamp_min(1e-6)))


def _freeze(*modules: nn.Module):
    """Stop the parameters of ``modules`` from taking gradients; return what undoes it."""
    parameters = [p for module in modules for p in module.parameters()]
    flags = [p.requires_grad for p in parameters]
    for parameter in parameters:
        parameter.requires_grad_(False)

    def restore():
        for parameter, flag in zip(parameters, flags):
            parameter.requires_grad_(flag)

    return restore


def _encoder_optimizer(tuned_inputs: TunedRows, config: TrainingConfig, n_steps: int):
    """AdamW for the encoder's layers, its rate decaying linearly to 0 over ``n_steps``."""
    optimizer = torch.optim.AdamW(
        [p for p in tuned_inputs.parameters() if p.requires_grad],
        lr=config.fine_tune_learning_rate,
        weight_decay=0.01,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / max(n_steps, 1))
    )
    return optimizer, schedule


@contextlib.contextmanager
def evaluating(*modules):
    """Evaluation mode (no dropout) inside the block; the previous modes after it."""
    modules = [module for module in modules if isinstance(module, nn.Module)]
    modes = [module.training for module in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


def _posterior_means(
    model: SDGM | SDGMEnsemble, inputs, index: np.ndarray, batch_size: int, logits: bool
):
    """Posterior means of z1 (or the classifier's logits on them), computed in float64.

    For an ensemble: every member's z1 side by side, or the log of its members' mean
    probabilities.
    """
    inference = _inference_copy(model)
    with evaluating(inputs), torch.inference_mode():
        chunks = []
        for start in range(0, len(index), batch_size):
            batch = inputs[index[start : start + batch_size]].double()
            mu1 = inference.encode(batch)[0]
            chunks.append(inference.classify(mu1, batch) if logits else mu1)
    if not chunks:
        width = model.n_classes if logits else sum(m.q_z1.mu.out_features for m in members(model))
        return torch.empty((0, width), dtype=torch.float64)
    return torch.cat(chunks)


def _inference_copy(model: SDGM | SDGMEnsemble) -> SDGM | SDGMEnsemble:
    """A float64 copy, in evaluation mode, of what prediction reads: q(z1 | x), the classifier.

    float32 matrix products round differently for one row and for many, so that a row's
    probabilities would change (by about 1e-7) with the rows that share its batch; in
    float64 they do not, to float32 precision. The decoder and M2's generative networks
    are left out of the copy (every member's, for an ensemble).
    """
    unused = {
        id(getattr(member, name)): None
        for member in members(model)
        for name in ("decoder", "q_z2", "p_z1")
    }
    with torch.no_grad():
        return copy.deepcopy(model, unused).double().eval()


def encode_mean(
    model: SDGM | SDGMEnsemble, inputs: RowSource | TunedRows, index: np.ndarray, batch_size: int
):
    """Posterior means E[z1 | x] for the rows ``index`` (float32)."""
    return _posterior_means(model, inputs, index, batch_size, logits=False).float()


def predict_logits(
    model: SDGM | SDGMEnsemble, inputs: RowSource | TunedRows, index: np.ndarray, batch_size: int
):
    """Logits of q(y | E[z1 | x]) for the rows ``index`` (no sampling; float64)."""
    return _posterior_means(model, inputs, index, batch_size, logits=True)


def active_units(
    model: SDGM, inputs: RowSource | TunedRows, index: np.ndarray, threshold=0.01, n_max=512
):
    """Dimensions of z1 whose posterior mean varies across documents (Burda et al. 2016).

    A diagnostic computed every epoch: in float32 on the model itself (evaluation mode
    inside, its mode restored), not on :func:`encode_mean`'s float64 copy (20 ms against
    47 an epoch on 512 English pages, one thread: 3 s of a default fit's 40). It draws no
    random numbers, so training is the same.
    """
    index = index[:n_max]
    if len(index) < 2:
        return 0
    with evaluating(model, inputs), torch.inference_mode():
        mu = model.encode(inputs[index])[0].float() * float(model.z1_unit)  # z1's units
    return int((mu.var(dim=0) > threshold).sum())
