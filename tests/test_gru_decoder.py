"""The GRU decoder: its log-likelihood by hand, padding, word dropout, and the SDGM around it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from skdgm import SemiSupervisedVAEClassifier
from skdgm._preprocessing import BOS, EOS, N_SPECIAL, PAD, UNK, ModelInputs
from skdgm._sdgm._networks import GRUDecoder
from skdgm.datasets import load_libreoffice_help
from skdgm.encoders import MultilingualEncoder

FAST = dict(
    decoder="gru",
    max_epochs=3,
    hidden_dim=16,
    z1_dim=4,
    z2_dim=2,
    vocabulary_size=60,
    max_decoder_length=24,
    random_state=0,
)


def _decoder(word_dropout=0.0, vocabulary_size=7, z1_dim=2, hidden_dim=3, seed=0):
    """A GRU decoder whose every weight is set from a seeded generator."""
    decoder = GRUDecoder(z1_dim, vocabulary_size, hidden_dim, word_dropout)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return decoder


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _log_softmax(x):
    return x - x.max() - np.log(np.exp(x - x.max()).sum())


def test_log_likelihood_matches_a_hand_computation():
    decoder = _decoder().eval()
    z1 = np.array([0.3, -1.2])
    tokens = [5, 4, EOS]  # two pieces of the vocabulary, then the end of the document
    w = {name: p.detach().double().numpy() for name, p in decoder.named_parameters()}
    hidden = 3
    h = np.tanh(w["initial.weight"] @ z1 + w["initial.bias"])
    expected = 0.0
    for read, target in zip([BOS, *tokens[:-1]], tokens):  # teacher forcing
        x = np.concatenate([w["embedding.weight"][read], z1])
        gi = w["gru.weight_ih_l0"] @ x + w["gru.bias_ih_l0"]
        gh = w["gru.weight_hh_l0"] @ h + w["gru.bias_hh_l0"]
        r = _sigmoid(gi[:hidden] + gh[:hidden])
        z = _sigmoid(gi[hidden : 2 * hidden] + gh[hidden : 2 * hidden])
        n = np.tanh(gi[2 * hidden :] + r * gh[2 * hidden :])
        h = (1 - z) * n + z * h
        logits = w["output.weight"] @ h + w["output.bias"]
        expected += _log_softmax(logits)[target]
    with torch.no_grad():
        got = decoder.log_likelihood(
            torch.tensor(z1[None], dtype=torch.float32), torch.tensor([tokens])
        )
        # Reading z1 matters: another z1 gives another likelihood.
        other = decoder.log_likelihood(torch.tensor([[-2.0, 0.5]]), torch.tensor([tokens]))
    assert got.shape == (1,)
    np.testing.assert_allclose(float(got[0]), expected, rtol=1e-5)
    assert abs(float(other[0]) - expected) > 1e-3


def test_padding_does_not_change_a_documents_log_likelihood():
    decoder = _decoder(vocabulary_size=12, z1_dim=4, hidden_dim=5).eval()
    documents = [[5, 9, 11, 4, EOS], [6, EOS], [UNK, 8, EOS]]
    z1 = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    alone = torch.cat(
        [
            decoder.log_likelihood(z1[i : i + 1], torch.tensor([doc]))
            for i, doc in enumerate(documents)
        ]
    )
    for width in (5, 9):  # padded to the longest document, and beyond
        batch = torch.full((3, width), PAD)
        for row, doc in enumerate(documents):
            batch[row, : len(doc)] = torch.tensor(doc)
        torch.testing.assert_close(decoder.log_likelihood(z1, batch), alone)
    assert torch.all(alone < 0)


def test_word_dropout_changes_the_inputs_in_training_mode_only():
    decoder = _decoder(word_dropout=0.5, vocabulary_size=20)
    tokens = torch.randint(N_SPECIAL, 20, (8, 40), generator=torch.Generator().manual_seed(0))
    tokens[:4, 30:] = PAD
    shifted = torch.cat([torch.full((8, 1), BOS), tokens[:, :-1]], dim=1)
    torch.manual_seed(0)
    read = decoder.train().teacher_inputs(tokens)
    dropped = read != shifted
    assert torch.all(read[dropped] == UNK)
    assert 0.4 < dropped.float().sum() / (shifted != PAD).sum() < 0.6
    assert torch.all(read[:, 0] == BOS) and torch.all(read[shifted == PAD] == PAD)
    z1 = torch.zeros(8, 2)
    first, second = decoder.log_likelihood(z1, tokens), decoder.log_likelihood(z1, tokens)
    assert not torch.allclose(first, second)  # a new draw of dropped pieces each time
    decoder.eval()
    assert torch.equal(decoder.teacher_inputs(tokens), shifted)
    torch.testing.assert_close(
        decoder.log_likelihood(z1, tokens), decoder.log_likelihood(z1, tokens)
    )
    decoder.train().word_dropout = 0.0
    assert torch.equal(decoder.teacher_inputs(tokens), shifted)


def test_sequences_use_the_vocabulary_of_the_training_documents():
    counts = sp.csr_matrix(np.array([[0, 3, 0, 1, 0, 2], [0, 1, 0, 0, 0, 4]]))
    inputs = ModelInputs("gru", vocabulary_size=2).fit(None, counts)
    np.testing.assert_array_equal(inputs.vocabulary_, [1, 5])  # the two most frequent
    assert inputs.sequence_vocabulary_size == N_SPECIAL + 2
    sequences = inputs.sequences([[5, 1, 3, 1], [], [1, 1, 5, 5, 1, 1]], max_length=5)
    first, second = N_SPECIAL, N_SPECIAL + 1  # pieces 1 and 5
    np.testing.assert_array_equal(
        sequences,
        [
            [second, first, UNK, first, EOS],
            [EOS, PAD, PAD, PAD, PAD],
            [first, first, second, second, first],  # cut short: no end
        ],
    )
    assert inputs.transform(None, counts)[1] is None  # the targets are the sequences


# --------------------------------------------------------------------------- the estimator
@pytest.fixture(scope="module")
def documents():
    """Short real help pages in two languages, 3 labels per class."""
    bunch = load_libreoffice_help(languages=["en", "de"], split="train")
    index = np.random.default_rng(0).choice(len(bunch.data), 60, replace=False)
    docs = [bunch.data[i][:300] for i in index]
    y = bunch.target[index]
    y_partial = np.full(len(y), -1)
    for c in range(4):
        y_partial[np.flatnonzero(y == c)[:3]] = c
    return docs, y_partial


def test_gru_sdgm_fits_predicts_and_pickles(tiny_wordpiece_model, documents):
    docs, y = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model), batch_size=8, **FAST
    ).fit(docs, y)
    assert clf.decoder_ == "gru"
    decoder = clf.module_.decoder
    assert isinstance(decoder, GRUDecoder) and decoder.word_dropout == 0.25
    # The softmax runs over the pieces of the training documents, not the tokenizer's.
    assert decoder.output.out_features == N_SPECIAL + len(clf.inputs_.vocabulary_)
    assert len(clf.inputs_.vocabulary_) <= FAST["vocabulary_size"]
    assert len(clf.history_) == FAST["max_epochs"]
    for record in clf.history_:
        assert 0 <= record["active_units"] <= FAST["z1_dim"]
        assert record["nll"] > 0 and np.isfinite(record["loss"])
    assert clf.history_[-1]["nll"] < clf.history_[0]["nll"]  # the decoder learns
    proba = clf.predict_proba(docs)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(docs), clf.predict(docs))
    np.testing.assert_allclose(restored.predict_proba(docs), proba, rtol=1e-5, atol=1e-6)
    again = clone(clf).fit(docs, y)
    np.testing.assert_array_equal(again.predict_proba(docs), proba)


def test_gru_targets_are_the_encoders_pieces(tiny_unigram_model, documents, monkeypatch):
    docs, y = documents
    seen = []
    original = ModelInputs.sequences

    def spy(self, token_ids, max_length):
        seen.append((token_ids, max_length))
        return original(self, token_ids, max_length)

    monkeypatch.setattr(ModelInputs, "sequences", spy)
    clf = SemiSupervisedVAEClassifier(MultilingualEncoder(tiny_unigram_model), **FAST)
    clf.fit(docs, y)
    [(token_ids, max_length)] = seen
    assert max_length == FAST["max_decoder_length"]
    assert token_ids == clf.encoder_.token_ids(docs)


def test_gru_sdgm_with_fine_tuned_layers(tiny_wordpiece_model, documents):
    docs, y = documents
    clf = SemiSupervisedVAEClassifier(
        MultilingualEncoder(tiny_wordpiece_model),
        fine_tune_layers=1,
        fine_tune_epochs=2,
        fine_tune_learning_rate=1e-3,
        **FAST,
    ).fit(docs, y)
    assert clf.encoder_.tuned_layers_ == 1
    assert [h["phase"] for h in clf.history_] == ["joint"] * 3 + ["fine-tune"] * 2
    assert all("active_units" in h for h in clf.history_)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(docs), clf.predict(docs))


def test_gru_needs_documents_and_valid_settings(tiny_wordpiece_model, documents):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.r_[[0, 1] * 3, [-1] * 14]
    with pytest.raises(ValueError, match="decoder='gru' .* needs documents"):
        SemiSupervisedVAEClassifier(decoder="gru").fit(X, y)
    docs, y_docs = documents
    encoder = MultilingualEncoder(tiny_wordpiece_model)
    for bad in ({"max_decoder_length": 0}, {"word_dropout": 1.0}, {"decoder": "lstm"}):
        with pytest.raises(ValueError, match=f"'{next(iter(bad))}' parameter"):
            SemiSupervisedVAEClassifier(encoder, **{**FAST, **bad}).fit(docs, y_docs)


def test_gru_needs_an_encoder_that_gives_the_pieces(documents):
    from sklearn.base import BaseEstimator, TransformerMixin

    class CountingOnly(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return np.array([[len(doc), doc.count(" ")] for doc in X], dtype=float)

        def count_tokens(self, X):
            return sp.csr_matrix(self.transform(X))

    docs, y = documents
    with pytest.raises(ValueError, match="has no token_ids method"):
        SemiSupervisedVAEClassifier(CountingOnly(), **FAST).fit(docs, y)
