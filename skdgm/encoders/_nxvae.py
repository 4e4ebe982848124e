"""NXVAE: the non-parallel cross-lingual VAE of Zhu et al. (EACL 2021), trained from scratch.

``torch`` and ``tokenizers`` are imported inside the methods that need them, so that
``import skdgm`` stays fast; the network lives in :mod:`._nxvae_network`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._base import DocumentTransformerMixin, advise_on_memory, progress_bar
from .._documents import check_documents
from .._persistence import PersistenceMixin
from ._embedding import MAX_COUNTED_TOKENS
from ._nxvae_data import (
    SPECIAL_PIECES,
    WORD_START,
    check_languages,
    hold_out,
    piece_ids,
    tokenizer_from_str,
    train_tokenizer,
)

__all__ = ["NXVAE"]

_INFERENCE_BATCH = 256


class NXVAE(
    DocumentTransformerMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    PersistenceMixin,
    BaseEstimator,
):
    """Non-parallel cross-lingual VAE: a shared subword space learnt without translations.

    The multilingual encoder that Zhu et al. (EACL 2021) pretrained from scratch and put
    under their semi-supervised model. One BPE vocabulary of subword pieces is learnt on
    the training text of every language; one embedding table serves them all. A
    bidirectional LSTM reads a document's first ``max_length`` pieces; its last states
    (both directions) give the Gaussian posterior q(z | x). The decoder reconstructs the
    document's bag of pieces with logits z . E^T + b, where E is the same embedding
    table: words of different languages that occur in similar documents get similar
    embeddings, since one z must explain them. Batches hold one language each and the
    languages alternate; no parallel text is used. The loss is the reconstruction plus
    ``kl_weight`` times KL(q(z | x) || N(0, I)).

    The defaults are scaled down from the paper's (a joint vocabulary of about 10k pieces,
    300-d embeddings and latent, 2 BiLSTM layers of 600 units a direction) so that a fit
    on a corpus of a few thousand pages takes minutes on two CPU cores: 8,000 pieces,
    128-d embeddings and latent, one layer of 128 units a direction, documents cut at 128
    pieces (``docs/nxvae.rst`` gives the timings behind them).

    Parameters
    ----------
    vocabulary_size : int, default=8000
        Pieces of the shared BPE vocabulary (at most; a small corpus gives fewer). The
        text is NFKC-normalised and lowercased; words and punctuation marks are split on
        whitespace and punctuation, and each starts with "▁" (as in SentencePiece). The
        base alphabet keeps the characters that cover 99.95 % of the text, up to half the
        vocabulary; rarer characters become ``<unk>``.
    embedding_dim : int, default=128
        Size of the shared embedding table's rows.
    hidden_dim : int, default=128
        Units of the BiLSTM a direction (and of the discriminator and GRU decoders).
    n_layers : int, default=1
        Layers of the BiLSTM.
    latent_dim : int, default=128
        Size of z, the output of :meth:`transform`. When it differs from
        ``embedding_dim`` a linear map takes z to the embedding space for the decoder.
    max_length : int, default=128
        Pieces of each document the encoder reads (the first ones), in ``fit`` and
        ``transform``; the reconstruction is that of the same pieces.
    dropout : float, default=0.1
        Dropout on the embeddings and the encoder's states.
    kl_weight : float, default=0.1
        Weight of the KL term (the paper's 0.1).
    language_decoders : bool, default=False
        Add one GRU decoder per language that reconstructs the sequence of pieces from z
        (teacher forcing; its output is scored against the shared embedding table); its
        log-likelihood adds to the bag's. Several times slower.
    adversarial_weight : float, default=0.0
        Weight of the reversed gradient of a language discriminator on the encoder's
        states (0: no discriminator). The discriminator learns to tell the languages
        apart; the encoder gets ``-adversarial_weight`` times its gradient, so that its
        states hide the language. Needs at least two languages.
    max_epochs : int, default=10
        Passes over the training documents.
    batch_size : int, default=64
        Documents a batch, all of one language.
    learning_rate : float, default=2e-3
        Adam's step size.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the documents (of each language), stop when
        their loss (reconstruction at the posterior mean plus ``kl_weight`` times KL,
        per piece) has not improved for ``n_iter_no_change`` epochs, and keep the best
        epoch's parameters.
    validation_fraction : float, default=0.1
        Share of each language's documents held out for early stopping.
    n_iter_no_change : int, default=2
        Patience of early stopping, in epochs.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where the network runs; ``"auto"`` picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, sampling, dropout, shuffling and the held-out split.
        Global random states (numpy's, torch's) are left untouched.
    verbose : int, default=0
        Show a progress bar over epochs when > 0.

    Attributes
    ----------
    tokenizer_ : tokenizers.Tokenizer
        The BPE tokenizer learnt in ``fit``.
    vocabulary_size_ : int
        Pieces of the vocabulary (columns of :meth:`count_tokens`).
    languages_ : ndarray of str
        The language codes seen in ``fit``, sorted (``["und"]`` without ``languages``).
    piece_counts_ : ndarray of shape (n_languages, n_pieces)
        How often each piece occurs in each language's training documents (whole
        documents), n_pieces being ``vocabulary_size_``. :meth:`nearest_words` searches
        the pieces a language has used.
    module_ : torch.nn.Module
        The trained network.
    history_ : list of dict
        One dict per epoch: ``loss`` (per piece), ``reconstruction`` (per piece), ``kl``
        (per document), ``adversarial`` and ``language_accuracy`` (the discriminator's,
        with ``adversarial_weight`` > 0), ``valid_loss`` (with early stopping) and
        ``duration`` in seconds.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        The epoch whose parameters were kept (the last one without early stopping).
    device_ : str
        The resolved ``device``.

    See Also
    --------
    MultilingualEncoder : A pretrained multilingual transformer as the encoder.

    Notes
    -----
    ``transform`` takes no languages: the encoder is shared by every language. Without
    ``languages``, ``fit`` treats all documents as one language, ``"und"``; that is what
    happens inside :class:`~skdgm.SemiSupervisedVAEClassifier`, which clones and fits its
    encoder on the documents alone. To use an NXVAE trained with languages there, wrap
    the fitted one in :class:`sklearn.frozen.FrozenEstimator`, which ``fit`` leaves as it
    is. Fine-tuning it with the classifier (``fine_tune_layers``) is not supported yet.

    References
    ----------
    Zhu, Shareghi, Li, Reichart and Korhonen, "Combining deep generative models and
    multi-lingual pretraining for semi-supervised document classification", EACL 2021.

    Examples
    --------
    >>> from skdgm.encoders import NXVAE
    >>> docs = ["the table menu", "das Tabellenmenü", "le menu du tableau"] * 4
    >>> langs = ["en", "de", "fr"] * 4
    >>> vae = NXVAE(vocabulary_size=60, embedding_dim=8, hidden_dim=8, latent_dim=8,
    ...             max_epochs=1, random_state=0).fit(docs, languages=langs)
    >>> vae.transform(docs[:2]).shape
    (2, 8)
    >>> vae.nearest_words("menu", "en", "en", k=1)[0][0]
    '▁menu'
    """

    _parameter_constraints: dict = {
        "vocabulary_size": [Interval(Integral, len(SPECIAL_PIECES) + 1, None, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "kl_weight": [Interval(Real, 0, None, closed="left")],
        "language_decoders": ["boolean"],
        "adversarial_weight": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        vocabulary_size: int = 8000,
        embedding_dim: int = 128,
        hidden_dim: int = 128,
        n_layers: int = 1,
        latent_dim: int = 128,
        max_length: int = 128,
        dropout: float = 0.1,
        kl_weight: float = 0.1,
        language_decoders: bool = False,
        adversarial_weight: float = 0.0,
        max_epochs: int = 10,
        batch_size: int = 64,
        learning_rate: float = 2e-3,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 2,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ):
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.latent_dim = latent_dim
        self.max_length = max_length
        self.dropout = dropout
        self.kl_weight = kl_weight
        self.language_decoders = language_decoders
        self.adversarial_weight = adversarial_weight
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, languages: Sequence[str] | None = None) -> NXVAE:
        """Learn the vocabulary, then train the VAE on the documents of every language.

        Parameters
        ----------
        X : list of str
            Documents (a list, tuple, 1-D array or pandas Series of str), at least 2.
        y : None
            Ignored.
        languages : sequence of str or None, default=None
            The language code of each document (e.g. ``"en"``), as many as documents.
            None: every document is of one language, ``"und"``.

        Returns
        -------
        self : NXVAE
            The fitted model.
        """
        from .._device import fork_rng, resolve_device
        from ._nxvae_network import NXVAENetwork, start_bias_at_frequencies, train_network

        documents = check_documents(X, min_documents=2)
        names, language_of = check_languages(languages, len(documents))
        if self.adversarial_weight > 0 and len(names) < 2:
            warnings.warn(
                f"adversarial_weight={self.adversarial_weight} has no effect with a single "
                f"language ({names[0]!r}): there is nothing to hide. Pass languages=... "
                "with at least two languages.",
                UserWarning,
                stacklevel=3,
            )
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        generator = np.random.default_rng(seed)

        tokenizer = train_tokenizer(documents, self.vocabulary_size)
        all_pieces = piece_ids(tokenizer, documents)
        n_pieces = tokenizer.get_vocab_size()
        piece_counts = np.zeros((len(names), n_pieces), dtype=np.int64)
        for language in range(len(names)):
            mine = [all_pieces[i] for i in np.flatnonzero(language_of == language)]
            if mine:
                piece_counts[language] = np.bincount(np.concatenate(mine), minlength=n_pieces)
        pieces = [ids[: self.max_length] for ids in all_pieces]
        usable = np.flatnonzero([len(ids) > 0 for ids in pieces])
        if len(usable) < 2:
            raise ValueError(
                f"NXVAE needs at least 2 documents with text; {len(usable)} of the "
                f"{len(documents)} documents have any."
            )
        train_positions, valid_positions = usable, usable[:0]
        if self.early_stopping:
            train_positions, valid_positions = hold_out(
                language_of, usable, self.validation_fraction, generator
            )
        module_kwargs = dict(
            vocabulary_size=n_pieces,
            embedding_dim=self.embedding_dim,
            hidden_dim=self.hidden_dim,
            n_layers=self.n_layers,
            latent_dim=self.latent_dim,
            n_languages=len(names),
            dropout=self.dropout,
            language_decoders=self.language_decoders,
            adversarial=self.adversarial_weight > 0 and len(names) > 1,
        )
        config = dict(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            kl_weight=self.kl_weight,
            adversarial_weight=float(self.adversarial_weight),
            n_iter_no_change=self.n_iter_no_change if self.early_stopping else None,
        )
        advice = (
            f"lower batch_size (now {self.batch_size}) or max_length (now "
            f"{self.max_length}); device {device}"
        )
        with fork_rng(device, seed), advise_on_memory(advice):
            network = NXVAENetwork(**module_kwargs)
            start_bias_at_frequencies(network, [pieces[i] for i in train_positions])
            network.to(device)
            progress = progress_bar(self.max_epochs, self.verbose, type(self).__name__)
            try:
                history, n_epochs, best_epoch = train_network(
                    network,
                    pieces,
                    language_of,
                    train_positions,
                    valid_positions,
                    config,
                    generator,
                    device,
                    progress,
                )
            finally:
                if progress is not None:
                    progress.close()
        # The fit succeeded: only now does the estimator change.
        self.tokenizer_ = tokenizer
        self.vocabulary_size_ = n_pieces
        self.languages_ = names
        self.piece_counts_ = piece_counts
        self._module_kwargs = module_kwargs
        self._max_length = self.max_length
        self.module_ = network
        self.device_ = str(device)
        self.history_ = history
        self.n_iter_ = n_epochs
        self.best_epoch_ = best_epoch
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Whether a ``fit`` has completed."""
        return hasattr(self, "module_")

    # -------------------------------------------------------------- using it
    def transform(self, X) -> np.ndarray:
        """Posterior means E[z | x] of the documents, whatever their language.

        Parameters
        ----------
        X : list of str
            Documents. Only their first ``max_length`` pieces are read; an empty
            document is allowed.

        Returns
        -------
        z : ndarray of shape (n_documents, latent_dim), dtype float32
            The posterior means of the documents' latent codes.
        """
        from .._device import resolve_device
        from ._nxvae_network import encode_means

        check_is_fitted(self)
        documents = check_documents(X)
        pieces = [ids[: self._max_length] for ids in piece_ids(self.tokenizer_, documents)]
        device = resolve_device(self.device_)
        self.module_.to(device)
        with advise_on_memory(f"transform fewer documents at a time; device {device}"):
            return encode_means(self.module_, pieces, _INFERENCE_BATCH, device)

    def count_tokens(self, X) -> sp.csr_matrix:
        """Count each document's pieces (its first 512), for the bag-of-words decoder.

        :class:`~skdgm.SemiSupervisedVAEClassifier` reconstructs these counts.

        Parameters
        ----------
        X : list of str
            Documents.

        Returns
        -------
        counts : scipy.sparse.csr_matrix of shape (n_documents, ``vocabulary_size_``)
            Piece counts, dtype float32.
        """
        check_is_fitted(self)
        documents = check_documents(X)
        pieces = [ids[:MAX_COUNTED_TOKENS] for ids in piece_ids(self.tokenizer_, documents)]
        lengths = np.array([len(ids) for ids in pieces], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        counts = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(len(documents), self.vocabulary_size_),
        )
        counts.sum_duplicates()
        return counts

    def nearest_words(
        self, word: str, source_language: str, target_language: str, k: int = 5
    ) -> list[tuple[str, float]]:
        """The pieces of ``target_language`` whose embeddings are nearest to ``word``'s.

        Words are the vocabulary's pieces; a whole word is one when the vocabulary has
        it, written as ``"▁word"`` (the "▁" marks a word's first piece). A word is looked
        up as ``"▁" + word`` (normalised: NFKC, lowercase), then as given; one that the
        vocabulary splits into several pieces is refused, never averaged, so that every
        answer is a row of the embedding table.

        Parameters
        ----------
        word : str
            A word, or a piece as :attr:`tokenizer_` writes it (e.g. ``"▁menu"``).
        source_language : str
            The word's language, one of ``languages_``: the word must occur in its
            training documents.
        target_language : str
            The language to search, one of ``languages_``: the candidates are the pieces
            that occur in its training documents.
        k : int, default=5
            Number of neighbours.

        Returns
        -------
        neighbours : list of (str, float)
            Pieces and their cosine similarity to ``word``, most similar first. In its
            own language, a word's first neighbour is itself (similarity 1).

        Raises
        ------
        ValueError
            If a language is not in ``languages_``, if ``word`` is not one piece of the
            vocabulary, or if it never occurs in ``source_language``'s documents.
        """
        check_is_fitted(self)
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        source = self._language_index(source_language, "source_language")
        target = self._language_index(target_language, "target_language")
        piece = self._piece_of(word)
        if self.piece_counts_[source, piece] == 0:
            raise ValueError(
                f"{word!r} (the piece {self.tokenizer_.id_to_token(piece)!r}) never occurs "
                f"in the {source_language!r} training documents, so it is no word of "
                f"that language here. Choose another source_language or word."
            )
        table = self.module_.embedding.weight.detach().cpu().double().numpy()
        table /= np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
        candidates = np.flatnonzero(self.piece_counts_[target] > 0)
        candidates = candidates[candidates >= len(SPECIAL_PIECES)]
        similarities = table[candidates] @ table[piece]
        order = np.argsort(-similarities, kind="stable")[:k]
        return [
            (self.tokenizer_.id_to_token(int(candidates[i])), float(similarities[i]))
            for i in order
        ]

    def _language_index(self, language, role: str) -> int:
        hits = np.flatnonzero(self.languages_ == language) if isinstance(language, str) else []
        if len(hits) == 0:
            raise ValueError(
                f"Unknown {role} {language!r}: this NXVAE was fitted on the languages "
                f"{self.languages_.tolist()}."
            )
        return int(hits[0])

    def _piece_of(self, word) -> int:
        """The id of the one piece that ``word`` is, or a ValueError saying why not."""
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"word must be a non-empty str, got {word!r}.")
        word = word.strip()
        normal = self.tokenizer_.normalizer.normalize_str(word)
        for candidate in (WORD_START + normal, normal, word):
            piece = self.tokenizer_.token_to_id(candidate)
            if piece is not None and piece >= len(SPECIAL_PIECES):
                return piece
        pieces = self.tokenizer_.encode(word, add_special_tokens=False).tokens
        raise ValueError(
            f"{word!r} is not in the NXVAE's vocabulary: it is cut into {len(pieces)} "
            f"pieces {pieces}, and the word vectors are those of single pieces. Ask for "
            "one of its pieces, or fit with a larger vocabulary_size."
        )

    # ----------------------------------------------------------------- plumbing
    @property
    def _n_features_out(self):
        return self._module_kwargs["latent_dim"]

    def __getstate__(self):
        state = dict(super().__getstate__())
        if "module_" in state:
            # Plain CPU tensors and the tokenizer's JSON: the pickle loads anywhere.
            state["module_"] = {k: v.detach().cpu() for k, v in self.module_.state_dict().items()}
            state["tokenizer_"] = self.tokenizer_.to_str()
        return state

    def __setstate__(self, state):
        if isinstance(state.get("module_"), dict):
            from ._nxvae_network import rebuild_network

            state["module_"] = rebuild_network(state["_module_kwargs"], state["module_"])
            state["tokenizer_"] = tokenizer_from_str(state["tokenizer_"])
            if str(state.get("device_", "cpu")).startswith("cuda"):
                import torch

                if not torch.cuda.is_available():  # fitted on a GPU, loaded without one
                    state["device_"] = "cpu"
        self.__dict__.update(state)

    #: Fitted attributes that :func:`skdgm.save` stores as JSON.
    _SAVED_ATTRIBUTES = ("vocabulary_size_", "device_", "history_", "n_iter_", "best_epoch_")

    def _fitted_state(self):
        """The fitted state for :func:`skdgm.save`: (JSON-able values, named tensors)."""
        values = {name: getattr(self, name) for name in self._SAVED_ATTRIBUTES}
        values["languages_"] = [str(name) for name in self.languages_]
        values["tokenizer"] = self.tokenizer_.to_str()
        values["module_kwargs"] = self._module_kwargs
        values["max_length"] = self._max_length
        tensors = {f"module.{k}": v for k, v in self.module_.state_dict().items()}
        tensors["piece_counts_"] = self.piece_counts_
        return values, tensors

    def _restore_fitted_state(self, values, tensors, device):
        """Set the fitted attributes from :meth:`_fitted_state`'s output (:func:`skdgm.load`)."""
        from .._device import resolve_device
        from .._persistence import fitted_device, load_module_state
        from ._nxvae_network import NXVAENetwork

        kwargs = values["module_kwargs"]
        network = NXVAENetwork(**kwargs)
        load_module_state(network, tensors, "module.")
        counts = tensors["piece_counts_"].numpy()
        languages = np.asarray(values["languages_"], dtype=str)
        if counts.shape != (len(languages), kwargs["vocabulary_size"]):
            raise ValueError("piece_counts_ does not match the languages and the vocabulary")
        for name in self._SAVED_ATTRIBUTES:
            setattr(self, name, values[name])
        self.device_ = fitted_device(values["device_"], device)
        self.tokenizer_ = tokenizer_from_str(values["tokenizer"])
        self.languages_ = languages
        self.piece_counts_ = counts
        self._module_kwargs = kwargs
        self._max_length = int(values["max_length"])
        self.module_ = network.to(resolve_device(self.device_)).eval()
