"""Sphinx configuration for skdgm's documentation."""

import skdgm

project = "skdgm"
author = "skdgm developers"
release = version = skdgm.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "numpydoc"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_mock_imports = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
