"""The training loop: mini-batches mixing labelled and unlabelled rows, Adam, optional
classifier-only warm-up, KL annealing, and early stopping on held-out labelled rows."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from ._losses import categorical_kl, forward_terms
from ._networks import SDGM

# Dense data up to this size is moved to the GPU once instead of batch by batch.
_MAX_BYTES_ON_DEVICE = 2**31


class RowSource:
    """Rows of a dense array or a CSR matrix, handed out as float32 tensors on ``device``.

    Only the requested rows are densified, so sparse inputs of any size stay sparse.
    """

    def __init__(self, matrix, device: torch.device):
        self.device = device
        self.sparse = sp.issparse(matrix)
        if self.sparse:
            self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        else:
            tensor = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
            if device.type != "cpu" and tensor.numel() * 4 <= _MAX_BYTES_ON_DEVICE:
                tensor = tensor.to(device)
            self.matrix = tensor
        self.shape = matrix.shape

    def __getitem__(self, index: np.ndarray) -> torch.Tensor:
        if self.sparse:
            rows = torch.from_numpy(self.matrix[index].toarray())
        else:
            rows = self.matrix[torch.as_tensor(index, device=self.matrix.device)]
        return rows.to(self.device, non_blocking=True)


@dataclass
class TrainingConfig:
    """Settings of one call of :func:`train`; see the estimator for their meaning."""

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


def train(
    model: SDGM,
    inputs: RowSource,
    targets: RowSource,
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
) -> int:
    """Train ``model`` in place; append one dict per epoch to ``history``.

    With validation rows, the parameters of the epoch with the best validation accuracy
    (ties broken by validation cross-entropy) are restored at the end, and training stops
    after ``config.n_iter_no_change`` epochs without improvement.

    Returns
    -------
    n_epochs : int
        The number of epochs run.
    """
    device = log_prior.device
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
    )
    y_all = torch.as_tensor(y, device=device)
    best = (-math.inf, -math.inf)
    best_state, since_best = None, 0
    n_l, n_u, bs = len(labelled), len(unlabelled), config.batch_size
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        start = time.perf_counter()
        warm_up = epoch <= config.warm_up_epochs
        if config.kl_annealing_epochs > 0:
            kl_weight = min(1.0, (epoch - config.warm_up_epochs) / config.kl_annealing_epochs)
        else:
            kl_weight = 1.0
        kl_weight = max(kl_weight, 0.0)
        n_steps = math.ceil(n_l / bs) if warm_up or n_u == 0 else math.ceil(n_u / bs)
        perm_l = generator.permutation(n_l)
        perm_u = generator.permutation(n_u)
        sums: dict[str, float] = {}
        correct = 0
        seen = 0
        model.train()
        for step in range(n_steps):
            # The labelled rows cycle through the epoch: every step sees labels.
            lab_pos = perm_l if n_l <= bs else perm_l[np.arange(step * bs, (step + 1) * bs) % n_l]
            lab = labelled[lab_pos]
            y_l = y_all[lab_pos]
            if warm_up:
                mu1, _ = model.encode(inputs[lab])
                logits = model.classify(mu1)
                ce = F.cross_entropy(logits, y_l)
                loss = config.alpha * ce
                parts = {"cross_entropy": ce}
            else:
                unl = unlabelled[perm_u[step * bs : (step + 1) * bs]]  # empty when n_u == 0
                rows = np.concatenate([lab, unl])
                t_l, t_u = forward_terms(model, inputs[rows], targets[rows], y_l, config.free_bits)
                logits = t_l["logits"]
                ce = F.cross_entropy(logits, y_l)
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
                if len(unl):
                    kl_y = categorical_kl(t_u["probs"], log_prior)
                    unlabelled_loss = (
                        t_u["nll"] + kl_weight * (t_u["kl_z1"] + t_u["kl_z2"]) + kl_y
                    ).mean()
                    loss = loss + config.elbo_weight * unlabelled_loss
                    parts["unlabelled_loss"] = unlabelled_loss
                    parts["kl_y"] = kl_y.mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"The training loss became {loss.item()} at epoch {epoch}. Lower "
                    "learning_rate, or scale the features (e.g. StandardScaler)."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            parts["loss"] = loss
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            correct += int((logits.argmax(1) == y_l).sum())
            seen += len(y_l)
        record = {key: value / n_steps for key, value in sums.items()}
        record.update(
            epoch=epoch,
            phase="warm-up" if warm_up else "joint",
            kl_weight=kl_weight if not warm_up else 0.0,
            train_accuracy=correct / max(seen, 1),
        )
        if len(validation):
            logits_v = predict_logits(model, inputs, validation, bs * 4)
            y_v = torch.as_tensor(y_validation, device=logits_v.device)
            val_acc = float((logits_v.argmax(1) == y_v).float().mean())
            val_ce = float(F.cross_entropy(logits_v, y_v))
            record.update(valid_accuracy=val_acc, valid_loss=val_ce)
        record["active_units"] = active_units(
            model, inputs, np.concatenate([labelled, unlabelled])
        )
        record["duration"] = time.perf_counter() - start
        history.append(record)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(
                {
                    k: round(record[k], 3)
                    for k in ("loss", "train_accuracy", "valid_accuracy")
                    if k in record
                }
            )
        if len(validation) and not warm_up:
            score = (record["valid_accuracy"], -record["valid_loss"])
            if score > best:
                best, since_best = score, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
                if config.n_iter_no_change is not None and since_best >= config.n_iter_no_change:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return epoch


@contextlib.contextmanager
def _evaluating(model: SDGM):
    """Evaluation mode (no dropout) inside the block; the previous mode after it."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.inference_mode()
def encode_mean(model: SDGM, inputs: RowSource, index: np.ndarray, batch_size: int):
    """Posterior means E[z1 | x] for the rows ``index``."""
    with _evaluating(model):
        chunks = [
            model.encode(inputs[index[i : i + batch_size]])[0]
            for i in range(0, len(index), batch_size)
        ]
    if not chunks:
        return torch.empty((0, model.q_z1.mu.out_features))
    return torch.cat(chunks)


@torch.inference_mode()
def predict_logits(model: SDGM, inputs: RowSource, index: np.ndarray, batch_size: int):
    """Logits of q(y | E[z1 | x]) for the rows ``index`` (no sampling)."""
    with _evaluating(model):
        return model.classify(encode_mean(model, inputs, index, batch_size))


def active_units(model: SDGM, inputs: RowSource, index: np.ndarray, threshold=0.01, n_max=512):
    """Dimensions of z1 whose posterior mean varies across documents (Burda et al. 2016)."""
    index = index[:n_max]
    if len(index) < 2:
        return 0
    mu = encode_mean(model, inputs, index, 1024)
    return int((mu.float().var(dim=0) > threshold).sum())
