"""Tests for skdgm.encoders.NXVAE, the cross-lingual VAE trained from scratch (tiny settings)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import TINY_CORPUS
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import estimator_checks

import skdgm
from skdgm import NXVAE, SemiSupervisedVAEClassifier

# Five languages, the same dozen sentences with a word changed, so that each language has
# a few documents.
DOCS = TINY_CORPUS + [
    s.replace("menu", "main menu").replace("Menü", "Hauptmenü") for s in TINY_CORPUS
]
LANGS = ["en"] * 3 + ["de"] * 3 + ["fr"] * 2 + ["ru"] * 2 + ["zh"] * 2
LANGS = LANGS * 2
TINY = dict(
    vocabulary_size=300,
    embedding_dim=16,
    hidden_dim=16,
    latent_dim=16,
    max_epochs=2,
    batch_size=8,
    random_state=0,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: more threads only contend on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fitted() -> NXVAE:
    return NXVAE(**TINY).fit(DOCS, languages=LANGS)


def test_transform_shape_dtype_and_fitted_attributes(fitted):
    z = fitted.transform(DOCS)
    assert z.shape == (len(DOCS), 16) and z.dtype == np.float32
    assert np.isfinite(z).all()
    assert fitted.languages_.tolist() == ["de", "en", "fr", "ru", "zh"]
    assert fitted.piece_counts_.shape == (5, fitted.vocabulary_size_)
    assert fitted.vocabulary_size_ <= 300
    assert fitted.count_tokens(DOCS).shape == (len(DOCS), fitted.vocabulary_size_)
    assert fitted.n_iter_ == fitted.best_epoch_ == len(fitted.history_) == 2
    assert {"loss", "reconstruction", "kl", "duration"} <= set(fitted.history_[0])
    assert fitted.device_ == "cpu"
    assert fitted.get_feature_names_out().tolist()[:2] == ["nxvae0", "nxvae1"]
    # The encoder is shared: a document's vector does not depend on its neighbours.
    np.testing.assert_allclose(fitted.transform(DOCS[:3]), z[:3], atol=1e-6)
    assert fitted.transform(["", "menu"]).shape == (2, 16)  # empty documents are fine


def test_random_state_makes_fits_identical_and_leaves_global_rng_alone(fitted):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    again = NXVAE(**TINY).fit(DOCS, languages=LANGS)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])  # noqa: NPY002
    assert again.tokenizer_.to_str() == fitted.tokenizer_.to_str()
    # Equal up to float rounding: with several threads the CPU kernels' reductions may
    # add in another order (seen in make test on 2 threads: 3e-8 apart).
    np.testing.assert_allclose(again.transform(DOCS), fitted.transform(DOCS), atol=1e-6)
    other = NXVAE(**{**TINY, "random_state": 1}).fit(DOCS, languages=LANGS)
    assert not np.allclose(other.transform(DOCS), fitted.transform(DOCS))


def test_the_vocabulary_covers_every_language(fitted):
    pieces = fitted.tokenizer_.encode_batch(DOCS, add_special_tokens=False)
    for language in fitted.languages_:
        ids = np.concatenate([p.ids for p, lang in zip(pieces, LANGS) if lang == language])
        assert np.mean(ids == fitted.tokenizer_.token_to_id("<unk>")) < 0.05, language
        assert len(ids) > 0


def test_a_word_is_its_own_first_neighbour(fitted):
    for row, language in enumerate(fitted.languages_):
        # The language's most frequent word-initial piece: a word-internal one (French
        # "s") would be looked up as the word "s", i.e. as the piece "\u2581s".
        by_count = np.argsort(-fitted.piece_counts_[row, 3:], kind="stable") + 3
        pieces = [fitted.tokenizer_.id_to_token(int(i)) for i in by_count]
        piece = next(p for p in pieces if p.startswith("\u2581") and len(p) > 1)
        neighbours = fitted.nearest_words(piece, language, language, k=3)
        assert neighbours[0][0] == piece and neighbours[0][1] == pytest.approx(1.0)
        assert len(neighbours) == 3
    # A plain word is looked up as its word-initial piece.
    assert fitted.nearest_words("Menu", "en", "en", k=1)[0][0] == "\u2581menu"
    # Across languages: pieces used by the target language, most similar first.
    across = fitted.nearest_words("menu", "en", "de", k=4)
    de_row = fitted.languages_.tolist().index("de")
    sims = [s for _, s in across]
    assert sims == sorted(sims, reverse=True)
    for piece, _ in across:
        assert fitted.piece_counts_[de_row, fitted.tokenizer_.token_to_id(piece)] > 0


def test_clear_errors(fitted):
    with pytest.raises(ValueError, match="Unknown target_language 'es'.*'de', 'en'"):
        fitted.nearest_words("menu", "en", "es")
    with pytest.raises(ValueError, match="Unknown source_language"):
        fitted.nearest_words("menu", "xx", "en")
    with pytest.raises(ValueError, match="not in the NXVAE's vocabulary: it is cut into"):
        fitted.nearest_words("Quarterlyspreadsheetification", "en", "de")
    with pytest.raises(ValueError, match="never occurs in the 'ru' training documents"):
        fitted.nearest_words("menu", "ru", "en")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fitted.nearest_words("menu", "en", "de", k=0)
    with pytest.raises(ValueError, match="languages has 3 entries but X holds 24 documents"):
        NXVAE(**TINY).fit(DOCS, languages=["en", "de", "fr"])
    with pytest.raises(ValueError, match="single string 'en'"):
        NXVAE(**TINY).fit(DOCS, languages="en")
    with pytest.raises(ValueError, match=r"languages\[1\] is None"):
        NXVAE(**TINY).fit(DOCS[:2], languages=["en", None])
    for method in ("transform", "count_tokens"):
        with pytest.raises(NotFittedError):
            getattr(NXVAE(), method)(DOCS)
    with pytest.raises(NotFittedError):
        NXVAE().nearest_words("menu", "en", "de")


def test_without_languages_all_documents_are_one_language():
    vae = NXVAE(**{**TINY, "max_epochs": 1}).fit(DOCS)
    assert vae.languages_.tolist() == ["und"]
    assert vae.nearest_words("menu", "und", "und", k=1)[0][0] == "\u2581menu"
    with pytest.warns(UserWarning, match="no effect with a single language"):
        NXVAE(**{**TINY, "max_epochs": 1, "adversarial_weight": 0.1}).fit(DOCS)


def test_options_discriminator_language_decoders_and_early_stopping():
    vae = NXVAE(
        **{**TINY, "max_epochs": 3, "n_iter_no_change": 1, "latent_dim": 8},
        adversarial_weight=0.5,
        language_decoders=True,
        early_stopping=True,
        n_layers=2,
    ).fit(DOCS, languages=LANGS)
    record = vae.history_[0]
    assert {"adversarial", "language_accuracy", "valid_loss"} <= set(record)
    assert len(vae.module_.decoders) == 5
    assert 1 <= vae.best_epoch_ <= vae.n_iter_ <= 3
    # latent_dim differs from embedding_dim: a projection takes z to the embedding space.
    assert vae.transform(DOCS).shape == (len(DOCS), 8)


def test_pickle_clone_and_save_round_trips(fitted, tmp_path):
    z = fitted.transform(DOCS)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(DOCS), z)
    assert restored.nearest_words("menu", "en", "de") == fitted.nearest_words("menu", "en", "de")
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "module_")
    skdgm.save(fitted, tmp_path / "vae")
    loaded = skdgm.load(tmp_path / "vae")
    np.testing.assert_array_equal(loaded.transform(DOCS), z)
    np.testing.assert_array_equal(loaded.piece_counts_, fitted.piece_counts_)


@pytest.mark.parametrize(
    "check_name",
    [
        "check_no_attributes_set_in_init",
        "check_parameters_default_constructible",
        "check_get_params_invariance",
        "check_set_params",
        "check_estimator_cloneable",
        "check_estimator_repr",
        "check_mixin_order",
        "check_valid_tag_types",
        "check_param_validation",
    ],
)
def test_sklearn_api_checks(check_name):
    getattr(estimator_checks, check_name)("NXVAE", NXVAE())


# ------------------------------------------------------------- inside the SDGM
SDGM_FAST = dict(max_epochs=3, z1_dim=4, z2_dim=2, hidden_dim=16, batch_size=8, random_state=0)
Y = np.array([0, 1, 2] * 8)
Y[9:] = -1


def test_as_the_encoder_of_the_sdgm_trained_on_its_documents():
    clf = SemiSupervisedVAEClassifier(encoder=NXVAE(**{**TINY, "max_epochs": 1}), **SDGM_FAST)
    clf.fit(DOCS, Y)
    assert clf.decoder_ == "bow"  # NXVAE counts its pieces for the bag-of-words decoder
    assert clf.encoder_.languages_.tolist() == ["und"]
    assert set(clf.predict(DOCS)) <= {0, 1, 2}
    assert clf.transform(DOCS).shape == (len(DOCS), 4)


def test_a_prefitted_nxvae_stays_as_it_is_inside_frozen_estimator(fitted):
    z = fitted.transform(DOCS)
    clf = SemiSupervisedVAEClassifier(encoder=FrozenEstimator(fitted), **SDGM_FAST)
    clf.fit(DOCS, Y)
    assert clf.encoder_.estimator is fitted
    np.testing.assert_array_equal(fitted.transform(DOCS), z)
    assert clf.predict_proba(DOCS).shape == (len(DOCS), 3)


def test_fine_tuning_it_is_refused_before_any_training(monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("the encoder was fitted")

    monkeypatch.setattr(NXVAE, "fit", no_fit)
    clf = SemiSupervisedVAEClassifier(encoder=NXVAE(**TINY), fine_tune_layers=1)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="NXVAE cannot"):
        clf.fit(DOCS, Y)
