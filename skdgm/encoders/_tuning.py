"""Fine-tuning the top layers of a ``transformers`` encoder on stored token states.

An encoder of L layers is cut in two. The lower L - k layers stay frozen: they run once per
document, and their output (the token states that enter layer L - k) is stored in bfloat16,
in memory or, when large, in a temporary file. A trainable copy of the top k layers maps
stored states to document embeddings, so that an epoch of fine-tuning runs k layers, not L.

The cut works on any model whose ``forward`` accepts ``inputs_embeds`` and that keeps its
blocks in one ``nn.ModuleList`` (BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA, DeBERTa, ...):
the copy replaces the embedding module by a pass-through and keeps only the top k blocks,
so that the model's own forward (masks, final norms) runs unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import tempfile

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

__all__ = [
    "DocumentEmbedder",
    "TokenStates",
    "TunableTop",
    "check_tunable",
    "count_layers",
    "pool_tokens",
    "state_digest",
    "stop_after_layer",
]

#: Attention kernel of training passes on a CPU (None: the model's own); see
#: :func:`_attention_kernel`.
TRAINING_ATTENTION_ON_CPU = "eager"

#: Token states above this size go to a temporary file instead of memory.
MAX_STATE_BYTES_IN_MEMORY = 1 << 30


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the needed layer has run."""


class _PassThrough(nn.Module):
    """Stands in for the embedding module: returns the stored states it is given."""

    def forward(self, input_ids=None, inputs_embeds=None, *args, **kwargs):
        return inputs_embeds


def _find_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of transformer blocks: a ModuleList as long as its number of layers."""
    n_layers = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers and n_layers:
            if name.rsplit(".", 1)[-1] in {"layer", "layers", "block", "blocks"}:
                return module
    raise ValueError(
        f"Cannot fine-tune {type(model).__name__}: its transformer blocks were not found as "
        "one list of config.num_hidden_layers layers. Use fine_tune_layers=0 (frozen "
        "encoder), or a BERT-like model (BERT, RoBERTa, XLM-R, DistilBERT, e5, ...)."
    )


def count_layers(model: nn.Module) -> int:
    """Number of transformer blocks of ``model``."""
    return len(_find_layers(model))


def check_tunable(model: nn.Module, n_layers: int) -> None:
    """Raise a ``ValueError`` that says what to change if the top ``n_layers`` cannot be tuned."""
    total = count_layers(model)
    if not 1 <= n_layers <= total:
        raise ValueError(
            f"fine_tune_layers={n_layers} but the encoder's model has {total} layers; use "
            f"0 (frozen) to {total}."
        )
    if not isinstance(getattr(model, "embeddings", None), nn.Module):
        raise ValueError(
            f"Cannot fine-tune {type(model).__name__}: it has no `embeddings` module to feed "
            "stored token states through. Use fine_tune_layers=0 (frozen encoder)."
        )


@contextlib.contextmanager
def stop_after_layer(model: nn.Module, n_top: int):
    """Make ``model(...)`` stop before its top ``n_top`` layers.

    Inside the block, call ``run(input_ids=..., attention_mask=...)``: it returns the
    hidden states that enter layer ``L - n_top`` (the embedding output when ``n_top == L``)
    without running the layers above.
    """
    layers = _find_layers(model)
    stage = model.embeddings if n_top == len(layers) else layers[len(layers) - n_top - 1]
    captured = {}

    def hook(module, args, output):
        captured["states"] = output[0] if isinstance(output, (tuple, list)) else output
        raise _StopForward

    handle = stage.register_forward_hook(hook)

    def run(**inputs) -> torch.Tensor:
        captured.clear()
        try:
            model(**inputs)
        except _StopForward:
            pass
        return captured.pop("states")

    try:
        yield run
    finally:
        handle.remove()


def _top_copy(model: nn.Module, n_top: int) -> nn.Module:
    """A trainable copy of ``model`` reduced to its top ``n_top`` layers.

    The embedding module becomes a pass-through (``inputs_embeds`` are the stored states)
    and the lower layers are dropped; only the top layers (and any small head such as a
    final norm or pooler) are copied, never the embedding table.
    """
    layers = _find_layers(model)
    n_bottom = len(layers) - n_top
    memo = {id(model.embeddings): _PassThrough()}
    for layer in list(layers)[:n_bottom]:
        memo[id(layer)] = nn.Identity()  # not copied: replaced, then dropped below
    top = copy.deepcopy(model, memo)
    top_layers = _find_layers(top)
    kept = list(top_layers)[n_bottom:]
    for index in range(len(top_layers) - 1, -1, -1):
        del top_layers[index]
    top_layers.extend(kept)
    top.config = copy.deepcopy(model.config)
    top.config.num_hidden_layers = n_top
    if hasattr(top, "pooler"):
        top.pooler = None  # a pooled output is never used; its weights need no gradient
    for parameter in top.parameters():
        parameter.requires_grad_(True)
    return top


@contextlib.contextmanager
def _attention_kernel(model: nn.Module, kernel: str | None):
    """Run ``model`` with the ``kernel`` attention of transformers inside the block.

    On a CPU, a forward and backward pass through a layer of multilingual-e5-small under
    bfloat16 autocast took 1.4x to 1.9x as long with PyTorch's fused ``sdpa`` attention
    as with transformers' ``eager`` one (``benchmarks/bench_attention.py``, 2 runs on a
    busy 2-core machine), while for inference alone ``sdpa`` was the faster (eager took
    1.35x as long): training passes switch to ``eager`` there. Only a model on ``sdpa`` is
    switched (never flash or custom kernels), and only where its configuration names
    its kernel; the weights and the results are the same up to rounding.
    """
    configs = {
        id(config): config
        for module in model.modules()
        if (config := getattr(module, "config", None)) is not None
        and getattr(config, "_attn_implementation", None) == "sdpa"
    }
    if kernel is None or not configs:
        yield
        return
    for config in configs.values():
        config._attn_implementation = kernel
    try:
        yield
    finally:
        for config in configs.values():
            config._attn_implementation = "sdpa"


class TunableTop(nn.Module):
    """The top layers of an encoder, its pooling and normalisation: token states -> embeddings.

    Parameters
    ----------
    model : nn.Module
        The full (frozen) transformers model; only its top ``n_top`` layers are copied.
    n_top : int
        Number of layers to copy and train.
    pooling : {"mean", "cls"}
        How token states of a window become one vector.
    normalize : bool
        Scale each document's embedding to unit norm.
    precision : {"float32", "bfloat16"}
        Run under bfloat16 autocast or in float32.
    """

    def __init__(self, model, n_top: int, pooling: str, normalize: bool, precision: str):
        super().__init__()
        check_tunable(model, n_top)
        self.model = _top_copy(model, n_top)
        self.n_top = n_top
        self.pooling = pooling
        self.normalize = normalize
        self.precision = precision

    def pool_windows(self, states, mask) -> torch.Tensor:
        """One vector per window (n_windows, hidden) from its stored states (and mask)."""
        autocast = torch.autocast(
            device_type=states.device.type,
            dtype=torch.bfloat16,
            enabled=self.precision == "bfloat16",
        )
        dtype = next(self.model.parameters()).dtype
        training_on_cpu = torch.is_grad_enabled() and states.device.type == "cpu"
        kernel = TRAINING_ATTENTION_ON_CPU if training_on_cpu else None
        with autocast, _attention_kernel(self.model, kernel):
            hidden = self.model(inputs_embeds=states.to(dtype), attention_mask=mask)
        return pool_tokens(hidden.last_hidden_state.float(), mask, self.pooling)

    def forward(self, states, mask, owner, n_documents: int) -> torch.Tensor:
        """Embeddings of ``n_documents`` documents from the states of their windows.

        Parameters
        ----------
        states : Tensor of shape (n_windows, length, hidden)
        mask : LongTensor of shape (n_windows, length)
        owner : LongTensor of shape (n_windows,)
            The document (0 .. n_documents - 1) each window belongs to.
        n_documents : int
        """
        pooled = self.pool_windows(states, mask)
        # A long document's windows are averaged, weighted by their numbers of tokens.
        tokens = mask.sum(1).to(pooled.dtype)
        sums = pooled.new_zeros(n_documents, pooled.shape[1]).index_add(
            0, owner, pooled * tokens[:, None]
        )
        totals = tokens.new_zeros(n_documents).index_add(0, owner, tokens)
        embeddings = sums / totals.clamp(min=1.0)[:, None]
        if self.normalize:
            embeddings = F.normalize(embeddings, dim=1, eps=1e-12)
        return embeddings


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per window: the mean of its token states, or its first token's."""
    if pooling == "cls":
        return hidden[:, 0]
    weight = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weight).sum(1) / weight.sum(1).clamp(min=1.0)


class TokenStates:
    """Token states of a set of documents at one layer, stored in bfloat16.

    Documents are cut into windows (one, or several for long documents); window ``w``
    belongs to document ``owner[w]`` and the windows of a document are consecutive.
    Small stores live in memory; stores over :data:`MAX_STATE_BYTES_IN_MEMORY` live in an
    anonymous temporary file (removed when closed or collected) and are read a batch at
    a time, so that memory stays flat whatever the corpus size.

    Parameters
    ----------
    window_lengths : sequence of int
        Tokens of each window.
    owner : sequence of int
        Document of each window, non-decreasing.
    n_documents : int
    hidden_size : int
    """

    def __init__(self, window_lengths, owner, n_documents: int, hidden_size: int):
        self.lengths = np.asarray(window_lengths, dtype=np.int64)
        self.owner = np.asarray(owner, dtype=np.int64)
        self.n_documents = int(n_documents)
        self.hidden_size = int(hidden_size)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        # Windows of document d: first_window[d] .. first_window[d + 1] - 1.
        self.first_window = np.searchsorted(self.owner, np.arange(self.n_documents + 1))
        n_bytes = int(self.offsets[-1]) * self.hidden_size * 2
        self.on_disk = n_bytes > MAX_STATE_BYTES_IN_MEMORY
        if self.on_disk:
            self._file = tempfile.TemporaryFile(prefix="skdgm-states-")
            self._file.truncate(n_bytes)
            self._memory = None
        else:
            self._file = None
            self._memory = np.empty((int(self.offsets[-1]), self.hidden_size), np.int16)

    def document_lengths(self) -> np.ndarray:
        """Tokens of each document's longest window."""
        if getattr(self, "_document_lengths", None) is None:
            longest = np.zeros(self.n_documents, dtype=np.int64)
            np.maximum.at(longest, self.owner, self.lengths)
            self._document_lengths = longest
        return self._document_lengths

    @property
    def nbytes(self) -> int:
        """Bytes the states take (in memory or on disk)."""
        return int(self.offsets[-1]) * self.hidden_size * 2

    def write(self, window: int, states: torch.Tensor) -> None:
        """Store the states (length, hidden) of one window."""
        bits = states.detach().to("cpu", torch.bfloat16).contiguous().view(torch.int16).numpy()
        start, stop = self.offsets[window], self.offsets[window + 1]
        if bits.shape != (stop - start, self.hidden_size):
            raise ValueError(
                f"window {window}: states of shape {bits.shape}, expected "
                f"({stop - start}, {self.hidden_size})."
            )
        if self._memory is not None:
            self._memory[start:stop] = bits
        else:
            self._file.seek(int(start) * self.hidden_size * 2)
            self._file.write(bits.tobytes())

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self._memory is not None:
            return self._memory[start:stop]
        self._file.seek(start * self.hidden_size * 2)
        raw = self._file.read((stop - start) * self.hidden_size * 2)
        return np.frombuffer(raw, dtype=np.int16).reshape(stop - start, self.hidden_size)

    def batch(self, documents: np.ndarray, device: torch.device):
        """Padded states of the windows of ``documents``.

        Returns
        -------
        states : Tensor (n_windows, longest, hidden), bfloat16, on ``device``
        mask : LongTensor (n_windows, longest)
        owner : LongTensor (n_windows,)
            Position in ``documents`` of each window's document.
        """
        documents = np.asarray(documents, dtype=np.int64)
        windows, owners = [], []
        for position, document in enumerate(documents):
            first, last = self.first_window[document], self.first_window[document + 1]
            windows.extend(range(first, last))
            owners.extend([position] * (last - first))
        longest = int(self.lengths[windows].max()) if windows else 1
        states = torch.zeros((len(windows), longest, self.hidden_size), dtype=torch.int16)
        mask = torch.zeros((len(windows), longest), dtype=torch.long)
        for row, window in enumerate(windows):
            start, stop = int(self.offsets[window]), int(self.offsets[window + 1])
            states[row, : stop - start] = torch.from_numpy(np.array(self._read(start, stop)))
            mask[row, : stop - start] = 1
        states = states.view(torch.bfloat16)
        owner = torch.as_tensor(owners, dtype=torch.long)
        return states.to(device), mask.to(device), owner.to(device)

    def subset(self, documents) -> TokenStates:
        """A new store holding the states of ``documents`` (in that order)."""
        documents = np.asarray(documents, dtype=np.int64)
        windows = np.concatenate(
            [np.arange(self.first_window[d], self.first_window[d + 1]) for d in documents]
            or [np.zeros(0, dtype=np.int64)]
        ).astype(np.int64)
        counts = self.first_window[documents + 1] - self.first_window[documents]
        owner = np.repeat(np.arange(len(documents)), counts)
        part = TokenStates(self.lengths[windows], owner, len(documents), self.hidden_size)
        for new, old in enumerate(windows):
            start, stop = int(self.offsets[old]), int(self.offsets[old + 1])
            bits = torch.from_numpy(np.array(self._read(start, stop)))
            part.write(new, bits.view(torch.bfloat16))
        return part

    def close(self) -> None:
        """Free the memory or delete the temporary file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory = None

    def __getstate__(self):
        raise TypeError(
            "Token states are a fitting-time store and are not pickled; pickle the fitted "
            "estimator instead."
        )


class DocumentEmbedder(nn.Module):
    """Embeddings of stored documents through a trainable top: ``embedder(rows)``.

    Parameters
    ----------
    top : TunableTop
    states : TokenStates
        The documents' states below the top.
    chunk_size : int, default=32
        Documents per pass through the layers.
    recompute : bool, default=True
        In training, keep only one chunk's activations for the backward pass and
        recompute the others there (see :meth:`forward`).
    """

    def __init__(
        self, top: TunableTop, states: TokenStates, chunk_size: int = 32, recompute: bool = True
    ):
        super().__init__()
        self.top = top
        self.states = states
        self.chunk_size = chunk_size
        self.recompute = recompute

    def forward(self, rows: np.ndarray) -> torch.Tensor:
        # Documents of similar lengths go through the layers together, a few at a time:
        # less padding, and tiles that stay in cache (2.3x faster than one padded batch
        # of 128 documents on a 2-core CPU). The embeddings and gradients are unchanged.
        rows = np.asarray(rows, dtype=np.int64)
        device = next(self.top.parameters()).device
        length = self.states.document_lengths()[rows]
        order = np.argsort(length, kind="stable")
        # When gradients flow and the batch spans several chunks, each chunk's activations
        # (attention maps of every tuned layer: about 0.6 GB a layer for 32 documents of
        # 256 tokens) are not kept for the backward pass but recomputed there, one chunk
        # at a time, with the same dropout masks: the memory of one chunk instead of the
        # whole batch, for one more forward pass of the tuned layers.
        recompute = (
            self.recompute
            and torch.is_grad_enabled()
            and self.training
            and len(rows) > self.chunk_size
        )
        chunks = []
        for start in range(0, len(rows), self.chunk_size):
            part = rows[order[start : start + self.chunk_size]]
            states, mask, owner = self.states.batch(part, device)
            if recompute:
                chunks.append(
                    checkpoint(self.top, states, mask, owner, len(part), use_reentrant=False)
                )
            else:
                chunks.append(self.top(states, mask, owner, len(part)))
        if not chunks:
            return torch.zeros((0, self.states.hidden_size), device=device)
        embeddings = torch.cat(chunks)
        inverse = torch.as_tensor(np.argsort(order, kind="stable"), device=device)
        return embeddings[inverse]

    def embeddings(self, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Embeddings of ``rows`` in evaluation mode, without gradients: float32 ndarray."""
        rows = np.asarray(rows, dtype=np.int64)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                chunks = [
                    self(rows[start : start + batch_size]).float().cpu()
                    for start in range(0, len(rows), batch_size)
                ]
        finally:
            self.train(was_training)
        if not chunks:
            return np.zeros((0, self.states.hidden_size), dtype=np.float32)
        return torch.cat(chunks).numpy()


def state_digest(module: nn.Module) -> str:
    """A fingerprint of a module's weights (for cache keys of tuned encoders)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
