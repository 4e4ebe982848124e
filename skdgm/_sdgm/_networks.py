"""The networks of the stacked M1+M2 model (Kingma et al. 2014; Zhu et al. 2021).

Inference: q(z1 | x), q(y | z1), q(z2 | z1, y).
Generation: p(z2) = N(0, I), p(z1 | y, z2), p(x | z1) (the decoder: Gaussian, bag of
words, or a GRU over the document's pieces).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._preprocessing import BOS, PAD, UNK
from ._likelihoods import gaussian_log_density, sequence_log_likelihood

# Bounds on log-variances keep exp() finite early in training.
_LOGVAR_MIN, _LOGVAR_MAX = -8.0, 8.0


def _mlp(in_dim: int, hidden_dim: int, n_layers: int, dropout: float) -> nn.Sequential:
    """``n_layers`` blocks Linear -> GELU -> Dropout (no BatchNorm: a batch may hold one row)."""
    layers: list[nn.Module] = []
    for _ in range(n_layers):
        layers += [nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
        in_dim = hidden_dim
    return nn.Sequential(*layers)


class GaussianNet(nn.Module):
    """An MLP whose outputs are the mean and log-variance of a diagonal Gaussian."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, n_layers: int, dropout: float):
        super().__init__()
        self.body = _mlp(in_dim, hidden_dim, n_layers, dropout)
        width = hidden_dim if n_layers else in_dim
        self.mu = nn.Linear(width, out_dim)
        self.logvar = nn.Linear(width, out_dim)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.body(inputs)
        logvar = self.logvar(hidden).clamp(_LOGVAR_MIN, _LOGVAR_MAX)
        return self.mu(hidden), logvar


class ConditionalGaussianNet(GaussianNet):
    """A Gaussian over one variable given another and the class, e.g. p(z1 | y, z2).

    The one-hot class is embedded linearly to the size of the conditioning variable and
    added to it, as in the paper.
    """

    def __init__(self, cond_dim, n_classes, hidden_dim, out_dim, n_layers, dropout):
        super().__init__(cond_dim, hidden_dim, out_dim, n_layers, dropout)
        self.class_embedding = nn.Linear(n_classes, cond_dim, bias=False)

    def forward(self, cond: torch.Tensor, y_onehot: torch.Tensor):
        return super().forward(cond + self.class_embedding(y_onehot))


class GaussianDecoder(nn.Module):
    """p(x | z1) = N(mu(z1), diag sigma^2) with one learned variance per feature."""

    def __init__(self, z1_dim, hidden_dim, out_dim, n_layers, dropout):
        super().__init__()
        self.body = _mlp(z1_dim, hidden_dim, n_layers, dropout)
        self.mu = nn.Linear(hidden_dim if n_layers else z1_dim, out_dim)
        self.logvar = nn.Parameter(torch.zeros(out_dim))

    def log_likelihood(self, z1: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mu = self.mu(self.body(z1))
        return gaussian_log_density(target, mu, self.logvar.clamp(_LOGVAR_MIN, _LOGVAR_MAX))


class BowDecoder(nn.Module):
    """p(x | z1): a multinomial over a vocabulary, logits = W z1 + b (the paper's BOW decoder)."""

    def __init__(self, z1_dim, vocab_size):
        super().__init__()
        self.logits = nn.Linear(z1_dim, vocab_size)

    def log_likelihood(self, z1: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return (counts * F.log_softmax(self.logits(z1), dim=1)).sum(dim=1)


class GRUDecoder(nn.Module):
    """p(x | z1) = prod_t p(x_t | x_<t, z1): a GRU over the document's pieces.

    Teacher forcing: step t reads the embedding of piece t - 1 (``BOS`` at the first step)
    beside z1, and the initial hidden state is tanh(W z1 + b); a linear layer and a
    softmax over the vocabulary give piece t. Rows are padded with ``PAD`` after their
    end, which changes no row's log-likelihood.

    Word dropout (Bowman et al. 2016) fights posterior collapse: in training mode, each
    teacher-forced piece (not ``BOS``) becomes ``UNK`` with probability ``word_dropout``,
    so that the decoder cannot predict well from the previous pieces alone and must read
    z1. Evaluation mode reads every piece.

    Parameters
    ----------
    z1_dim : int
        Size of z1.
    vocabulary_size : int
        Ids of the decoder's vocabulary, special tokens included.
    hidden_dim : int
        Size of the piece embeddings and of the GRU's state.
    word_dropout : float, default=0.0
        Probability of replacing a teacher-forced piece by ``UNK`` in training mode.
    """

    def __init__(self, z1_dim: int, vocabulary_size: int, hidden_dim: int, word_dropout=0.0):
        super().__init__()
        self.word_dropout = word_dropout
        self.embedding = nn.Embedding(vocabulary_size, hidden_dim, padding_idx=PAD)
        self.initial = nn.Linear(z1_dim, hidden_dim)
        self.gru = nn.GRU(hidden_dim + z1_dim, hidden_dim, batch_first=True)
        self.output = nn.Linear(hidden_dim, vocabulary_size)

    def teacher_inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """The piece read at each step: ``BOS``, then the targets shifted by one."""
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)
        if self.training and self.word_dropout > 0:
            dropped = torch.rand(inputs.shape, device=inputs.device) < self.word_dropout
            dropped &= inputs != PAD
            dropped[:, 0] = False
            inputs = inputs.masked_fill(dropped, UNK)
        return inputs

    def hidden_states(self, z1: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The GRU's states, shape (n, T, hidden_dim); the state at t predicts ``tokens[:, t]``."""
        inputs = self.teacher_inputs(tokens)
        latent = z1.unsqueeze(1).expand(-1, inputs.shape[1], -1)
        steps = torch.cat([self.embedding(inputs), latent], dim=2)
        initial = torch.tanh(self.initial(z1)).unsqueeze(0)
        return self.gru(steps, initial)[0]

    def log_likelihood(self, z1: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """log p(tokens | z1) per row; ``tokens`` is a LongTensor (n, T) padded with ``PAD``."""
        return sequence_log_likelihood(self.output, self.hidden_states(z1, tokens), tokens)


class SDGM(nn.Module):
    """The stacked M1+M2 semi-supervised deep generative model.

    Parameters
    ----------
    in_dim : int
        Width of the inference network's input (the features of a document).
    target_dim : int
        Width of what the decoder reconstructs (features or vocabulary counts), or the
        size of the GRU decoder's vocabulary.
    n_classes : int
        Number of classes.
    decoder : {"gaussian", "bow", "gru"}
        The kind of p(x | z1).
    z1_dim, z2_dim, hidden_dim, n_layers, dropout
        Sizes of the latent variables and of the MLPs (and of the GRU's state).
    classifier_sees_inputs : bool, default=False
        q(y | z1, x) = softmax(W z1 + V x) instead of q(y | z1).
    word_dropout : float, default=0.0
        The GRU decoder's word dropout.
    """

    def __init__(
        self,
        in_dim: int,
        target_dim: int,
        n_classes: int,
        decoder: str,
        z1_dim: int,
        z2_dim: int,
        hidden_dim: int,
        n_layers: int,
        dropout: float,
        classifier_sees_inputs: bool = False,
        word_dropout: float = 0.0,
    ):
        super().__init__()
        self.n_classes = n_classes
        # encode gives z1 / z1_unit: z1 itself (unit 1), except for M2 of the two-stage
        # M1+M2, whose unit the training loop sets after M1.
        self.register_buffer("z1_unit", torch.ones(()))
        self.q_z1 = GaussianNet(in_dim, hidden_dim, z1_dim, n_layers, dropout)
        self.q_y = nn.Sequential(nn.Dropout(dropout), nn.Linear(z1_dim, n_classes))
        self.q_y_inputs = None
        if classifier_sees_inputs:
            self.q_y_inputs = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, n_classes))
        self.q_z2 = ConditionalGaussianNet(z1_dim, n_classes, hidden_dim, z2_dim, 1, dropout)
        self.p_z1 = ConditionalGaussianNet(z2_dim, n_classes, hidden_dim, z1_dim, 1, dropout)
        if decoder == "bow":
            self.decoder = BowDecoder(z1_dim, target_dim)
        elif decoder == "gru":
            self.decoder = GRUDecoder(z1_dim, target_dim, hidden_dim, word_dropout)
        else:
            self.decoder = GaussianDecoder(z1_dim, hidden_dim, target_dim, 1, dropout)

    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z1 | x), for z1 measured in ``z1_unit``."""
        mu, logvar = self.q_z1(inputs)
        return mu / self.z1_unit, logvar - 2 * torch.log(self.z1_unit)

    def classify(self, z1: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of q(y | z1), or of q(y | z1, x) when the classifier sees the inputs."""
        logits = self.q_y(z1)
        if self.q_y_inputs is not None:
            logits = logits + self.q_y_inputs(inputs)
        return logits
