"""solver='auto' (issue #12): the rule, batch independence, equality with the chosen solver."""

import numpy as np
import pytest
from joblib import parallel_config
from numpy.testing import assert_array_equal

from skdeconv import conv_dict_learning, conv_sparse_encode
from skdeconv._solvers.auto import (
    AUTO_ADMM_MAX_CHANNELS,
    AUTO_DENSE_RATIO,
    AUTO_MULTICHANNEL_RATIO,
    auto_solver_for_learning,
    auto_solvers,
)
from skdeconv._fft_ops import ConvOperator
from skdeconv._operators import MaskedOperator

SHAPE = (16, 16)


def _filters(n_filters=4, n_channels=1, size=5, seed=0):
    rng = np.random.RandomState(seed)
    filters = rng.standard_normal((n_filters, n_channels, size, size))
    return filters / np.sqrt(np.sum(filters**2, axis=(2, 3), keepdims=True))


def _op(filters):
    g = np.ones(filters.shape[:2], bool)
    return ConvOperator(filters, g, SHAPE)


def _ratio(filters, X, lmbda):
    """lambda / lambda_min(x) = lambda * max|F'x| per row, by brute force."""
    op = _op(filters)
    Y = X.reshape((len(X), filters.shape[1]) + SHAPE)
    return lmbda * np.abs(op.adjoint(Y)).reshape(len(X), -1).max(axis=1)


def _mixed_rows(n=6, seed=0):
    """Rows of very different scales: at one lambda some are dense, some sparse."""
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, np.prod(SHAPE)))
    X *= np.array([0.01, 1.0, 0.03, 10.0, 0.003, 0.3])[:n, None]
    return X


def _straddling_lmbda(filters, X):
    """A lambda at which the rows of X fall on both sides of the threshold."""
    ratio = _ratio(filters, X, 1.0)
    return AUTO_DENSE_RATIO / np.sqrt(ratio.min() * ratio.max())


def test_rule_on_clear_sparse_and_dense_cases():
    filters = _filters()
    X = _mixed_rows()
    op = _op(filters)
    Y = X.reshape((len(X), 1) + SHAPE)
    lmbda = _straddling_lmbda(filters, X)
    ratio = _ratio(filters, X, lmbda)
    assert (ratio < AUTO_DENSE_RATIO / 3).any() and (ratio > 3 * AUTO_DENSE_RATIO).any()
    choice = auto_solvers(op, Y, lmbda, 1.0)
    assert_array_equal(choice == "admm", ratio >= AUTO_DENSE_RATIO)
    # all maps zero (lambda below lambda_min): fista
    assert set(auto_solvers(op, Y, 0.5 / np.abs(op.adjoint(Y)).max(), 1.0)) == {"fista"}
    # scale-free: images times a and lambda over a pick the same solvers
    assert_array_equal(auto_solvers(op, 8.0 * Y, lmbda / 8.0, 1.0), choice)
    # p < 1 and masked data terms: fista only
    assert set(auto_solvers(op, Y, lmbda, 0.8)) == {"fista"}
    assert set(auto_solvers(MaskedOperator(op, np.ones_like(Y)), Y, lmbda, 1.0)) == {"fista"}


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_transform_is_batch_independent_with_mixed_samples(n_jobs):
    filters = _filters()
    X = _mixed_rows()
    lmbda = _straddling_lmbda(filters, X)
    params = dict(image_shape=SHAPE, lmbda=lmbda, max_iter=100, tol=1e-5, n_jobs=n_jobs)
    choice = auto_solvers(_op(filters), X.reshape((len(X), 1) + SHAPE), lmbda, 1.0)
    assert {"fista", "admm"} <= set(choice)
    with parallel_config(backend="threading"):
        batch = conv_sparse_encode(X, filters, **params)
    singles = np.concatenate([conv_sparse_encode(X[i:i + 1], filters, **params) for i in range(len(X))])
    order = np.array([3, 0, 5, 1, 4, 2])
    permuted = conv_sparse_encode(X[order], filters, **params)
    np.testing.assert_allclose(batch, singles, rtol=0, atol=1e-7)
    np.testing.assert_allclose(batch[order], permuted, rtol=0, atol=1e-7)


def test_results_are_the_chosen_solvers():
    filters = _filters()
    X = _mixed_rows()
    lmbda = _straddling_lmbda(filters, X)
    params = dict(image_shape=SHAPE, lmbda=lmbda, max_iter=200, tol=1e-5)
    maps = conv_sparse_encode(X, filters, **params)  # default solver='auto'
    choice = auto_solvers(_op(filters), X.reshape((len(X), 1) + SHAPE), lmbda, 1.0)
    for name in ("fista", "admm"):
        rows = np.flatnonzero(choice == name)
        expected = conv_sparse_encode(X[rows], filters, solver=name, **params)
        assert_array_equal(maps[rows], expected)


def test_all_rows_one_solver_is_that_solver_bit_for_bit():
    filters = _filters()
    X = _mixed_rows()[[1, 3]]
    lmbda = 2 * AUTO_DENSE_RATIO / _ratio(filters, X, 1.0).min()  # both dense
    params = dict(image_shape=SHAPE, lmbda=lmbda, max_iter=50, tol=1e-5)
    assert_array_equal(
        conv_sparse_encode(X, filters, **params),
        conv_sparse_encode(X, filters, solver="admm", **params),
    )


def test_multichannel_and_1d():
    """The rule reads the adjoint over every channel; 1-D signals work too."""
    filters = _filters(n_filters=3, n_channels=3)
    rng = np.random.RandomState(1)
    X = rng.standard_normal((3, 3 * np.prod(SHAPE))) * np.array([[0.01], [1.0], [0.1]])
    op = ConvOperator(filters, np.ones((3, 3), bool), SHAPE)
    Y = X.reshape((3, 3) + SHAPE)
    ratio = np.abs(op.adjoint(Y)).reshape(3, -1).max(axis=1)
    threshold = AUTO_MULTICHANNEL_RATIO  # several channels
    lmbda = threshold / ratio[1] * 1.5  # row 1 dense, the others sparse
    assert_array_equal(auto_solvers(op, Y, lmbda, 1.0), ["fista", "admm", "fista"])
    assert_array_equal(auto_solvers(op, Y, lmbda / 2, 1.0), ["fista"] * 3)
    maps = conv_sparse_encode(X, filters, image_shape=SHAPE, lmbda=lmbda, max_iter=50)
    assert maps.shape == (3, 3 * 20 * 20)
    signals = rng.standard_normal((4, 50)) * np.array([[0.01], [1.0], [3.0], [0.1]])
    filters_1d = rng.standard_normal((2, 1, 7))
    filters_1d /= np.linalg.norm(filters_1d, axis=-1, keepdims=True)
    auto = conv_sparse_encode(signals, filters_1d, lmbda=4.0, max_iter=50)
    op = ConvOperator(filters_1d, np.ones((2, 1), bool), (50,))
    choice = auto_solvers(op, signals[:, None], 4.0, 1.0)
    for row, name in enumerate(choice):
        assert_array_equal(
            auto[row], conv_sparse_encode(signals[row:row + 1], filters_1d, lmbda=4.0,
                                          max_iter=50, solver=name)[0]
        )


@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_interleaved_learning_runs_the_solver_chosen_from_the_training_data(scale):
    rng = np.random.RandomState(0)
    filters = _filters(3)
    X = rng.standard_normal((4, np.prod(SHAPE)))
    X *= scale * AUTO_DENSE_RATIO / 5.0 / _ratio(filters, X, 1.0).min()
    op = _op(filters)
    Y = X.reshape((4, 1) + SHAPE)
    chosen = auto_solver_for_learning(op, Y, 5.0, 1.0)
    assert chosen == ("admm" if scale > 1 else "fista")
    params = dict(image_shape=SHAPE, lmbda=5.0, n_epochs=5, filters_init=filters)
    auto = conv_dict_learning(X, 3, 5, **params)
    explicit = conv_dict_learning(X, 3, 5, solver=chosen, **params)
    for a, b in zip(auto, explicit):
        assert_array_equal(a, b)


@pytest.mark.parametrize("statistic, expected", [
    (2 * AUTO_DENSE_RATIO, "admm"), (AUTO_DENSE_RATIO / 2, "fista"),
])
def test_learning_takes_the_rule_of_inference(statistic, expected):
    """One channel: inference and interleaved learning pick ADMM from
    AUTO_DENSE_RATIO on."""
    filters = _filters(3)
    X = np.random.RandomState(0).standard_normal((4, np.prod(SHAPE)))
    X *= statistic / _ratio(filters, X, 1.0)[:, None]  # every row at the statistic
    Y = X.reshape((4, 1) + SHAPE)
    assert set(auto_solvers(_op(filters), Y, 1.0, 1.0)) == {expected}
    assert auto_solver_for_learning(_op(filters), Y, 1.0, 1.0) == expected


@pytest.mark.parametrize("extra_channels, expected", [(0, "admm"), (1, "fista")])
def test_auto_keeps_fista_on_wide_inputs(extra_channels, expected):
    """Dense maps: ADMM up to AUTO_ADMM_MAX_CHANNELS channels, FISTA above,
    for inference and learning alike."""
    n_channels = AUTO_ADMM_MAX_CHANNELS + extra_channels
    filters = _filters(2, n_channels, 3)
    Y = np.random.RandomState(0).standard_normal((3, n_channels) + SHAPE)
    op = ConvOperator(filters, np.ones((2, n_channels), bool), SHAPE)
    Y *= 10 * AUTO_MULTICHANNEL_RATIO / np.abs(op.adjoint(Y)).max()
    assert set(auto_solvers(op, Y, 5.0, 1.0)) == {expected}
    assert auto_solver_for_learning(op, Y, 5.0, 1.0) == expected


def test_alternating_learning_with_auto():
    X = _mixed_rows(4)
    maps, filters, costs = conv_dict_learning(
        X, 3, 5, image_shape=SHAPE, lmbda=2.0, n_epochs=2, fit_algorithm="alternating",
        max_iter=30, tol=1e-1, random_state=0,
    )
    assert np.all(np.isfinite(costs)) and costs[-1] <= costs[0]


def test_unknown_solver_is_rejected():
    with pytest.raises(ValueError, match="solver"):
        conv_sparse_encode(np.ones((1, 8)), np.ones((1, 1, 3)), solver="lbfgs")
