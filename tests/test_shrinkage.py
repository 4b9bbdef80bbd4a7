"""Proximal maps of |x|^p (skdeconv._shrinkage) against brute-force minimisation."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from skdeconv._shrinkage import _threshold_fractional, penalty, shrink

FRACTIONAL_P = [0.5, 2 / 3, 0.8, 0.3]


def _tau(beta, p):
    """Threshold of the prox of |x|^p (Krishnan & Fergus 2009); 1/beta for p = 1."""
    if p == 1:
        return 1 / beta
    return (2 - p) / (2 * (1 - p)) * (2 * (1 - p) / beta) ** (1 / (2 - p))


def _cost(x, v, beta, p):
    return np.abs(x) ** p + 0.5 * beta * (x - v) ** 2


def _brute_shrink(v, beta, p, n_grid=4001):
    """Global minimiser of |x|^p + beta/2 (x - v)^2 by grid search + refinement.

    The minimiser lies between 0 and v; the grid locates the basin of the
    global minimum and a bounded scalar search polishes it.  Returns the
    minimiser and its cost.
    """
    if v == 0:
        return 0.0, 0.0
    a = abs(v)
    grid = np.linspace(0.0, a, n_grid)
    costs = _cost(grid, a, beta, p)
    best = int(np.argmin(costs))
    candidates = [(costs[0], 0.0)]
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, n_grid - 1)]
    if best > 0:
        res = minimize_scalar(
            lambda x: _cost(x, a, beta, p), bounds=(lo, hi), method="bounded",
            options={"xatol": 1e-14 * max(1.0, a)},
        )
        candidates.append((res.fun, float(res.x)))
        candidates.append((costs[best], grid[best]))
    cost, x = min(candidates)
    return np.copysign(x, v), cost


def test_soft_threshold_exact():
    rng = np.random.RandomState(0)
    v = rng.standard_normal(1000) * 3
    for beta in [0.1, 1.0, 7.5, 1e4]:
        expected = np.sign(v) * np.maximum(np.abs(v) - 1 / beta, 0)
        np.testing.assert_allclose(shrink(v, beta, 1.0), expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(shrink(np.array([-2.0, -0.5, 0.0, 0.5, 2.0]), 1.0, 1), [-1, 0, 0, 0, 1])


@pytest.mark.parametrize("p", [1.0] + FRACTIONAL_P, ids=lambda p: f"p{p:.3g}")
@pytest.mark.parametrize("beta", [0.05, 1.0, 3.0, 40.0, 1e4])
def test_shrink_vs_brute_force(p, beta):
    """Global minimiser for many v: same cost (never worse) and same point."""
    threshold = _tau(beta, p)
    rng = np.random.RandomState(int(beta * 100) % 2**31)
    v = np.concatenate([
        rng.uniform(-4, 4, 60) * threshold,
        threshold * np.array([0.5, 0.99, 0.999, 1.001, 1.005, 1.01, 1.05, 1.5, 2, 10, 100]),
        -threshold * np.array([1.001, 3.0]),
    ])
    got = shrink(v, beta, p)
    assert got.shape == v.shape and got.dtype == v.dtype
    for value, x in zip(v, got):
        x_ref, cost_ref = _brute_shrink(value, beta, p)
        cost = _cost(x, value, beta, p)
        scale = max(1.0, cost_ref)
        # never worse than brute force, and not better than it by more than rounding
        assert cost <= cost_ref + 1e-12 * scale, (value, x, x_ref)
        assert cost >= cost_ref - 1e-9 * scale, (value, x, x_ref)
        # the cost is flat to rounding within sqrt(eps * cost / beta) of the minimiser
        resolution = 20 * np.sqrt(np.finfo(float).eps * cost_ref / beta)
        assert x == pytest.approx(x_ref, rel=1e-6, abs=1e-9 * abs(value) + resolution), (value, x_ref)


@pytest.mark.parametrize("p", FRACTIONAL_P, ids=lambda p: f"p{p:.3g}")
@pytest.mark.parametrize("beta", [0.3, 2.0, 500.0])
def test_fractional_is_stationary(p, beta):
    """Non-zero outputs solve p|x|^(p-1) sign(x) + beta (x - v) = 0 to rounding."""
    threshold = _tau(beta, p)
    v = np.linspace(-20, 20, 4001) * threshold
    x = shrink(v, beta, p)
    nonzero = x != 0
    assert nonzero.any() and (~nonzero).any()
    residual = p * np.abs(x[nonzero]) ** (p - 1) * np.sign(x[nonzero]) + beta * (x[nonzero] - v[nonzero])
    np.testing.assert_allclose(residual / (beta * np.abs(v[nonzero])), 0, atol=1e-12)
    # and is the larger stationary point: the cost beats x = 0
    assert np.all(_cost(x[nonzero], v[nonzero], beta, p) <= _cost(0, v[nonzero], beta, p) + 1e-12)


@pytest.mark.parametrize("p", FRACTIONAL_P, ids=lambda p: f"p{p:.3g}")
@pytest.mark.parametrize("beta", [0.5, 1.0, 20.0])
def test_threshold_behaviour(p, beta):
    """Zero up to the threshold tau, a jump to x_t just above it, cost tie at tau."""
    tau, x_t = _threshold_fractional(beta, p)
    np.testing.assert_allclose(tau, _tau(beta, p), rtol=1e-13)
    # at v = tau, x = 0 and x = x_t have the same cost and x_t is stationary
    np.testing.assert_allclose(_cost(x_t, tau, beta, p), _cost(0.0, tau, beta, p), rtol=1e-12)
    np.testing.assert_allclose(p * x_t ** (p - 1) + beta * (x_t - tau), 0, atol=1e-10 * beta * tau)
    below = shrink(np.array([tau * (1 - 1e-9), -tau * (1 - 1e-9), tau * 0.5]), beta, p)
    np.testing.assert_array_equal(below, 0)
    above = shrink(np.array([tau * (1 + 1e-6), -tau * (1 + 1e-6)]), beta, p)
    np.testing.assert_allclose(above, [x_t, -x_t], rtol=2e-3)
    # the output jumps: nothing strictly between 0 and x_t is ever returned
    out = np.abs(shrink(np.linspace(0, 3 * tau, 3001), beta, p))
    assert np.all((out == 0) | (out >= x_t * (1 - 1e-9)))
    # monotone non-decreasing in v
    assert np.all(np.diff(out) >= 0)


@pytest.mark.parametrize("p", [1.0] + FRACTIONAL_P, ids=lambda p: f"p{p:.3g}")
def test_odd_and_zero(p):
    v = np.array([0.0, 0.3, 1.7, 25.0, 1e3])
    np.testing.assert_array_equal(shrink(-v, 2.0, p), -shrink(v, 2.0, p))
    assert shrink(np.zeros(3), 5.0, p).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("p", [1.0] + FRACTIONAL_P, ids=lambda p: f"p{p:.3g}")
def test_array_beta_broadcasting(p):
    rng = np.random.RandomState(1)
    values = rng.standard_normal((4, 3, 5)) * 3
    betas = np.array([0.5, 1.0, 4.0, 100.0])
    got = shrink(values, betas.reshape(4, 1, 1), p)
    assert got.shape == values.shape
    for i, beta in enumerate(betas):
        np.testing.assert_array_equal(got[i], shrink(values[i], beta, p))
    # a beta per element (a fixed number of Newton steps per element, so the
    # result of one value never depends on the others in the array)
    beta_full = rng.uniform(0.2, 10, values.shape)
    got_full = shrink(values, beta_full, p)
    expected = np.array([shrink(np.array([v]), b, p)[0] for v, b in zip(values.ravel(), beta_full.ravel())])
    np.testing.assert_allclose(got_full.ravel(), expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("p", [1.0, 0.5, 0.8])
def test_float32_kept_and_input_untouched(p):
    values = np.random.RandomState(2).standard_normal(100).astype(np.float32) * 4
    original = values.copy()
    got = shrink(values, np.float32(2.0), p)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(values, original)
    np.testing.assert_allclose(got, shrink(values.astype(np.float64), 2.0, p), rtol=1e-6, atol=1e-6)
    got_array_beta = shrink(values, np.full(100, 2.0, dtype=np.float32), p)
    assert got_array_beta.dtype == np.float32


def test_p_one_is_limit_of_fractional():
    v = np.linspace(-5, 5, 101)
    np.testing.assert_allclose(shrink(v, 2.0, 0.9999), shrink(v, 2.0, 1.0), atol=2e-3)


@pytest.mark.parametrize("p", [1.0, 0.8, 0.5])
def test_penalty(p):
    maps = np.random.RandomState(3).standard_normal((3, 2, 4, 5))
    maps[maps < 0.2] = 0
    expected = np.array([np.sum(np.abs(m) ** p) for m in maps])
    np.testing.assert_allclose(penalty(maps, p, axis=(1, 2, 3)), expected, rtol=1e-14)
    np.testing.assert_allclose(penalty(maps, p, axis=None), expected.sum(), rtol=1e-14)


def test_half_thresholding_closed_form_equals_newton():
    """The p = 1/2 closed form (Xu et al. 2012) equals the Newton root."""
    from skdeconv._shrinkage import _half_root, _newton_root, _threshold_fractional

    rng = np.random.RandomState(0)
    beta = rng.uniform(0.1, 100, 2000)
    threshold, _ = _threshold_fractional(beta, 0.5)
    v = threshold * (1 + rng.exponential(1, 2000))
    np.testing.assert_allclose(_half_root(v, beta), _newton_root(v, beta, 0.5, 60), rtol=1e-12)
