"""skdgm.save / skdgm.load: folders of JSON and safetensors, and pickling (tiny models only)."""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from conftest import TINY_CORPUS
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError

import skdgm
from skdgm import SemiSupervisedVAEClassifier, TransformerClassifier
from skdgm.encoders import MultilingualEncoder, _loading, clear_embedding_cache

FAST = dict(max_epochs=4, hidden_dim=16, z1_dim=4, z2_dim=2, random_state=0)
TEXT = dict(FAST, vocabulary_size=50)
TUNED = dict(TEXT, fine_tune_layers=1, fine_tune_epochs=1, fine_tune_learning_rate=1e-3)
TRANSFORMER = dict(fine_tune_layers=1, max_epochs=2, learning_rate=1e-3, random_state=0)
# The topic of each sentence of TINY_CORPUS, in five languages; 36 distinct documents.
TOPICS = ["weather", "table", "report"] * 2 + ["weather", "table"] * 3
DOCS = [f"{sentence} ({copy})" for copy in range(3) for sentence in TINY_CORPUS]
LABELS = np.array(TOPICS * 3, dtype=object)
LABELS[18:] = -1


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: more threads only contend on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _forget_models():
    """Drop the embeddings and models held by the process: the next encoder computes anew."""
    clear_embedding_cache()
    _loading._LOADED_MODELS.clear()


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, n_features=5, cluster_std=2.0, random_state=0)
    names = np.array(["north", "south", "west"], dtype=object)[y]
    names[20:] = -1
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]), names


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.poisson(1.0, size=(100, 30)).astype(float))
    y = np.where(np.arange(100) < 20, np.arange(100) % 2, -1)
    return X, y


@pytest.fixture(scope="module")
def fitted(tiny_wordpiece_model, blobs, counts):
    """Fitted estimators of every supported kind, with the X they take."""
    _forget_models()
    X_blobs, y_blobs = blobs
    X_counts, y_counts = counts
    model = tiny_wordpiece_model
    return {
        "numeric": (
            SemiSupervisedVAEClassifier(**FAST, early_stopping=True, validation_fraction=0.3).fit(
                X_blobs, y_blobs
            ),
            X_blobs,
        ),
        "counts": (
            SemiSupervisedVAEClassifier(**FAST, decoder="bow", classifier_sees_inputs=True).fit(
                X_counts, y_counts
            ),
            X_counts,
        ),
        "documents": (
            SemiSupervisedVAEClassifier(MultilingualEncoder(model), **TEXT).fit(DOCS, LABELS),
            DOCS,
        ),
        "fine-tuned": (
            SemiSupervisedVAEClassifier(MultilingualEncoder(model), **TUNED).fit(DOCS, LABELS),
            DOCS,
        ),
        "transformer": (
            TransformerClassifier(MultilingualEncoder(model), **TRANSFORMER).fit(DOCS, LABELS),
            DOCS,
        ),
        "encoder": (MultilingualEncoder(model, batch_size=4).fit(DOCS), DOCS),
    }


KINDS = ["numeric", "counts", "documents", "fine-tuned", "transformer", "encoder"]
METHODS = ("predict", "predict_proba", "transform", "count_tokens")


def _outputs(estimator, X) -> dict:
    outputs = {}
    for method in METHODS:
        if hasattr(estimator, method):
            value = getattr(estimator, method)(X)
            outputs[method] = value.toarray() if sp.issparse(value) else value
    return outputs


def _assert_same_outputs(estimator, X, expected: dict):
    got = _outputs(estimator, X)
    assert got.keys() == expected.keys()
    for method, value in expected.items():
        np.testing.assert_array_equal(got[method], value, err_msg=method)
        assert got[method].dtype == value.dtype, method


def _saved(estimator, tmp_path, name="model"):
    folder = tmp_path / name
    skdgm.save(estimator, folder)
    return folder


def _edit_manifest(folder, edit):
    path = folder / "skdgm.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _edit_tensors(folder, edit, *, update_checksum=True):
    """Change the tensors (``edit`` takes and returns the dict), then the checksum."""
    path = folder / "tensors.safetensors"
    data = save_tensors(edit(load_tensors(path.read_bytes())))
    path.write_bytes(data)
    if update_checksum:
        digest = hashlib.sha256(data).hexdigest()
        _edit_manifest(folder, lambda m: m["tensors"].update(sha256=digest))


# ------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_predicts_identically(fitted, kind, tmp_path):
    estimator, X = fitted[kind]
    expected = _outputs(estimator, X)
    folder = _saved(estimator, tmp_path)
    _forget_models()  # the loaded estimator embeds the documents itself
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. no "other weights" warning from the encoder
        loaded = skdgm.load(folder)
        _assert_same_outputs(loaded, X, expected)
    assert type(loaded) is type(estimator)
    assert repr(loaded.get_params()) == repr(estimator.get_params())
    fitted_names = [k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")]
    for name in fitted_names:
        if name in ("encoder_", "module_", "inputs_", "head_"):
            continue
        value, restored = getattr(estimator, name), getattr(loaded, name)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(restored, value)
            assert restored.dtype == value.dtype, name
        else:
            assert restored == value, name


def test_fitted_attributes_survive_with_their_types(fitted, tmp_path):
    numeric, X = fitted["numeric"]
    loaded = skdgm.load(_saved(numeric, tmp_path))
    assert loaded.best_epoch_ == numeric.best_epoch_ > 0  # early stopping kept an epoch
    assert loaded.n_features_in_ == 5
    assert list(loaded.feature_names_in_) == list(X.columns)
    assert loaded.classes_.dtype == object and list(loaded.classes_) == ["north", "south", "west"]
    assert loaded.inputs_.widths_ == numeric.inputs_.widths_  # a tuple, as warm_start needs
    assert loaded.history_ == numeric.history_
    transformer, _ = fitted["transformer"]
    loaded = skdgm.load(_saved(transformer, tmp_path, "transformer"))
    assert loaded.tuned_layers_ == 1 and loaded.encoder_.tuned_layers_ == 1
    assert not hasattr(loaded, "best_epoch_")
    assert loaded.head_.training is False


def test_only_the_tuned_layers_are_stored(fitted, tiny_wordpiece_model, tmp_path):
    from safetensors.torch import load_file

    tuned, _ = fitted["fine-tuned"]
    folder = _saved(tuned, tmp_path)
    names = list(load_file(folder / "tensors.safetensors"))
    encoder_names = [name for name in names if name.startswith("encoder_.")]
    assert encoder_names and all(n.startswith("encoder_.top.") for n in encoder_names)
    # One transformer layer of two, and never the embedding table.
    assert all(".layer.0." in name for name in encoder_names)
    assert not any("embeddings" in name for name in names)
    # The pretrained model is referenced by its name (here a folder), not copied.
    manifest = json.loads((folder / "skdgm.json").read_text())
    encoder = manifest["estimator"]["fitted"]["encoder_"]["__estimator__"]
    assert encoder["params"]["model_name"] == tiny_wordpiece_model
    assert encoder["fitted"]["tuned_layers_"] == 1
    # A frozen encoder stores no tensor at all.
    frozen, _ = fitted["documents"]
    names = list(load_file(_saved(frozen, tmp_path, "frozen") / "tensors.safetensors"))
    assert names and not any(name.startswith("encoder_.") for name in names)


def test_saved_folder_holds_json_and_safetensors_only(fitted, tmp_path):
    for kind in KINDS:
        folder = _saved(fitted[kind][0], tmp_path, kind)
        assert sorted(p.name for p in folder.iterdir()) == ["skdgm.json", "tensors.safetensors"]
        json.loads((folder / "skdgm.json").read_text(encoding="utf-8"))
        data = (folder / "tensors.safetensors").read_bytes()
        assert not data.startswith(b"\x80")  # not a pickle (protocol 2+ opens with 0x80)
        load_tensors(data)


def test_class_load_checks_the_class(fitted, tmp_path):
    folder = _saved(fitted["numeric"][0], tmp_path)
    assert isinstance(SemiSupervisedVAEClassifier.load(folder), SemiSupervisedVAEClassifier)
    with pytest.raises(TypeError, match="holds a SemiSupervisedVAEClassifier, not a Transf"):
        TransformerClassifier.load(folder)
    fitted["encoder"][0].save(tmp_path / "encoder")
    assert isinstance(MultilingualEncoder.load(tmp_path / "encoder"), MultilingualEncoder)


def test_loaded_estimator_clones_refits_and_warm_starts(fitted, tmp_path):
    for kind in ("numeric", "fine-tuned", "transformer"):
        estimator, X = fitted[kind]
        y = fitted["numeric"][0].transduction_ if kind == "numeric" else LABELS
        y = np.where(np.arange(len(y)) < 20, y, -1)
        loaded = skdgm.load(_saved(estimator, tmp_path, kind))
        fresh = clone(loaded)
        assert not hasattr(fresh, "classes_")
        assert repr(fresh.get_params()) == repr(clone(estimator).get_params())
        refitted = fresh.fit(X, y)
        np.testing.assert_array_equal(
            refitted.predict_proba(X), clone(estimator).fit(X, y).predict_proba(X)
        )
    # warm_start goes on from the loaded parameters (and the tuned layers).
    loaded = skdgm.load(tmp_path / "fine-tuned").set_params(warm_start=True, max_epochs=1)
    before = loaded.predict_proba(DOCS)
    loaded.fit(DOCS, LABELS)
    assert loaded.n_iter_ == 2 and not np.allclose(loaded.predict_proba(DOCS), before)


def test_save_replaces_an_earlier_save_and_overwrite_keeps_other_files(fitted, tmp_path):
    numeric, X = fitted["numeric"]
    counts, X_counts = fitted["counts"]
    folder = _saved(numeric, tmp_path)
    skdgm.save(counts, folder)  # an earlier save is replaced without overwrite=True
    np.testing.assert_array_equal(skdgm.load(folder).predict(X_counts), counts.predict(X_counts))
    other = tmp_path / "notes"
    other.mkdir()
    (other / "README.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty and holds no earlier skdgm save"):
        skdgm.save(numeric, other)
    assert sorted(p.name for p in other.iterdir()) == ["README.txt"]
    skdgm.save(numeric, other, overwrite=True)
    assert (other / "README.txt").read_text() == "mine"
    np.testing.assert_array_equal(skdgm.load(other).predict(X), numeric.predict(X))
    with pytest.raises(FileExistsError, match="is a file"):
        skdgm.save(numeric, other / "README.txt", overwrite=True)
    skdgm.save(numeric, tmp_path / "new" / "nested")  # parents are created


# --------------------------------------------------------------------------- devices
def test_load_maps_to_the_requested_device(fitted, tmp_path):
    transformer, X = fitted["transformer"]
    folder = _saved(transformer, tmp_path)
    loaded = skdgm.load(folder, device="cpu")
    assert loaded.device_ == "cpu" and loaded.encoder_.device_ == "cpu"
    assert next(loaded.head_.parameters()).device.type == "cpu"
    assert skdgm.load(folder, device="auto").device_ == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            skdgm.load(folder, device="cuda")
        # Fitted on a GPU, loaded on a machine without one: the CPU, silently.
        _edit_manifest(folder, lambda m: m["estimator"]["fitted"].update(device_="cuda"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert skdgm.load(folder).device_ == "cpu"
    with pytest.raises(ValueError, match="not a device"):
        skdgm.load(folder, device="gpu")


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_round_trip_and_a_gpu_fit_unpickles_on_cpu(fitted, kind):
    estimator, X = fitted[kind]
    expected = _outputs(estimator, X)
    blob = pickle.dumps(estimator)
    _forget_models()
    _assert_same_outputs(pickle.loads(blob), X, expected)
    if torch.cuda.is_available():
        return
    # As if fitted on a GPU: the pickle holds CPU tensors and a CUDA device_.
    state = estimator.__getstate__()
    state["device_"] = "cuda"
    moved = type(estimator).__new__(type(estimator))
    moved.__setstate__(state)
    if kind == "encoder":
        with pytest.warns(UserWarning, match="fitted on CUDA"):
            moved.transform(X[:2])
    else:
        assert moved.device_ == "cpu"
        np.testing.assert_array_equal(moved.predict_proba(X), expected["predict_proba"])


def test_the_package_never_calls_torch_load_without_weights_only():
    from pathlib import Path

    import skdgm as package

    for path in Path(package.__file__).parent.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path.name}: {line.strip()}"


# ---------------------------------------------------------------- what save refuses
@pytest.mark.parametrize(
    "estimator",
    [SemiSupervisedVAEClassifier(), TransformerClassifier(), MultilingualEncoder()],
    ids=lambda e: type(e).__name__,
)
def test_save_refuses_an_unfitted_estimator(estimator, tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        skdgm.save(estimator, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_save_refuses_what_it_cannot_store_without_pickle(fitted, tmp_path):
    from skdgm._setfit import SetFitClassifier

    with pytest.raises(TypeError, match="SetFitClassifier.*pickle"):
        skdgm.save(SetFitClassifier(), tmp_path / "setfit")

    class Custom(SemiSupervisedVAEClassifier):
        pass

    with pytest.raises(TypeError, match="a Custom, without pickle"):
        skdgm.save(Custom(), tmp_path / "custom")
    numeric = clone(fitted["numeric"][0])
    numeric.__dict__.update(fitted["numeric"][0].__dict__)
    numeric.set_params(random_state=np.random.default_rng(0))  # a Generator: not in JSON
    with pytest.raises(TypeError, match="random_state = Generator.*without pickle"):
        skdgm.save(numeric, tmp_path / "generator")
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_allow_list_is_the_package_estimators_after_import_skdgm(fitted, tmp_path):
    """``PersistenceMixin`` fills the allow-list as skdgm's estimators are defined: in a fresh
    interpreter, ``import skdgm`` is enough for ``skdgm.load``; subclasses are never on it."""
    import subprocess
    import sys

    from skdgm._estimator_records import _allowed_classes

    class Custom(SemiSupervisedVAEClassifier):
        pass

    allowed = [
        "skdgm.SemiSupervisedVAEClassifier",
        "skdgm.TransformerClassifier",
        "skdgm.encoders.MultilingualEncoder",
        "skdgm.encoders.NXVAE",
    ]
    assert list(_allowed_classes()) == allowed and Custom not in _allowed_classes().values()
    folder = _saved(fitted["numeric"][0], tmp_path)
    code = (
        "import sys; import skdgm; from skdgm._estimator_records import _allowed_classes; "
        "print(list(_allowed_classes())); print(type(skdgm.load(sys.argv[1])).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [str(allowed), "SemiSupervisedVAEClassifier"]


def test_random_state_instances_are_stored_as_their_state(blobs, tmp_path):
    X, y = blobs
    clf = SemiSupervisedVAEClassifier(**{**FAST, "random_state": np.random.RandomState(3)})
    clf.fit(X, y)
    loaded = skdgm.load(_saved(clf, tmp_path))
    restored = loaded.get_params()["random_state"]
    assert isinstance(restored, np.random.RandomState)
    assert restored.randint(10**9) == clf.get_params()["random_state"].randint(10**9)


# ------------------------------------------------------------- damaged or foreign folders
def test_a_missing_folder_or_file_is_a_clear_error(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="No saved model at .*does not exist"):
        skdgm.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="skdgm.json' is missing"):
        skdgm.load(tmp_path / "empty")
    folder = _saved(fitted["numeric"][0], tmp_path)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        skdgm.load(folder / "skdgm.json")
    (folder / "tensors.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="tensors.safetensors' is missing"):
        skdgm.load(folder)


def test_a_truncated_tensor_file_is_a_clear_error(fitted, tmp_path):
    folder = _saved(fitted["numeric"][0], tmp_path)
    path = folder / "tensors.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="tensors.safetensors' does not match the checksum"):
        skdgm.load(folder)
    # With its checksum updated too, the truncated file still fails as safetensors.
    digest = hashlib.sha256(data[: len(data) // 2]).hexdigest()
    _edit_manifest(folder, lambda m: m["tensors"].update(sha256=digest))
    with pytest.raises(ValueError, match="tensors.safetensors' is not a readable safetensors"):
        skdgm.load(folder)
    path.write_bytes(b"\xff" * 4)
    _edit_manifest(
        folder, lambda m: m["tensors"].update(sha256=hashlib.sha256(b"\xff" * 4).hexdigest())
    )
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        skdgm.load(folder)


def test_damaged_json_is_a_clear_error(fitted, tmp_path):
    folder = _saved(fitted["numeric"][0], tmp_path)
    path = folder / "skdgm.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ValueError, match="skdgm.json' is not valid JSON"):
        skdgm.load(folder)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="does not describe a model saved by skdgm.save"):
        skdgm.load(folder)


def test_another_format_version_is_refused_with_both_versions(fitted, tmp_path):
    folder = _saved(fitted["numeric"][0], tmp_path)
    _edit_manifest(folder, lambda m: m.update(format_version=2, skdgm_version="0.9.0"))
    with pytest.raises(
        ValueError,
        match=r"written by skdgm 0.9.0 in format version 2, but this skdgm \(0.1.0\) reads "
        r"format version 1. Load it with skdgm 0.9.0.*or refit",
    ):
        skdgm.load(folder)
    _edit_manifest(folder, lambda m: m.pop("format_version"))
    with pytest.raises(ValueError, match="format version None"):
        skdgm.load(folder)


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda m: m["estimator"]["fitted"].pop("classes_"),
            "fitted state of SemiSupervisedVAEClassifier .*incomplete.*KeyError: 'classes_'",
        ),
        (
            lambda m: m["estimator"]["fitted"]["module_kwargs"].update(hidden_dim=17),
            r"do not fit the model that skdgm.json describes: module.q_z1.body.0.weight is "
            r"torch.float32 \(16, 5\), expected torch.float32 \(17, 5\)",
        ),
        (
            lambda m: m["estimator"]["fitted"]["inputs"].update(widths=[6, None]),
            r"inputs.scale_ has shape \(5,\), expected \(6,\)",
        ),
        (
            lambda m: m["estimator"].update({"class": "os.system"}),
            "names the class 'os.system', which skdgm.load does not rebuild",
        ),
        (
            lambda m: m["estimator"]["params"].update(colour="blue"),
            r"parameters it does not have: \['colour'\]",
        ),
        (lambda m: m["estimator"]["params"].update(z1_dim=-3), "params: The 'z1_dim' parameter"),
        (
            lambda m: m["estimator"]["fitted"].update(classes_={"__ndarray__": {"dtype": "V8"}}),
            "fitted.classes_ is not a valid 1-D array",
        ),
        (lambda m: m.pop("tensors"), "has no checksum of tensors.safetensors"),
    ],
    ids=[
        "missing key",
        "sizes",
        "widths",
        "class",
        "unknown param",
        "bad param",
        "array",
        "checksum",
    ],
)
def test_edited_json_is_a_clear_error(fitted, tmp_path, edit, match):
    folder = _saved(fitted["numeric"][0], tmp_path)
    _edit_manifest(folder, edit)
    with pytest.raises(ValueError, match=match) as caught:
        skdgm.load(folder)
    assert str(folder) in str(caught.value)


@pytest.mark.parametrize("kind", ["numeric", "fine-tuned", "transformer"])
def test_tensors_of_the_wrong_shape_or_missing_are_a_clear_error(fitted, kind, tmp_path):
    folder = _saved(fitted[kind][0], tmp_path)
    stored = load_tensors((folder / "tensors.safetensors").read_bytes())
    name = next(n for n, t in stored.items() if n.endswith("weight") and t.ndim == 2)

    def widen(tensors):
        tensors[name] = torch.zeros(tensors[name].shape[0], tensors[name].shape[1] + 1)
        return tensors

    _edit_tensors(folder, widen)
    _forget_models()
    with pytest.raises(
        ValueError,
        match=r"Cannot load the skdgm model in .*tensors that do not "
        r"fit the model.*expected",
    ):
        skdgm.load(folder)
    _edit_tensors(folder, lambda tensors: {k: v for k, v in tensors.items() if k != name})
    with pytest.raises(ValueError, match="does not hold the tensors .*missing"):
        skdgm.load(folder)


def test_a_bad_transduction_or_inputs_array_is_a_clear_error(fitted, tmp_path):
    folder = _saved(fitted["counts"][0], tmp_path)
    _edit_tensors(folder, lambda t: {**t, "transduction_": t["transduction_"] + 7})
    with pytest.raises(ValueError, match="transduction_ holds positions outside classes_"):
        skdgm.load(folder)
    folder = _saved(fitted["counts"][0], tmp_path, "again")
    _edit_tensors(folder, lambda t: {**t, "inputs.vocabulary_": t["inputs.vocabulary_"] + 99})
    with pytest.raises(ValueError, match="vocabulary_ holds columns outside"):
        skdgm.load(folder)


def test_the_pretrained_model_is_needed_at_load_time(tiny_wordpiece_model, tmp_path):
    import shutil

    model = tmp_path / "pretrained"
    shutil.copytree(tiny_wordpiece_model, model)
    tuned = TransformerClassifier(MultilingualEncoder(str(model)), **TRANSFORMER)
    frozen = MultilingualEncoder(str(model))
    skdgm.save(tuned.fit(DOCS, LABELS), tmp_path / "tuned")
    skdgm.save(frozen.fit(DOCS), tmp_path / "frozen")
    shutil.rmtree(model)
    _forget_models()
    # Tuned layers are rebuilt on the pretrained model: loading needs it at once...
    with pytest.raises(OSError, match="The model folder .* does not exist"):
        skdgm.load(tmp_path / "tuned")
    # ...a frozen encoder only when it runs.
    loaded = skdgm.load(tmp_path / "frozen")
    with pytest.raises(OSError, match="The model folder .* does not exist"):
        loaded.transform(DOCS[:1])
