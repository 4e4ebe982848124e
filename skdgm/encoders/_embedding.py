"""From documents to model inputs and back to one vector a document: tokenising,
windowing, batching and pooling.

A document becomes one window of model input ids (``long_documents="truncate"``) or
consecutive windows (``"windows"``): the tokenizer's special tokens around the prefix and
at most ``max_length`` tokens in all. Windows of similar lengths are padded into
batches; the model's last hidden states are pooled per window and averaged per document,
weighted by the windows' token counts. The same windows feed the frozen layers whose
token states fine-tuning stores (:func:`token_states`). ``torch`` and ``tqdm`` are
imported inside the functions that run the model.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger("skdgm")

#: ``max_length`` of :class:`~skdgm.encoders.MultilingualEncoder` by default.
DEFAULT_MAX_LENGTH = 256
#: Tokens per document kept by :meth:`MultilingualEncoder.count_tokens` and ``token_ids``.
MAX_COUNTED_TOKENS = 512
#: Padded tokens a batch holds at most with ``batch_size="auto"``: 16 windows of 256
#: tokens, 64 of 64. On the 2-core machine, 16 long pages and 64 short paragraphs a
#: batch were the fastest fixed sizes (``benchmarks/bench_encoding_backends.py``).
BATCH_TOKENS = 4096


# ------------------------------------------------------------------------- tokenising
def capped_max_length(tokenizer, model, max_length: int) -> int:
    """``max_length`` capped at the model's and the tokenizer's limits.

    Warns when the cap lowers a ``max_length`` that was asked for (not the default).
    """
    limits = [getattr(model.config, "max_position_embeddings", None)]
    limits.append(getattr(tokenizer, "model_max_length", None))
    limits = [int(limit) for limit in limits if limit is not None and limit < 1_000_000]
    limit = min(limits) if limits else max_length
    if max_length > limit:
        message = (
            f"max_length={max_length} exceeds the model's limit of {limit} tokens; using {limit}."
        )
        if max_length == DEFAULT_MAX_LENGTH:  # not asked for: no warning
            logger.info(message)
        else:
            # stacklevel: this function, MultilingualEncoder.fit, its _fit_context wrapper.
            warnings.warn(message, UserWarning, stacklevel=3)
    return min(max_length, limit)


def prefix_ids(tokenizer, prefix: str) -> list[int]:
    """Token ids of the prefix put before each document (none for an empty prefix)."""
    if not prefix:
        return []
    return list(tokenizer(prefix, add_special_tokens=False)["input_ids"])


def content_ids(tokenizer, documents: list[str]) -> list[list[int]]:
    """Token ids of each document, without prefix or special tokens, untruncated."""
    if not documents:
        return []
    encoded = tokenizer(documents, add_special_tokens=False, verbose=False)
    return [list(ids) for ids in encoded["input_ids"]]


def count_matrix(token_ids: list[list[int]], vocabulary_size: int):
    """Counts of each token id in each document: a float32 CSR (n_documents, vocabulary)."""
    import scipy.sparse as sp

    lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.fromiter(
        (token for ids in token_ids for token in ids), dtype=np.int64, count=indptr[-1]
    )
    counts = sp.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), indices, indptr),
        shape=(len(token_ids), vocabulary_size),
    )
    counts.sum_duplicates()
    return counts


def check_room(tokenizer, special_layout, prefix: str, max_length: int, *, asked: int) -> None:
    """Raise a ``ValueError`` when the special tokens and the prefix fill ``max_length``.

    ``asked`` is the ``max_length`` parameter, for the message.
    """
    used = len(special_layout[0]) + len(special_layout[1])
    used += len(prefix_ids(tokenizer, prefix))
    if max_length <= used:
        raise ValueError(
            f"max_length={asked} leaves no room for text: the special tokens "
            f"and the prefix {prefix!r} already take {used} tokens. Increase "
            "max_length."
        )


def document_windows(
    tokenizer,
    documents: list[str],
    *,
    special_layout,
    prefix: str,
    max_length: int,
    long_documents: str,
) -> list[tuple[int, list[int]]]:
    """(document, model input ids) of each window, in document order."""
    head, tail = special_layout
    prefix_tokens = prefix_ids(tokenizer, prefix)
    room = max_length - len(head) - len(tail) - len(prefix_tokens)
    windows: list[tuple[int, list[int]]] = []
    for index, ids in enumerate(content_ids(tokenizer, documents)):
        starts = range(0, max(len(ids), 1), room)
        if long_documents == "truncate":
            starts = starts[:1]
        for start in starts:
            windows.append((index, head + prefix_tokens + ids[start : start + room] + tail))
    return windows


# ------------------------------------------------------------- running and pooling
@dataclass(frozen=True)
class ModelRun:
    """A loaded model, how documents become its inputs and how it runs over them.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The encoder, on ``device``.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer (cuts the documents, pads the batches).
    special_layout : tuple of (list of int, list of int)
        The special ids the tokenizer puts before and after a sequence.
    prefix : str
        Text put before each document.
    max_length : int
        Tokens per window, special tokens and prefix included.
    long_documents : {"truncate", "windows"}
        Keep a document's first window only, or all of them.
    device : str
        Where the model runs.
    precision : {"float32", "bfloat16"}
        ``"bfloat16"`` runs under bfloat16 autocast.
    batch_size : int or "auto"
        Windows per forward pass, or ``"auto"``: as many as fit ``BATCH_TOKENS`` padded
        tokens.
    hidden_size : int
        Width of the model's hidden states.
    verbose : int
        Show a progress bar when greater than 0.
    """

    model: Any
    tokenizer: Any
    special_layout: tuple
    prefix: str
    max_length: int
    long_documents: str
    device: str
    precision: str
    batch_size: int | str
    hidden_size: int
    verbose: int

    def windows(self, documents: list[str]) -> list[tuple[int, list[int]]]:
        """(document, model input ids) of each window of ``documents``, in document order."""
        return document_windows(
            self.tokenizer,
            documents,
            special_layout=self.special_layout,
            prefix=self.prefix,
            max_length=self.max_length,
            long_documents=self.long_documents,
        )

    def autocast(self, device):
        """bfloat16 autocast on ``device`` when the precision says so, else a no-op."""
        import torch

        return torch.autocast(
            device_type=device.type,
            dtype=torch.bfloat16,
            enabled=self.precision == "bfloat16",
        )


def batch_bounds(lengths: list[int], batch_size: int | str) -> list[tuple[int, int]]:
    """(begin, end) of each batch of windows sorted by length (``lengths``, ascending).

    A fixed number of windows a batch, or with ``"auto"`` as many as keep the padded
    batch (its count times its longest window) within ``BATCH_TOKENS``.
    """
    if batch_size != "auto":
        return [(b, min(b + batch_size, len(lengths))) for b in range(0, len(lengths), batch_size)]
    bounds, begin = [], 0
    for end in range(1, len(lengths) + 1):
        if (end - begin) * lengths[end - 1] > BATCH_TOKENS and end - 1 > begin:
            bounds.append((begin, end - 1))
            begin = end - 1
    if begin < len(lengths):
        bounds.append((begin, len(lengths)))
    return bounds


def padded_batches(run: ModelRun, windows, device):
    """Batches of windows of similar lengths: (window numbers, input ids, mask)."""
    import torch

    order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
    lengths = [len(windows[w][1]) for w in order]
    for begin, end in batch_bounds(lengths, run.batch_size):
        chosen = order[begin:end]
        # Padded on the right whatever the tokenizer's default: "cls" pooling reads
        # the first position.
        batch = run.tokenizer.pad(
            {"input_ids": [windows[w][1] for w in chosen]},
            padding=True,
            padding_side="right",
            return_attention_mask=True,
            return_tensors="pt",
        )
        yield (
            chosen,
            batch["input_ids"].to(device, torch.long),
            batch["attention_mask"].to(device, torch.long),
        )


def embed_documents(
    run: ModelRun, documents: list[str], *, pooling: str, normalize: bool, top=None
) -> np.ndarray:
    """Run the model over ``documents`` (no caching): float32 (n_documents, hidden_size).

    Each document is the token-weighted mean of its windows' pooled hidden states. With
    ``top`` (a :class:`~skdgm.encoders._tuning.TunableTop`), the model's layers below it
    run and ``top`` pools, with its own normalisation.
    """
    import torch
    from tqdm.auto import tqdm

    from ._tuning import pool_tokens, stop_after_layer

    windows = run.windows(documents)
    device = torch.device(run.device)
    sums = np.zeros((len(documents), run.hidden_size), dtype=np.float64)
    weights = np.zeros(len(documents), dtype=np.float64)
    autocast = run.autocast(device)
    model = run.model
    if top is None and run.precision == "bfloat16":
        # The weights themselves in bfloat16 rather than autocast, which converts them
        # at every call: 1.1x to 1.2x faster on the 2-core machine, the embeddings at
        # a cosine of 0.99998 to autocast's (benchmarks/bench_encoding_backends.py).
        model, autocast = bfloat16_copy(run.model), contextlib.nullcontext()
    progress = tqdm(total=len(windows), desc="Encoding", unit="text", disable=run.verbose <= 0)
    bottom = contextlib.nullcontext()
    if top is not None:
        bottom = stop_after_layer(run.model, top.n_top)
    with torch.inference_mode(), autocast, progress, bottom as run_bottom:
        for chosen, input_ids, mask in padded_batches(run, windows, device):
            if top is None:
                hidden = model(input_ids=input_ids, attention_mask=mask)
                pooled = pool_tokens(hidden.last_hidden_state.float(), mask, pooling)
            else:
                states = run_bottom(input_ids=input_ids, attention_mask=mask)
                pooled = top.pool_windows(states, mask)
            pooled = pooled.cpu().numpy().astype(np.float64)
            for row, w in enumerate(chosen):
                index, ids = windows[w]
                sums[index] += len(ids) * pooled[row]
                weights[index] += len(ids)
            progress.update(len(chosen))
    embeddings = sums / weights[:, None]
    normalize = normalize if top is None else top.normalize
    if normalize:
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        embeddings /= np.maximum(norms, 1e-12)
    return embeddings.astype(np.float32)


_BFLOAT16_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bfloat16_copy(model):
    """A copy of ``model`` with bfloat16 weights, for inference; one per model and process."""
    import torch

    copy_ = _BFLOAT16_COPIES.get(model)
    if copy_ is None:
        copy_ = copy.deepcopy(model).to(torch.bfloat16).eval().requires_grad_(False)
        _BFLOAT16_COPIES[model] = copy_
    return copy_


def token_states(run: ModelRun, documents: list[str], n_top: int):
    """Run the layers below the top ``n_top`` once per window of ``documents``.

    Returns a :class:`~skdgm.encoders._tuning.TokenStates` (bfloat16, on disk when large).
    """
    import torch
    from tqdm.auto import tqdm

    from ._tuning import TokenStates, stop_after_layer

    windows = run.windows(documents)
    states = TokenStates(
        [len(ids) for _, ids in windows],
        [index for index, _ in windows],
        len(documents),
        run.hidden_size,
    )
    device = torch.device(run.device)
    autocast = run.autocast(device)
    progress = tqdm(
        total=len(windows), desc="Frozen layers", unit="text", disable=run.verbose <= 0
    )
    with torch.inference_mode(), autocast, progress:
        with stop_after_layer(run.model, n_top) as run_bottom:
            for chosen, input_ids, mask in padded_batches(run, windows, device):
                hidden = run_bottom(input_ids=input_ids, attention_mask=mask)
                for row, w in enumerate(chosen):
                    states.write(w, hidden[row, : len(windows[w][1])])
                progress.update(len(chosen))
    return states
