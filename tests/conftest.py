"""Shared fixtures: tiny random transformer models built on the fly (no download)."""

from __future__ import annotations

import pytest
from sklearn.datasets import make_blobs

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # tests/test_properties.py skips itself
    pass
else:
    # CI: the same examples on every run (derandomized), nothing written to disk, no time
    # limit per example (a fit takes tens of milliseconds, more on a busy machine).
    settings.register_profile(
        "ci",
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    # Bug hunting: new examples on every run, failures replayed from .hypothesis/
    # (pytest --hypothesis-profile=explore).
    settings.register_profile(
        "explore", deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("ci")

# A dozen short sentences in five languages, to train the tiny tokenizers on.
TINY_CORPUS = [
    "The weather is lovely today and we go to the beach.",
    "Insert a table into the spreadsheet with the menu.",
    "The quarterly report shows a decline in revenue.",
    "Das Wetter ist heute schön und wir gehen an den Strand.",
    "Fügen Sie mit dem Menü eine Tabelle in die Tabelle ein.",
    "Der Bericht zeigt einen Rückgang des Umsatzes.",
    "Il fait beau aujourd'hui et nous allons à la plage.",
    "Insérez un tableau dans le classeur avec le menu.",
    "Сегодня прекрасная погода, и мы идём на пляж.",
    "Вставьте таблицу в документ через меню.",
    "今天天气很好，我们要去海滩。",
    "使用菜单在电子表格中插入表格。",
]


def _save_tiny_model(folder, tokenizer_object, special_tokens: dict, pad_token_id: int) -> str:
    """Wrap a ``tokenizers.Tokenizer``, add a random 2-layer BERT and save both."""
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object, model_max_length=128, **special_tokens
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def blobs():
    """240 rows of 3 Gaussian blobs in 6 dimensions, the first 30 labelled: (X, y, y_partial)."""
    X, y = make_blobs(n_samples=240, centers=3, n_features=6, cluster_std=2.0, random_state=0)
    y_partial = y.copy()
    y_partial[30:] = -1
    return X, y, y_partial


@pytest.fixture(scope="session")
def tiny_wordpiece_model(tmp_path_factory) -> str:
    """Folder of a random 2-layer BERT (hidden size 32) with a WordPiece tokenizer."""
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        TINY_CORPUS, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    special_tokens = {
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    }
    folder = tmp_path_factory.mktemp("tiny_wordpiece")
    return _save_tiny_model(folder, tokenizer, special_tokens, tokenizer.token_to_id("[PAD]"))


@pytest.fixture(scope="session")
def tiny_unigram_model(tmp_path_factory) -> str:
    """Folder of a random 2-layer BERT with a SentencePiece-like Unigram tokenizer."""
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.train_from_iterator(
        TINY_CORPUS,
        trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>"),
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        special_tokens=[
            ("<s>", tokenizer.token_to_id("<s>")),
            ("</s>", tokenizer.token_to_id("</s>")),
        ],
    )
    special_tokens = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
    }
    folder = tmp_path_factory.mktemp("tiny_unigram")
    return _save_tiny_model(folder, tokenizer, special_tokens, tokenizer.token_to_id("<pad>"))
