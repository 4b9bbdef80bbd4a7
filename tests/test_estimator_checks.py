"""scikit-learn's estimator checks, with no expected failures."""

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_get_feature_names_out_error,
    check_param_validation,
    check_set_output_transform,
    check_transformer_get_feature_names_out,
    parametrize_with_checks,
)

from skdeconv import AdaptiveDeconvNetwork, ConvSparseCoder, DeconvNetworkTransformer

# the instances are kept small and fast, so inference may stop at max_iter
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _estimators():
    """Small, fast instances covering the solvers, both fit algorithms and p < 1
    (1-D default geometry)."""
    common = dict(n_filters=2, filter_shape=3, n_epochs=3, tol=1e-4, random_state=0)
    return [
        ConvSparseCoder(**common),
        ConvSparseCoder(solver="continuation", fit_algorithm="alternating", **common),
        ConvSparseCoder(p=0.5, solver="admm", **common),
        DeconvNetworkTransformer(
            n_filters=(3, 2), filter_shape=3, connectivity=("full", "full"),
            # inference to a tight tol: fit_transform (warm-started from the
            # training maps) and transform (from zero) must agree to 0.01
            n_epochs=1, max_iter=1000, tol=1e-6, random_state=0,
        ),
        AdaptiveDeconvNetwork(
            n_filters=(3, 2), filter_shape=3, connectivity="full", n_epochs=2, max_iter=20,
            random_state=0,
        ),
    ]


@parametrize_with_checks(_estimators())
def test_sklearn_compatible(estimator, check):
    check(estimator)


SEPARATE_CHECKS = [
    check_param_validation,
    check_set_output_transform,
    check_transformer_get_feature_names_out,
    check_get_feature_names_out_error,
    check_dataframe_column_names_consistency,
]


@pytest.mark.parametrize("check", SEPARATE_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "estimator", _estimators(),
    ids=lambda e: f"{type(e).__name__}-{e.solver}-{getattr(e, 'fit_algorithm', '')}-p{getattr(e, 'p', 1)}",
)
def test_separate_checks(estimator, check):
    pytest.importorskip("pandas")
    check(type(estimator).__name__, estimator)
