"""What :class:`~skdgm.encoders.NXVAE` does before torch: the languages of the documents,
the held-out split, and the shared BPE vocabulary (learnt with ``tokenizers``)."""

from __future__ import annotations

from collections import Counter

import numpy as np

__all__ = [
    "SPECIAL_PIECES",
    "UNDETERMINED",
    "WORD_START",
    "check_languages",
    "hold_out",
    "piece_ids",
    "tokenizer_from_str",
    "train_tokenizer",
]

#: Special pieces, at these ids: padding, unknown characters, start of a sequence.
SPECIAL_PIECES = ("<pad>", "<unk>", "<s>")
#: The language of every document when ``fit`` is given no ``languages``.
UNDETERMINED = "und"
#: Share of the (normalised) training characters the base alphabet must cover, as
#: SentencePiece's character_coverage: rarer characters become <unk>.
CHARACTER_COVERAGE = 0.9995
WORD_START = "\u2581"  # "▁", SentencePiece's mark of a word's first piece


def check_languages(languages, n_documents: int):
    """(sorted language codes, index of each document's language in them)."""
    if languages is None:
        return np.array([UNDETERMINED]), np.zeros(n_documents, dtype=np.int64)
    if isinstance(languages, str):
        raise ValueError(
            f"languages must hold one language code per document, got the single string "
            f"{languages!r}; for documents all of one language pass "
            f"[{languages!r}] * len(X)."
        )
    try:
        codes = list(languages)
    except TypeError:
        raise ValueError(
            f"languages must be a sequence of language codes, got {type(languages).__name__}."
        ) from None
    if len(codes) != n_documents:
        raise ValueError(
            f"languages has {len(codes)} entries but X holds {n_documents} documents: "
            "pass one language code per document."
        )
    bad = [(i, code) for i, code in enumerate(codes) if not isinstance(code, str) or not code]
    if bad:
        i, code = bad[0]
        raise ValueError(f"languages must be non-empty strings; languages[{i}] is {code!r}.")
    names, index = np.unique(np.asarray(codes, dtype=str), return_inverse=True)
    return names, index.ravel().astype(np.int64)


def hold_out(language_of, positions, fraction, generator):
    """(training, held-out) positions: ``fraction`` of each language's documents held out,
    at least one in all and never a language's last one."""
    held = []
    for language in np.unique(language_of[positions]):
        mine = generator.permutation(positions[language_of[positions] == language])
        n_held = min(int(round(fraction * len(mine))), len(mine) - 1)
        held.append(mine[:n_held])
    held = np.concatenate(held)
    if len(held) == 0:
        largest = np.bincount(language_of[positions]).argmax()
        mine = positions[language_of[positions] == largest]
        if len(mine) < 2:
            raise ValueError(
                "early_stopping=True needs documents to hold out; every language has a "
                "single document with text. Set early_stopping=False."
            )
        held = mine[:1]
    return np.setdiff1d(positions, held), np.sort(held)


def _import_tokenizers():
    try:
        import tokenizers
    except ImportError as exc:  # pragma: no cover - tokenizers comes with the text extra
        raise ImportError(
            "NXVAE learns its vocabulary with the tokenizers package: "
            "pip install 'skdgm[text]' (or pip install tokenizers)."
        ) from exc
    return tokenizers


def train_tokenizer(documents: list[str], vocabulary_size: int):
    """A BPE tokenizer learnt on ``documents``, with :data:`SPECIAL_PIECES` at ids 0, 1, 2."""
    tokenizers = _import_tokenizers()
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Punctuation(),
            pre_tokenizers.Metaspace(),
        ]
    )
    characters = Counter()
    for document in documents:
        characters.update(tokenizer.normalizer.normalize_str(document))
    for space in [c for c in characters if c.isspace()]:
        del characters[space]
    # The alphabet is chosen here, ties broken by the character, so that the same text
    # always gives the same vocabulary (the trainer breaks ties in hash order).
    alphabet, covered, total = [WORD_START], 0, sum(characters.values())
    for character, count in sorted(characters.items(), key=lambda item: (-item[1], item[0])):
        if covered >= CHARACTER_COVERAGE * total or len(alphabet) >= vocabulary_size // 2:
            break
        covered += count
        if character != WORD_START:
            alphabet.append(character)
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size,
        special_tokens=list(SPECIAL_PIECES),
        limit_alphabet=len(alphabet),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer)
    return tokenizer


def tokenizer_from_str(text: str):
    return _import_tokenizers().Tokenizer.from_str(text)


def piece_ids(tokenizer, documents: list[str]) -> list[np.ndarray]:
    """Each document's piece ids (int64), whole."""
    if not documents:
        return []
    encoded = tokenizer.encode_batch(documents, add_special_tokens=False)
    return [np.asarray(e.ids, dtype=np.int64) for e in encoded]
