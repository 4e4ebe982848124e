"""skdgm: semi-supervised deep generative models for multilingual document classification.

The package follows scikit-learn's API: unlabelled rows are marked ``-1`` in ``y``.
"""

from ._classifier import SemiSupervisedVAEClassifier

__version__ = "0.1.0"

__all__ = ["SemiSupervisedVAEClassifier", "__version__"]
