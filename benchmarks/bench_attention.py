"""Attention kernels of a fine-tuned layer on the CPU: transformers' eager against sdpa.

A forward and a backward pass of multilingual-e5-small's top layer (the offline copy)
over stored token states of real help pages, under bfloat16 autocast as the end-to-end
SDGM runs it, with each kernel in turn (alternating, several rounds, one process), then
the full 12-layer encoder in inference mode. Prints seconds per round and the ratios:
the reason why :class:`skdgm.encoders._tuning.TunableTop` trains on the CPU with
``eager`` attention and encodes with ``sdpa``.

Run: ``python benchmarks/bench_attention.py [--documents 64] [--rounds 3] [--threads 1]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # this script owns its process

    from skdgm.datasets import load_libreoffice_help
    from skdgm.encoders import MultilingualEncoder, _tuning
    from skdgm.encoders._tuning import DocumentEmbedder, _attention_kernel

    _tuning.TRAINING_ATTENTION_ON_CPU = None  # each round chooses its kernel itself

    docs = list(load_libreoffice_help(languages="de", split="train").data[: args.documents])
    encoder = MultilingualEncoder().fit(docs[:1])
    states = encoder._token_states(docs, 1)
    print(f"{len(docs)} documents, {states.document_lengths().mean():.0f} tokens on average")
    embedder = DocumentEmbedder(encoder._tunable_top(1), states).train()
    rows = np.arange(len(docs))
    training = {"eager": [], "sdpa": []}
    for _ in range(args.rounds):
        for kernel in training:
            start = time.perf_counter()
            with _attention_kernel(embedder.top.model, kernel):
                embedder(rows).sum().backward()
            training[kernel].append(time.perf_counter() - start)
    inference = {"eager": [], "sdpa": []}
    for _ in range(args.rounds):
        for kernel in inference:
            start = time.perf_counter()
            with _attention_kernel(encoder._model, kernel):
                encoder._embed_documents(docs)
            inference[kernel].append(time.perf_counter() - start)
    for title, times in (
        ("top layer, forward + backward", training),
        ("12 layers, inference", inference),
    ):
        best = {kernel: min(values) for kernel, values in times.items()}
        print(
            f"{title}: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in best.items())
            + f"; sdpa / eager = {best['sdpa'] / best['eager']:.2f}"
        )


if __name__ == "__main__":
    main()
