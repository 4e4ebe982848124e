"""scikit-learn's own estimator checks over every public estimator of skdgm."""

import pytest
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from skdgm import SemiSupervisedVAEClassifier

# A small, fast configuration: the checks fit dozens of times on tiny data.
FAST = dict(max_epochs=20, hidden_dim=16, z1_dim=4, z2_dim=2, batch_size=32, random_state=0)

EXPECTED_FAILED_CHECKS = {
    "check_classifiers_classes": (
        "Feeds the labels [-1, 1]: -1 marks unlabelled rows for a semi-supervised "
        "classifier (scikit-learn exempts its own semi-supervised classes by name)."
    ),
}


# decoder="gru" needs documents, which the checks do not give: tests/test_gru_decoder.py.
# Two stages need more epochs to pass check_classifiers_train's 0.83 training accuracy on
# 2-d blobs: M1's posterior nearly collapses there (0.79 after 20 epochs, 0.89 after 40).
# So does an ensemble: its second member scores 0.71 there after 20 epochs (0.89 after 40).
ESTIMATORS = [
    SemiSupervisedVAEClassifier(**FAST),
    SemiSupervisedVAEClassifier(**{**FAST, "max_epochs": 40}, ensemble_size=2),
    SemiSupervisedVAEClassifier(**{**FAST, "max_epochs": 40}, training="two_stage"),
]


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)
