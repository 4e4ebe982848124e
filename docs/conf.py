"""Sphinx configuration for skdgm's documentation."""

import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import sys
from pathlib import Path

from sphinx.pycode import ModuleAnalyzer

import skdgm

project = "skdgm"
author = "skdgm developers"
release = version = skdgm.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
autosummary_generate = True
numpydoc_show_class_members = False
autodoc_mock_imports = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False

# skdgm and its public subpackages, whose ``__all__`` the API page lists
# (tests/test_docs.py checks that it does).
PUBLIC_MODULES = ("skdgm",) + tuple(
    info.name
    for info in pkgutil.iter_modules(skdgm.__path__, "skdgm.")
    if not info.name.rpartition(".")[2].startswith("_")
)

# numpydoc validation: every check but these, which do not fit this project's style.
# ES01: an extended summary is not required; short docstrings that say what and why.
# EX01: examples live where they teach (the estimators, the datasets, save/load, all
#       run by tests/test_docs.py) and in examples/, not in every method.
# SA01: a "See Also" section is not required.
# RT02: returns are named, as in scikit-learn (``self : object``, ``X_new : ndarray``).
numpydoc_validation_checks = {"all", "ES01", "EX01", "SA01", "RT02"}


def _constants():
    """Names of the public constants (``skdgm.benchmark.CONFIGS``, ...)."""
    names = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names.update(
            f"{module_name}.{name}"
            for name in module.__all__
            if not name.startswith("__") and not callable(getattr(module, name))
        )
    return names


# Constants are documented by ``#:`` comments, not docstrings: numpydoc's rules for
# docstrings (closing quotes, sections) do not apply to them.
numpydoc_validation_exclude = {rf"^{re.escape(name)}$" for name in sorted(_constants())}


def is_documented_member(obj):
    """Whether a class's member is skdgm's own, rather than scikit-learn's or Python's.

    Class pages show the methods skdgm writes (``fit``, ``predict``, ``score``, ``save``);
    those that scikit-learn (``get_params``, ``set_output``) and Python (``list``'s, the
    exceptions') provide are documented there, with references that only resolve there.
    """
    target = obj.fget if isinstance(obj, property) else obj
    if not (inspect.isroutine(target) or inspect.isdatadescriptor(target)):
        return True
    return (getattr(target, "__module__", None) or "").startswith("skdgm")


def _skip_foreign_members(app, what, name, obj, skip, options):
    if what == "class" and not is_documented_member(obj):
        return True
    return None


def _constant_comment(module_name, name):
    """The ``#:`` comment above a constant that a package re-exports from a submodule.

    autodoc looks for it in the package's ``__init__.py`` only, and otherwise shows the
    docstring of the value's type (``str``'s, ``dict``'s).
    """
    package = importlib.import_module(module_name)
    value = getattr(package, name)
    for submodule in pkgutil.iter_modules(getattr(package, "__path__", []), f"{module_name}."):
        if submodule.name.endswith(".__main__"):  # importing it would run the program
            continue
        if getattr(importlib.import_module(submodule.name), name, None) is not value:
            continue
        comment = ModuleAnalyzer.for_module(submodule.name).find_attr_docs().get(("", name))
        if comment:
            return list(comment)
    return None


def _document_constants(app, what, name, obj, options, lines):
    if what == "data":
        module_name, _, attr = name.rpartition(".")
        comment = _constant_comment(module_name, attr)
        if comment is not None:
            lines[:] = comment


# The gallery: examples/plot_*.py rendered by sphinx-gallery. The example fits the real
# pretrained model on the bundled corpus (minutes on a CPU), so ``make docs`` renders its
# code and text without running it; SKDGM_DOCS_RUN_EXAMPLES=1 runs it and adds its
# printed output and its figure.
RUN_EXAMPLES = os.environ.get("SKDGM_DOCS_RUN_EXAMPLES", "0") not in ("", "0")
if RUN_EXAMPLES:
    # The page shows what the example prints, progress bars included: one line per redraw
    # unless tqdm redraws rarely (its first and last state only).
    os.environ.setdefault("TQDM_MININTERVAL", "600")
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": RUN_EXAMPLES,
    "doc_module": ("skdgm",),
    "backreferences_dir": "gen_modules/backreferences",
}


def _load_results_index():
    """docs/_results_index.py, imported by its path (docs/ is not a package)."""
    path = Path(__file__).resolve().with_name("_results_index.py")
    spec = importlib.util.spec_from_file_location("_results_index", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _write_results_page(app):
    """Write results.rst, the index of docs/results/, from the citations as they are now.

    Generated at every build (and ignored by git), so it cannot go stale; rewritten only
    when it changes, so that an unchanged page is not rebuilt.
    """
    _load_results_index().write_page(Path(app.srcdir).parent)


def setup(app):
    # Before the sources are read (sphinx-gallery writes its pages at this event too).
    app.connect("builder-inited", _write_results_page)
    app.connect("autodoc-skip-member", _skip_foreign_members)
    # Before numpydoc's handler (priority 500), which formats what it is given.
    app.connect("autodoc-process-docstring", _document_constants, priority=400)
