"""The estimator record of ``skdgm.json``: an allow-list of classes, and values as JSON.

A record is ``{"class", "params", "fitted"}``: the class, by its public name (one of the
allow-list), its ``get_params()`` and its fitted attributes, in JSON. Values that are
estimators become nested records; 1-D arrays, tuples, paths and random states become
tagged objects (``{"__ndarray__": ...}``); the tensors of the fitted state are collected
under dotted names for ``tensors.safetensors``. Decoding is the inverse, and it rebuilds
only the classes of the allow-list.

The allow-list is filled by :class:`~skdgm._persistence.PersistenceMixin`: every class of
the skdgm package that derives from it, and that its package exports under its own name
(``skdgm.SemiSupervisedVAEClassifier``, ``skdgm.encoders.NXVAE``, ...), is allowed.
Classes defined elsewhere (user code, other packages, subclasses in tests) never are.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._base import _is_out_of_memory

MANIFEST = "skdgm.json"
TENSORS = "tensors.safetensors"

#: Keys that mark a JSON object as an encoded value rather than a plain dict.
_TAGS = ("__estimator__", "__ndarray__", "__tuple__", "__path__", "__random_state__")
#: Why an estimator of the package cannot be saved without pickle.
_UNSUPPORTED = {
    "SetFitClassifier": (
        "SetFit stores its logistic-regression head with pickle (joblib), and its body is "
        "a whole fine-tuned sentence-transformers model"
    ),
}


class _DamagedSave(ValueError):
    """A saved folder whose files do not describe a model that can be rebuilt."""


#: Classes that derive from PersistenceMixin in the skdgm package, by public name.
_REGISTERED: dict[str, type] = {}


def register(cls: type) -> None:
    """Add ``cls`` to the candidates of the allow-list if the skdgm package defines it.

    Its name in ``skdgm.json`` is its package's public path and its own name: the module
    path less its private parts (``skdgm.encoders._nxvae`` gives ``skdgm.encoders``).
    """
    module = cls.__module__
    if module.split(".")[0] != "skdgm" or cls.__qualname__ != cls.__name__:
        return
    if cls.__name__.startswith("_"):
        return
    parts = module.split(".")
    while parts[-1].startswith("_"):
        parts.pop()
    _REGISTERED[f"{'.'.join(parts)}.{cls.__name__}"] = cls


def _allowed_classes() -> dict:
    """The only classes :func:`~skdgm.load` rebuilds, by the name written in ``skdgm.json``.

    The registered classes that their package exports under that name, in the order of
    the names.
    """
    allowed = {}
    for name, cls in sorted(_REGISTERED.items()):
        package = sys.modules.get(name.rpartition(".")[0])
        if getattr(package, cls.__name__, None) is cls:
            allowed[name] = cls
    return allowed


# -------------------------------------------------------------------------- encoding
def _class_name(estimator, where: str) -> str:
    """The allow-listed name of ``estimator``'s class, or a TypeError saying what to do."""
    for name, cls in _allowed_classes().items():
        if type(estimator) is cls:
            return name
    kind = type(estimator).__name__
    reason = _UNSUPPORTED.get(
        kind,
        "skdgm.save stores only "
        + ", ".join(name.rsplit(".", 1)[-1] for name in _allowed_classes()),
    )
    raise TypeError(
        f"skdgm.save cannot store {where}, a {kind}, without pickle: {reason}. Pickle the "
        "estimator instead (pickle or joblib.dump; load only pickles you trust)."
    )


def _estimator_record(estimator, where: str, tensors: dict | None, prefix: str) -> dict:
    """``{"class", "params", "fitted"}``; the fitted state only when ``tensors`` is given."""
    record = {
        "class": _class_name(estimator, where),
        "params": _to_json(estimator.get_params(deep=False), f"{where}.params", None, ""),
        "fitted": None,
    }
    if tensors is not None:
        values, own = estimator._fitted_state()
        for name, tensor in own.items():
            if prefix + name in tensors:
                raise RuntimeError(f"two tensors named {prefix + name!r}")
            tensors[prefix + name] = tensor
        record["fitted"] = _to_json(values, f"{where}.fitted", tensors, prefix)
    return record


def _is_fitted(estimator) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _to_json(value, where: str, tensors: dict | None, prefix: str):
    """``value`` as JSON data. Estimators nested in fitted values are stored fitted, their
    tensors named ``prefix`` + their key + "."; those in parameters only by parameters."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, os.PathLike):
        return {"__path__": os.fspath(value)}
    if isinstance(value, BaseEstimator):
        fitted = tensors is not None and _is_fitted(value)
        return {
            "__estimator__": _estimator_record(value, where, tensors if fitted else None, prefix)
        }
    if isinstance(value, np.ndarray):
        return {"__ndarray__": _array_to_json(value, where)}
    if isinstance(value, np.random.RandomState):
        _, keys, position, has_gauss, cached_gaussian = value.get_state()
        return {
            "__random_state__": {
                "keys": keys.tolist(),
                "pos": int(position),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached_gaussian),
            }
        }
    if isinstance(value, (list, tuple)):
        items = [
            _to_json(item, f"{where}[{i}]", tensors, f"{prefix}{i}.")
            for i, item in enumerate(value)
        ]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        bad = [key for key in value if not isinstance(key, str) or key in _TAGS]
        if not bad:
            return {
                key: _to_json(item, f"{where}.{key}", tensors, f"{prefix}{key}.")
                for key, item in value.items()
            }
    raise TypeError(
        f"skdgm.save cannot store {where} = {type(value).__name__} ({value!r:.60}) without "
        "pickle. Use plain values (numbers, strings, lists), or pickle the estimator instead "
        "(pickle or joblib.dump; load only pickles you trust)."
    )


def _array_to_json(array: np.ndarray, where: str) -> dict:
    if array.ndim != 1 or array.dtype.kind not in "biufUO":
        raise TypeError(f"{where}: only 1-D arrays of numbers or strings go into JSON")
    values = array.tolist()
    if array.dtype.kind == "O":
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        if not all(isinstance(v, (str, int, float)) for v in values):
            raise TypeError(f"{where}: an object array of other values than str and numbers")
    return {"dtype": str(array.dtype), "values": values}


# -------------------------------------------------------------------------- decoding
def _rebuild(record, where: str, tensors: dict | None, prefix: str, device):
    """An estimator from its record; fitted from ``tensors`` when the record says so."""
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise _DamagedSave(f"{MANIFEST}: {where} is not an estimator record")
    cls = _allowed_classes().get(record.get("class"))
    if cls is None:
        raise _DamagedSave(
            f"{MANIFEST}: {where} names the class {record.get('class')!r}, which skdgm.load "
            f"does not rebuild (only {', '.join(_allowed_classes())})"
        )
    params = _from_json(record["params"], f"{where}.params", None, "", device)
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise _DamagedSave(
            f"{MANIFEST}: {where} gives {cls.__name__} parameters it does not have: "
            f"{unknown} (a folder written by a later skdgm? load it with that version)"
        )
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except ValueError as exc:  # InvalidParameterError
        raise _DamagedSave(f"{MANIFEST}: {where}.params: {exc}") from None
    fitted = record.get("fitted")
    if fitted is None:
        return estimator
    if tensors is None:
        raise _DamagedSave(f"{MANIFEST}: {where} is a parameter and cannot be fitted")
    values = _from_json(fitted, f"{where}.fitted", tensors, prefix, device)
    if not isinstance(values, dict):
        raise _DamagedSave(f"{MANIFEST}: {where}.fitted is not an object")
    own = {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}
    try:
        estimator._restore_fitted_state(values, own, device)
    except _DamagedSave:
        raise
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        if _is_out_of_memory(exc):
            raise
        raise _DamagedSave(
            f"the fitted state of {cls.__name__} ({where}) in {MANIFEST} and {TENSORS} is "
            f"incomplete or inconsistent ({type(exc).__name__}: {exc})"
        ) from exc
    return estimator


def _from_json(value, where: str, tensors: dict | None, prefix: str, device):
    """The inverse of :func:`_to_json`."""
    if isinstance(value, list):
        return [
            _from_json(item, f"{where}[{i}]", tensors, f"{prefix}{i}.", device)
            for i, item in enumerate(value)
        ]
    if not isinstance(value, dict):
        return value
    tags = [key for key in _TAGS if key in value]
    if not tags:
        return {
            key: _from_json(item, f"{where}.{key}", tensors, f"{prefix}{key}.", device)
            for key, item in value.items()
        }
    content = value[tags[0]]
    if len(value) != 1:
        raise _DamagedSave(f"{MANIFEST}: {where} mixes {tags[0]} with other keys")
    if tags[0] == "__estimator__":
        return _rebuild(content, where, tensors, prefix, device)
    if tags[0] == "__tuple__" and isinstance(content, list):
        return tuple(_from_json(content, where, tensors, prefix, device))
    if tags[0] == "__path__" and isinstance(content, str):
        return Path(content)
    if tags[0] == "__ndarray__":
        return _array_from_json(content, where)
    if tags[0] == "__random_state__":
        return _random_state_from_json(content, where)
    raise _DamagedSave(f"{MANIFEST}: {where} is not a valid {tags[0]}")


def _array_from_json(content, where: str) -> np.ndarray:
    try:
        dtype = np.dtype(content["dtype"])
        values = content["values"]
        if dtype.kind not in "biufUO" or not isinstance(values, list):
            raise ValueError
        if any(not isinstance(v, (str, int, float)) for v in values):
            raise ValueError
        if dtype.kind == "O":
            array = np.empty(len(values), dtype=object)
            array[:] = values
            return array
        return np.array(values, dtype=dtype)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise _DamagedSave(f"{MANIFEST}: {where} is not a valid 1-D array") from None


def _random_state_from_json(content, where: str) -> np.random.RandomState:
    try:
        keys = np.array(content["keys"], dtype=np.uint32)
        state = (
            "MT19937",
            keys,
            int(content["pos"]),
            int(content["has_gauss"]),
            float(content["cached_gaussian"]),
        )
        random_state = np.random.RandomState()
        random_state.set_state(state)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise _DamagedSave(f"{MANIFEST}: {where} is not a valid random state") from None
    return random_state
