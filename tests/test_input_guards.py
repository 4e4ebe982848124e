"""Walk the table of docs/input_guards.rst: each bad input, for each estimator it names,
gets the documented error, and the caller's inputs are unchanged afterwards."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

import skdgm
from skdgm import SemiSupervisedVAEClassifier, TransformerClassifier
from skdgm.encoders import MultilingualEncoder

DOCS = [f"document {i} about {'tables' if i % 2 else 'weather'}" for i in range(24)]
Y = np.where(np.arange(24) < 8, np.arange(24) % 2, -1)
X_NUM = np.random.default_rng(0).normal(size=(24, 5))
TABLE = Path(__file__).resolve().parents[1] / "docs" / "input_guards.rst"


def _make(kind, model):
    if kind == "S":
        return SemiSupervisedVAEClassifier(MultilingualEncoder(model, device="cpu"), max_epochs=1)
    if kind == "N":
        return SemiSupervisedVAEClassifier(max_epochs=1)
    if kind == "T":
        return TransformerClassifier(
            MultilingualEncoder(model, device="cpu"), fine_tune_layers=1, max_epochs=1
        )
    return MultilingualEncoder(model, device="cpu")


def _fit(estimator, X, y):
    if isinstance(estimator, MultilingualEncoder):
        return estimator.fit(X)
    return estimator.fit(X, y)


def _model_param(estimator):
    return "model_name" if isinstance(estimator, MultilingualEncoder) else "encoder__model_name"


def _x(kind):
    return X_NUM.copy() if kind == "N" else list(DOCS)


def _save_unfitted(estimator):
    with tempfile.TemporaryDirectory() as folder:
        estimator.save(Path(folder) / "model")


def _load_saved(estimator, X, y, damage):
    """Fit, save, ``damage(folder)``, then load."""
    with tempfile.TemporaryDirectory() as folder:
        _fit(estimator, X, y).save(folder)
        damage(Path(folder))
        skdgm.load(folder)


def _truncate_tensors(folder):
    path = folder / "tensors.safetensors"
    path.write_bytes(path.read_bytes()[:-10])


def _set_format_version(folder):
    path = folder / "skdgm.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**manifest, "format_version": 99}), encoding="utf-8")


# (row of the table, estimators, what to do with (estimator, X, y), error, message)
# fmt: off
CASES = [
    ("no labelled rows", "SNT", lambda e, X, y: _fit(e, X, np.full(24, -1)),
     ValueError, "no labelled rows"),
    ("labelled rows of one class", "SNT", lambda e, X, y: _fit(e, X, np.where(y == -1, -1, 0)),
     ValueError, "single class"),
    ("labels of mixed types", "SNT",
     lambda e, X, y: _fit(e, X, np.array([0, "a"] * 4 + [-1] * 16, dtype=object)),
     ValueError, "mixes label types"),
    ("NaN among the labels", "SNT",
     lambda e, X, y: _fit(e, X, np.where(np.arange(24) == 3, np.nan, y)), ValueError, "NaN"),
    ("labels and documents of different lengths", "SNT", lambda e, X, y: _fit(e, X, y[:-3]),
     ValueError, "different lengths|inconsistent numbers of samples"),
    ("labels as a 2-D array", "SNT", lambda e, X, y: _fit(e, X, np.c_[y, y]),
     ValueError, "1-dimensional|1d array"),
    ("NaN or infinity in numeric features", "N",
     lambda e, X, y: _fit(e, np.where(X > 1, np.inf, X), y), ValueError, "infinity"),
    ("numeric features of the wrong shape", "N", lambda e, X, y: _fit(e, X[:, 0], y),
     ValueError, "Expected 2D array"),
    ("numeric features of another width at ``predict``", "N",
     lambda e, X, y: _fit(e, X, y).predict(X[:, :3]), ValueError, "features"),
    ("text given to a model without an encoder", "N", lambda e, X, y: _fit(e, list(DOCS), y),
     ValueError, "X holds text.*MultilingualEncoder"),
    ("``decoder=\"gru\"`` on numeric features", "N",
     lambda e, X, y: _fit(e.set_params(decoder="gru"), X, y),
     ValueError, "decoder='gru' .* needs documents"),
    ("documents that are not strings", "STE",
     lambda e, X, y: _fit(e, [None, *X[1:]], y), TypeError, "Every document must be a str"),
    ("a single string instead of a list", "STE", lambda e, X, y: _fit(e, X[0], y),
     TypeError, "single string"),
    ("a numeric matrix instead of documents", "STE", lambda e, X, y: _fit(e, X_NUM.copy(), y),
     ValueError, "numeric matrix"),
    ("an empty corpus", "SNTE", lambda e, X, y: _fit(e, X[:0], y[:0]),
     ValueError, "0 documents|0 sample"),
    ("a single row (or document) to fit on", "SNT", lambda e, X, y: _fit(e, X[:1], y[:1]),
     ValueError, "at least 2 is needed|minimum of 2 is required"),
    ("``predict`` (or ``transform``) before ``fit``", "SNTE",
     lambda e, X, y: (e.transform if isinstance(e, MultilingualEncoder) else e.predict)(X),
     NotFittedError, "not fitted yet"),
    ("a device that does not exist", "SNT",
     lambda e, X, y: _fit(e.set_params(device="gpu"), X, y), ValueError, "is not a device"),
    ("a device that does not exist", "E",
     lambda e, X, y: _fit(e.set_params(device="gpu"), X, y), InvalidParameterError, "device"),
    ("a model folder that is missing", "STE",
     lambda e, X, y: _fit(e.set_params(**{_model_param(e): "/no/such/model"}), X, y),
     OSError, "does not exist"),
    ("a folder that is not a model", "STE",
     lambda e, X, y: _fit(e.set_params(**{_model_param(e): str(Path(__file__).parent)}), X, y),
     OSError, "Could not load a model from the folder"),
    ("``save`` before ``fit``", "SNTE", lambda e, X, y: _save_unfitted(e),
     NotFittedError, "not fitted yet"),
    ("``load`` from a folder that does not exist", "SNTE",
     lambda e, X, y: type(e).load("/no/such/saved/model"), FileNotFoundError, "does not exist"),
    ("a saved model whose files were damaged or edited", "SNTE",
     lambda e, X, y: _load_saved(e, X, y, _truncate_tensors), ValueError,
     "does not match the checksum"),
    ("a saved model written in another format version", "SNTE",
     lambda e, X, y: _load_saved(e, X, y, _set_format_version), ValueError,
     "format version 99, but this skdgm .* reads format version 1"),
    ("a loss that becomes NaN or infinite during training", "N",
     lambda e, X, y: _fit(e.set_params(learning_rate=1e6, max_epochs=20), X, y),
     FloatingPointError, "diverged"),
    ("a loss that becomes NaN or infinite during training", "T",
     lambda e, X, y: _fit(
         e.set_params(learning_rate=1e30, head_learning_rate=1e30, max_epochs=5), X, y),
     FloatingPointError, "diverged.*cross-entropy"),
]
# fmt: on
PARAMS = [
    pytest.param(row, kind, action, error, match, id=f"{kind}-{row}")
    for row, kinds, action, error, match in CASES
    for kind in kinds
]


@pytest.mark.parametrize("row, kind, action, error, match", PARAMS)
def test_bad_input_gets_the_documented_error(
    tiny_wordpiece_model, row, kind, action, error, match
):
    estimator = _make(kind, tiny_wordpiece_model)
    X, y = _x(kind), Y.copy()
    X_before, y_before = copy.deepcopy(X), y.copy()
    with pytest.raises(error, match=match):
        action(estimator, X, y)
    np.testing.assert_array_equal(y, y_before)
    if kind == "N":
        np.testing.assert_array_equal(X, X_before)
    else:
        assert X == X_before


@pytest.mark.parametrize("kind", ["S", "N", "T", "E"])
def test_running_out_of_memory_says_what_to_lower(tiny_wordpiece_model, kind, monkeypatch):
    import skdgm._sdgm._training as training
    import skdgm._transformer_training as transformer_training
    from skdgm.encoders import _multilingual, clear_embedding_cache

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    clear_embedding_cache()
    if kind == "E":
        monkeypatch.setattr(_multilingual.MultilingualEncoder, "_embed_documents", out_of_memory)
    elif kind == "T":
        monkeypatch.setattr(transformer_training, "train_epochs", out_of_memory)
    else:
        monkeypatch.setattr(training, "forward_terms", out_of_memory)
    estimator = _make(kind, tiny_wordpiece_model)
    with pytest.raises(MemoryError, match="Ran out of memory: lower batch_size"):
        _fit(estimator, _x(kind), Y.copy())
        if kind == "E":
            estimator.transform(_x(kind))


def test_every_row_is_in_the_documented_table():
    text = TABLE.read_text(encoding="utf-8")
    rows = {row for row, *_ in CASES} | {"a batch that runs out of memory"}
    missing = [row for row in rows if f"* - {row}" not in text]
    assert not missing, f"rows tested but not in {TABLE.name}: {missing}"
