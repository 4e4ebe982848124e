"""skdgm: semi-supervised deep generative models for multilingual document classification.

The package follows scikit-learn's API: unlabelled rows are marked ``-1`` in ``y``.
Fitted estimators are saved without pickle by :func:`save` and loaded by :func:`load`.
"""

from ._classifier import SemiSupervisedVAEClassifier
from ._documents import documents_as_array, documents_from_array
from ._persistence import load, save
from ._transformer_classifier import TransformerClassifier
from ._version import __version__
from .encoders import NXVAE

__all__ = [
    "NXVAE",
    "SemiSupervisedVAEClassifier",
    "TransformerClassifier",
    "__version__",
    "documents_as_array",
    "documents_from_array",
    "load",
    "save",
]
