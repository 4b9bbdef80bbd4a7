"""Filter update with fixed maps and unit-norm projection (skdeconv._filters)."""

import numpy as np
import pytest

from skdeconv._connectivity import _make_connectivity
from skdeconv._fft_ops import ConvOperator
from skdeconv._filters import (
    MomentumFilterSteps,
    _channel_lipschitz,
    _filter_gradient,
    channel_data_terms,
    normalize_filters,
    patch_statistics,
    random_filters,
    solve_filters_from_statistics,
    update_filters,
)
from skdeconv._interleaved import backtracking_filter_step, channel_operator


def _data_cost(filters, g, maps, Y):
    """1/2 sum_n ||F(f) z_n - y_n||^2."""
    residual = ConvOperator(filters, g, Y.shape[2:]).forward(maps) - Y
    return 0.5 * float(np.sum(residual**2))


def _plane_norms(filters):
    return np.sqrt(np.sum(filters**2, axis=tuple(range(2, filters.ndim))))


def _problem(
    image_shape=(12, 10), filter_shape=(3, 4), n_filters=3, n_channels=2, n_samples=4, seed=0
):
    rng = np.random.RandomState(seed)
    g = np.array([[1, 0], [1, 1], [0, 1]], dtype=bool)[:n_filters, :n_channels]
    if n_channels == 1:
        g = np.ones((n_filters, 1), dtype=bool)
    filters = random_filters(n_filters, n_channels, filter_shape, g, rng, np.float64)
    map_shape = tuple(n + h - 1 for n, h in zip(image_shape, filter_shape))
    maps = rng.standard_normal((n_samples, n_filters) + map_shape)
    maps[rng.rand(*maps.shape) < 0.7] = 0
    Y = rng.standard_normal((n_samples, n_channels) + image_shape)
    return rng, g, filters, maps, Y


def test_normalize_filters_unit_planes_and_zeros():
    rng = np.random.RandomState(0)
    g = np.array([[1, 0, 1], [0, 1, 1]], dtype=bool)
    raw = rng.standard_normal((2, 3, 4, 5)) * 7
    out = normalize_filters(raw, g)
    np.testing.assert_allclose(_plane_norms(out)[g], 1, rtol=1e-14)
    np.testing.assert_array_equal(out[~g], 0)
    np.testing.assert_allclose(out[g], raw[g] / _plane_norms(raw)[g][:, None, None], rtol=1e-14)
    assert out.dtype == raw.dtype
    out32 = normalize_filters(raw.astype(np.float32), g)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out, rtol=1e-6, atol=1e-7)


def test_normalize_filters_zero_plane_uses_fallback():
    g = np.ones((2, 1), dtype=bool)
    raw = np.zeros((2, 1, 3))
    raw[0, 0] = [3.0, 0.0, 4.0]
    fallback = np.array([[[0.0, 1.0, 0.0]], [[0.6, 0.0, 0.8]]])
    out = normalize_filters(raw, g, fallback=fallback)
    np.testing.assert_allclose(out[0, 0], [0.6, 0.0, 0.8])
    np.testing.assert_array_equal(out[1], fallback[1])


def test_random_filters():
    g = np.array([[1, 0], [1, 1]], dtype=bool)
    a = random_filters(2, 2, (3, 3), g, np.random.RandomState(0), np.float32)
    b = random_filters(2, 2, (3, 3), g, np.random.RandomState(0), np.float32)
    assert a.shape == (2, 2, 3, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(_plane_norms(a)[g], 1, rtol=1e-6)
    np.testing.assert_array_equal(a[~g], 0)


@pytest.mark.parametrize(
    "image_shape, filter_shape, n_channels",
    [((9, 8), (3, 4), 2), ((15,), (4,), 2), ((6, 5), (3, 3), 1), ((2,), (5,), 2)],
)
def test_filter_gradient_vs_finite_differences(image_shape, filter_shape, n_channels):
    _, g, filters, maps, Y = _problem(image_shape, filter_shape, n_channels=n_channels, n_samples=3)
    # more samples than a chunk would hold are summed across chunks
    op = ConvOperator(filters, g, image_shape)
    gradient, _ = _filter_gradient(op, op.rfft(maps), Y)
    assert gradient.shape == (int(g.sum()),) + filter_shape
    eps = 1e-5
    numerical = np.zeros_like(gradient)
    for pair, (k, c) in enumerate(zip(op.mixer.map_of_pair, op.mixer.channel_of_pair)):
        for index in np.ndindex(*filter_shape):
            plus, minus = filters.copy(), filters.copy()
            plus[(k, c) + index] += eps
            minus[(k, c) + index] -= eps
            numerical[(pair,) + index] = (
                _data_cost(plus, g, maps, Y) - _data_cost(minus, g, maps, Y)
            ) / (2 * eps)
    np.testing.assert_allclose(gradient, numerical, rtol=1e-6, atol=1e-6 * np.abs(numerical).max())


def test_channel_lipschitz_bounds_exact_norm():
    """L_c >= ||f_{., c} -> (F z)_c||^2 (dense matrix over all samples).

    The circulant bound ignores the small filter support, so on tiny maps it
    can be a few times the exact norm (measured 3.7x here).
    """
    _, g, filters, maps, Y = _problem((7, 6), (3, 3), n_samples=3)
    op = ConvOperator(filters, g, (7, 6))
    bounds = _channel_lipschitz(op.rfft(maps), g)
    for c in range(g.shape[1]):
        ks = np.flatnonzero(g[:, c])
        columns = []
        for k in ks:
            for index in np.ndindex(3, 3):
                unit = np.zeros_like(filters)
                unit[(k, c) + index] = 1.0
                columns.append(ConvOperator(unit, g, (7, 6)).forward(maps)[:, c].ravel())
        exact = np.linalg.norm(np.array(columns).T, 2) ** 2
        assert bounds[c] >= exact * (1 - 1e-10)
        assert bounds[c] <= 10 * exact


@pytest.mark.parametrize("n_channels", [1, 2])
def test_update_filters_unit_norm_zeros_and_monotone(n_channels):
    _, g, filters, maps, Y = _problem(n_channels=n_channels, seed=1)
    filters_in = filters.copy()
    maps_in, Y_in = maps.copy(), Y.copy()
    costs = [_data_cost(filters, g, maps, Y)]
    current = filters
    for _ in range(15):
        current = update_filters(current, g, maps, Y, n_steps=1)
        np.testing.assert_allclose(_plane_norms(current)[g], 1, rtol=1e-12)
        np.testing.assert_array_equal(current[~g], 0)
        costs.append(_data_cost(current, g, maps, Y))
    assert np.all(np.diff(costs) <= 1e-12 * costs[0]), np.diff(costs)
    assert costs[-1] < costs[0] * 0.99
    # several steps in one call equal the same steps one by one
    np.testing.assert_allclose(
        update_filters(filters, g, maps, Y, n_steps=15), current, rtol=1e-10, atol=1e-12
    )
    # inputs untouched, a new array returned
    np.testing.assert_array_equal(filters, filters_in)
    np.testing.assert_array_equal(maps, maps_in)
    np.testing.assert_array_equal(Y, Y_in)


def test_update_filters_recovers_true_filters():
    """With the true maps, projected gradient converges to the generating filters."""
    rng = np.random.RandomState(2)
    g = np.ones((2, 1), dtype=bool)
    truth = random_filters(2, 1, (5, 5), g, rng, np.float64)
    maps = rng.standard_normal((6, 2, 24, 24))
    maps[rng.rand(*maps.shape) < 0.8] = 0
    Y = ConvOperator(truth, g, (20, 20)).forward(maps)
    start = normalize_filters(truth + 0.3 * rng.standard_normal(truth.shape), g)
    learned = update_filters(start, g, maps, Y, n_steps=300)
    np.testing.assert_allclose(learned, truth, atol=1e-8)
    assert _data_cost(learned, g, maps, Y) < 1e-12 * float(np.sum(Y**2))


def test_update_filters_float32():
    _, g, filters, maps, Y = _problem(seed=3)
    out = update_filters(
        filters.astype(np.float32), g, maps.astype(np.float32), Y.astype(np.float32), 3
    )
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, update_filters(filters, g, maps, Y, 3), atol=1e-4)


def test_update_filters_zero_maps_keeps_filters():
    _, g, filters, maps, Y = _problem(seed=4)
    out = update_filters(filters, g, np.zeros_like(maps), Y, 5)
    np.testing.assert_array_equal(out, filters)
    assert out is not filters


def test_update_filters_unused_map_keeps_its_planes():
    """A map that is zero in every sample has zero gradient: its planes do not move."""
    _, g, filters, maps, Y = _problem(seed=5)
    maps[:, 0] = 0
    out = update_filters(filters, g, maps, Y, 5)
    np.testing.assert_allclose(out[0], filters[0], rtol=0, atol=1e-14)
    assert not np.allclose(out[1], filters[1])


def test_update_filters_channel_without_maps():
    """A column of g with no 1 (a channel no map explains) is legal: its planes stay zero."""
    _, _, filters, maps, Y = _problem(n_filters=3, n_channels=2, seed=6)
    g = np.array([[1, 0], [1, 0], [1, 0]], dtype=bool)
    filters = normalize_filters(filters + 0.1, g)
    costs = [_data_cost(filters, g, maps, Y)]
    out = update_filters(filters, g, maps, Y, n_steps=3)
    np.testing.assert_array_equal(out[:, 1], 0)
    np.testing.assert_allclose(_plane_norms(out)[:, 0], 1, rtol=1e-12)
    assert _data_cost(out, g, maps, Y) <= costs[0]


@pytest.mark.parametrize(
    "image_shape, filter_shape", [((9, 8), (3, 4)), ((15,), (4,)), ((2, 3), (5, 4))]
)
def test_patch_statistics_exact_quadratic(image_shape, filter_shape):
    """1/2 sum ||F z - y||^2 == sum_c 1/2 f_c'A_c f_c - b_c'f_c + 1/2 ||y||^2, and
    A_c f_c - b_c is the gradient of :func:`_filter_gradient`."""
    _, g, filters, maps, Y = _problem(image_shape, filter_shape, n_samples=3)
    statistics = patch_statistics(maps, Y, g, filter_shape)
    assert len(statistics) == g.shape[1]
    op = ConvOperator(filters, g, image_shape)
    gradient, _ = _filter_gradient(op, op.rfft(maps), Y)
    quadratic = 0.5 * float(np.sum(Y**2))
    for c, (gram, moment) in enumerate(statistics):
        f_c = filters[g[:, c], c].ravel()
        np.testing.assert_allclose(gram, gram.T, rtol=1e-14)
        quadratic += 0.5 * f_c @ gram @ f_c - moment @ f_c
        pairs = np.flatnonzero(op.mixer.channel_of_pair == c)  # sorted by map
        np.testing.assert_allclose(
            gram @ f_c - moment, gradient[pairs].ravel(), rtol=1e-9, atol=1e-10
        )
    np.testing.assert_allclose(quadratic, _data_cost(filters, g, maps, Y), rtol=1e-11)


def test_solve_filters_from_statistics_monotone_and_same_limit():
    """Projected gradient on the exact quadratic: unit-norm planes, monotone steps,
    and the same limit as :func:`update_filters` on the same data."""
    _, g, filters, maps, Y = _problem(n_samples=3, seed=7)
    statistics = patch_statistics(maps, Y, g, filters.shape[2:])
    costs = [_data_cost(filters, g, maps, Y)]
    current = filters
    for _ in range(10):
        current = solve_filters_from_statistics(current, g, statistics, 1)
        np.testing.assert_allclose(_plane_norms(current)[g], 1, rtol=1e-12)
        np.testing.assert_array_equal(current[~g], 0)
        costs.append(_data_cost(current, g, maps, Y))
    assert np.all(np.diff(costs) <= 1e-12 * costs[0])
    np.testing.assert_allclose(
        solve_filters_from_statistics(filters, g, statistics, 10), current, rtol=1e-12
    )
    limit = solve_filters_from_statistics(filters, g, statistics, 3000)
    np.testing.assert_allclose(update_filters(filters, g, maps, Y, 3000, rtol=0), limit, atol=1e-7)


def test_backtracking_retries_only_the_failing_channels():
    """A retried filter step evaluates the data terms of the channels that
    failed only (the test and the data term are per channel), and takes the
    same step as re-evaluating every channel: the data term of channel c
    depends on the planes of channel c only."""
    rng = np.random.RandomState(0)
    g = _make_connectivity("random_pairs", 12, 5, rng)
    filters = random_filters(12, 5, (3, 3), g, rng, np.float64)
    maps = rng.standard_normal((2, 12, 10, 10)) * (rng.rand(2, 12, 10, 10) < 0.3)
    Y = rng.standard_normal((2, 5, 8, 8))
    point_op = ConvOperator(filters, g, (8, 8))
    spectra = point_op.rfft(maps)
    gradient, _ = _filter_gradient(point_op, spectra, Y)
    data_point = channel_data_terms(point_op, spectra, Y)

    def data_terms_of(candidate, channels, asked):
        asked.append(channels)
        rows = slice(None) if channels is None else channels
        return channel_data_terms(
            channel_operator(candidate, g, (8, 8), channels), spectra, Y[:, rows]
        )

    results = []
    for restricted in (True, False):
        steps, asked = MomentumFilterSteps(filters, g), []
        steps.lipschitz = np.full(5, 1e-3)  # far too long a step: every channel backtracks
        steps.lipschitz[2] = 1e6  # ... but channel 2, whose step is tiny
        if restricted:
            def evaluate(candidate, channels):
                return data_terms_of(candidate, channels, asked)
        else:  # every channel evaluated, those asked for returned
            def evaluate(candidate, channels):
                every = data_terms_of(candidate, None, asked)
                return every if channels is None else every[channels]
        data_terms = backtracking_filter_step(steps, gradient, data_point, evaluate)
        assert len(asked) > 1  # retried
        results.append((steps.filters, data_terms, asked))
    (filters_r, terms_r, asked_r), (filters_a, terms_a, _) = results
    assert asked_r[0] is None and 2 not in asked_r[1]
    assert all(set(later) <= set(earlier) for earlier, later in zip(asked_r[1:], asked_r[2:]))
    np.testing.assert_array_equal(filters_r, filters_a)
    np.testing.assert_allclose(terms_r, terms_a, rtol=1e-12)
