"""TransformerClassifier's training: the head, AdamW with warm-up and linear decay, and the
epochs over the stored token states of the labelled documents.

The estimator (``_transformer_classifier.py``) checks the input, prepares the encoder's
stored states and trainable top layers, and imports this module when it fits or predicts,
so that ``import skdgm`` does not import torch.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._base import progress_bar, show_progress
from ._sdgm._training import TrainingDiverged, evaluating

__all__ = ["head_logits", "new_head", "train_epochs"]

#: Share of the optimisation steps over which the learning rates rise linearly from 0.
_WARM_UP_FRACTION = 0.1
#: Cap on the gradient norm of all trained weights (as in BERT fine-tuning).
_MAX_GRAD_NORM = 1.0
#: Optimisation steps that ``max_epochs="auto"`` gives at least: with 16 labels in
#: batches of 16, 20 epochs are 20 steps, and the head was left nearly untrained (.52-.58
#: accuracy on the bundled English pages, against .71-.73 with 100 steps).
_MIN_STEPS = 100
#: Rows per forward pass of the head at prediction time.
_PREDICT_BATCH = 1024


def new_head(hidden_size: int, n_classes: int, dropout: float):
    """LayerNorm -> Dropout -> Linear: the LayerNorm makes the head blind to the scale of
    the embeddings (unit-norm ones included)."""
    return nn.Sequential(
        nn.LayerNorm(hidden_size), nn.Dropout(dropout), nn.Linear(hidden_size, n_classes)
    )


def head_logits(head, features: np.ndarray):
    """The head's logits on ``features`` (evaluation mode), as a float64 CPU tensor."""
    device = next(head.parameters()).device
    chunks = []
    with evaluating(head), torch.inference_mode():
        for start in range(0, len(features), _PREDICT_BATCH):
            batch = torch.as_tensor(features[start : start + _PREDICT_BATCH], device=device)
            chunks.append(head(batch).double().cpu())
    if not chunks:
        return torch.zeros((0, head[-1].out_features), dtype=torch.float64)
    return torch.cat(chunks)


def _evaluate(embedder, head, rows, y_index):
    """Accuracy and mean cross-entropy of the stored documents ``rows`` (evaluation mode)."""
    logits = head_logits(head, embedder.embeddings(rows))
    targets = torch.as_tensor(y_index, dtype=torch.long)
    accuracy = float((logits.argmax(1) == targets).double().mean())
    return accuracy, float(F.cross_entropy(logits, targets))


def train_epochs(clf, embedder, head, y_index, train_pos, valid_pos, generator, history):
    """Run the epochs; restore the best weights.

    ``clf`` is the :class:`~skdgm.TransformerClassifier` whose parameters set the
    training; ``embedder`` (a :class:`~skdgm.encoders._tuning.DocumentEmbedder`) and
    ``head`` train in place; ``history`` gets one record per epoch.

    Returns (epochs completed, best epoch or 0, whether Ctrl-C stopped training).
    """
    device = next(head.parameters()).device
    y_all = torch.as_tensor(y_index, device=device)
    n_train, batch_size = len(train_pos), clf.batch_size
    steps_per_epoch = math.ceil(n_train / batch_size)
    max_epochs = clf.max_epochs
    if max_epochs == "auto":  # enough epochs for _MIN_STEPS steps, and at least 20
        max_epochs = max(20, math.ceil(_MIN_STEPS / steps_per_epoch))
    n_steps = steps_per_epoch * max_epochs
    optimizer, schedule, parameters = _optimizer(clf, embedder.top, head, n_steps)
    progress = progress_bar(max_epochs, clf.verbose, type(clf).__name__)
    best_score, best_state, best_epoch, since_best = None, None, 0, 0
    interrupted = False
    try:
        for epoch in range(1, max_epochs + 1):
            start = time.perf_counter()
            embedder.train()
            head.train()
            order = train_pos[generator.permutation(n_train)]
            loss_sum, correct = 0.0, 0
            for begin in range(0, n_train, batch_size):
                rows = order[begin : begin + batch_size]
                targets = y_all[rows]
                logits = head(embedder(rows))
                loss = F.cross_entropy(logits, targets)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        epoch,
                        {"cross-entropy": loss.item()},
                        "Lower learning_rate or head_learning_rate.",
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(parameters, _MAX_GRAD_NORM)
                optimizer.step()
                schedule.step()
                loss_sum += float(loss.detach()) * len(rows)
                correct += int((logits.argmax(1) == targets).sum())
            record = {
                "epoch": epoch,
                "loss": loss_sum / n_train,
                "train_accuracy": correct / n_train,
            }
            if len(valid_pos):
                accuracy, valid_loss = _evaluate(embedder, head, valid_pos, y_index[valid_pos])
                record.update(valid_accuracy=accuracy, valid_loss=valid_loss)
            record["duration"] = time.perf_counter() - start
            history.append(record)
            show_progress(progress, record)
            if not len(valid_pos):
                continue
            score = (record["valid_accuracy"], -record["valid_loss"])
            if best_score is None or score > best_score:
                best_score, best_epoch, since_best = score, epoch, 0
                best_state = [
                    copy.deepcopy(embedder.top.state_dict()),
                    copy.deepcopy(head.state_dict()),
                ]
            else:
                since_best += 1
                if since_best >= clf.n_iter_no_change:
                    break
    except KeyboardInterrupt:
        # Ctrl-C: keep what has been trained (the best epoch with validation rows).
        interrupted = True
    finally:
        if progress is not None:
            progress.close()
    if best_state is not None:
        embedder.top.load_state_dict(best_state[0])
        head.load_state_dict(best_state[1])
    return len(history), best_epoch, interrupted


def _optimizer(clf, top, head, n_steps: int):
    """AdamW over the top layers and the head; linear warm-up, then linear decay to 0."""
    groups, parameters = [], []
    for module, learning_rate in ((top, clf.learning_rate), (head, clf.head_learning_rate)):
        trained = [p for p in module.parameters() if p.requires_grad]
        parameters += trained
        for decayed in (True, False):
            chosen = [p for p in trained if (p.ndim >= 2) == decayed]
            if chosen:
                groups.append(
                    {
                        "params": chosen,
                        "lr": learning_rate,
                        "weight_decay": clf.weight_decay if decayed else 0.0,
                    }
                )
    optimizer = torch.optim.AdamW(groups)
    warm_up = int(_WARM_UP_FRACTION * n_steps)

    def factor(step: int) -> float:  # the multiplier of the (step + 1)-th update
        rising, falling = (step + 1) / (warm_up + 1), (n_steps - step) / (n_steps - warm_up)
        return max(0.0, min(rising, falling))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor), parameters
