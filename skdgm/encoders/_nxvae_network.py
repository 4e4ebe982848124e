"""The torch side of :class:`~skdgm.encoders.NXVAE`: the network, its losses, its batches
and its training loop.

One subword vocabulary and one embedding table serve every language. A bidirectional LSTM
reads a document's pieces; its last states (forward and backward, top layer) give the
Gaussian posterior q(z | x). The bag-of-pieces decoder scores every piece by
z . E^T + b with E the same embedding table, so that the table is shaped by both reading
and explaining the documents of every language. Optional per-language GRU decoders
reconstruct the sequence of pieces too, and an optional discriminator, behind a gradient
reversal, pushes the encoder's states to hide the language.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from .._sdgm._training import TrainingDiverged

__all__ = [
    "NXVAENetwork",
    "document_batches",
    "encode_means",
    "rebuild_network",
    "start_bias_at_frequencies",
    "train_network",
]

PAD_ID, UNK_ID, BOS_ID = 0, 1, 2
#: Gradient-norm cap (LSTMs' gradients can spike on long documents).
_CLIP = 5.0


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient is multiplied by ``-weight`` on the way back."""

    @staticmethod
    def forward(ctx, states, weight):
        ctx.weight = weight
        return states.view_as(states)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None


class LanguageDecoder(nn.Module):
    """A GRU that reconstructs one language's sequence of pieces from z (teacher forcing).

    The first hidden state comes from z; each step reads [previous piece's embedding ; z];
    the output is scored against the shared embedding table, as the bag decoder is.
    """

    def __init__(self, embedding_dim: int, hidden_dim: int, latent_dim: int):
        super().__init__()
        self.initial = nn.Linear(latent_dim, hidden_dim)
        self.gru = nn.GRU(embedding_dim + latent_dim, hidden_dim, batch_first=True)
        self.output = nn.Linear(hidden_dim, embedding_dim)

    def forward(self, z, ids, lengths, embedding: nn.Embedding, bias) -> torch.Tensor:
        """Negative log-likelihood of each document's pieces, shape (batch,)."""
        start = torch.full_like(ids[:, :1], BOS_ID)
        previous = torch.cat([start, ids[:, :-1]], dim=1)
        steps = torch.cat(
            [embedding(previous), z.unsqueeze(1).expand(-1, ids.shape[1], -1)], dim=2
        )
        packed = pack_padded_sequence(steps, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed, torch.tanh(self.initial(z)).unsqueeze(0))
        # Packed order for the targets and the document of each step.
        targets = pack_padded_sequence(ids, lengths, batch_first=True, enforce_sorted=False).data
        rows = torch.arange(len(ids), device=ids.device).unsqueeze(1).expand_as(ids)
        rows = pack_padded_sequence(rows, lengths, batch_first=True, enforce_sorted=False).data
        logits = self.output(out.data) @ embedding.weight.T + bias
        nll = F.cross_entropy(logits, targets, reduction="none")
        return torch.zeros(len(ids), device=ids.device, dtype=nll.dtype).index_add_(0, rows, nll)


class NXVAENetwork(nn.Module):
    """BiLSTM encoder -> Gaussian z -> bag-of-pieces decoder tied to the embedding table."""

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int,
        hidden_dim: int,
        n_layers: int,
        latent_dim: int,
        n_languages: int,
        dropout: float,
        language_decoders: bool,
        adversarial: bool,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=PAD_ID)
        nn.init.normal_(self.embedding.weight, std=0.1)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        self.encoder = nn.LSTM(
            embedding_dim,
            hidden_dim,
            num_layers=n_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.posterior = nn.Linear(2 * hidden_dim, 2 * latent_dim)
        # z . E^T needs z in the embedding space: a projection when the sizes differ.
        self.to_embedding = (
            nn.Identity()
            if latent_dim == embedding_dim
            else nn.Linear(latent_dim, embedding_dim, bias=False)
        )
        self.bias = nn.Parameter(torch.zeros(vocabulary_size))
        self.discriminator = (
            nn.Sequential(
                nn.Linear(2 * hidden_dim, hidden_dim),
                nn.LeakyReLU(),
                nn.Linear(hidden_dim, n_languages),
            )
            if adversarial
            else None
        )
        self.decoders = (
            nn.ModuleList(
                LanguageDecoder(embedding_dim, hidden_dim, latent_dim) for _ in range(n_languages)
            )
            if language_decoders
            else None
        )

    def encode(self, ids, lengths):
        """The encoder's states (batch, 2 hidden_dim) and q(z | x)'s mean and log-variance."""
        embedded = self.dropout(self.embedding(ids))
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        _, (last, _) = self.encoder(packed)
        states = torch.cat([last[-2], last[-1]], dim=1)  # top layer, both directions
        mean, log_var = self.posterior(self.dropout(states)).chunk(2, dim=1)
        return states, mean, log_var.clamp(-10.0, 10.0)

    def bag_log_probs(self, z):
        """log p(piece | z) for every piece of the vocabulary: log_softmax(z . E^T + b)."""
        logits = self.to_embedding(z) @ self.embedding.weight.T + self.bias
        return F.log_softmax(logits, dim=1)

    def losses(self, batch, *, sample: bool, adversarial_weight: float) -> dict:
        """Summed terms of one batch: reconstruction, KL, and the discriminator's loss."""
        ids, lengths, language = batch
        states, mean, log_var = self.encode(ids, lengths)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var) if sample else mean
        counts = torch.zeros(len(ids), self.bias.shape[0], device=ids.device)
        counts.scatter_add_(1, ids, (ids != PAD_ID).float())
        reconstruction = -(counts * self.bag_log_probs(z)).sum(1)
        if self.decoders is not None:
            reconstruction = reconstruction + self.decoders[language](
                z, ids, lengths, self.embedding, self.bias
            )
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(1)
        terms = {"reconstruction": reconstruction.sum(), "kl": kl.sum()}
        if self.discriminator is not None:
            reversed_states = _ReverseGradient.apply(states, adversarial_weight)
            scores = self.discriminator(reversed_states)
            target = torch.full((len(ids),), language, device=ids.device)
            terms["adversarial"] = F.cross_entropy(scores, target, reduction="sum")
            terms["language_hits"] = (scores.argmax(1) == target).sum()
        return terms


def document_batches(language_of, positions, batch_size, generator=None):
    """Batches of one language each: (positions, language). Shuffled batches of every
    language are interleaved evenly when ``generator`` is given (training), so that the
    languages alternate through an epoch; otherwise in order (evaluation)."""
    chunks = []
    for language in np.unique(language_of[positions]):
        mine = positions[language_of[positions] == language]
        if generator is not None:
            mine = generator.permutation(mine)
        parts = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
        offset = generator.random() if generator is not None else 0.0
        chunks += [
            ((i + offset) / len(parts), part, int(language)) for i, part in enumerate(parts)
        ]
    if generator is not None:
        chunks.sort(key=lambda chunk: chunk[0])
    return [(part, language) for _, part, language in chunks]


def make_batch(pieces, positions, language, device):
    """Padded piece ids (batch, longest), their lengths (on the CPU) and the language."""
    lengths = torch.tensor([max(len(pieces[p]), 1) for p in positions], dtype=torch.long)
    ids = torch.full((len(positions), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, p in enumerate(positions):
        ids[row, : len(pieces[p])] = torch.from_numpy(pieces[p].astype(np.int64))
    return ids.to(device), lengths, language


def evaluate(network, pieces, language_of, positions, batch_size, kl_weight, device) -> float:
    """Held-out loss per piece: reconstruction at the posterior mean + kl_weight * KL."""
    network.eval()
    total, n_pieces = 0.0, 0
    with torch.no_grad():
        for part, language in document_batches(language_of, positions, batch_size):
            batch = make_batch(pieces, part, language, device)
            terms = network.losses(batch, sample=False, adversarial_weight=0.0)
            total += float(terms["reconstruction"] + kl_weight * terms["kl"])
            n_pieces += sum(len(pieces[p]) for p in part)
    return total / max(n_pieces, 1)


def encode_means(network, pieces, batch_size, device) -> np.ndarray:
    """Posterior means of every document, in order; float32 (n_documents, latent_dim)."""
    network.eval()
    order = np.argsort([len(p) for p in pieces], kind="stable")  # little padding
    means = []
    with torch.inference_mode():
        for begin in range(0, len(order), batch_size):
            part = order[begin : begin + batch_size]
            ids, lengths, _ = make_batch(pieces, part, 0, device)
            means.append(network.encode(ids, lengths)[1].float().cpu().numpy())
    latent = network.posterior.out_features // 2
    result = np.empty((len(pieces), latent), dtype=np.float32)
    if means:
        result[order] = np.concatenate(means)
    return result


def train_network(
    network,
    pieces,
    language_of,
    train_positions,
    valid_positions,
    config,
    generator,
    device,
    progress=None,
):
    """Train ``network`` in place with Adam; return (history, epochs run, best epoch).

    ``config`` holds max_epochs, batch_size, learning_rate, kl_weight, adversarial_weight
    and n_iter_no_change (None: no early stopping). With early stopping, the parameters of
    the epoch with the lowest held-out loss are put back at the end.
    """
    optimizer = torch.optim.Adam(network.parameters(), lr=config["learning_rate"])
    history, best_loss, best_epoch, best_state, stale = [], math.inf, 0, None, 0
    early_stopping = config["n_iter_no_change"] is not None
    for epoch in range(1, config["max_epochs"] + 1):
        start = time.perf_counter()
        network.train()
        sums = {"reconstruction": 0.0, "kl": 0.0, "adversarial": 0.0, "language_hits": 0.0}
        n_pieces = n_documents = 0
        batches = document_batches(language_of, train_positions, config["batch_size"], generator)
        for part, language in batches:
            batch = make_batch(pieces, part, language, device)
            terms = network.losses(
                batch, sample=True, adversarial_weight=config["adversarial_weight"]
            )
            size = max(sum(len(pieces[p]) for p in part), 1)
            loss = (terms["reconstruction"] + config["kl_weight"] * terms["kl"]) / size
            if "adversarial" in terms:
                loss = loss + terms["adversarial"] / len(part)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    epoch,
                    {k: float(v) for k, v in terms.items()},
                    "Lower learning_rate, or max_length for very long documents.",
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(network.parameters(), _CLIP)
            optimizer.step()
            for key, value in terms.items():
                sums[key] += float(value.detach())
            n_pieces += size
            n_documents += len(part)
        record = {
            "epoch": epoch,
            "loss": (sums["reconstruction"] + config["kl_weight"] * sums["kl"]) / n_pieces,
            "reconstruction": sums["reconstruction"] / n_pieces,
            "kl": sums["kl"] / max(n_documents, 1),
        }
        if network.discriminator is not None:
            record["adversarial"] = sums["adversarial"] / max(n_documents, 1)
            record["language_accuracy"] = sums["language_hits"] / max(n_documents, 1)
        if early_stopping:
            record["valid_loss"] = evaluate(
                network,
                pieces,
                language_of,
                valid_positions,
                config["batch_size"],
                config["kl_weight"],
                device,
            )
            if record["valid_loss"] < best_loss:
                best_loss, best_epoch, stale = record["valid_loss"], epoch, 0
                best_state = copy.deepcopy(network.state_dict())
            else:
                stale += 1
        else:
            best_epoch = epoch
        record["duration"] = time.perf_counter() - start
        history.append(record)
        if progress is not None:
            progress.update(1)
            shown = ("loss", "valid_loss")
            progress.set_postfix({k: round(record[k], 3) for k in shown if k in record})
        if early_stopping and stale >= config["n_iter_no_change"]:
            break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return history, len(history), best_epoch


def start_bias_at_frequencies(network, pieces) -> None:
    """Start the decoder's bias at the pieces' log frequencies: z then explains the rest."""
    n_pieces = network.bias.shape[0]
    counts = np.bincount(np.concatenate(pieces), minlength=n_pieces).astype(np.float64)
    log_frequencies = np.log((counts + 0.1) / (counts.sum() + 0.1 * n_pieces))
    with torch.no_grad():
        network.bias.copy_(torch.from_numpy(log_frequencies).float())


def rebuild_network(kwargs: dict, state: dict):
    network = NXVAENetwork(**kwargs)
    network.load_state_dict(state)
    return network.eval()
