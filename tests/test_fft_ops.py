"""FFT synthesis operator F, its adjoint and its Lipschitz bound vs brute force."""

import numpy as np
import pytest
from scipy import fft, signal

from skdeconv._connectivity import _make_connectivity
from skdeconv._fft_ops import (
    ConvOperator, fft_shape_for, window_irfft, window_rfft,
)
from skdeconv._solvers.admm import woodbury_inverse

# (n_filters, n_channels, image_shape, filter_shape); includes filters larger
# than the input and anisotropic 2-D shapes.
GEOMETRIES = [
    (1, 1, (16,), (4,)),
    (3, 2, (20,), (5,)),
    (2, 3, (3,), (7,)),  # filter longer than the signal
    (4, 1, (1,), (3,)),  # single-sample signal
    (1, 1, (8, 8), (3, 3)),
    (4, 3, (12, 10), (3, 4)),
    (3, 2, (5, 3), (2, 6)),  # filter wider than the image
    (2, 2, (4, 4), (6, 6)),  # filter larger on both axes
    (5, 2, (9, 7), (7, 7)),
]


def _problem(geometry, seed=0, dtype=np.float64, density=0.6):
    n_filters, n_channels, image_shape, filter_shape = geometry
    rng = np.random.RandomState(seed)
    g = rng.rand(n_filters, n_channels) < density
    g[np.arange(n_filters), rng.randint(n_channels, size=n_filters)] = True
    filters = rng.standard_normal((n_filters, n_channels) + filter_shape)
    filters[~g] = 0
    op = ConvOperator(filters.astype(dtype), g, image_shape)
    return rng, g, filters, op


def _brute_forward(maps, filters, g):
    """y_c = sum_k g[k,c] convolve_valid(z_k, f_kc), by direct summation."""
    n_filters, n_channels = g.shape
    out = []
    for z in maps:
        channels = []
        for c in range(n_channels):
            terms = [
                signal.convolve(z[k], filters[k, c], mode="valid", method="direct")
                for k in range(n_filters)
                if g[k, c]
            ]
            image_shape = tuple(m - h + 1 for m, h in zip(z.shape[1:], filters.shape[2:]))
            channels.append(np.sum(terms, axis=0) if terms else np.zeros(image_shape))
        out.append(channels)
    return np.array(out)


def _brute_adjoint(residual, filters, g):
    """z_k = sum_c g[k,c] correlate_full(r_c, f_kc), by direct summation."""
    n_filters, n_channels = g.shape
    out = []
    for r in residual:
        maps = []
        for k in range(n_filters):
            terms = [
                signal.correlate(r[c], filters[k, c], mode="full", method="direct")
                for c in range(n_channels)
                if g[k, c]
            ]
            maps.append(np.sum(terms, axis=0))
        out.append(maps)
    return np.array(out)


def _ids(geometry):
    k, c, n, h = geometry
    return f"K{k}-C{c}-N{'x'.join(map(str, n))}-h{'x'.join(map(str, h))}"


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
def test_shapes(geometry):
    n_filters, n_channels, image_shape, filter_shape = geometry
    _, _, _, op = _problem(geometry)
    map_shape = tuple(n + h - 1 for n, h in zip(image_shape, filter_shape))
    assert op.map_shape == map_shape
    assert all(L >= m for L, m in zip(op.fft_shape, map_shape))
    assert op.fft_shape == fft_shape_for(map_shape)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
def test_forward_matches_brute_force(geometry):
    rng, g, filters, op = _problem(geometry)
    maps = rng.standard_normal((3, g.shape[0]) + op.map_shape)
    expected = _brute_forward(maps, filters, g)
    got = op.forward(maps)
    assert got.shape == (3, g.shape[1]) + op.image_shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
def test_adjoint_matches_brute_force(geometry):
    rng, g, filters, op = _problem(geometry, seed=1)
    residual = rng.standard_normal((3, g.shape[1]) + op.image_shape)
    expected = _brute_adjoint(residual, filters, g)
    got = op.adjoint(residual)
    assert got.shape == (3, g.shape[0]) + op.map_shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
def test_adjoint_identity(geometry):
    rng, g, _, op = _problem(geometry, seed=2)
    maps = rng.standard_normal((4, g.shape[0]) + op.map_shape)
    residual = rng.standard_normal((4, g.shape[1]) + op.image_shape)
    lhs = np.sum(op.forward(maps) * residual, axis=tuple(range(1, residual.ndim)))
    rhs = np.sum(maps * op.adjoint(residual), axis=tuple(range(1, maps.ndim)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-11, atol=1e-11)


def test_channel_without_maps_is_zero():
    g = np.array([[True, False, True], [True, False, False]])
    rng = np.random.RandomState(0)
    filters = rng.standard_normal((2, 3, 3, 3)) * g[:, :, None, None]
    op = ConvOperator(filters, g, (6, 5))
    maps = rng.standard_normal((2, 2) + op.map_shape)
    out = op.forward(maps)
    np.testing.assert_array_equal(out[:, 1], 0)
    np.testing.assert_allclose(out, _brute_forward(maps, filters, g), atol=1e-11)
    residual = rng.standard_normal((2, 3, 6, 5))
    np.testing.assert_allclose(
        op.adjoint(residual), _brute_adjoint(residual, filters, g), atol=1e-11
    )


def test_planes_outside_connectivity_are_ignored():
    """Values in filter planes with g = 0 must not leak into F or F'."""
    geometry = (3, 2, (7, 6), (3, 3))
    rng, g, filters, op = _problem(geometry, density=0.5)
    polluted = filters.copy()
    polluted[~g] = 123.0
    op_polluted = ConvOperator(polluted, g, op.image_shape)
    maps = rng.standard_normal((2, 3) + op.map_shape)
    residual = rng.standard_normal((2, 2) + op.image_shape)
    np.testing.assert_array_equal(op_polluted.forward(maps), op.forward(maps))
    np.testing.assert_array_equal(op_polluted.adjoint(residual), op.adjoint(residual))


def test_linearity_and_batch_independence():
    rng, g, _, op = _problem((4, 3, (11, 9), (4, 3)), seed=3)
    maps = rng.standard_normal((5, 4) + op.map_shape)
    residual = rng.standard_normal((5, 3) + op.image_shape)
    batch_fwd, batch_adj = op.forward(maps), op.adjoint(residual)
    for i in range(5):
        np.testing.assert_array_equal(op.forward(maps[i : i + 1])[0], batch_fwd[i])
        np.testing.assert_array_equal(op.adjoint(residual[i : i + 1])[0], batch_adj[i])
    np.testing.assert_allclose(
        op.forward(2 * maps[:2] - maps[2:4]), 2 * batch_fwd[:2] - batch_fwd[2:4], atol=1e-12
    )


@pytest.mark.parametrize("geometry", [GEOMETRIES[1], GEOMETRIES[5]], ids=_ids)
def test_float32_stays_float32(geometry):
    rng, g, filters, op64 = _problem(geometry)
    op = ConvOperator(filters.astype(np.float32), g, op64.image_shape)
    assert op.pair_spectra.dtype == np.complex64
    assert op.adjoint_spectra.dtype == np.complex64
    maps = rng.standard_normal((2, g.shape[0]) + op.map_shape)
    residual = rng.standard_normal((2, g.shape[1]) + op.image_shape)
    fwd = op.forward(maps.astype(np.float32))
    adj = op.adjoint(residual.astype(np.float32))
    assert fwd.dtype == np.float32 and adj.dtype == np.float32
    np.testing.assert_allclose(fwd, op64.forward(maps), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(adj, op64.adjoint(residual), rtol=1e-4, atol=1e-4)
    assert isinstance(op.lipschitz, float)


def _power_iteration(op, n_iter=2000, seed=0):
    rng = np.random.RandomState(seed)
    z = rng.standard_normal((1, op.n_filters) + op.map_shape)
    for _ in range(n_iter):
        z = op.adjoint(op.forward(z))
        z /= np.linalg.norm(z)
    fz = op.forward(z)
    return float(np.vdot(fz, fz))


def _dense_norm2(op):
    """Exact ||F||^2 from the dense matrix of F (tiny problems only)."""
    n_in = op.n_filters * int(np.prod(op.map_shape))
    basis = np.eye(n_in).reshape((n_in, op.n_filters) + op.map_shape)
    matrix = op.forward(basis).reshape(n_in, -1)
    return float(np.linalg.norm(matrix, 2) ** 2)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
def test_lipschitz_upper_bound_and_tight(geometry):
    _, _, _, op = _problem(geometry, seed=4)
    true_norm2 = _power_iteration(op)
    if np.prod(op.map_shape) * op.n_filters <= 400:
        exact = _dense_norm2(op)
        # power iteration approaches the exact norm from below
        assert exact * (1 - 1e-3) <= true_norm2 <= exact * (1 + 1e-10)
        true_norm2 = exact
    assert op.lipschitz >= true_norm2 * (1 - 1e-10)
    # the circulant bound is loose only for tiny maps
    assert op.lipschitz <= 2.0 * true_norm2


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
def test_lipschitz_equals_max_spectral_norm(geometry):
    """Exactly max_w sigma_max(F_hat(w))^2 on the FFT grid; blocking changes nothing."""
    _, g, filters, op = _problem(geometry, seed=5)
    axes = tuple(range(2, filters.ndim))
    spectra = np.fft.fftn(filters * g.reshape(g.shape + (1,) * len(axes)), s=op.fft_shape, axes=axes)
    matrices = np.moveaxis(spectra.reshape(spectra.shape[:2] + (-1,)), -1, 0)
    expected = np.max(np.linalg.svd(matrices, compute_uv=False)[:, 0] ** 2)
    np.testing.assert_allclose(op.lipschitz, expected, rtol=1e-10)
    blocked = max(
        np.linalg.eigvalsh(gram)[:, -1].max() for _, gram in op.filter_grams(block_size=7)
    )
    np.testing.assert_allclose(blocked, expected, rtol=1e-10)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
@pytest.mark.parametrize("channel_side", [False, True])
def test_sparse_and_dense_grams_agree(geometry, channel_side):
    """Summing the products of pairs that share a map (or channel) = D D^H (or D^H D)."""
    _, _, _, op = _problem(geometry, seed=6, density=0.4)
    dense = np.concatenate([gram for _, gram in op.filter_grams(channel_side, sparse=False)])
    sparse = np.concatenate(
        [gram for _, gram in op.filter_grams(channel_side, block_size=5, sparse=True)]
    )
    np.testing.assert_allclose(sparse, dense, rtol=0, atol=1e-12 * np.abs(dense).max())


def test_lipschitz_of_a_wide_sparse_layer():
    """random_pairs over many channels takes the sparse Gram (a few terms per entry)."""
    rng = np.random.RandomState(0)
    g = _make_connectivity("random_pairs", 40, 12, rng)
    filters = rng.standard_normal((40, 12, 3, 3)) * g[..., None, None]
    op = ConvOperator(filters, g, (8, 8))
    assert 8 * op.mixer.gram_size(True) < 12 * 40 * 12  # so the sparse sums are used
    spectra = np.fft.fftn(filters, s=op.fft_shape, axes=(2, 3))
    matrices = np.moveaxis(spectra.reshape(40, 12, -1), -1, 0)
    expected = np.max(np.linalg.svd(matrices, compute_uv=False)[:, 0] ** 2)
    np.testing.assert_allclose(op.lipschitz, expected, rtol=1e-10)


def test_woodbury_inverse_solves_the_admm_x_step():
    """(I + D^H D) x = b on the FFT grid, checked per frequency densely."""
    rng = np.random.RandomState(0)
    g = np.array([[1, 0], [1, 1], [0, 1]], bool)
    op = ConvOperator(rng.standard_normal((3, 2, 3, 2)) * g[..., None, None], g, (6, 5))
    b = op.rfft(rng.standard_normal((2, 3) + op.fft_shape))
    reduced = np.einsum("cd...,nd...->nc...", woodbury_inverse(op), op.synthesis_spectra(b))
    x = b - op.circular_adjoint_spectra(reduced)
    # (I + D^H D) x must give back b
    back = x + op.circular_adjoint_spectra(op.synthesis_spectra(x))
    np.testing.assert_allclose(back, b, atol=1e-10)


def test_lipschitz_of_unit_delta_is_one():
    filters = np.zeros((1, 1, 5))
    filters[0, 0, 2] = 1.0
    op = ConvOperator(filters, np.ones((1, 1), bool), (10,))
    assert op.lipschitz == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(_dense_norm2(op), 1.0, rtol=1e-12)


def _exact_per_frequency(op):
    """Largest eigenvalue of every frequency's Gram, by dense SVD (brute force)."""
    n_pairs = len(op.pair_spectra)
    dense = np.zeros((n_pairs and op.pair_spectra[0].size, op.n_channels, op.n_filters), complex)
    planes = op.pair_spectra.reshape(n_pairs, -1).T
    dense[:, op.mixer.channel_of_pair, op.mixer.map_of_pair] = planes
    return np.linalg.svd(dense, compute_uv=False)[:, 0] ** 2


SPARSE_LAYERS = [
    (12, 6, "random_pairs", (9, 8), (3, 3)),
    (10, 4, "singles_and_pairs", (7,), (4,)),
    (20, 9, "random_3", (6, 6), (4, 2)),
    (5, 5, "full", (5, 7), (3, 3)),
    (6, 1, "full", (12,), (5,)),
]


@pytest.mark.parametrize("layer", SPARSE_LAYERS, ids=lambda layer: f"{layer[0]}x{layer[1]}-{layer[2]}")
def test_cheap_norm_bounds_hold_and_lipschitz_is_exact(layer):
    """Every frequency's cheap bound >= its exact eigenvalue (brute force), so
    ``cheap_lipschitz`` (FISTA's start) bounds ||F||^2, and the
    branch-and-bound maximum is the exact one."""
    n_filters, n_channels, preset, image_shape, filter_shape = layer
    rng = np.random.RandomState(1)
    g = _make_connectivity(preset, n_filters, n_channels, rng)
    filters = rng.standard_normal((n_filters, n_channels) + filter_shape)
    filters *= g.reshape(g.shape + (1,) * len(filter_shape))
    op = ConvOperator(filters, g, image_shape)
    exact = _exact_per_frequency(op)
    bounds = op._cheap_norm_bounds(op.pair_spectra)
    assert np.all(bounds >= exact * (1 - 1e-12))
    # Frobenius is the loosest of the three: at most rank (<= min(C, K)) times exact.
    assert np.all(bounds <= exact * min(n_channels, n_filters) * (1 + 1e-12) + 1e-12)
    np.testing.assert_allclose(op.lipschitz, exact.max(), rtol=1e-12)
    assert op.cheap_lipschitz == bounds.max() >= op.lipschitz * (1 - 1e-12)
    if min(n_filters, n_channels) == 1:  # Frobenius of one row or column: exact
        np.testing.assert_allclose(op.cheap_lipschitz, op.lipschitz, rtol=1e-12)


def _full_scan(op):
    """The former exact bound: eigvalsh of every frequency's Gram."""
    return max(float(np.linalg.eigvalsh(gram)[:, -1].max()) for _, gram in op.filter_grams())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cheap_lipschitz_of_a_wide_layer_bounds_the_full_scan(dtype):
    """The paper's wide layers (random pairs): the cheap bound is never below
    the full scan of every frequency, in float32 too, and within 2x of it."""
    rng = np.random.RandomState(0)
    g = _make_connectivity("random_pairs", 30, 10, rng)
    filters = rng.standard_normal((30, 10, 5, 5)) * g[..., None, None]
    op = ConvOperator(filters.astype(dtype), g, (16, 16))
    scan = _full_scan(op)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert scan * (1 - tolerance) <= op.cheap_lipschitz <= 2 * scan


def test_certify_below_is_an_eigenvalue_test():
    from skdeconv._fft_ops import _certify_below

    rng = np.random.RandomState(0)
    a = rng.standard_normal((50, 6, 6)) + 1j * rng.standard_normal((50, 6, 6))
    grams = a @ np.conj(np.swapaxes(a, 1, 2))
    largest = np.linalg.eigvalsh(grams)[:, -1]
    threshold = np.median(largest)
    certified = _certify_below(grams, threshold)
    assert np.array_equal(certified, largest < threshold)


@pytest.mark.parametrize("grid, window", [
    ((11,), (3,)), ((12,), (4,)), ((10, 9), (3, 4)), ((9, 10), (9, 2)), ((6, 7, 8), (2, 3, 3)),
])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_window_irfft_is_the_window_of_the_inverse_fft(grid, window, dtype):
    """Any half spectrum (imaginary DC and Nyquist parts too, which the
    inverse real FFT ignores), odd and even lengths, 1 to 3 axes."""
    rng = np.random.default_rng(0)
    freq_shape = grid[:-1] + (grid[-1] // 2 + 1,)
    spectra = (rng.standard_normal((2, 3) + freq_shape)
               + 1j * rng.standard_normal((2, 3) + freq_shape)).astype(dtype)
    axes = tuple(range(-len(grid), 0))
    expected = fft.irfftn(spectra.astype(np.complex128), s=grid, axes=axes)
    expected = expected[(Ellipsis,) + tuple(slice(0, h) for h in window)]
    got = window_irfft(spectra, grid, window)
    assert got.dtype == np.dtype(dtype).type(0).real.dtype
    assert got.shape == (2, 3) + window
    rtol = 1e-12 if dtype == np.complex128 else 1e-5
    np.testing.assert_allclose(got, expected, rtol=0, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("grid, window", [
    ((11,), (3,)), ((12,), (6,)), ((10, 9), (3, 4)), ((10, 9), (9, 2)), ((6, 7, 8), (2, 3, 3)),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_window_rfft_is_the_fft_of_the_zero_padded_planes(grid, window, dtype):
    """Odd and even lengths, 1 to 3 axes, planes up to half the grid (the
    matrix products) and above it (9 of 10 on axis 0: the padded FFT)."""
    rng = np.random.default_rng(0)
    planes = rng.standard_normal((2, 3) + window).astype(dtype)
    axes = tuple(range(-len(grid), 0))
    expected = fft.rfftn(planes.astype(np.float64), s=grid, axes=axes)
    got = window_rfft(planes, grid)
    assert got.dtype == np.result_type(dtype, np.complex64)
    assert got.shape == expected.shape and got.flags.c_contiguous
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got, expected, rtol=0, atol=rtol * np.abs(expected).max())
