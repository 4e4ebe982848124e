"""The index of ``docs/results/``: which page, and which section of it, cites which file.

The README and the pages of these docs (``docs/*.rst``) cite the files of
``docs/results/`` by name, in several forms::

    docs/results/round17-test-8-classes-2026-12-08.csv    a path
    round14-st-n16.jsonl                                   a bare name
    docs/results/round17-cross-lingual-2026-12-08.*        every extension of one stem
    round15-*-2026-12-06.csv                               a glob
    ``round7-average-n16.jsonl`` and ``-n64.jsonl``        a variant: the last dash-separated
                                                           parts of the previous citation
                                                           replaced

:func:`scan` finds them (patterns matched with :func:`fnmatch.fnmatchcase` against the
files present) and the nearest section title above each; :func:`render` writes the page
(``docs/conf.py`` writes ``docs/results.rst`` with :func:`write_page` at every build, so
the page cannot go stale); ``tests/test_docs_results.py`` checks that every file is cited
or listed as cited by no page, and that no citation matches nothing (a renamed file).

What counts as a citation. A name with a folder counts when the folder is
``docs/results`` (or ``results``, relative to ``docs/``, as in ``.. image::``); a bare
name counts when it matches a file, or when it looks like one of theirs (it starts with
``roundN-`` or holds a date such as ``2026-12-08``), so that a renamed file is reported
rather than ignored; other bare names (``results.csv`` of ``benchmark_results/``, the
``Speed.*`` of ``**Speed.**``) are not citations. A pattern with no literal part before
its extension (``docs/results/*.csv``: "the csv files") speaks of the folder, not of the
files that back a table, and is left out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

#: The folder of the result files, relative to the repository's root.
RESULTS_DIR = Path("docs") / "results"
#: The page this module writes, relative to the repository's root (never a citing page).
PAGE = Path("docs") / "results.rst"
#: The extensions of result files, besides those of the files present.
DEFAULT_EXTENSIONS = {"csv", "json", "jsonl", "png", "txt"}
#: Folders and files under ``docs/`` that a build generates: not citing pages.
GENERATED = {"_build", "auto_examples", "generated", "gen_modules", "sg_execution_times.rst"}

# A run of the characters of a file name or a pattern; what ends in a result file's
# extension (or in ``.*``) is a candidate citation.
_TOKEN = re.compile(r"[\w./*-]+")
_LOOKS_LIKE_RESULT = re.compile(r"^round\d+-|\d{4}-\d{2}-\d{2}")
_RST_UNDERLINE = re.compile(r"^([=\-~^])\1*$")
_MD_TITLE = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


@dataclass
class Citation:
    """One citation of result files: where it is, what it says, what it matches."""

    page: str  #: the citing page, relative to the repository's root
    line: int  #: its line, from 1
    section: str  #: the nearest section title above it
    text: str  #: the name or pattern, without its folder
    files: list[str] = field(default_factory=list)  #: the files it matches, sorted


@dataclass
class Index:
    """What :func:`scan` finds."""

    files: list[str]  #: every file of ``docs/results/``, sorted
    citations: list[Citation]  #: every citation, by page and line (dangling ones too)
    pages: list[str]  #: the citing pages scanned, in the order of the page

    @property
    def cited(self) -> set[str]:
        """The files that some citation matches."""
        return {name for citation in self.citations for name in citation.files}

    @property
    def orphans(self) -> list[str]:
        """The files that no page cites."""
        cited = self.cited
        return [name for name in self.files if name not in cited]

    @property
    def dangling(self) -> list[Citation]:
        """The citations that match no file (a file renamed or removed)."""
        return [citation for citation in self.citations if not citation.files]

    def by_page(self) -> dict[str, dict[str, list[tuple[str, str | None]]]]:
        """``{page: {section: [(file, pattern or None), ...]}}``, in the order of the pages.

        A file cited twice in one section is listed once, by its first citation.
        """
        grouped: dict[str, dict[str, list[tuple[str, str | None]]]] = {}
        for citation in self.citations:
            if not citation.files:
                continue
            entries = grouped.setdefault(citation.page, {}).setdefault(citation.section, [])
            pattern = citation.text if _is_pattern(citation.text) else None
            for name in citation.files:
                if all(name != listed for listed, _ in entries):
                    entries.append((name, pattern))
        return grouped


def _is_pattern(text: str) -> bool:
    return any(char in text for char in "*?[")


def citing_pages(root: Path) -> list[Path]:
    """README.md and every ``docs/*.rst`` but the generated ones, relative to ``root``."""
    pages = [Path("README.md")] if (root / "README.md").is_file() else []
    pages += sorted(
        path.relative_to(root)
        for path in (root / "docs").glob("*.rst")
        if path.name not in GENERATED and path.relative_to(root) != PAGE
    )
    return pages


def _titles(lines: list[str], markdown: bool) -> list[str | None]:
    """For each line, the nearest section title at or above it (``None`` above the first)."""
    nearest: list[str | None] = []
    title = None
    in_fence = False
    for number, line in enumerate(lines):
        if markdown:
            if line.lstrip().startswith(("```", "~~~")):
                in_fence = not in_fence
            elif not in_fence and (match := _MD_TITLE.match(line)):
                title = match.group(1)
        elif (
            number > 0
            and _RST_UNDERLINE.match(line.rstrip())
            and (above := lines[number - 1].rstrip())
            and not above[0].isspace()
            and not _RST_UNDERLINE.match(above)
            and len(line.rstrip()) >= _width(above)
        ):
            # The title is the line above: the lines from it on belong to its section.
            title = above
            nearest[-1] = title
        nearest.append(title)
    return nearest


def _width(text: str) -> int:
    """Columns of ``text``, as docutils counts them (wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _candidate(token: str, extensions: set[str]) -> str | None:
    """The name (or pattern) that ``token`` cites in ``docs/results/``, or ``None``.

    ``extensions`` are those of the result files; ``.*`` stands for all of them.
    """
    token = token.rstrip(".") if not token.endswith(".*") else token
    folder, _, name = token.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot or (extension != "*" and extension not in extensions):
        return None
    if folder not in ("", "docs/results", "results"):
        return None
    if not stem.strip("*?"):
        return None  # "docs/results/*.csv": the folder's csv files, not a table's
    return name


def _replace_tail(previous: str, variant: str) -> str:
    """``round7-average-n16.jsonl`` and ``-n64.jsonl`` give ``round7-average-n64.jsonl``."""
    parts = previous.split("-")
    keep = len(parts) - variant.count("-")
    return "-".join(parts[:keep]) + variant if keep > 0 else variant


def scan(root: str | Path) -> Index:
    """Find the result files of the repository at ``root`` and the pages that cite them."""
    root = Path(root)
    folder = root / RESULTS_DIR
    files = sorted(path.name for path in folder.iterdir() if path.is_file())
    extensions = {name.rpartition(".")[2] for name in files} | DEFAULT_EXTENSIONS
    pages = citing_pages(root)
    citations = []
    for page in pages:
        lines = (root / page).read_text(encoding="utf-8").splitlines()
        titles = _titles(lines, markdown=page.suffix == ".md")
        previous = None
        for number, line in enumerate(lines):
            for token in _TOKEN.findall(line):
                explicit = "/" in token
                name = _candidate(token, extensions)
                if name is None:
                    continue
                if name.startswith("-"):
                    if previous is None:
                        continue
                    name = _replace_tail(previous, name)
                    explicit = True
                matches = sorted(f for f in files if fnmatchcase(f, name))
                if not (matches or explicit or _LOOKS_LIKE_RESULT.search(name)):
                    continue  # a bare name that is not one of the results' own
                previous = name
                section = titles[number] or page.name
                citations.append(Citation(page.as_posix(), number + 1, section, name, matches))
    return Index(files, citations, [page.as_posix() for page in pages])


def _heading(text: str, char: str) -> list[str]:
    return [text, char * max(_width(text), 4), ""]


def _rst_title(title: str, page: str) -> str:
    """A section title as rst text: Markdown's single backquotes made literal."""
    if page.endswith(".md"):
        return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", title)
    return title


def _link(name: str) -> str:
    return f":download:`{name} <results/{name}>`"


def render(index: Index) -> str:
    """The rst of the page: per page, per section, the files cited; then the orphans."""
    lines = [
        ".. This page is generated by docs/_results_index.py at every build (docs/conf.py):",
        "   edit that module, not this file.",
        "",
        *_heading("Result files", "="),
        f"The {len(index.files)} files of ``docs/results/`` hold the measurements that the "
        "README and these pages report. Below, each page that cites them, and under each of "
        "its sections the files that back it (a pattern such as ``round11-*.jsonl`` or a "
        "stem with every extension, ``name.*``, is shown beside the files it matches); last, "
        "the files no page cites. The page is written from the citations at every build.",
        "",
    ]
    grouped = index.by_page()
    for page in index.pages:
        if page not in grouped:
            continue
        lines += _heading(f"{page}", "-")
        if page.endswith(".rst"):
            lines += [f"Page: :doc:`{Path(page).stem}`.", ""]
        else:
            lines += ["The repository's front page (not part of these pages).", ""]
        for section, entries in grouped[page].items():
            lines += _heading(_rst_title(section, page), "~")
            for name, pattern in entries:
                note = f" (cited as ``{pattern}``)" if pattern else ""
                lines.append(f"* {_link(name)}{note}")
            lines.append("")
    lines += _heading("Cited by no page", "-")
    if index.orphans:
        lines += [f"* {_link(name)}" for name in index.orphans]
    else:
        lines.append("None: every file is cited.")
    lines.append("")
    if index.dangling:
        lines += _heading("Citations that match no file", "-")
        lines += [
            f"* ``{citation.text}``: {citation.page}, line {citation.line}"
            for citation in index.dangling
        ]
        lines.append("")
    return "\n".join(lines)


def write_page(root: str | Path) -> Path:
    """Write :data:`PAGE` under ``root``; left untouched (and unbuilt) when unchanged."""
    root = Path(root)
    target = root / PAGE
    text = render(scan(root))
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target
