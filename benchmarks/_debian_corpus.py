"""A large real multilingual labelled corpus: paragraphs of Debian package descriptions.

Each document is one paragraph of a package description (the short description, or a
paragraph of the long one) in English or in one of its translations (the Debian
Description Translation Project), labelled with a coarse class made of the package's
``Section:``. Raw files come from the Debian archive mirror and are cached; the parsed corpus
is cached in one compressed file, so that a second call takes seconds.

Run ``python benchmarks/_debian_corpus.py`` to build it and print its counts.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import re
import sys
import time
import urllib.request
from collections import Counter

import numpy as np

MIRROR = "http://deb.debian.org/debian"
SUITES = ("sid", "forky", "trixie", "bookworm", "bullseye")  # newest first: newest text wins
COMPONENTS = ("main",)
ARCH = "amd64"
_VERSION = 1  # bump when parsing or the mapping changes: invalidates the parsed cache

#: Coarse class of each Debian section kept. Python and Perl modules are one class (the
#: same kind of text, and Perl alone would be small); the other language ecosystems (rust,
#: golang, javascript, ruby, java, haskell, ...) are dropped, since they would swamp
#: ``devel``; so are the template-like or mixed sections (libs, oldlibs, debug, doc,
#: metapackages, misc, localization, kernel, introspection, fonts, x11, gnome, kde, ...).
SECTION_CLASSES = {
    "python": "python-perl",
    "perl": "python-perl",
    "devel": "devel",
    "libdevel": "devel",
    "vcs": "devel",
    "interpreters": "devel",
    "games": "games",
    "net": "network",
    "web": "network",
    "httpd": "network",
    "mail": "network",
    "comm": "network",
    "news": "network",
    "science": "science",
    "math": "science",
    "gnu-r": "science",
    "electronics": "science",
    "hamradio": "science",
    "sound": "multimedia",
    "video": "multimedia",
    "graphics": "multimedia",
    "admin": "system",
    "utils": "system",
    "shells": "system",
    "database": "system",
    "text": "text",
    "tex": "text",
    "editors": "text",
}
CLASSES = sorted(set(SECTION_CLASSES.values()))
_CJK = ("zh", "ja", "ko")


def _fetch(url: str, path: str, verbose: bool) -> str:
    """Download ``url`` to ``path`` unless it is there already; return ``path``."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if verbose:
            print(f"downloading {url}", file=sys.stderr)
        tmp = path + ".part"
        with urllib.request.urlopen(url, timeout=120) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, path)
    return path


def _get(cache_dir: str, suite: str, rel: str, verbose: bool) -> str:
    """Return the local path of the archive file ``dists/<suite>/<rel>``, downloaded once."""
    return _fetch(f"{MIRROR}/dists/{suite}/{rel}", os.path.join(cache_dir, suite, rel), verbose)


def _open(path: str):
    """Open a ``.xz`` or ``.bz2`` file as text."""
    opener = lzma.open if path.endswith(".xz") else bz2.open
    return opener(path, "rt", encoding="utf-8", errors="replace")


def _index(cache_dir: str, suite: str, components, verbose: bool):
    """Return the raw files of ``suite`` listed by its Release file.

    Returns
    -------
    packages : list of str
        Relative paths of the ``Packages`` files, one a component.
    translations : dict
        ``{(component, lang): relative path}``, ``.xz`` preferred to ``.bz2``.
    """
    release = _fetch(f"{MIRROR}/dists/{suite}/Release", f"{cache_dir}/{suite}/Release", verbose)
    with open(release, encoding="utf-8") as f:
        listed = set(re.findall(r"^ [0-9a-f]{64} +\d+ (\S+)$", f.read(), re.M))
    packages, translations = [], {}
    for comp in components:
        for ext in ("xz", "bz2"):
            if f"{comp}/binary-{ARCH}/Packages.{ext}" in listed:
                packages.append(f"{comp}/binary-{ARCH}/Packages.{ext}")
                break
        for name in sorted(listed, key=lambda n: (not n.endswith(".xz"), n)):  # .xz first
            m = re.fullmatch(rf"{re.escape(comp)}/i18n/Translation-([A-Za-z_]+)\.(xz|bz2)", name)
            if m:
                translations.setdefault((comp, m[1]), name)
    return packages, translations


def _stanzas(path: str):
    """Yield the fields of each deb822 stanza of ``path`` as ``{name: [lines]}``."""
    fields, name = {}, None
    with _open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if fields:
                    yield fields
                fields, name = {}, None
            elif line[0] in " \t":
                if name is not None:
                    fields[name].append(line)
            else:
                name, _, value = line.partition(":")
                fields[name] = [value.strip()]
    if fields:
        yield fields


def _sections(path: str) -> dict:
    """Return ``{package: section}`` from a ``Packages`` file, without component prefix."""
    out = {}
    for st in _stanzas(path):
        if "Package" in st and "Section" in st:
            out[st["Package"][0]] = st["Section"][0].rsplit("/", 1)[-1]
    return out


def _paragraphs(lines: list) -> list:
    """Split a description field (short line, then continuation lines) into paragraphs."""
    out, current = [lines[0].strip()], []
    for line in lines[1:]:
        if line.strip() == ".":
            out.append(" ".join(current))
            current = []
        else:
            current.append(line.strip())
    out.append(" ".join(current))
    return [" ".join(p.split()) for p in out]


def _keep(text: str, lang: str) -> bool:
    """Whether a paragraph is long enough to be a document."""
    return len(text.split()) >= 5 or (lang.startswith(_CJK) and len(text) >= 20)


def _build(cache_dir: str, suites, components, verbose: bool) -> dict:
    """Download, parse and deduplicate the corpus (one entry a distinct text)."""
    found = []
    for suite in suites:
        try:
            found.append((suite, *_index(cache_dir, suite, components, verbose)))
        except OSError as exc:  # a suite the mirror lacks
            if verbose:
                print(f"skipping {suite}: {exc}", file=sys.stderr)
    sections_by_suite, everywhere = {}, {}
    for suite, packages, _ in found:
        sections = {}
        for rel in packages:
            sections.update(_sections(_get(cache_dir, suite, rel, verbose)))
        sections_by_suite[suite] = sections
        for pkg, sec in sections.items():
            everywhere.setdefault(pkg, sec)  # fallback for packages of other architectures
    seen = {}  # text -> (section, lang, package, suite); dict order is first occurrence
    clashes = set()  # texts also seen in another class
    for suite, _, translations in found:
        sections = sections_by_suite[suite]
        # English first, so that English left untranslated in a translation counts as "en"
        for (_, lang), rel in sorted(translations.items(), key=lambda kv: (kv[0][1] != "en", kv)):
            field = f"Description-{lang}"
            for st in _stanzas(_get(cache_dir, suite, rel, verbose)):
                if field not in st or "Package" not in st:
                    continue
                pkg = st["Package"][0]
                section = sections.get(pkg) or everywhere.get(pkg, "")
                for text in _paragraphs(st[field]):
                    first = seen.get(text)
                    if first is None:
                        if _keep(text, lang):
                            seen[text] = (section, lang, pkg, suite)
                    elif SECTION_CLASSES.get(first[0]) != SECTION_CLASSES.get(section):
                        clashes.add(text)
            if verbose:
                print(f"{suite} {rel}: {len(seen)} distinct paragraphs", file=sys.stderr)
    if verbose:
        print(
            f"{len(clashes)} texts seen in more than one class (the first kept)", file=sys.stderr
        )
    return seen


def _save(path: str, seen: dict) -> None:
    """Save the labelled documents, in the order of a hash of their text, to ``path``."""
    texts = [t for t, v in seen.items() if v[0] in SECTION_CLASSES]
    keys = [hashlib.blake2b(t.encode(), digest_size=8).digest() for t in texts]
    texts = [texts[i] for i in sorted(range(len(texts)), key=keys.__getitem__)]
    meta = [seen[t] for t in texts]
    names = [sorted({m[i] for m in meta}) for i in (1, 2, 3)]  # langs, packages, suites
    codes = [{name: j for j, name in enumerate(n)} for n in names]
    langs, packages, suites = names
    tmp = path + ".part.npz"
    np.savez_compressed(
        tmp,
        text=np.frombuffer("\n".join(texts).encode(), dtype=np.uint8),
        label=np.array([CLASSES.index(SECTION_CLASSES[m[0]]) for m in meta], dtype=np.int8),
        lang=np.array([codes[0][m[1]] for m in meta], dtype=np.int16),
        package=np.array([codes[1][m[2]] for m in meta], dtype=np.int32),
        suite=np.array([codes[2][m[3]] for m in meta], dtype=np.int8),
        langs=np.array(langs),
        packages=np.frombuffer("\n".join(packages).encode(), dtype=np.uint8),
        suites=np.array(suites),
        classes=np.array(CLASSES),
    )
    os.replace(tmp, path)


def _cache_path(cache_dir: str, suites, components) -> str:
    """Return the path of the parsed corpus of these suites and components."""
    suites = SUITES if suites is None else suites
    name = f"corpus-v{_VERSION}-{'+'.join(suites)}-{'+'.join(components)}.npz"
    return os.path.join(cache_dir, name)


def debian_documents(
    cache_dir: str = ".cache/debian-corpus",
    *,
    suites=None,
    components=COMPONENTS,
    verbose: bool = True,
) -> dict:
    """Load the Debian description corpus, downloading and parsing it on first use.

    Parameters
    ----------
    cache_dir : str
        Folder of the raw archive files and of the parsed corpus.
    suites : sequence of str, optional
        Debian suites, earlier ones winning duplicates; default: :data:`SUITES`, those
        the mirror has.
    components : sequence of str
        Archive components (``contrib`` and ``non-free`` only have English).
    verbose : bool
        Print progress to standard error.

    Returns
    -------
    dict
        ``text`` (list of str, distinct paragraphs), ``label`` (int array, index into
        ``classes``), ``lang`` (str array, e.g. ``"en"``, ``"zh_CN"``), ``package`` (list
        of str), ``suite`` (str array, first suite holding the text) and ``classes``
        (list of str). Documents are in the order of a hash of their text.
    """
    suites = tuple(SUITES if suites is None else suites)
    path = _cache_path(cache_dir, suites, components)
    if not os.path.exists(path):
        _save(path, _build(cache_dir, suites, components, verbose))
    with np.load(path) as z:
        langs, suite_names = z["langs"], z["suites"]
        packages = z["packages"].tobytes().decode().split("\n")
        text = z["text"].tobytes().decode().split("\n")
        return {
            "text": text,
            "label": z["label"].astype(np.intp),
            "lang": langs[z["lang"]],
            "package": [packages[i] for i in z["package"]],
            "suite": suite_names[z["suite"]],
            "classes": [str(c) for c in z["classes"]],
        }


def _main() -> None:
    cache_dir = sys.argv[1] if len(sys.argv) > 1 else ".cache/debian-corpus"
    how = "loaded" if os.path.exists(_cache_path(cache_dir, None, COMPONENTS)) else "built"
    start = time.perf_counter()
    corpus = debian_documents(cache_dir)
    took = time.perf_counter() - start
    n = len(corpus["text"])
    print(f"{n} distinct documents, {how} in {took:.1f} s")
    words = sum(len(t.split()) for t in corpus["text"]) / max(n, 1)
    print(f"mean words per document: {words:.1f}")
    for key in ("lang", "suite"):
        print(f"by {key}:", dict(Counter(corpus[key].tolist()).most_common()))
    labels = Counter(corpus["label"].tolist())
    print("by class:", {c: labels[i] for i, c in enumerate(corpus["classes"])})


if __name__ == "__main__":
    _main()
