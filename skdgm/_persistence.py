"""Saving a fitted estimator as a folder of JSON and safetensors, and loading it back.

A saved estimator is a folder of two files:

- ``skdgm.json``: the format version, the skdgm version that wrote it, and the estimator
  as a record ``{"class", "params", "fitted"}``: its class (one of an allow-list), its
  ``get_params()`` and its fitted attributes (labels, history, settings, widths), in
  JSON. Parameters or fitted attributes that are estimators (an ``encoder``, a fitted
  ``encoder_``) are nested records of the same kind.
- ``tensors.safetensors``: every array of the fitted state (the networks' weights, the
  tuned layers of a fine-tuned encoder, the preprocessing's vocabulary, IDF and scales),
  its SHA-256 recorded in ``skdgm.json``.

Loading parses JSON and safetensors only: it never unpickles and never imports a name
read from the folder. The pretrained encoder is referenced by its ``model_name``, not
copied; only the layers tuned by a fit are stored.

The estimators take part by deriving from :class:`PersistenceMixin`, which puts their
class on the allow-list, and through two private methods: ``_fitted_state()`` returns
``(values, tensors)`` (JSON-able values, fitted estimators and 1-D arrays; named torch
tensors or numpy arrays), and ``_restore_fitted_state(values, tensors, device)`` sets
the fitted attributes of a new instance from them. The estimator record of ``skdgm.json``
(the allow-list, and values as JSON) is in ``_estimator_records.py``; this module holds
the folder, its two files and their checks.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._estimator_records import (
    MANIFEST,
    TENSORS,
    _class_name,
    _DamagedSave,
    _estimator_record,
    _rebuild,
    register,
)

__all__ = ["FORMAT_VERSION", "PersistenceMixin", "load", "save"]

#: Version of the folder's layout and of the meaning of its keys. It changes only when
#: a folder written before could be misread; :func:`load` refuses other versions.
FORMAT_VERSION = 1
READABLE_FORMAT_VERSIONS = (1,)
_FORMAT = "skdgm-estimator"


# --------------------------------------------------------------------------- saving
def save(estimator: BaseEstimator, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Save a fitted estimator to a folder, as JSON and safetensors (no pickle).

    The folder gets two files: ``skdgm.json`` (the format version, the skdgm version,
    the estimator's class, its parameters and its fitted attributes) and
    ``tensors.safetensors`` (the networks' weights and the fitted arrays). A pretrained
    encoder is stored by its ``model_name`` only: :func:`load` needs the same model,
    from the Hugging Face Hub or the same folder. The top layers that
    ``fine_tune_layers`` tuned are stored in full.

    Parameters
    ----------
    estimator : estimator
        A fitted :class:`~skdgm.SemiSupervisedVAEClassifier`,
        :class:`~skdgm.TransformerClassifier`,
        :class:`~skdgm.encoders.MultilingualEncoder` or :class:`~skdgm.encoders.NXVAE`.
    path : str or path-like
        The folder to write. It is created if needed (with its parents). A folder that
        holds files already is written to only if it holds an earlier save (a
        ``skdgm.json``), which is then replaced, or if ``overwrite=True``.
    overwrite : bool, default=False
        Write into a non-empty folder that is not an earlier save. Only ``skdgm.json``
        and ``tensors.safetensors`` are written; other files are left as they are.

    Raises
    ------
    TypeError
        If the estimator, one of its parameters or a fitted attribute cannot be stored
        without pickle: another class (``SetFitClassifier``, a subclass, an encoder of
        another kind), or a parameter that is neither plain data nor such an estimator.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    FileExistsError
        If ``path`` is a file, or a non-empty folder that holds no earlier save and
        ``overwrite`` is False.

    See Also
    --------
    load : Load an estimator saved by this function.

    Notes
    -----
    The two files are written under temporary names and then renamed, so that a save
    that fails leaves the previous one readable or reports it as damaged. The SHA-256 of
    ``tensors.safetensors`` is recorded in ``skdgm.json``: it detects a truncated or
    changed file, but it is no signature against deliberate tampering.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import make_classification
    >>> import skdgm
    >>> X, y = make_classification(n_samples=200, n_features=10, random_state=0)
    >>> y[20:] = -1
    >>> clf = skdgm.SemiSupervisedVAEClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     skdgm.save(clf, folder)
    ...     files = sorted(p.name for p in Path(folder).iterdir())
    ...     loaded = skdgm.load(folder)
    >>> files
    ['skdgm.json', 'tensors.safetensors']
    >>> bool((loaded.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    from ._version import __version__

    _class_name(estimator, "the estimator")
    check_is_fitted(estimator)
    tensors: dict = {}
    record = _estimator_record(estimator, type(estimator).__name__, tensors, "")
    blob = _tensor_bytes(tensors)
    manifest = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "skdgm_version": __version__,
        "tensors": {"sha256": hashlib.sha256(blob).hexdigest()},
        "estimator": record,
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False)
    folder = _prepare_folder(Path(path), overwrite)
    _write_atomically(folder / TENSORS, blob)
    _write_atomically(folder / MANIFEST, text.encode("utf-8"))


def _prepare_folder(folder: Path, overwrite: bool) -> Path:
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"'{folder}' is a file; skdgm.save writes a folder.")
    if folder.is_dir() and not overwrite:
        names = {entry.name for entry in folder.iterdir()}
        if names and MANIFEST not in names:
            raise FileExistsError(
                f"'{folder}' is not empty and holds no earlier skdgm save ({MANIFEST}). "
                f"Choose a new or empty folder, or pass overwrite=True (which writes "
                f"{MANIFEST} and {TENSORS} there and leaves the other files alone)."
            )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _tensor_bytes(tensors: dict) -> bytes:
    try:
        from safetensors.torch import save as save_tensors
    except ImportError as exc:  # pragma: no cover - safetensors is a dependency
        raise ImportError(
            "skdgm.save needs the safetensors package: pip install safetensors."
        ) from exc
    import torch

    plain = {}
    for name, value in tensors.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        # A CPU copy of its own: no device, no memory shared with another tensor.
        plain[name] = value.detach().to("cpu", copy=True).contiguous()
    return save_tensors(plain)


# -------------------------------------------------------------------------- loading
def load(path: str | os.PathLike, device: str | None = None) -> BaseEstimator:
    """Load an estimator saved by :func:`save`.

    Nothing read from the folder is executed: ``skdgm.json`` is parsed as JSON and
    ``tensors.safetensors`` as safetensors, and only the classes of an allow-list
    (:class:`~skdgm.SemiSupervisedVAEClassifier`, :class:`~skdgm.TransformerClassifier`,
    :class:`~skdgm.encoders.MultilingualEncoder`, :class:`~skdgm.encoders.NXVAE`) are
    rebuilt. The pretrained encoder is
    loaded by its ``model_name`` as in ``fit`` (from the Hub, the local Hugging Face
    cache, the folder, or the offline copy of the default model): at once when tuned
    layers must be rebuilt on it, otherwise when it is first needed.

    Parameters
    ----------
    path : str or path-like
        The folder that :func:`save` wrote.
    device : {"cpu", "cuda", "auto"} or str, default=None
        Where the loaded estimator runs (its ``device_``, and its encoder's). None: the
        device it was fitted on when this machine has it, the CPU otherwise. The
        ``device`` parameter is kept as saved: it applies to the next ``fit``.

    Returns
    -------
    estimator : estimator
        The fitted estimator, ready to ``predict``; ``clone`` gives an unfitted copy
        with the same parameters.

    Raises
    ------
    FileNotFoundError
        If the folder, its ``skdgm.json`` or its ``tensors.safetensors`` is missing.
    NotADirectoryError
        If ``path`` is a file.
    ValueError
        If the folder was written in another format version (the message names both
        versions), or if a file is damaged: ``skdgm.json`` is not valid JSON or lacks a
        key, ``tensors.safetensors`` does not match the checksum in ``skdgm.json`` or is
        not a safetensors file, or its tensors are missing or do not have the shapes of
        the parameters. Also if ``device`` is not available here.

    See Also
    --------
    save : Save a fitted estimator.

    Notes
    -----
    Format versions: a folder records the format version it was written in, and each
    release of skdgm reads the versions it lists (this one: 1). A folder from another
    version is refused with a message naming both; load it with the skdgm version that
    wrote it, or refit with this one and save again. Parameters added to an estimator
    after a folder was written take their default values.
    """
    from ._version import __version__

    folder = Path(path)
    device = _resolve_device(device)
    manifest_path = folder / MANIFEST
    manifest = _read_manifest(folder, manifest_path, __version__)
    tensors = _read_tensors(folder / TENSORS, manifest, manifest_path)
    try:
        return _rebuild(manifest.get("estimator"), "estimator", tensors, "", device)
    except _DamagedSave as exc:
        raise ValueError(
            f"Cannot load the skdgm model in '{folder}': {exc}. The folder was changed or "
            "damaged after it was saved; save the fitted estimator again, or refit it."
        ) from exc.__cause__


def _resolve_device(device):
    if device is None:
        return None
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu', 'cuda' or 'auto', got {device!r}.")
    from ._device import resolve_device

    return resolve_device(device)


def _read_manifest(folder: Path, path: Path, version: str) -> dict:
    if not folder.exists():
        raise FileNotFoundError(f"No saved model at '{folder}': the folder does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(
            f"'{folder}' is a file, not a folder; skdgm.load takes the folder that skdgm.save "
            "wrote."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"'{path}' is missing: '{folder}' is not a folder written by skdgm.save, or the "
            "save did not complete."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(
            f"'{path}' is not valid JSON ({exc}): the file was damaged or edited. Save the "
            "fitted estimator again, or refit it."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ValueError(
            f"'{path}' does not describe a model saved by skdgm.save (it has no "
            f'"format": "{_FORMAT}").'
        )
    written = manifest.get("format_version")
    if type(written) is not int or written not in READABLE_FORMAT_VERSIONS:
        writer = manifest.get("skdgm_version", "an unknown version")
        readable = ", ".join(map(str, READABLE_FORMAT_VERSIONS))
        raise ValueError(
            f"'{path}' was written by skdgm {writer} in format version {written!r}, but this "
            f"skdgm ({version}) reads format version {readable}. Load it with skdgm {writer}, "
            "the version that wrote it, or refit the estimator with this version and save "
            "it again."
        )
    return manifest


def _read_tensors(path: Path, manifest: dict, manifest_path: Path) -> dict:
    recorded = manifest.get("tensors")
    checksum = recorded.get("sha256") if isinstance(recorded, dict) else None
    if not isinstance(checksum, str):
        raise ValueError(
            f"'{manifest_path}' has no checksum of {TENSORS} (tensors.sha256): the file was "
            "damaged or edited. Save the fitted estimator again, or refit it."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"'{path}' is missing: the model's tensors are not in the folder. Copy the whole "
            "folder, or save the fitted estimator again."
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != checksum:
        raise ValueError(
            f"'{path}' does not match the checksum recorded in '{manifest_path}': it was "
            "truncated, damaged or replaced after saving. Save the fitted estimator again, "
            "or refit it."
        )
    from safetensors.torch import load as load_tensors

    try:
        return load_tensors(data)
    except Exception as exc:  # safetensors raises its own error type for every problem
        raise ValueError(
            f"'{path}' is not a readable safetensors file ({exc}). Save the fitted estimator "
            "again, or refit it."
        ) from None


# ------------------------------------------------- helpers of the estimators' hooks
def load_module_state(module, tensors: dict, prefix: str) -> None:
    """Load ``tensors[prefix + name]`` into ``module`` after checking names, shapes and dtypes.

    Raises a ``ValueError`` naming the tensors that are missing, unexpected, or of
    another shape or dtype than ``module`` (built from the sizes in ``skdgm.json``).
    """
    expected = module.state_dict()
    given = {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}
    missing = [prefix + name for name in expected if name not in given]
    unexpected = [prefix + name for name in given if name not in expected]
    if missing or unexpected:
        parts = [
            f"{label} {names[:5]}"
            for label, names in (("missing", missing), ("unexpected", unexpected))
            if names
        ]
        raise _DamagedSave(
            f"{TENSORS} does not hold the tensors of the model that {MANIFEST} describes: "
            + "; ".join(parts)
        )
    wrong = [
        f"{prefix}{name} is {given[name].dtype} {tuple(given[name].shape)}, expected "
        f"{tensor.dtype} {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if given[name].shape != tensor.shape or given[name].dtype != tensor.dtype
    ]
    if wrong:
        raise _DamagedSave(
            f"{TENSORS} holds tensors that do not fit the model that {MANIFEST} describes: "
            + "; ".join(wrong[:5])
        )
    module.load_state_dict(given)


def fitted_device(saved: str, device) -> str:
    """The ``device_`` of a loaded estimator: ``device`` when given, else the saved one
    when this machine has it, else the CPU."""
    if device is not None:
        return str(device)
    from ._device import resolve_device

    try:
        return str(resolve_device(str(saved)))
    except ValueError:  # fitted on a device this machine does not have
        return "cpu"


class PersistenceMixin:
    """``save`` and ``load`` methods around :func:`skdgm.save` and :func:`skdgm.load`.

    The estimators of the skdgm package that derive from it, and that their package
    exports, are the classes that :func:`skdgm.load` rebuilds.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register(cls)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Save the fitted estimator to a folder, as JSON and safetensors (no pickle).

        The same as :func:`skdgm.save` ``(self, path, overwrite=overwrite)``.

        Parameters
        ----------
        path : str or path-like
            The folder to write (created if needed). A non-empty folder is written to
            only if it holds an earlier save, or with ``overwrite=True``.
        overwrite : bool, default=False
            Write into a non-empty folder that is not an earlier save.
        """
        save(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None):
        """Load an estimator of this class saved by :meth:`save` or :func:`skdgm.save`.

        Parameters
        ----------
        path : str or path-like
            The folder that ``save`` wrote.
        device : {"cpu", "cuda", "auto"} or str, default=None
            Where the estimator runs; None: where it was fitted if this machine has
            that device, the CPU otherwise.

        Returns
        -------
        estimator : estimator
            The fitted estimator.

        Raises
        ------
        TypeError
            If the folder holds an estimator of another class.
        """
        estimator = load(path, device=device)
        if not isinstance(estimator, cls):
            raise TypeError(
                f"'{path}' holds a {type(estimator).__name__}, not a {cls.__name__}; "
                "load it with skdgm.load."
            )
        return estimator
