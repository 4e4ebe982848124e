"""SemiSupervisedVAEClassifier: the scikit-learn face of the stacked M1+M2 model."""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, _fit_context
from sklearn.utils import TransformerTags, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import LabelledScoreMixin
from ._classifier_state import (
    SET_BY_VALIDATION,
    fitted_attributes,
    fitted_state,
    pickled_state,
    unpickled_state,
)
from ._documents import check_documents
from ._features import (
    check_fit_input,
    fit_encoder,
    prediction_features,
    resolve_decoder,
    split_numeric,
    take_rows,
    token_ids,
    training_inputs,
)
from ._persistence import PersistenceMixin
from ._validation import check_semi_supervised_labels, unlabelled_sample, validation_split

__all__ = ["SemiSupervisedVAEClassifier"]

#: Documents whose inputs ``predict``, ``predict_proba`` and ``transform`` build at a time.
_PREDICT_CHUNK = 16384


class SemiSupervisedVAEClassifier(
    LabelledScoreMixin, ClassifierMixin, TransformerMixin, PersistenceMixin, BaseEstimator
):
    """Semi-supervised classifier built on a deep generative model (stacked M1+M2).

    Kingma et al.'s M1+M2 model, as in Zhu et al. (EACL 2021): documents (or numeric
    features) are encoded into a latent variable z1; the class y and a second latent z2
    generate z1; a decoder reconstructs each document from z1. Unlabelled rows, marked
    ``-1`` in ``y`` as in :class:`~sklearn.semi_supervised.LabelSpreading`, train the model
    through the reconstruction and through the class posterior q(y | z1), which is also the
    classifier.

    What trains: the SDGM's networks (q(z1 | x), q(y | z1), q(z2 | z1, y), p(z1 | y, z2)
    and the decoder) jointly, on every row. The encoder's pretrained weights stay frozen
    unless ``fine_tune_layers`` > 0: then its top ``fine_tune_layers`` transformer layers
    train too, with the SDGM's objective on labelled and unlabelled rows alike, during the
    last ``fine_tune_epochs`` epochs (the paper's end-to-end model). The layers below run
    once per document per ``fit``; their output is stored (bfloat16; in a temporary file
    when over 1 GiB), so that a fine-tuning epoch runs only the top layers.

    With ``training="two_stage"``, Kingma's two-stage M1+M2 instead: first M1, a VAE
    from x to z1 (q(z1 | x) and the decoder, with p(z1) = N(0, I)), on every row with
    labels unused; then q(z1 | x) is frozen and M2 (q(y | z1), q(z2 | z1, y),
    p(z1 | y, z2)) trains on the posterior mean of z1.

    Parameters
    ----------
    encoder : transformer or None, default=None
        Turns raw documents into dense features, e.g.
        :class:`~skdgm.encoders.MultilingualEncoder`. It is cloned and fitted in ``fit``.
        With an encoder, ``X`` is a list of documents; without one, ``X`` is a numeric
        matrix (dense, or scipy sparse such as ``CountVectorizer`` output).
    decoder : {"auto", "gaussian", "bow", "gru"}, default="auto"
        What p(x | z1) reconstructs. ``"gaussian"``: the (standardised) features.
        ``"bow"``: a multinomial over word counts; ``X`` must hold non-negative integer
        counts, or, with an encoder, the bag of subword pieces of each document from the
        encoder's own tokenizer is used. ``"gru"`` (documents only): the sequence of the
        document's first ``max_decoder_length`` pieces, with an autoregressive GRU
        decoder (teacher forcing, z1 as its initial state and at every step), over the
        ``vocabulary_size`` most frequent pieces (others become one unknown piece); an
        epoch costs about 30 times a ``"bow"`` one at the default length (see the user
        guide).
        ``"auto"`` is ``"bow"`` with an encoder that can count tokens, ``"gaussian"``
        otherwise.
    z1_dim : int, default=64
        Size of the latent variable z1 that the classifier sees.
    z2_dim : int, default=32
        Size of the latent variable z2.
    hidden_dim : int, default=256
        Width of the hidden layers of every network (and of the GRU decoder's state and
        piece embeddings).
    n_layers : int, default=1
        Hidden layers of the inference network q(z1 | x).
    dropout : float, default=0.1
        Dropout rate in every network.
    alpha : float, default=1.0
        Weight of the cross-entropy of q(y | z1) on labelled rows, added to the ELBO
        (Kingma's alpha).
    vocabulary_size : int, default=5000
        With an encoder: the number of most frequent subword pieces of the training
        documents that the bag-of-words or GRU decoder reconstructs and whose TF-IDF the
        inference network sees. Without one, all columns of ``X`` are used.
    max_decoder_length : int, default=64
        ``decoder="gru"`` only: pieces of each document the decoder reconstructs (an end
        token included when the document is shorter). The GRU's cost grows linearly
        with it; the inference network still sees the whole document.
    word_dropout : float, default=0.25
        ``decoder="gru"`` only: probability with which, in training, each piece the
        decoder reads (teacher forcing) is replaced by the unknown piece (Bowman et al.
        2016), so that the decoder needs z1 and does not ignore it (posterior collapse).
    max_epochs : int, default=100
        Epochs of joint training (after the warm-up). An epoch is one pass over the
        unlabelled rows, each mini-batch paired with a batch of labelled rows (over the
        labelled rows, the unlabelled ones cycling, when the labelled are more), or over
        ``epoch_size`` of them when there are more. With ``training="two_stage"``, epochs
        of each stage: M1's epochs are passes over every row in batches of
        ``batch_size``, or over ``epoch_size`` rows.
    epoch_size : int or None, default=2048
        Rows an epoch passes over at most. With more unlabelled rows than this, each
        epoch takes the next ``epoch_size`` of them in a shuffled order that carries on
        from one epoch to the next (every row is seen once before any is seen again), so
        that a fit costs at most ``max_epochs * epoch_size / batch_size`` steps
        (3,200 with the defaults) whatever the size of the corpus. Below it, an epoch is
        a pass over every unlabelled row, as before this parameter existed: the defaults
        were tuned on fits of at most 700 unlabelled rows, and at 100,000 documents
        accuracy stopped growing at about 1,024 rows an epoch (``docs/tuning.rst``).
        None: every row, every epoch.
    max_unlabelled : int or None, default=32768
        Unlabelled rows a fit learns from at most. With more, a random sample of that
        many (drawn from ``random_state``) trains the model with every labelled row, and
        the others are predicted afterwards, a chunk at a time, for ``transduction_``:
        the fit's time and memory (its inputs, the regressions) stop growing with the
        corpus. With the default budget a fit sees about 200,000 unlabelled rows in all,
        so a larger sample would be seen less than once a row. None: every row.
    batch_size : int, default=64
        Rows of each kind (labelled, unlabelled) in a mini-batch.
    learning_rate : float, default=1e-3
        Adam's step size.
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    warm_up_epochs : int, default=0
        Epochs that train the classifier alone on the labelled rows before joint training
        (before M2, with ``training="two_stage"``).
    kl_annealing_epochs : int, default=0
        Epochs over which the weight of the KL terms rises linearly from 0 to 1 (0: off);
        with ``training="two_stage"``, in each stage.
    free_bits : float, default=0.0
        Nats of KL(q(z1 | x) || p(z1 | y, z2)) per dimension not penalised (0: off); with
        ``training="two_stage"``, of M1's KL(q(z1 | x) || N(0, I)).
    prior : {"estimated", "uniform", "labelled"}, default="estimated"
        p(y). ``"estimated"``: the class proportions a logistic regression fitted on the
        labelled rows (on the inference network's inputs) predicts for the unlabelled
        rows, since a stratified handful of labels says nothing about how common each
        class is; ``"uniform"``; or the class proportions of the labelled rows.
    marginal_weight : float, default=0.03
        Weight of KL(q(y) || p(y)), q(y) the mean of q(y | x) over the unlabelled rows
        of a mini-batch: the predicted class proportions stay near the prior, so that no
        class swallows another (0: off). See ``docs/tuning.rst``, round 11.
    linear_weight : float in [0, 1] or "auto", default="auto"
        Weight w of a logistic regression (``C=10``, fitted on the labelled rows after
        the SDGM) in the predictions: log p(y | x) = (1 - w) log q(y | x) + w log
        p_lr(y | x) + const, the regression reading [embedding, L2-normalised ; TF-IDF
        of pieces]. With many labels per class the discriminative model on the same
        inputs catches up with the generative one; pooled, they beat both.
        ``"auto"``: w = m / (m + 2), m the labelled rows per class (w = 0.5 at 2 labels
        per class, 0.8 at 8, 0.94 at 32), times the share of the unlabelled documents'
        pieces that the labelled ones have, relative to how the labelled documents
        cover each other (capped at 1: about 1 within a language; a fifth to a third
        when the labelled documents are in another language than the rest, where the
        regression knows few of the pieces it reads), on documents; 0 on a numeric
        ``X``. With ``linear_pseudo_labels`` > 0 the coverage is that of the
        regression's own rows, labelled and pseudo-labelled, over the unlabelled rows
        left. 0: the SDGM's q(y | x) alone. The SDGM's training does not depend on it;
        ``transform`` neither. See ``docs/tuning.rst``, rounds 13 and 14.
    linear_pseudo_labels : float in [0, 1], default=0.5
        Self-training of the logistic regression of ``linear_weight``, one round: after
        the first pooled predictions, the regression is fitted again on the labelled rows
        and, in each predicted class, this share of the unlabelled rows the pooled model
        is surest of, with their predicted labels; the predictions pool q(y | x) with
        that regression, its weight resolved as in ``linear_weight`` with m counting
        the pseudo-labelled rows as labels (hundreds of rows: w about 0.98, the
        regression taught by the SDGM carries the predictions) and the coverage of its
        own rows (across languages the taught rows are in the unlabelled documents'
        language, so it knows their pieces). A few dozen labels teach the regression
        little; the SDGM, which learnt from every row, teaches it more (the study in
        ``docs/tuning.rst``, round 15; the weight rule chosen on the dev split in
        round 17). 0: the regression learns from the labelled rows
        alone. Costs one more regression (about a second); the SDGM's training does not
        depend on it. No effect when the linear expert is off.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the labelled rows (stratified), stop when their
        accuracy has not improved for ``n_iter_no_change`` epochs, and keep the best
        epoch's parameters (with ``training="two_stage"``, in M2's stage; M1, which has
        no classifier, runs all its epochs). Off by default: with a few dozen labels, the
        rows it holds out cost more than it saves (measured on the bundled corpus, 5
        languages: 82.6 % vs 77.1 % test accuracy with 64 labels per language, see
        ``docs/tuning.rst``).
    validation_fraction : float, default=0.1
        Fraction of the labelled rows held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where the model runs; ``"auto"`` picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, sampling, dropout, shuffling and the validation split.
        Global random states (numpy's, torch's) are left untouched.
    verbose : int, default=0
        Show a progress bar over epochs when > 0.
    warm_start : bool, default=False
        Reuse the parameters of the previous ``fit`` (same data shape and classes), the
        tuned encoder layers included. A parameter that shapes the networks (``z1_dim``,
        ``z2_dim``, ``hidden_dim``, ``n_layers``, ``dropout``, ``word_dropout``,
        ``classifier_sees_inputs``), the decoder or ``ensemble_size`` changed since that
        fit is refused with a ``ValueError``. With tuned layers, the fitted ``encoder_`` is what
        goes on: a new ``encoder`` set after that fit is used only by a fit with
        ``warm_start=False``.
    classifier_sees_inputs : bool or "auto", default="auto"
        The classifier is q(y | z1, x) = softmax(W z1 + V x) instead of q(y | z1): it sees
        the inference network's inputs (embedding and TF-IDF) beside z1. ``"auto"``: on
        documents (with an encoder), where it was 1.1 points ahead at 16 labels and 0.5 at
        64 over 5 languages; not on a numeric ``X``, whose scale the package does not
        control (on raw counts the linear term fell to chance). See ``docs/tuning.rst``.
    fine_tune_layers : int, default=0
        Number of the encoder's top transformer layers trained with the SDGM (0: the
        encoder stays frozen). Needs an encoder that can be fine-tuned, such as
        :class:`~skdgm.encoders.MultilingualEncoder`. The tuned weights live in
        ``encoder_``; the model folder is never written to.
    fine_tune_epochs : int, default=5
        Epochs, after the ``max_epochs`` epochs on the frozen encoder, in which the top
        layers train too (ignored when ``fine_tune_layers=0``; in M1 with
        ``training="two_stage"``). Each costs a forward and
        a backward pass of ``fine_tune_layers`` layers over every document.
    fine_tune_learning_rate : float, default=5e-5
        AdamW's step size for the encoder's layers; it decays linearly to 0 over the
        fine-tuning epochs.
    training : {"joint", "two_stage"}, default="joint"
        ``"joint"``: every network trains together, end to end (Zhu et al.).
        ``"two_stage"``: Kingma et al.'s M1+M2. Stage 1 (M1) trains q(z1 | x) and the
        decoder as a VAE on every row for ``max_epochs`` epochs, then
        ``fine_tune_epochs`` more with the encoder's top layers when
        ``fine_tune_layers`` > 0 (the encoder trains in stage 1 only). Stage 2 (M2)
        freezes q(z1 | x) and trains q(y | z1), q(z2 | z1, y) and p(z1 | y, z2) on the
        posterior mean of z1 (deterministic, as predictions use it) for
        ``warm_up_epochs`` + ``max_epochs`` epochs, with early stopping if asked.
    average_epochs : int, default=25
        End with the mean of the parameters reached at the end of each of the last
        ``average_epochs`` epochs, at most the second half of the epochs after the
        warm-up, and only epochs that tune the encoder when ``fine_tune_layers`` > 0
        (Polyak averaging; the tuned encoder layers too; in each stage with
        ``training="two_stage"``): a fit's training noise averaged out at no extra
        cost. 0: the last epoch's parameters. Ignored with ``early_stopping=True``,
        which keeps the best epoch's. With 16 labels per language it gained 0.5 points
        on 9 of 10 draws (level on the 10th); with 64 it was level (``docs/tuning.rst``,
        round 7).
    ensemble_size : int, default=1
        Number of SDGMs fitted on the same rows, each with its own seed (drawn from
        ``random_state``; the first one is the fit ``ensemble_size=1`` gives), whose
        class probabilities are averaged: ``predict``, ``predict_proba`` and
        ``transduction_`` use the mean, ``transform`` gives every member's z1 side by
        side. The fit takes ``ensemble_size`` times as long. Needs
        ``fine_tune_layers=0`` (the members share the encoder). See
        ``docs/tuning.rst``, round 10, for what it gained.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in the labelled rows.
    n_features_in_ : int
        Number of features of ``X`` (numeric input only).
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features, when ``X`` has string column names.
    transduction_ : ndarray of shape (n_samples,)
        A label for every training row: the given label of labelled rows, the predicted
        one of unlabelled rows.
    linear_weight_ : float
        The weight the logistic regression has in the predictions (``linear_weight``
        resolved, the pieces' coverage included; 0 when the predictions are q(y | x)
        alone, also when some class had no labelled row to fit the regression on).
    n_pseudo_labels_ : int
        The unlabelled rows the regression was fitted on with their predicted labels
        (``linear_pseudo_labels``; 0 when none).
    history_ : list of dict
        One dict per epoch: losses, cross-entropy, KL terms, training and validation
        accuracy, active units of z1 (dimensions whose posterior mean varies across
        documents with a variance over 0.01; fewer means posterior collapse), KL weight,
        duration and ``phase`` ("warm-up", "joint", "fine-tune"; "m1", "m1-fine-tune",
        "m2" in two stages). With ``ensemble_size`` > 1, the members' epochs one after
        the other, each numbered from 1 within its member and with its ``member`` (0,
        1, ...).
    n_iter_ : int
        Number of epochs run in the last ``fit`` (both stages with
        ``training="two_stage"``; every member's with ``ensemble_size`` > 1).
    best_epoch_ : int
        The epoch whose parameters were kept: with early stopping the best one on the
        held-out rows, otherwise the last one (``n_iter_``); the first member's, its
        epochs numbered from 1, with ``ensemble_size`` > 1.
    encoder_ : transformer or None
        The fitted clone of ``encoder`` (None for numeric input); with
        ``fine_tune_layers`` > 0, its top layers hold the tuned weights
        (``encoder_.tuned_layers_``), and ``predict``, ``predict_proba`` and
        ``transform`` use them.
    decoder_ : str
        The resolved ``decoder``.
    device_ : str
        The resolved ``device``.

    See Also
    --------
    sklearn.semi_supervised.SelfTrainingClassifier : Self-training around a classifier.
    sklearn.semi_supervised.LabelSpreading : Graph-based label spreading.

    References
    ----------
    Kingma, Rezende, Mohamed and Welling, "Semi-supervised learning with deep generative
    models", NeurIPS 2014.
    Zhu, Shareghi, Li, Reichart and Korhonen, "Combining deep generative models and
    multi-lingual pretraining for semi-supervised document classification", EACL 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from skdgm import SemiSupervisedVAEClassifier
    >>> X, y = make_classification(n_samples=300, n_features=20, random_state=0)
    >>> y_partial = y.copy()
    >>> y_partial[30:] = -1  # only the first 30 rows are labelled
    >>> clf = SemiSupervisedVAEClassifier(max_epochs=20, random_state=0)
    >>> clf.fit(X, y_partial).predict(X[:5]).shape
    (5,)
    """

    _parameter_constraints: dict = {
        "encoder": [None, HasMethods(["fit", "transform"])],
        "decoder": [StrOptions({"auto", "gaussian", "bow", "gru"})],
        "z1_dim": [Interval(Integral, 1, None, closed="left")],
        "z2_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "vocabulary_size": [Interval(Integral, 1, None, closed="left")],
        "max_decoder_length": [Interval(Integral, 1, None, closed="left")],
        "word_dropout": [Interval(Real, 0, 1, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "epoch_size": [None, Interval(Integral, 1, None, closed="left")],
        "max_unlabelled": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "warm_up_epochs": [Interval(Integral, 0, None, closed="left")],
        "kl_annealing_epochs": [Interval(Integral, 0, None, closed="left")],
        "free_bits": [Interval(Real, 0, None, closed="left")],
        "prior": [StrOptions({"estimated", "uniform", "labelled"})],
        "marginal_weight": [Interval(Real, 0, None, closed="left")],
        "linear_weight": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "linear_pseudo_labels": [Interval(Real, 0, 1, closed="both")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "classifier_sees_inputs": ["boolean", StrOptions({"auto"})],
        "fine_tune_layers": [Interval(Integral, 0, None, closed="left")],
        "fine_tune_epochs": [Interval(Integral, 0, None, closed="left")],
        "fine_tune_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "training": [StrOptions({"joint", "two_stage"})],
        "average_epochs": [Interval(Integral, 0, None, closed="left")],
        "ensemble_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        encoder=None,
        *,
        decoder: str = "auto",
        z1_dim: int = 64,
        z2_dim: int = 32,
        hidden_dim: int = 256,
        n_layers: int = 1,
        dropout: float = 0.1,
        alpha: float = 1.0,
        vocabulary_size: int = 5000,
        max_decoder_length: int = 64,
        word_dropout: float = 0.25,
        max_epochs: int = 100,
        epoch_size: int | None = 2048,
        max_unlabelled: int | None = 32768,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        warm_up_epochs: int = 0,
        kl_annealing_epochs: int = 0,
        free_bits: float = 0.0,
        prior: str = "estimated",
        marginal_weight: float = 0.03,
        linear_weight: float | str = "auto",
        linear_pseudo_labels: float = 0.5,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
        warm_start: bool = False,
        classifier_sees_inputs: bool | str = "auto",
        fine_tune_layers: int = 0,
        fine_tune_epochs: int = 5,
        fine_tune_learning_rate: float = 5e-5,
        training: str = "joint",
        average_epochs: int = 25,
        ensemble_size: int = 1,
    ):
        self.encoder = encoder
        self.decoder = decoder
        self.z1_dim = z1_dim
        self.z2_dim = z2_dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.dropout = dropout
        self.alpha = alpha
        self.vocabulary_size = vocabulary_size
        self.max_decoder_length = max_decoder_length
        self.word_dropout = word_dropout
        self.max_epochs = max_epochs
        self.epoch_size = epoch_size
        self.max_unlabelled = max_unlabelled
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warm_up_epochs = warm_up_epochs
        self.kl_annealing_epochs = kl_annealing_epochs
        self.free_bits = free_bits
        self.prior = prior
        self.marginal_weight = marginal_weight
        self.linear_weight = linear_weight
        self.linear_pseudo_labels = linear_pseudo_labels
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.classifier_sees_inputs = classifier_sees_inputs
        self.fine_tune_layers = fine_tune_layers
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.training = training
        self.average_epochs = average_epochs
        self.ensemble_size = ensemble_size

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the model on labelled and unlabelled rows.

        Every fitted attribute is assigned at the end: a fit that fails leaves the
        estimator as it was (unfitted, or fitted by the previous ``fit``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or list of str
            Numeric features, or documents when ``encoder`` is set.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabelled rows.

        Returns
        -------
        self : SemiSupervisedVAEClassifier
            The fitted classifier.
        """
        # validate_data sets n_features_in_ (and feature_names_in_) as it checks X: put
        # the previous ones back if this fit fails.
        kept = {k: v for k, v in self.__dict__.items() if k in SET_BY_VALIDATION}
        try:
            return self._fit(X, y)
        except BaseException:
            for key in SET_BY_VALIDATION:
                self.__dict__.pop(key, None)
            self.__dict__.update(kept)
            raise

    def _fit(self, X, y):
        """Fit the model; ``fit`` puts validate_data's attributes back if this fails."""
        from ._device import resolve_device
        from ._sdgm import fit_sdgm

        docs, X, y = check_fit_input(self, X, y)
        labelled_mask, classes, y_index = check_semi_supervised_labels(y)
        reuse = self.warm_start and self.__sklearn_is_fitted__()
        decoder = resolve_decoder(self.decoder, self.encoder)
        if reuse:
            self._check_warm_start(classes, decoder, docs is not None)
        if labelled_mask.all():
            warnings.warn(
                "No unlabelled rows (marked -1) in y: training on labelled rows alone.",
                UserWarning,
                stacklevel=4,  # _fit, fit, sklearn's _fit_context wrapper, the caller
            )
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        n_rows = len(labelled_mask)
        rest, fit_rows = unlabelled_sample(labelled_mask, self.max_unlabelled, seed)
        all_docs, all_X = docs, X
        if rest.size:  # learn from a sample of the unlabelled rows; predict the rest after
            docs, X = take_rows(docs, X, fit_rows)
            labelled_mask = labelled_mask[fit_rows]
        encoder, embedder, sequences = None, None, None
        if docs is None:
            features, counts = split_numeric(X, decoder)
        else:
            previous = getattr(self, "encoder_", None) if reuse else None
            features, counts, embedder, encoder = fit_encoder(
                self.encoder, docs, previous, self.fine_tune_layers, device, decoder
            )
        try:
            if decoder == "gru":
                sequences = token_ids(encoder, docs)
            model_inputs, inputs, targets = training_inputs(
                decoder,
                features,
                counts,
                sequences,
                self.inputs_ if reuse else None,
                self.vocabulary_size if self.encoder is not None else None,
                self.max_decoder_length,
            )
            all_pos = np.arange(len(y_index))
            train_pos, valid_pos = all_pos, all_pos[:0]
            if self.early_stopping:
                train_pos, valid_pos = validation_split(y_index, self.validation_fraction, rng)
            fitted = fit_sdgm(
                self._fit_params(docs is not None),
                decoder=decoder,
                inputs=inputs,
                targets=targets,
                y_index=y_index,
                labelled_mask=labelled_mask,
                train_pos=train_pos,
                valid_pos=valid_pos,
                n_classes=len(classes),
                seed=seed,
                device=device,
                previous=(self.module_, self._module_kwargs) if reuse else None,
                embedder=embedder,
                model_inputs=model_inputs,
                counts=counts,
                linear_dense=features.shape[1]
                if docs is not None and features is not None
                else None,
                name=type(self).__name__,
            )
            if embedder is not None:
                encoder = encoder._with_tuned_top(embedder.top)  # the layers as tuned
        finally:
            if embedder is not None:
                embedder.states.close()
        transduction = np.empty(n_rows, dtype=classes.dtype)
        transduction[fit_rows] = classes[fitted.predicted]
        transduction[fit_rows[labelled_mask]] = classes[y_index]
        attributes = {
            "encoder_": encoder,
            "inputs_": model_inputs,
            "_module_kwargs": fitted.module_kwargs,
            "module_": fitted.module,
            "classes_": classes,
            "decoder_": decoder,
            "device_": str(device),
            "history_": fitted.history,
            "n_iter_": fitted.n_epochs,
            "best_epoch_": fitted.best_epoch,
            "transduction_": transduction,
            "_linear": fitted.linear,
            "linear_weight_": 0.0 if fitted.linear is None else fitted.linear.weight,
            "n_pseudo_labels_": fitted.n_pseudo_labels,
        }
        if rest.size:
            # The unlabelled rows left out of the sample: predicted by the fitted model,
            # a chunk at a time (on a copy: this estimator changes only below).
            fitted_copy = copy.copy(self)
            fitted_copy.__dict__.update(attributes)
            rest_docs, rest_X = take_rows(all_docs, all_X, rest)
            transduction[rest] = fitted_copy.predict(rest_X if rest_docs is None else rest_docs)
        if fitted.interrupted:
            warnings.warn(fitted.interruption(self.early_stopping), UserWarning, stacklevel=4)
        # The fit succeeded: only now does the estimator change.
        self.__dict__.update(attributes)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Whether a ``fit`` has completed."""
        return hasattr(self, "module_")

    def _fit_params(self, documents: bool) -> dict:
        """``get_params()``, each "auto" that depends on the kind of data resolved."""
        params = self.get_params(deep=False)
        if params["classifier_sees_inputs"] == "auto":
            params["classifier_sees_inputs"] = documents
        if params["linear_weight"] == "auto" and not documents:
            params["linear_weight"] = 0.0
        return params

    def _check_warm_start(self, classes, decoder, documents):
        """Refuse a warm start that cannot go on from the previous fit."""
        from ._sdgm import warm_start_changes

        problems = warm_start_changes(
            self._fit_params(documents),
            self._module_kwargs,
            classes=classes,
            fitted_classes=self.classes_,
            decoder=decoder,
            fitted_decoder=self.decoder_,
            documents=documents,
            fitted_documents=getattr(self, "encoder_", None) is not None,
        )
        if problems:
            raise ValueError(
                "warm_start=True goes on with the previous fit's networks, so it needs the "
                f"same kind of data and model: got {'; '.join(problems)}. Set "
                "warm_start=False to fit new networks, or set these parameters back."
            )

    # --------------------------------------------------------------- prediction
    def _model_inputs(self, X):
        # Fitted state only: set_params after fit cannot change how a fitted model predicts.
        check_is_fitted(self)
        return self.inputs_.transform(*prediction_features(self, X))[0]

    def _by_chunks(self, X, method):
        """``method(inputs)`` of the rows of ``X``, documents taken a chunk at a time.

        A chunk's inputs (its embeddings, the TF-IDF of its pieces) are built, read and
        dropped before the next: predicting millions of documents holds the inputs of
        ``_PREDICT_CHUNK`` at a time. A row's result does not depend on its chunk (to the
        last bits of a float: matrix kernels differ with the batch).
        """
        check_is_fitted(self)
        if getattr(self, "encoder_", None) is None:
            return method(self._model_inputs(X))
        docs = check_documents(X, min_documents=1)
        parts = [
            method(self._model_inputs(docs[start : start + _PREDICT_CHUNK]))
            for start in range(0, len(docs), _PREDICT_CHUNK)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _log_proba(self, inputs):
        """log q(y | x) of the model's ``inputs``, pooled with the linear expert if any."""
        from ._device import resolve_device
        from ._sdgm import predict_log_proba

        linear, model_inputs = getattr(self, "_linear", None), self.inputs_
        device = resolve_device(self.device_)
        return predict_log_proba(
            self.module_, linear, inputs, model_inputs.mean_, model_inputs.scale_, device
        )

    def _means(self, inputs):
        """E[z1 | x] of the model's ``inputs``."""
        from ._device import resolve_device
        from ._sdgm import posterior_means

        return posterior_means(self.module_, inputs, resolve_device(self.device_))

    def predict_log_proba(self, X):
        """Log-probability of each class.

        log q(y | E[z1 | x]), pooled with the logistic regression when
        ``linear_weight_`` > 0 (see ``linear_weight``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or list of str
            Numeric features, or documents when ``encoder`` is set.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._by_chunks(X, self._log_proba)

    def predict_proba(self, X):
        """Class probabilities.

        q(y | E[z1 | x]), pooled with the logistic regression when ``linear_weight_`` > 0
        (see ``linear_weight``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or list of str
            Numeric features, or documents when ``encoder`` is set.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Predict the class of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or list of str
            Numeric features, or documents when ``encoder`` is set.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_``.
        """
        log_proba = self._by_chunks(X, self._log_proba)  # checks it is fitted first
        return self.classes_[log_proba.argmax(1)]

    def transform(self, X):
        """Posterior means E[z1 | x]: the learned representation.

        With ``training="two_stage"``, divided by the one number M2 reads them in (the
        root-mean-square spread of the training rows' means).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or list of str
            Numeric features, or documents when ``encoder`` is set.

        Returns
        -------
        z1 : ndarray of shape (n_samples, z1_dim)
            The posterior mean of z1 for each row; with ``ensemble_size`` > 1, every
            member's side by side (``ensemble_size * z1_dim`` columns).
        """
        return self._by_chunks(X, self._means)

    # ----------------------------------------------------------------- plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        if self.encoder is not None:
            tags.input_tags.two_d_array = False
            tags.input_tags.string = True
        else:
            tags.input_tags.sparse = True
        return tags

    def __getstate__(self):
        return pickled_state(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(unpickled_state(state))

    def _fitted_state(self):
        """The fitted state for :func:`skdgm.save`: (JSON-able values, named tensors)."""
        return fitted_state(self)

    def _restore_fitted_state(self, values, tensors, device):
        """Set the fitted attributes from :meth:`_fitted_state`'s output (:func:`skdgm.load`)."""
        self.__dict__.update(fitted_attributes(values, tensors, device))
