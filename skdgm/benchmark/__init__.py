"""Benchmark the SDGM against supervised and semi-supervised baselines, as in the paper.

The protocol of Zhu et al. (EACL 2021) on MLDoc, applied to the bundled LibreOffice help
corpus (or to MLDoc files with ``--mldoc``): per language, per labelled size ``n`` and per
seed, ``n`` documents of the train split are drawn (stratified) and labelled, the rest of
the train split is unlabelled (``-1``), and every method is scored on the test split. All
methods see the same draws. Cross-lingual runs take the labels from one language's train
split, the unlabelled documents from another's, and test on the other's test split.

Documents are embedded once per language; the SDGM is then given a lookup encoder that
returns those embeddings and token counts, exactly what ``MultilingualEncoder`` returns
for the same text, so that no method re-encodes anything. The SDGM runs with its default
parameters: the benchmark measures the product, it does not tune it.

Run it with::

    python -m skdgm.benchmark --config demo
    skdgm-benchmark --config full --output benchmark_results/
"""

from ..datasets import draw_labelled
from ._calibration import calibration_scores
from ._cli import main
from ._configs import CONFIGS, DEFAULT_ENCODER, DEFAULT_LANGUAGES
from ._methods import METHODS, Method, MethodContext
from ._reports import (
    format_table,
    format_timings,
    plot_reliability,
    plot_results,
    write_results,
)
from ._runner import BenchmarkResults, BenchmarkRunError, run_benchmark

__all__ = [
    "CONFIGS",
    "DEFAULT_ENCODER",
    "DEFAULT_LANGUAGES",
    "METHODS",
    "BenchmarkResults",
    "BenchmarkRunError",
    "Method",
    "MethodContext",
    "calibration_scores",
    "draw_labelled",
    "format_table",
    "format_timings",
    "main",
    "plot_reliability",
    "plot_results",
    "run_benchmark",
    "write_results",
]
