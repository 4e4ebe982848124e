"""Tests for skdgm.datasets."""

import numpy as np
import pytest

from skdgm.datasets import draw_labelled, load_libreoffice_help, load_mldoc

COUNTS_4 = {"en": 1288, "de": 1271, "fr": 1300, "ru": 834, "zh": 852}
COUNTS_8 = {"en": 1537, "de": 1514, "fr": 1550, "ru": 980, "zh": 997}
SPLITS = ("train", "dev", "test")


@pytest.mark.parametrize("lang", sorted(COUNTS_4))
def test_counts_per_language(lang):
    assert len(load_libreoffice_help(languages=lang).data) == COUNTS_4[lang]
    assert len(load_libreoffice_help(languages=[lang], classes="all").data) == COUNTS_8[lang]


def test_default_loads_every_language_and_the_four_classes():
    corpus = load_libreoffice_help()
    assert len(corpus.data) == sum(COUNTS_4.values())
    assert list(corpus.target_names) == ["sbasic", "scalc", "simpress", "swriter"]
    assert set(corpus.lang) == set(COUNTS_4)
    assert set(corpus.split) == {"train", "dev", "test"}
    n = len(corpus.data)
    for column in (corpus.target, corpus.lang, corpus.doc_id, corpus.split):
        assert isinstance(column, np.ndarray) and column.shape == (n,)
    assert all(isinstance(text, str) and text for text in corpus.data)
    assert corpus.target.dtype.kind == "i"


def module_of(doc_id):
    """The help module a page id names: "lo:<module>/..."."""
    return np.char.partition(np.char.replace(doc_id, "lo:", ""), "/")[:, 0]


@pytest.mark.parametrize("classes, n_classes", [("mldoc", 4), ("all", 8)])
def test_target_and_target_names_are_consistent(classes, n_classes):
    corpus = load_libreoffice_help(classes=classes)
    assert list(corpus.target_names) == sorted(corpus.target_names)
    assert len(corpus.target_names) == n_classes
    assert set(corpus.target) == set(range(n_classes))
    np.testing.assert_array_equal(corpus.target_names[corpus.target], module_of(corpus.doc_id))


def test_class_list_filter():
    corpus = load_libreoffice_help(languages=["en", "de"], classes=["swriter", "smath"])
    assert list(corpus.target_names) == ["smath", "swriter"]
    assert set(corpus.target) == {0, 1}
    assert set(corpus.lang) == {"en", "de"}
    full = load_libreoffice_help(languages=["en", "de"], classes="all")
    expected = np.isin(full.target_names[full.target], ["swriter", "smath"]).sum()
    assert len(corpus.data) == expected


def test_split_filter_and_no_translation_crosses_splits():
    corpus = load_libreoffice_help(classes="all")
    parts = {name: load_libreoffice_help(classes="all", split=name) for name in SPLITS}
    assert sum(len(part.data) for part in parts.values()) == len(corpus.data)
    for name, part in parts.items():
        assert set(part.split) == {name}
    doc_ids = [set(part.doc_id) for part in parts.values()]
    for i in range(len(doc_ids)):
        for j in range(i + 1, len(doc_ids)):
            assert not doc_ids[i] & doc_ids[j]
    both = load_libreoffice_help(classes="all", split=["train", "dev"])
    assert len(both.data) == len(parts["train"].data) + len(parts["dev"].data)
    train_share = len(parts["train"].data) / len(corpus.data)
    assert 0.4 < train_share < 0.6


def test_return_X_y_matches_bunch():
    corpus = load_libreoffice_help(languages="fr", split="test")
    X, y = load_libreoffice_help(languages="fr", split="test", return_X_y=True)
    assert X == corpus.data
    np.testing.assert_array_equal(y, corpus.target)


def test_file_order_is_deterministic_and_results_are_copies():
    first = load_libreoffice_help(languages="ru")
    first.data[0] = "corrupted"
    first.data.append("extra")
    first.target[:] = 0
    first.lang[:] = "xx"
    first.doc_id[0] = "corrupted"
    first.split[:] = "test"
    first.target_names[0] = "corrupted"
    second = load_libreoffice_help(languages="ru")
    assert len(second.data) == COUNTS_4["ru"]
    assert second.data[0] != "corrupted"
    assert set(second.lang) == {"ru"}
    assert "corrupted" not in second.doc_id
    assert set(second.split) == {"train", "dev", "test"}
    assert second.target_names[0] == "sbasic"
    assert len(set(second.target)) == 4
    third = load_libreoffice_help(languages="ru")
    assert third.data == second.data
    np.testing.assert_array_equal(third.doc_id, second.doc_id)


def test_descr_mentions_licence_and_counts():
    descr = load_libreoffice_help(languages="zh").DESCR
    assert "Mozilla Public License 2.0" in descr
    assert "LibreOffice 7.4" in descr
    assert "852 documents" in descr


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"languages": "english"}, "languages must be"),
        ({"languages": ["en", "xx"]}, "'zh'"),
        ({"languages": []}, "non-empty"),
        ({"languages": 3}, "languages must be"),
        ({"classes": "some"}, "'mldoc'"),
        ({"classes": ["scalc", "shared"]}, "sdatabase"),
        ({"split": "validation"}, "'dev'"),
        ({"return_X_y": "yes"}, "return_X_y"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_libreoffice_help(**kwargs)


def test_positional_arguments_are_refused():
    with pytest.raises(TypeError):
        load_libreoffice_help("en")


# MLDoc: small files written here, in MLDoc's format.


def write(path, lines, end="\n"):
    path.write_text("\n".join(lines) + end, encoding="utf-8")


def test_load_mldoc_parses_labels_and_texts_with_tabs(tmp_path):
    write(
        tmp_path / "english.train.1000",
        ["MCAT\tStocks rose.", "CCAT\tA\ttab inside\tthe text.", "GCAT\tElection."],
    )
    corpus = load_mldoc(tmp_path, "english", "train")
    assert corpus.data == ["Stocks rose.", "A\ttab inside\tthe text.", "Election."]
    assert list(corpus.target_names) == ["CCAT", "ECAT", "GCAT", "MCAT"]
    np.testing.assert_array_equal(corpus.target, [3, 0, 2])
    assert list(corpus.lang) == ["en"] * 3
    assert list(corpus.split) == ["train"] * 3
    assert corpus.filename.endswith("english.train.1000")
    assert "MLDoc" in corpus.DESCR
    X, y = load_mldoc(tmp_path, "en", "train.1000", return_X_y=True)
    assert X == corpus.data
    np.testing.assert_array_equal(y, corpus.target)


def test_load_mldoc_language_codes_splits_and_utf8(tmp_path):
    write(tmp_path / "chinese.test", ["ECAT\t央行降息。", "GCAT\t选举结果公布。"], end="\n\n")
    write(tmp_path / "german.dev", ["ECAT\tDie Zinsen fallen."], end="\r\n")
    write(tmp_path / "german.train.5000", ["CCAT\tÜbernahme."])
    zh = load_mldoc(str(tmp_path), "zh", "test")
    assert zh.data == ["央行降息。", "选举结果公布。"]
    assert list(zh.lang) == ["zh", "zh"]
    assert load_mldoc(tmp_path, "German", "dev").data == ["Die Zinsen fallen."]
    de = load_mldoc(tmp_path, "de", "train.5000")
    assert de.data == ["Übernahme."]
    assert list(de.split) == ["train"]


def test_load_mldoc_missing_folder_and_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="facebookresearch/MLDoc") as info:
        load_mldoc(tmp_path / "nowhere", "english", "test")
    assert "nowhere" in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"english\.train\.1000") as info:
        load_mldoc(tmp_path, "en", "train")
    assert "Reuters" in str(info.value)


@pytest.mark.parametrize(
    "line", ["no tab here", "XCAT\tunknown label", "CCAT\t", " CCAT\tleading space"]
)
def test_load_mldoc_malformed_line(tmp_path, line):
    write(tmp_path / "french.dev", ["CCAT\tBon.", "MCAT\tBourse.", line, "GCAT\tVote."])
    with pytest.raises(ValueError, match="line 3") as info:
        load_mldoc(tmp_path, "fr", "dev")
    message = str(info.value)
    assert "french.dev" in message
    assert repr(line[:10])[:-1] in message


def test_load_mldoc_bad_utf8(tmp_path):
    (tmp_path / "russian.dev").write_bytes(b"CCAT\tok\nECAT\t\xff\xfe\n")
    with pytest.raises(ValueError, match="line 2.*UTF-8"):
        load_mldoc(tmp_path, "russian", "dev")


@pytest.mark.parametrize(
    "language, split, match",
    [
        ("klingon", "dev", "english"),
        ("pt", "dev", "'ja'"),
        ("english", "validation", "train.10000"),
        ("english", "train.", "'dev'"),
        ("english", "train.0", "'test'"),
    ],
)
def test_load_mldoc_unknown_language_or_split(tmp_path, language, split, match):
    with pytest.raises(ValueError, match=match):
        load_mldoc(tmp_path, language, split)


def test_draw_is_deterministic_and_stratified():
    y = np.repeat([0, 1, 2, 3], [50, 30, 3, 40])
    first = draw_labelled(y, 32, seed=0, language="en")
    assert np.array_equal(first, draw_labelled(y, 32, seed=0, language="en"))
    assert not np.array_equal(first, draw_labelled(y, 32, seed=1, language="en"))
    assert not np.array_equal(first, draw_labelled(y, 32, seed=0, language="de"))
    assert np.all(np.diff(first) > 0) and first.max() < len(y)  # positions in y, unique
    assert np.bincount(y[first]).tolist() == [8, 8, 3, 8]  # capped at what a class has
    assert np.array_equal(draw_labelled(y, "all", seed=0, language="en"), np.arange(len(y)))
    with pytest.raises(ValueError, match="fewer than the 4 classes"):
        draw_labelled(y, 3, seed=0, language="en")


def test_the_benchmark_draws_with_the_same_function():
    from skdgm import benchmark

    assert benchmark.draw_labelled is draw_labelled
