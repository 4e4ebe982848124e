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


@parametrize_with_checks(
    [SemiSupervisedVAEClassifier(**FAST)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [SemiSupervisedVAEClassifier(**FAST)])
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)
