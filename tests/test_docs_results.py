"""The index of docs/results/ (docs/results.rst, written by docs/_results_index.py at every
build): every file it lists exists, every result file is cited by a page or listed as cited
by none, and no page cites a file that is not there (a renamed or removed file)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Citations that match no file today, as (page, name or pattern): none. A new one fails
# the test below; one that is fixed must be removed from here.
KNOWN_DANGLING: set[tuple[str, str]] = set()
# Result files that no page cites today. A new one fails the test below: cite it where its
# figures are reported (a file renamed under a ``stem.*`` citation whose other files still
# match turns up here, not as a dangling citation).
KNOWN_ORPHANS = {
    "cross-lingual-2026-12-03.csv",
    "demo-2026-12-03.txt",
    "demo-round11-2026-12-04.csv",
    "demo-round11-2026-12-04.txt",
    "documents-100k-2026-11-26.json",
    "sizes-32-128-2026-12-03.csv",
}


def _load():
    path = ROOT / "docs" / "_results_index.py"
    spec = importlib.util.spec_from_file_location("_results_index", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


results_index = _load()


@pytest.fixture(scope="module")
def index():
    return results_index.scan(ROOT)


def test_every_listed_file_exists(index):
    folder = ROOT / results_index.RESULTS_DIR
    listed = {
        name
        for sections in index.by_page().values()
        for entries in sections.values()
        for name, _ in entries
    } | set(index.orphans)
    assert listed
    assert not [name for name in listed if not (folder / name).is_file()]


def test_every_file_is_cited_or_an_orphan(index):
    present = sorted(p.name for p in (ROOT / results_index.RESULTS_DIR).iterdir() if p.is_file())
    assert index.files == present
    cited, orphans = index.cited, set(index.orphans)
    assert not cited & orphans
    assert cited | orphans == set(present)


def test_no_citation_matches_nothing(index):
    dangling = {(citation.page, citation.text) for citation in index.dangling}
    assert not dangling - KNOWN_DANGLING, "pages cite result files that are not there"
    assert not KNOWN_DANGLING - dangling, "fixed: remove them from KNOWN_DANGLING"


def test_orphans_are_the_known_ones(index):
    orphans = set(index.orphans)
    assert not orphans - KNOWN_ORPHANS, "result files that no page cites"
    assert not KNOWN_ORPHANS - orphans, "cited now (or removed): remove them from KNOWN_ORPHANS"


def test_pages_scanned(index):
    pages = set(index.pages)
    assert {"README.md", "docs/tuning.rst", "docs/user_guide.rst"} <= pages
    # Not the page it writes, nor what a build generates.
    assert results_index.PAGE.as_posix() not in pages
    assert "docs/sg_execution_times.rst" not in pages
    assert all(page.count("/") <= 1 for page in pages)


def test_page_links_every_file(index):
    text = results_index.render(index)
    for name in index.files:
        assert f":download:`{name} <results/{name}>`" in text
    assert "Cited by no page" in text


def _repository(tmp_path, readme, rst, files):
    (tmp_path / "docs" / "results").mkdir(parents=True)
    for name in files:
        (tmp_path / "docs" / "results" / name).write_text("x", encoding="utf-8")
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    (tmp_path / "docs" / "study.rst").write_text(rst, encoding="utf-8")
    return tmp_path


def test_citation_forms_sections_orphans_and_dangling(tmp_path):
    files = [
        "round3-a-n16.jsonl",
        "round3-a-n64.jsonl",
        "cross-2026-01-02.csv",
        "cross-2026-01-02.txt",
        "round4-b-2026-01-03.csv",
        "round4-c-2026-01-03.csv",
        "plot-2026-01-04.png",
        "lonely-2026-01-05.json",
    ]
    readme = (
        "# Title\n\n## Results\n\n"
        "See `docs/results/cross-2026-01-02.*` and `round4-*-2026-01-03.csv`.\n\n"
        "```bash\n# not a title\n```\n\n"
        "`benchmark_results/` holds `results.csv` and `accuracy.png` (not citations).\n"
        "Renamed: `docs/results/round9-gone-2026-01-09.*`.\n"
    )
    rst = (
        "Study\n=====\n\n"
        "Round 3\n-------\n\n"
        "``docs/results/round3-a-n16.jsonl`` and ``-n64.jsonl``. **Speed.** fine.\n\n"
        "Plots\n~~~~~\n\n"
        ".. image:: results/plot-2026-01-04.png\n\n"
        "The ``n`` column of ``docs/results/*.csv`` (the folder, not a citation); "
        "``round5-missing.jsonl`` is gone.\n"
    )
    index = results_index.scan(_repository(tmp_path, readme, rst, files))
    assert index.pages == ["README.md", "docs/study.rst"]
    assert index.by_page() == {
        "README.md": {
            "Results": [
                ("cross-2026-01-02.csv", "cross-2026-01-02.*"),
                ("cross-2026-01-02.txt", "cross-2026-01-02.*"),
                ("round4-b-2026-01-03.csv", "round4-*-2026-01-03.csv"),
                ("round4-c-2026-01-03.csv", "round4-*-2026-01-03.csv"),
            ]
        },
        "docs/study.rst": {
            "Round 3": [("round3-a-n16.jsonl", None), ("round3-a-n64.jsonl", None)],
            "Plots": [("plot-2026-01-04.png", None)],
        },
    }
    assert index.orphans == ["lonely-2026-01-05.json"]
    # After the fenced block: its "# not a title" is not a section.
    assert [(c.page, c.line, c.section, c.text) for c in index.dangling] == [
        ("README.md", 12, "Results", "round9-gone-2026-01-09.*"),
        ("docs/study.rst", 14, "Plots", "round5-missing.jsonl"),
    ]

    target = results_index.write_page(tmp_path)
    assert target == tmp_path / "docs" / "results.rst"
    text = target.read_text(encoding="utf-8")
    assert "Citations that match no file" in text and "round9-gone-2026-01-09.*" in text
    # The page it wrote is not a citing page the next time.
    assert results_index.scan(tmp_path).pages == ["README.md", "docs/study.rst"]
