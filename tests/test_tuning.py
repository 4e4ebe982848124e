"""skdgm.encoders._tuning: the frozen/trainable split of an encoder and the token-state store."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import TINY_CORPUS

from skdgm.encoders import MultilingualEncoder, _loading, _tuning
from skdgm.encoders._tuning import DocumentEmbedder, TokenStates

LONG = " ".join(TINY_CORPUS * 4)
DOCS = [*TINY_CORPUS, LONG, ""]


@pytest.fixture(autouse=True)
def _fresh_models():
    _loading._LOADED_MODELS.clear()
    yield
    _loading._LOADED_MODELS.clear()


@pytest.fixture(params=["wordpiece", "unigram"])
def tiny_model(request, tiny_wordpiece_model, tiny_unigram_model) -> str:
    return {"wordpiece": tiny_wordpiece_model, "unigram": tiny_unigram_model}[request.param]


@pytest.mark.parametrize("long_documents", ["truncate", "windows"])
@pytest.mark.parametrize("n_top", [1, 2])
def test_stored_states_through_the_top_give_the_frozen_embeddings(
    tiny_model, long_documents, n_top
):
    encoder = MultilingualEncoder(
        tiny_model, max_length=16, long_documents=long_documents, precision="float32"
    ).fit(DOCS)
    frozen = encoder.transform(DOCS)
    states = encoder._token_states(DOCS, n_top)
    assert states.n_documents == len(DOCS)
    if long_documents == "windows":
        assert len(states.lengths) > len(DOCS)  # the long document has several windows
    embedder = DocumentEmbedder(encoder._tunable_top(n_top), states, chunk_size=3)
    through_top = embedder.embeddings(np.arange(len(DOCS)))
    # Only the bfloat16 storage of the states separates the two.
    cosine = (through_top * frozen).sum(1)
    assert cosine.min() > 0.999
    np.testing.assert_allclose(np.linalg.norm(through_top, axis=1), 1.0, rtol=1e-5)


def test_rows_come_back_in_the_order_asked(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model, precision="float32").fit(DOCS)
    embedder = DocumentEmbedder(encoder._tunable_top(1), encoder._token_states(DOCS, 1), 2)
    rows = np.array([5, 0, 12, 3, 3, 7])
    np.testing.assert_allclose(
        embedder.embeddings(rows), embedder.embeddings(np.arange(len(DOCS)))[rows], atol=1e-6
    )


def test_top_copy_holds_only_the_top_layers(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model).fit(DOCS)
    top = encoder._tunable_top(1)
    pretrained = encoder._model
    names = {name for name, _ in top.named_parameters()}
    assert not any("word_embeddings" in name for name in names)
    assert sum(p.numel() for p in top.parameters()) == sum(
        p.numel() for p in pretrained.encoder.layer[1].parameters()
    )
    for (name, tuned), original in zip(
        top.model.encoder.layer[0].state_dict().items(),
        pretrained.encoder.layer[1].state_dict().values(),
    ):
        assert torch.equal(tuned, original), name
        assert tuned.data_ptr() != original.data_ptr()  # a copy, not the shared weights


def test_bad_numbers_of_layers_are_refused(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model).fit(DOCS)
    with pytest.raises(ValueError, match="has 2 layers; use 0 \\(frozen\\) to 2"):
        encoder._tunable_top(3)
    with pytest.raises(ValueError, match="has 2 layers"):
        encoder._token_states(DOCS, 5)


def test_store_on_disk_reads_what_memory_would(tiny_unigram_model, monkeypatch):
    encoder = MultilingualEncoder(tiny_unigram_model, max_length=16).fit(DOCS)
    in_memory = encoder._token_states(DOCS, 1)
    monkeypatch.setattr(_tuning, "MAX_STATE_BYTES_IN_MEMORY", 0)
    on_disk = encoder._token_states(DOCS, 1)
    assert on_disk.on_disk and not in_memory.on_disk
    rows = np.array([3, 12, 0])
    for a, b in zip(in_memory.batch(rows, "cpu"), on_disk.batch(rows, "cpu")):
        assert torch.equal(
            a.view(torch.int16) if a.is_floating_point() else a,
            b.view(torch.int16) if b.is_floating_point() else b,
        )
    part = on_disk.subset(rows)
    assert torch.equal(part.batch(np.arange(3), "cpu")[1], on_disk.batch(rows, "cpu")[1])
    on_disk.close()
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(in_memory)


def test_store_checks_what_is_written():
    states = TokenStates([2, 3], [0, 1], 2, 4)
    with pytest.raises(ValueError, match="expected \\(3, 4\\)"):
        states.write(1, torch.zeros(2, 4))
    states.write(0, torch.ones(2, 4))
    states.write(1, torch.full((3, 4), 2.0))
    batch, mask, owner = states.batch(np.array([1, 0]), "cpu")
    assert batch.dtype == torch.bfloat16 and batch.shape == (2, 3, 4)
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert owner.tolist() == [0, 1]
    assert float(batch[1, :2].float().mean()) == 1.0


def test_tuned_encoder_is_cached_apart_and_pickles(tiny_wordpiece_model):
    encoder = MultilingualEncoder(tiny_wordpiece_model).fit(DOCS)
    frozen = encoder.transform(DOCS)
    top = encoder._tunable_top(1)
    with torch.no_grad():
        for parameter in top.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    tuned = encoder._with_tuned_top(top)
    assert tuned.tuned_layers_ == 1 and encoder.tuned_layers_ == 0
    tuned_vectors = tuned.transform(DOCS)
    assert (tuned_vectors * frozen).sum(1).mean() < 0.999  # the tuned layers are used...
    np.testing.assert_array_equal(encoder.transform(DOCS), frozen)  # ...and cached apart
    assert tuned._settings_key() != encoder._settings_key()
    restored = pickle.loads(pickle.dumps(tuned))
    np.testing.assert_allclose(restored.transform(DOCS), tuned_vectors, atol=1e-6)
    with pytest.raises(ValueError, match="already tuned"):
        tuned._token_states(DOCS, 2)


def test_training_passes_on_cpu_use_eager_attention_with_the_same_results(tiny_wordpiece_model):
    # float32: the two kernels then agree to rounding (under bfloat16, to its precision).
    encoder = MultilingualEncoder(tiny_wordpiece_model, device="cpu", precision="float32")
    top = encoder.fit(TINY_CORPUS)._tunable_top(1)
    assert top.model.config._attn_implementation == "sdpa"
    seen = []
    layer = top.model.encoder.layer[0].attention.self
    hook = layer.register_forward_pre_hook(
        lambda module, args: seen.append(module.config._attn_implementation)
    )
    embedder = DocumentEmbedder(top, encoder._token_states(TINY_CORPUS, 1)).eval()
    rows = np.arange(len(TINY_CORPUS))
    inferred = embedder.embeddings(rows)  # no gradient: sdpa
    trained = embedder(rows)  # gradient on a CPU: eager
    hook.remove()
    assert seen == ["sdpa", "eager"]
    assert top.model.config._attn_implementation == "sdpa"  # put back
    np.testing.assert_allclose(trained.detach().numpy(), inferred, atol=1e-5)
    trained.sum().backward()
    assert all(p.grad is not None for p in top.parameters() if p.requires_grad)


def test_recomputed_chunks_give_the_same_gradients(tiny_wordpiece_model):
    # Memory: chunks' activations are recomputed in the backward pass, with the same
    # dropout masks, so the gradients are those of the plain pass.
    encoder = MultilingualEncoder(tiny_wordpiece_model, precision="float32").fit(DOCS)
    states = encoder._token_states(DOCS, 2)
    top = encoder._tunable_top(2)
    rows = np.arange(len(DOCS))
    grads, outputs = {}, {}
    for recompute in (False, True):
        embedder = DocumentEmbedder(top, states, chunk_size=3, recompute=recompute).train()
        embedder.zero_grad()
        torch.manual_seed(0)
        out = embedder(rows)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        outputs[recompute] = out.detach()
        grads[recompute] = [p.grad.clone() for p in top.parameters() if p.grad is not None]
    assert any(m.p > 0 for m in top.modules() if isinstance(m, torch.nn.Dropout))
    torch.testing.assert_close(outputs[True], outputs[False])
    assert len(grads[True]) == len(grads[False]) > 0
    for with_recompute, plain in zip(grads[True], grads[False]):
        torch.testing.assert_close(with_recompute, plain)
