"""Benchmark MultilingualEncoder against a plain transformers loop.

Both embed the same real documents (a fixed shuffle of the bundled LibreOffice help
corpus, five languages) with the offline copy of ``intfloat/multilingual-e5-small``:

* the plain loop: float32, batches of 32 in the given order, ``torch.no_grad``,
  "passage: " prefix, 256 tokens, mean pooling, L2 normalisation;
* ``MultilingualEncoder`` in float32 and with its defaults (``precision="auto"``:
  bfloat16 autocast where the CPU or GPU supports it), batches sorted by length.

The in-memory embedding cache is cleared before each timing, so every document goes
through the model. Model loading is not timed. Run::

    python benchmarks/bench_encoder.py --n-docs 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def plain_loop(folder, documents, batch_size=32, max_length=256):
    """The reference: what one would write with transformers directly."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()

    def embed(batch):
        inputs = tokenizer(
            ["passage: " + text for text in batch],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        with torch.no_grad():
            hidden = model(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    embed(documents[:2])  # warm-up
    start = time.perf_counter()
    batches = [embed(documents[i : i + batch_size]) for i in range(0, len(documents), batch_size)]
    return np.concatenate(batches), time.perf_counter() - start


def encoder_run(documents, **params):
    from skdgm.encoders import MultilingualEncoder, clear_embedding_cache

    encoder = MultilingualEncoder(**params).fit(documents[:1])
    encoder.transform(["warm-up"])
    clear_embedding_cache()
    start = time.perf_counter()
    embeddings = encoder.transform(documents)
    return embeddings, time.perf_counter() - start, encoder.precision_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=500, help="documents to embed")
    args = parser.parse_args(argv)

    from skdgm.datasets import load_libreoffice_help
    from skdgm.encoders._offline import offline_model_dir

    corpus = load_libreoffice_help(classes="all")
    order = np.random.default_rng(0).permutation(len(corpus.data))[: args.n_docs]
    documents = [corpus.data[i] for i in order]
    names, counts = np.unique(corpus.lang[order], return_counts=True)
    languages = ", ".join(f"{name} {count}" for name, count in zip(names.tolist(), counts))
    folder = str(offline_model_dir())

    reference, seconds = plain_loop(folder, documents)
    rows = [("transformers loop, float32", "float32", seconds, reference)]
    embeddings, seconds, precision = encoder_run(documents, precision="float32")
    rows.append(("MultilingualEncoder, float32", precision, seconds, embeddings))
    embeddings, seconds, precision = encoder_run(documents)
    rows.append(("MultilingualEncoder, defaults", precision, seconds, embeddings))

    print(f"{len(documents)} documents ({languages}), model {folder}")
    header = f"{'method':<31} {'precision':<9} {'docs/s':>7} {'speed-up':>8} "
    print(header + f"{'cos mean':>9} {'cos min':>8}")
    reference_rate = len(documents) / rows[0][2]
    for name, precision, seconds, vectors in rows:
        rate = len(documents) / seconds
        cosines = (vectors * reference).sum(1)
        print(
            f"{name:<31} {precision:<9} {rate:>7.1f} {rate / reference_rate:>7.2f}x "
            f"{cosines.mean():>9.5f} {cosines.min():>8.5f}"
        )


if __name__ == "__main__":
    main()
