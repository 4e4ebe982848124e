"""SetFit as a scikit-learn classifier: the few-shot baseline of the benchmark.

SetFit (Tunstall et al. 2022) fine-tunes a sentence encoder contrastively on pairs of
labelled documents, then fits a logistic regression on its embeddings. This wrapper gives
it the scikit-learn API (documents in, labels out, ``-1`` rows ignored) and the same
encoder weights as :class:`~skdgm.encoders.MultilingualEncoder` (the offline copy of
multilingual-e5-small when the Hub is out of reach). It needs the optional ``setfit``
package: ``pip install 'skdgm[setfit]'``.
"""

from __future__ import annotations

import copy
import os
import tempfile
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._documents import check_documents
from ._validation import check_semi_supervised_labels

__all__ = ["SetFitClassifier", "setfit_available"]


def setfit_available() -> bool:
    """Whether the optional ``setfit`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("setfit") is not None


class SetFitClassifier(ClassifierMixin, BaseEstimator):
    """SetFit few-shot classifier on a multilingual sentence encoder.

    Trains on the labelled rows only; rows marked ``-1`` are ignored, so that it can be
    compared on the same draws as the semi-supervised models.

    Parameters
    ----------
    model_name : str or path-like, default="intfloat/multilingual-e5-small"
        Hub name or folder, resolved as :class:`~skdgm.encoders.MultilingualEncoder` does
        (the offline copy of the default model without the Hub).
    num_iterations : int, default=20
        Pairs generated per labelled document (SetFit's classic setting).
    num_epochs : int, default=1
        Epochs of contrastive training of the encoder.
    batch_size : int, default=16
        Pairs per step.
    body_learning_rate : float, default=2e-5
        Learning rate of the encoder.
    max_length : int, default=128
        Tokens per document seen by the encoder.
    prefix : str, default="auto"
        Text put before each document, as :class:`~skdgm.encoders.MultilingualEncoder`
        resolves it (``"passage: "`` for e5 models).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where the encoder trains.
    random_state : int, RandomState instance or None, default=None
        Seeds the pair sampling, the initialisation and the head.
    verbose : int, default=0
        Show SetFit's progress bars when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in the labelled rows.
    model_ : setfit.SetFitModel
        The trained model (on the CPU in a pickle, wherever it trained).
    prefix_ : str
        The text put before each document (``prefix`` resolved).

    Notes
    -----
    :func:`skdgm.save` does not store this estimator: SetFit saves its head with pickle
    (joblib). Pickle the fitted estimator instead (``pickle`` or ``joblib.dump``), and
    load only pickles you trust.
    """

    _parameter_constraints: dict = {
        "model_name": [str, os.PathLike],
        "num_iterations": [Interval(Integral, 1, None, closed="left")],
        "num_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "body_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "prefix": [str],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model_name="intfloat/multilingual-e5-small",
        *,
        num_iterations: int = 20,
        num_epochs: int = 1,
        batch_size: int = 16,
        body_learning_rate: float = 2e-5,
        max_length: int = 128,
        prefix: str = "auto",
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ):
        self.model_name = model_name
        self.num_iterations = num_iterations
        self.num_epochs = num_epochs
        self.batch_size = batch_size
        self.body_learning_rate = body_learning_rate
        self.max_length = max_length
        self.prefix = prefix
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fine-tune the encoder on pairs of labelled documents, then fit the head.

        Parameters
        ----------
        X : list of str
            Documents.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for rows to ignore.

        Returns
        -------
        self : SetFitClassifier
            The fitted classifier.
        """
        if not setfit_available():
            raise ImportError(
                "SetFitClassifier needs the setfit package: pip install 'skdgm[setfit]'."
            )
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments

        from ._device import global_rng_kept, resolve_device
        from .encoders import MultilingualEncoder

        docs = check_documents(X, min_documents=2)
        y = np.asarray(y)
        if len(y) != len(docs):
            raise ValueError(f"X has {len(docs)} documents but y has {len(y)} labels.")
        labelled, classes, y_index = check_semi_supervised_labels(y)
        encoder = MultilingualEncoder(self.model_name, prefix=self.prefix, device="cpu")
        encoder.fit(docs[:1])
        prefix = encoder.prefix_
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        model = SetFitModel.from_pretrained(encoder.model_path_, device=str(device))
        # setfit passes its own max_length to the head phase only: cap the encoder itself.
        model.model_body.max_seq_length = self.max_length
        texts = [prefix + docs[i] for i in np.flatnonzero(labelled)]
        # setfit seeds Python's, numpy's and torch's global generators (transformers'
        # set_seed): they are put back as they were, as the package's other estimators do.
        with tempfile.TemporaryDirectory(prefix="skdgm-setfit-") as folder, global_rng_kept():
            args = TrainingArguments(
                output_dir=folder,
                batch_size=self.batch_size,
                num_epochs=self.num_epochs,
                num_iterations=self.num_iterations,
                body_learning_rate=self.body_learning_rate,
                max_length=self.max_length,
                seed=seed,
                show_progress_bar=self.verbose > 0,
                report_to="none",
                save_strategy="no",
                logging_strategy="no",
            )
            data = Dataset.from_dict({"text": texts, "label": y_index.tolist()})
            trainer = Trainer(model=model, args=args, train_dataset=data)
            # The underlying transformers Trainer: its bars, and memory pinning for GPUs only.
            trainer.st_trainer.args.disable_tqdm = self.verbose <= 0
            trainer.st_trainer.args.dataloader_pin_memory = device.type == "cuda"
            trainer.train()
        # Every fitted attribute at the end: a failed fit leaves the estimator as it was.
        self.model_ = model
        self.prefix_ = prefix
        self.classes_ = classes
        return self

    def predict_proba(self, X):
        """Class probabilities of the logistic head.

        Parameters
        ----------
        X : list of str
            Documents.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        docs = [self.prefix_ + doc for doc in check_documents(X, min_documents=1)]
        proba = np.asarray(self.model_.predict_proba(docs, as_numpy=True), dtype=np.float64)
        # SetFit's head gives float32 rows, off 1 by up to ~1e-7: renormalised in float64,
        # as scikit-learn's classifiers give them.
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : list of str
            Documents.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.get("model_")
        if model is not None and model.device.type != "cpu":
            # A copy on the CPU: the pickle loads on machines without the training device.
            state["model_"] = copy.deepcopy(model).to("cpu")
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.non_deterministic = True
        return tags
