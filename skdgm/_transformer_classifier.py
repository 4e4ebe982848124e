"""TransformerClassifier: a pretrained encoder fine-tuned with a classification head.

The supervised baseline of Zhu et al. (EACL 2021): multilingual BERT fine-tuned on the
labelled documents alone. Wrapped by :class:`~sklearn.semi_supervised.SelfTrainingClassifier`
(with documents encoded by :func:`~skdgm.documents_as_array`) it is the paper's BERT+ST.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import LabelledScoreMixin, advise_on_memory
from ._documents import check_documents
from ._persistence import PersistenceMixin
from ._validation import check_labels_length, check_semi_supervised_labels, validation_split

__all__ = ["TransformerClassifier"]

#: What an encoder needs besides fit/transform to be fine-tuned (see encoders/_tuning.py).
_TUNING_METHODS = ("_token_states", "_tunable_top", "_with_tuned_top")


class TransformerClassifier(LabelledScoreMixin, ClassifierMixin, PersistenceMixin, BaseEstimator):
    """Fine-tune a pretrained transformer encoder with a classification head.

    The supervised baseline of Zhu et al. (EACL 2021): the encoder's top layers and a
    head (``LayerNorm -> Dropout -> Linear``) on its pooled document embedding train
    with the cross-entropy of the labelled rows. ``y`` follows the semi-supervised
    convention of :class:`~skdgm.SemiSupervisedVAEClassifier`: rows marked ``-1`` are
    ignored, so both models take the same data. Wrapped by
    :class:`~sklearn.semi_supervised.SelfTrainingClassifier` (on documents encoded by
    :func:`~skdgm.documents_as_array`, see the user guide), it is the paper's BERT+ST.

    What trains: the top ``fine_tune_layers`` transformer layers of the encoder and the
    head, with AdamW. The embedding table and the layers below stay frozen: they run
    once per labelled document per ``fit``, and their output is stored (bfloat16; in a
    temporary file when over 1 GiB), so that an epoch runs only the top layers. The
    model folder is never written to; the tuned weights live in ``encoder_``.

    Parameters
    ----------
    encoder : encoder or None, default=None
        The pretrained encoder, e.g. :class:`~skdgm.encoders.MultilingualEncoder`
        (pooling, maximum length, prefix, precision and normalisation are its
        settings). None means ``MultilingualEncoder()`` (multilingual-e5-small). It is
        cloned and fitted in ``fit``. Any other encoder needs the fine-tuning methods of
        ``MultilingualEncoder`` (``_token_states``, ``_tunable_top``, ``_with_tuned_top``).
    fine_tune_layers : int or "all", default=2
        Number of the encoder's top transformer layers that train; ``"all"`` trains
        every layer. The embedding table always stays frozen. Each layer trained costs a
        forward and a backward pass per document and epoch.
    max_epochs : int or "auto", default="auto"
        Passes over the labelled rows. ``"auto"``: 20, or more when the labelled rows
        are so few that 20 passes would make fewer than 100 optimisation steps (100
        passes over 16 labels in batches of 16). With 16 labels, 20 passes left the head
        nearly untrained (0.52-0.58 accuracy on the bundled English pages, 0.71-0.73
        with 100).
    batch_size : int, default=16
        Labelled rows per optimisation step.
    learning_rate : float, default=5e-5
        AdamW's step size for the encoder's layers. Both step sizes rise linearly from 0
        over the first 10 % of the steps of ``max_epochs`` epochs, then decay linearly
        to 0.
    head_learning_rate : float, default=1e-3
        AdamW's step size for the head.
    weight_decay : float, default=0.01
        AdamW's decoupled weight decay of the weight matrices (biases and normalisation
        weights are not decayed).
    dropout : float, default=0.1
        Dropout rate before the head's linear layer (the encoder's layers keep their
        own dropout).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the labelled rows (stratified), stop when
        their accuracy (ties: cross-entropy) has not improved for ``n_iter_no_change``
        epochs, and keep the best epoch's weights.
    validation_fraction : float, default=0.1
        Fraction of the labelled rows held out for early stopping.
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where the layers and the head train; ``"auto"`` picks CUDA when available. The
        frozen layers run where the encoder's own ``device`` says.
    random_state : int, RandomState instance or None, default=None
        Seeds the head's initialisation, dropout, shuffling and the validation split.
        Global random states (numpy's, torch's) are left untouched.
    verbose : int, default=0
        Show a progress bar over epochs when > 0.
    warm_start : bool, default=False
        Go on from the previous ``fit``'s tuned layers and head (same classes and
        ``fine_tune_layers``), with fresh optimiser and learning-rate schedule. The
        fitted ``encoder_`` is what goes on: a new ``encoder`` set after that fit is
        used only by a fit with ``warm_start=False``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in the labelled rows.
    encoder_ : encoder
        The fitted clone of ``encoder`` with the tuned top layers
        (``encoder_.tuned_layers_``): ``predict`` and ``predict_proba`` embed documents
        through it, and ``encoder_.transform(docs)`` gives the tuned embeddings.
    head_ : torch.nn.Module
        The classification head.
    tuned_layers_ : int
        The number of layers trained (``fine_tune_layers`` with ``"all"`` resolved).
    history_ : list of dict
        One dict per epoch: ``epoch``, ``loss`` (mean training cross-entropy),
        ``train_accuracy`` (with dropout on), ``valid_accuracy`` and ``valid_loss``
        (with early stopping) and ``duration`` in seconds.
    n_iter_ : int
        Number of epochs run in the last ``fit``.
    best_epoch_ : int
        With early stopping: the epoch whose weights were kept.
    device_ : str
        The resolved ``device``.

    See Also
    --------
    SemiSupervisedVAEClassifier : The semi-supervised deep generative model.
    documents_as_array : Documents as a numeric matrix, for SelfTrainingClassifier.

    References
    ----------
    Devlin, Chang, Lee and Toutanova, "BERT: pre-training of deep bidirectional
    transformers for language understanding", NAACL 2019.
    Zhu, Shareghi, Li, Reichart and Korhonen, "Combining deep generative models and
    multi-lingual pretraining for semi-supervised document classification", EACL 2021.

    Examples
    --------
    >>> from skdgm import TransformerClassifier
    >>> docs = ["The printer is out of paper.", "Der Drucker hat kein Papier.",
    ...         "Insert a table.", "Fügen Sie eine Tabelle ein.", "Une autre page."]
    >>> y = [0, 0, 1, 1, -1]  # the last document is unlabelled: ignored
    >>> clf = TransformerClassifier(max_epochs=3, random_state=0)
    >>> clf.fit(docs, y).predict(["Il manque du papier."])  # doctest: +SKIP
    array([0])
    """

    _parameter_constraints: dict = {
        "encoder": [None, HasMethods(["fit", "transform", *_TUNING_METHODS])],
        "fine_tune_layers": [Interval(Integral, 1, None, closed="left"), StrOptions({"all"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "head_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        encoder=None,
        *,
        fine_tune_layers=2,
        max_epochs: int | str = "auto",
        batch_size: int = 16,
        learning_rate: float = 5e-5,
        head_learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        dropout: float = 0.1,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
        warm_start: bool = False,
    ):
        self.encoder = encoder
        self.fine_tune_layers = fine_tune_layers
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fine-tune the encoder's top layers and the head on the labelled rows.

        Parameters
        ----------
        X : list of str or matrix from :func:`~skdgm.documents_as_array`
            Documents.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for rows to ignore (unlabelled).

        Returns
        -------
        self : TransformerClassifier
            The fitted classifier.
        """
        from ._device import fork_rng, resolve_device
        from ._transformer_training import new_head, train_epochs
        from .encoders._tuning import DocumentEmbedder

        docs = check_documents(X, min_documents=2)
        y = check_labels_length(y, len(docs))
        labelled_mask, classes, y_index = check_semi_supervised_labels(y)
        reuse = self.warm_start and self.__sklearn_is_fitted__()
        if reuse and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start=True needs the same classes as the previous fit: got "
                f"{classes.tolist()}, previously {self.classes_.tolist()}. Set warm_start=False."
            )
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        all_pos = np.arange(len(y_index))
        train_pos, valid_pos = all_pos, all_pos[:0]
        if self.early_stopping:
            train_pos, valid_pos = validation_split(y_index, self.validation_fraction, rng)
        labelled_docs = [docs[i] for i in np.flatnonzero(labelled_mask)]
        # With warm_start too, a pretrained encoder takes the tuned layers at the end: a
        # copy of the tuned encoder_ would keep its old layers for its next reload.
        encoder = (clone(self.encoder_) if reuse else self._new_encoder()).fit(labelled_docs)
        n_top = self._resolve_layers(encoder)
        if reuse and n_top != self.tuned_layers_:
            raise ValueError(
                f"warm_start=True goes on tuning the previous fit's top {self.tuned_layers_} "
                f"layers, but fine_tune_layers={self.fine_tune_layers} means {n_top}. Set "
                f"fine_tune_layers={self.tuned_layers_}, or warm_start=False."
            )
        states = encoder._token_states(labelled_docs, n_top)
        try:
            # The trainable layers: pretrained, or the previous fit's tuned ones.
            top = (self.encoder_ if reuse else encoder)._tunable_top(n_top)
            home = next(top.parameters()).device
            embedder = DocumentEmbedder(top, states).to(device)
            head_kwargs = dict(
                hidden_size=states.hidden_size, n_classes=len(classes), dropout=self.dropout
            )
            history = []
            memory = (
                f"lower batch_size (now {self.batch_size}), fine_tune_layers or the encoder's "
                f"max_length; device {device}"
            )
            with fork_rng(device, seed), advise_on_memory(memory):
                head = new_head(**head_kwargs)
                if reuse:
                    head.load_state_dict(self.head_.state_dict())
                head.to(device)
                n_epochs, best_epoch, interrupted = train_epochs(
                    self,
                    embedder,
                    head,
                    y_index,
                    train_pos,
                    valid_pos,
                    np.random.default_rng(seed),
                    history,
                )
            tuned_encoder = encoder._with_tuned_top(top.to(home))
        finally:
            states.close()
        if interrupted:
            kept = (
                f"the parameters of its best epoch ({best_epoch})"
                if best_epoch
                else "the parameters reached when it stopped"
            )
            warnings.warn(
                f"Training was interrupted after {n_epochs} complete epoch(s); the estimator "
                f"is fitted with {kept}. Fit again to train it fully.",
                UserWarning,
                stacklevel=3,
            )
        # Every fitted attribute at the end: a failed fit leaves the estimator as it was.
        self.classes_ = classes
        self.encoder_ = tuned_encoder
        self.head_ = head.eval()
        self._head_kwargs = head_kwargs
        self.tuned_layers_ = n_top
        self.history_ = history
        self.n_iter_ = n_epochs
        self.device_ = str(device)
        if self.early_stopping:
            self.best_epoch_ = best_epoch
        elif hasattr(self, "best_epoch_"):
            del self.best_epoch_  # from an earlier fit with early stopping
        return self

    def _new_encoder(self):
        if self.encoder is None:
            from .encoders import MultilingualEncoder

            return MultilingualEncoder()
        return clone(self.encoder)

    def _resolve_layers(self, encoder) -> int:
        """``fine_tune_layers`` as a number of layers, checked against the encoder's model."""
        from .encoders._tuning import count_layers

        model = getattr(encoder, "_model", None)
        n_layers = count_layers(model) if model is not None else None
        if self.fine_tune_layers == "all":
            if n_layers is None:
                raise ValueError(
                    f"fine_tune_layers='all' needs to know the encoder's layers, but "
                    f"{type(encoder).__name__} has no `_model`. Give a number of layers."
                )
            return n_layers
        if n_layers is not None and self.fine_tune_layers > n_layers:
            raise ValueError(
                f"fine_tune_layers={self.fine_tune_layers}, but the encoder's model has "
                f"{n_layers} transformer layers; use 1 to {n_layers}, or 'all'."
            )
        return int(self.fine_tune_layers)

    # --------------------------------------------------------------- prediction
    def _logits(self, X):
        """Float64 logits (CPU tensor) of the head on the tuned embeddings of ``X``."""
        from ._device import resolve_device
        from ._transformer_training import head_logits

        check_is_fitted(self)
        documents = check_documents(X, min_documents=1)
        features = np.asarray(self.encoder_.transform(documents), dtype=np.float32)
        self.head_.to(resolve_device(self.device_))
        return head_logits(self.head_, features)

    def predict_log_proba(self, X):
        """Log of the class probabilities.

        Parameters
        ----------
        X : list of str or matrix from :func:`~skdgm.documents_as_array`
            Documents.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        import torch

        return torch.log_softmax(self._logits(X), dim=1).numpy()

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : list of str or matrix from :func:`~skdgm.documents_as_array`
            Documents.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), dtype float64
            Rows sum to 1; columns follow ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Predict the class of each document.

        Parameters
        ----------
        X : list of str or matrix from :func:`~skdgm.documents_as_array`
            Documents.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_``.
        """
        index = self._logits(X).argmax(1).numpy()
        return self.classes_[index]

    # ----------------------------------------------------------------- plumbing
    def __sklearn_is_fitted__(self):
        return hasattr(self, "head_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def __getstate__(self):
        state = dict(super().__getstate__())
        if "head_" in state:
            # Plain CPU tensors: the pickle loads on machines without the training device.
            state["head_"] = {k: v.detach().cpu() for k, v in self.head_.state_dict().items()}
        return state

    def __setstate__(self, state):
        head_state = state.get("head_")
        if isinstance(head_state, dict):
            from ._transformer_training import new_head

            head = new_head(**state["_head_kwargs"])
            head.load_state_dict(head_state)
            state["head_"] = head.eval()
            if str(state.get("device_", "cpu")).startswith("cuda"):
                import torch

                if not torch.cuda.is_available():  # fitted on a GPU, loaded without one
                    state["device_"] = "cpu"
        super().__setstate__(state)

    def _fitted_state(self):
        """The fitted state for :func:`skdgm.save`: (JSON-able values, named tensors)."""
        values = {
            "classes_": self.classes_,
            "encoder_": self.encoder_,
            "head_kwargs": self._head_kwargs,
            "tuned_layers_": self.tuned_layers_,
            "history_": self.history_,
            "n_iter_": self.n_iter_,
            "device_": self.device_,
        }
        if hasattr(self, "best_epoch_"):
            values["best_epoch_"] = self.best_epoch_
        return values, {f"head.{k}": v for k, v in self.head_.state_dict().items()}

    def _restore_fitted_state(self, values, tensors, device):
        """Set the fitted attributes from :meth:`_fitted_state`'s output (:func:`skdgm.load`)."""
        from ._device import resolve_device
        from ._persistence import fitted_device, load_module_state
        from ._transformer_training import new_head

        head = new_head(**values["head_kwargs"])
        load_module_state(head, tensors, "head.")
        self.device_ = fitted_device(values["device_"], device)
        self.classes_ = np.asarray(values["classes_"])
        self.encoder_ = values["encoder_"]
        self.head_ = head.to(resolve_device(self.device_)).eval()
        self._head_kwargs = values["head_kwargs"]
        self.tuned_layers_ = values["tuned_layers_"]
        self.history_ = values["history_"]
        self.n_iter_ = values["n_iter_"]
        if "best_epoch_" in values:
            self.best_epoch_ = values["best_epoch_"]
