"""Map inference with fixed filters (skdeconv._solvers): optimality, agreement
of the two solvers and per-sample independence, on a real image."""

from functools import lru_cache

import numpy as np
import pytest
from scipy import signal
from threadpoolctl import threadpool_limits

from skdeconv import conv_sparse_encode
from skdeconv._fft_ops import ConvOperator
from skdeconv._filters import random_filters
from skdeconv._shrinkage import shrink
from skdeconv._solvers import SOLVERS, objective, solve
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import local_contrast_normalize

LMBDA = 5.0


def _solver(name):
    """``name`` through the driver, as ``(op, Y, lmbda, p, init, max_iter, tol)``."""
    def run(op, Y, lmbda, p, init, max_iter, tol):
        return solve(op, Y, solver=name, lmbda=lmbda, p=p, init=init, max_iter=max_iter, tol=tol)
    return run


fista, admm, continuation = (_solver(name) for name in ("fista", "admm", "continuation"))


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Call the solvers as ``_encode`` does: one BLAS thread (threaded BLAS
    dot products of one sample are ~100x slower on a loaded 2-core machine)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@lru_cache(maxsize=None)
def _fruit(size):
    """Contrast-normalised gray fruit images cropped to size x size, (10, 1, s, s)."""
    images = local_contrast_normalize(load_zeiler2010("fruit", as_gray=True))
    start = (100 - size) // 2
    crop = images[:, start : start + size, start : start + size]
    crop.setflags(write=False)
    return crop[:, None]


def _fruit_filters(n_filters=4, filter_size=5, seed=0):
    """Random unit-norm filter planes (n_filters, 1, h, h) and a full connectivity."""
    g = np.ones((n_filters, 1), dtype=bool)
    filters = random_filters(
        n_filters, 1, (filter_size, filter_size), g, np.random.RandomState(seed), np.float64
    )
    return filters, g


def _fruit_problem(size=48, n_filters=4, filter_size=5, seed=0):
    filters, g = _fruit_filters(n_filters, filter_size, seed)
    return ConvOperator(filters, g, (size, size)), _fruit(size)


def _zeros(op, n):
    return np.zeros((n, op.n_filters) + op.map_shape)


def _kkt_violation(op, maps, Y, lmbda):
    """Distance of -lambda F'(Fz - y) to the subdifferential of |z|_1, per entry."""
    gradient = lmbda * op.adjoint(op.forward(maps) - Y)
    return np.where(
        maps == 0,
        np.maximum(np.abs(gradient) - 1, 0),
        np.abs(gradient + np.sign(maps)),
    )


@lru_cache(maxsize=None)
def _fista_solution():
    op, Y = _fruit_problem()
    maps, n_iter, converged = fista(op, Y[:1], LMBDA, 1.0, _zeros(op, 1), 5000, 1e-8)
    return op, Y[:1], maps, n_iter, converged


def test_objective_matches_brute_force():
    rng = np.random.RandomState(0)
    g = np.array([[1, 0], [1, 1], [0, 1]], dtype=bool)
    filters = rng.standard_normal((3, 2, 3, 4)) * g[:, :, None, None]
    op = ConvOperator(filters, g, (6, 5))
    maps = rng.standard_normal((2, 3) + op.map_shape)
    maps[np.abs(maps) < 0.5] = 0
    Y = rng.standard_normal((2, 2, 6, 5))
    for p in (1.0, 0.8):
        expected = []
        for z, y in zip(maps, Y):
            residual = [
                sum(signal.convolve(z[k], filters[k, c], mode="valid") for k in range(3) if g[k, c]) - y[c]
                for c in range(2)
            ]
            expected.append(0.7 / 2 * np.sum(np.square(residual)) + np.sum(np.abs(z) ** p))
        np.testing.assert_allclose(objective(op, maps, Y, 0.7, p), expected, rtol=1e-12)


@pytest.mark.parametrize("p", [1.0, 0.5, 0.8, 2 / 3])
def test_fista_identity_operator_is_shrinkage(p):
    """With a 1-tap unit filter F = +-I, the minimiser is shrink(+-y, lambda, p)."""
    rng = np.random.RandomState(1)
    Y = rng.standard_normal((3, 1, 40)) * 2
    op = ConvOperator(np.array([[[-1.0]]]), np.ones((1, 1), bool), (40,))
    maps, n_iter, converged = fista(op, Y, 2.0, p, _zeros(op, 3), 100, 1e-10)
    np.testing.assert_allclose(maps, shrink(-Y, 2.0, p), rtol=1e-14, atol=1e-15)
    assert converged.all() and np.all(n_iter <= 3)


def test_continuation_identity_operator_p1():
    """Half-quadratic splitting converges towards soft(y, 1/lambda) (slowly at large beta)."""
    rng = np.random.RandomState(1)
    Y = rng.standard_normal((3, 1, 40)) * 2
    op = ConvOperator(np.array([[[1.0]]]), np.ones((1, 1), bool), (40,))
    maps, _, _ = continuation(op, Y, 2.0, 1.0, _zeros(op, 3), 2000, 1e-10)
    optimum = shrink(Y, 2.0, 1.0)
    np.testing.assert_allclose(maps, optimum, atol=1e-3)
    np.testing.assert_allclose(
        objective(op, maps, Y, 2.0, 1.0), objective(op, optimum, Y, 2.0, 1.0), rtol=1e-5
    )


def test_fista_kkt_on_fruit():
    """Optimality of the p = 1 solution on a real image at tight tolerance:
    g = lambda F'(Fz - y) satisfies |g| <= 1 where z = 0 and g = -sign(z) elsewhere."""
    op, Y, maps, n_iter, converged = _fista_solution()
    assert converged.all()
    violation = _kkt_violation(op, maps, Y, LMBDA)
    p99 = np.percentile(violation, 99)
    density = np.mean(maps != 0)
    print(
        f"\nFISTA KKT on fruit 48x48, 4 filters 5x5, lambda={LMBDA}: "
        f"{int(n_iter[0])} iterations, density {density:.3f}, "
        f"violation p99 {p99:.2e}, max {violation.max():.2e}"
    )
    assert 0.01 < density < 0.9  # a non-trivial sparse solution
    assert p99 < 1e-5
    assert violation.max() < 1e-4


def test_conv_sparse_encode_kkt_on_fruit():
    """The public function reaches the same optimality (default solver)."""
    op, Y = _fruit_problem(size=32, seed=3)
    filters, _ = _fruit_filters(seed=3)
    rows = conv_sparse_encode(
        Y[:2].reshape(2, -1), filters, image_shape=(32, 32), lmbda=LMBDA,
        max_iter=5000, tol=1e-8,
    )
    maps = rows.reshape((2, 4) + op.map_shape)
    violation = _kkt_violation(op, maps, Y[:2], LMBDA)
    assert np.percentile(violation, 99) < 1e-5


def test_admm_kkt_on_fruit():
    """ADMM (mask decoupling) reaches the same optimum: KKT and FISTA's cost."""
    op, Y, fista_maps, _, _ = _fista_solution()
    maps, n_iter, converged = admm(op, Y, LMBDA, 1.0, np.zeros_like(fista_maps), 5000, 1e-7)
    assert converged.all()
    violation = _kkt_violation(op, maps, Y, LMBDA)
    print(f"\nADMM KKT: {int(n_iter.max())} iterations, violation p99 {np.percentile(violation, 99):.2e}")
    assert np.percentile(violation, 99) < 1e-5
    np.testing.assert_allclose(
        objective(op, maps, Y, LMBDA, 1.0), objective(op, fista_maps, Y, LMBDA, 1.0), rtol=1e-7
    )


def test_continuation_matches_fista_cost_on_fruit():
    """At tight tolerance both solvers reach the same cost (within 1%)."""
    op, Y, fista_maps, _, _ = _fista_solution()
    maps, n_iter, converged = continuation(op, Y, LMBDA, 1.0, _zeros(op, 1), 6000, 1e-6)
    cost_fista = objective(op, fista_maps, Y, LMBDA, 1.0)[0]
    cost_cont = objective(op, maps, Y, LMBDA, 1.0)[0]
    gap = (cost_cont - cost_fista) / cost_fista
    violation = _kkt_violation(op, maps, Y, LMBDA)
    print(
        f"\ncost fista {cost_fista:.6f}, continuation {cost_cont:.6f} "
        f"({int(n_iter[0])} CG steps, converged={bool(converged[0])}), "
        f"relative gap {gap:.2e}; continuation KKT p99 {np.percentile(violation, 99):.2e}"
    )
    assert abs(gap) < 0.01
    # FISTA's solution is optimal, so continuation cannot be much below it
    assert gap > -1e-6


def test_continuation_budget_respected():
    op, Y = _fruit_problem(size=24)
    for max_iter in (1, 5, 12, 40):
        _, n_iter, converged = continuation(op, Y[:2], LMBDA, 1.0, _zeros(op, 2), max_iter, 1e-12)
        assert np.all(n_iter <= max_iter) and np.all(n_iter >= 1)
        assert not converged.any()


def test_fista_max_iter_and_convergence_flags():
    op, Y = _fruit_problem(size=24)
    _, n_iter, converged = fista(op, Y[:3], LMBDA, 1.0, _zeros(op, 3), 3, 1e-4)
    np.testing.assert_array_equal(n_iter, [3, 3, 3])
    assert not converged.any()
    _, n_iter, converged = fista(op, Y[:3], LMBDA, 1.0, _zeros(op, 3), 7, 0.0)
    np.testing.assert_array_equal(n_iter, [7, 7, 7])
    assert not converged.any()


def test_fista_warm_start_at_solution_stops_at_first_momentum_step():
    """Steps 1 and 2 have no momentum (t_1 = 1); step 3 is the first tested."""
    op, Y, maps, _, _ = _fista_solution()
    again, n_iter, converged = fista(op, Y, LMBDA, 1.0, maps, 100, 1e-6)
    assert converged.all() and n_iter[0] == 3
    np.testing.assert_allclose(again, maps, rtol=0, atol=1e-6 * np.abs(maps).max())


def test_fista_warm_start_does_not_stop_on_its_short_first_step():
    """From a warm start off the optimum, the first step (at the level of
    the bound, without momentum) moves less than tol: stopping there would
    leave the cost where it started."""
    op, Y, maps, _, _ = _fista_solution()
    init = 0.9 * maps
    first, _, _ = fista(op, Y, LMBDA, 1.0, init, 1, 0.0)
    tol = 2 * np.linalg.norm(first - init) / np.linalg.norm(first)
    warm, n_iter, converged = fista(op, Y, LMBDA, 1.0, init, 5000, tol)
    assert converged.all() and n_iter[0] > 1
    start, stop, best = (objective(op, z, Y, LMBDA, 1.0)[0] for z in (init, warm, maps))
    assert stop - best < 0.25 * (start - best)


@pytest.mark.parametrize("p", [0.8, 0.5])
def test_fista_fractional_fixed_point(p):
    """For p < 1 the output is a fixed point of the prox-gradient map:
    x == shrink(x - t * lambda F'(Fx - y), 1 / t, p) with t = 1 / (lambda L)."""
    op, Y = _fruit_problem(size=32)
    maps, n_iter, converged = fista(op, Y[:2], LMBDA, p, _zeros(op, 2), 5000, 1e-10)
    assert converged.all()
    step = 1 / (LMBDA * op.lipschitz)
    gradient = LMBDA * op.adjoint(op.forward(maps) - Y[:2])
    mapped = shrink(maps - step * gradient, 1 / step, p)
    change = np.linalg.norm((mapped - maps).reshape(2, -1), axis=1)
    size = np.linalg.norm(maps.reshape(2, -1), axis=1)
    print(f"\np={p}: fixed-point residual {change / size} after {n_iter} iterations")
    assert np.all(size > 0)
    np.testing.assert_array_less(change, 1e-8 * size)
    # and no lower-cost point is reached by the map
    assert np.all(objective(op, mapped, Y[:2], LMBDA, p) >= objective(op, maps, Y[:2], LMBDA, p) - 1e-9)


@lru_cache(maxsize=None)
def _batch_runs(solver, p, max_iter=200, tol=1e-4):
    # maps of 4 x 52 x 52 > 8192 values per sample: numpy reductions switch
    # to buffered code paths above that size
    op, Y = _fruit_problem(size=48, seed=2)
    Y = Y[:4]
    batch = _solver(solver)(op, Y, LMBDA, p, _zeros(op, 4), max_iter, tol)
    singles = [_solver(solver)(op, Y[i : i + 1], LMBDA, p, _zeros(op, 1), max_iter, tol) for i in range(4)]
    order = np.array([2, 0, 3, 1])
    permuted = _solver(solver)(op, Y[order], LMBDA, p, _zeros(op, 4), max_iter, tol)
    alone = tuple(np.concatenate([s[k] for s in singles]) for k in range(3))
    return batch, alone, permuted, order


@pytest.mark.parametrize("p", [1.0, 0.8])
@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_per_sample_independence(solver, p):
    """A sample's maps do not depend on the other samples of the batch."""
    batch, alone, permuted, order = _batch_runs(solver, p)
    # samples stop at different iterations, and each at the same one alone
    np.testing.assert_array_equal(batch[1], alone[1])
    np.testing.assert_array_equal(permuted[1], batch[1][order])
    np.testing.assert_allclose(batch[0], alone[0], rtol=0, atol=1e-7)
    np.testing.assert_allclose(permuted[0], batch[0][order], rtol=0, atol=1e-7)


@pytest.mark.parametrize("p", [1.0, 0.8])
@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_per_sample_bit_identical(solver, p):
    """Stronger: bit-identical whatever the batch (DESIGN section 2, _fft_ops docstring)."""
    batch, alone, permuted, order = _batch_runs(solver, p)
    assert np.array_equal(batch[0], alone[0]), np.abs(batch[0] - alone[0]).max()
    assert np.array_equal(permuted[0], batch[0][order])


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_float32_in_float32_out(solver):
    op64, Y = _fruit_problem(size=24)
    filters, g = _fruit_filters()
    op32 = ConvOperator(filters.astype(np.float32), g, (24, 24))
    Y32 = Y[:2].astype(np.float32)
    maps32, _, _ = _solver(solver)(op32, Y32, LMBDA, 1.0, _zeros(op32, 2).astype(np.float32), 2000, 1e-5)
    maps64, _, _ = _solver(solver)(op64, Y[:2], LMBDA, 1.0, _zeros(op64, 2), 2000, 1e-5)
    assert maps32.dtype == np.float32
    cost32 = objective(op64, maps32.astype(np.float64), Y[:2], LMBDA, 1.0)
    cost64 = objective(op64, maps64, Y[:2], LMBDA, 1.0)
    np.testing.assert_allclose(cost32, cost64, rtol=1e-3)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_init_not_modified(solver):
    op, Y = _fruit_problem(size=24)
    init = np.random.RandomState(0).standard_normal((2, 4) + op.map_shape) * 0.1
    original = init.copy()
    Y_copy = Y[:2].copy()
    _solver(solver)(op, Y_copy, LMBDA, 1.0, init, 20, 1e-4)
    np.testing.assert_array_equal(init, original)
    np.testing.assert_array_equal(Y_copy, Y[:2])
