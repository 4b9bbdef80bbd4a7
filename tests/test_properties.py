"""Property-based tests (hypothesis) over random geometries and parameters.

Shapes (1-D to 3-D, filters larger than the input included), channels,
connectivity, p in (0, 1], solvers and dtypes are drawn at random; the runs are
derandomized so that CI is reproducible.
"""

from itertools import combinations, product
from math import comb, prod

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.signal import convolve

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from skdeconv import (  # noqa: E402
    ConvSparseCoder,
    DeconvNetworkTransformer,
    conv_sparse_encode,
    make_connectivity,
)
from skdeconv._fft_ops import ConvOperator  # noqa: E402
from skdeconv._learning import FIT_ALGORITHMS
from skdeconv._solvers import interleaved_solvers
from skdeconv._solvers import SOLVERS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, database=None)
FEW = settings(max_examples=12, deadline=None, derandomize=True, database=None)
DTYPES = st.sampled_from([np.float64, np.float32])
P_VALUES = st.one_of(
    st.sampled_from([1.0, 0.5, 2 / 3, 0.8]), st.floats(0.05, 1.0, exclude_min=False)
)


@st.composite
def geometries(draw, max_axes=3):
    """(image_shape, filter_shape, n_channels, n_filters): small, any rank,
    filters possibly larger than the image along some axes."""
    n_axes = draw(st.integers(1, max_axes))
    largest = {1: 12, 2: 7, 3: 4}[n_axes]
    image_shape = tuple(draw(st.integers(1, largest)) for _ in range(n_axes))
    filter_shape = tuple(draw(st.integers(1, largest + 2)) for _ in range(n_axes))
    return image_shape, filter_shape, draw(st.integers(1, 3)), draw(st.integers(1, 4))


@st.composite
def connectivities(draw, n_filters, n_channels):
    """A random binary (n_filters, n_channels) matrix with no empty row."""
    size = n_filters * n_channels
    g = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    g = g.reshape(n_filters, n_channels)
    channels = st.lists(st.integers(0, n_channels - 1), min_size=n_filters, max_size=n_filters)
    g[np.arange(n_filters), draw(channels)] = True
    return g


def _random(shape, seed, dtype=np.float64):
    return np.random.RandomState(seed).standard_normal(shape).astype(dtype)


def _tolerance(dtype):
    return 1e-10 if dtype == np.float64 else 2e-4


# ---------------------------------------------------------------- operator
@PROPERTY
@given(geometry=geometries(), dtype=DTYPES, seed=st.integers(0, 2**16), data=st.data())
def test_conv_operator_adjoint_identity(geometry, dtype, seed, data):
    """<F z, r> = <z, F' r> for every geometry, connectivity and dtype."""
    image_shape, filter_shape, n_channels, n_filters = geometry
    g = data.draw(connectivities(n_filters, n_channels))
    filters = _random((n_filters, n_channels) + filter_shape, seed, dtype)
    op = ConvOperator(filters, g, image_shape)
    maps = _random((2, n_filters) + op.map_shape, seed + 1, dtype)
    residual = _random((2, n_channels) + image_shape, seed + 2, dtype)
    forward, adjoint = op.forward(maps), op.adjoint(residual)
    assert forward.shape == (2, n_channels) + image_shape and forward.dtype == dtype
    assert adjoint.shape == maps.shape and adjoint.dtype == dtype
    lhs = np.vdot(forward.astype(np.float64), residual.astype(np.float64))
    rhs = np.vdot(maps.astype(np.float64), adjoint.astype(np.float64))
    scale = np.linalg.norm(forward) * np.linalg.norm(residual) + 1e-300
    assert abs(lhs - rhs) <= _tolerance(dtype) * 10 * scale


@PROPERTY
@given(geometry=geometries(max_axes=2), seed=st.integers(0, 2**16), data=st.data())
def test_conv_operator_forward_is_masked_valid_convolution(geometry, seed, data):
    """F z = sum_k g[k, c] conv_valid(z_k, f_kc), against scipy.signal.convolve."""
    image_shape, filter_shape, n_channels, n_filters = geometry
    g = data.draw(connectivities(n_filters, n_channels))
    filters = _random((n_filters, n_channels) + filter_shape, seed)
    op = ConvOperator(filters, g, image_shape)
    maps = _random((1, n_filters) + op.map_shape, seed + 1)
    expected = np.zeros((1, n_channels) + image_shape)
    for k, c in product(range(n_filters), range(n_channels)):
        if g[k, c]:
            expected[0, c] += convolve(maps[0, k], filters[k, c], mode="valid", method="direct")
    assert_allclose(op.forward(maps), expected, atol=1e-10 * (1 + np.abs(expected).max()))


# ---------------------------------------------------------------- encode
@st.composite
def encode_problems(draw):
    image_shape, filter_shape, n_channels, n_filters = draw(geometries(max_axes=2))
    return dict(
        image_shape=image_shape, filter_shape=filter_shape, n_channels=n_channels,
        n_filters=n_filters, n_samples=draw(st.integers(1, 5)),
        connectivity=draw(st.one_of(st.none(), connectivities(n_filters, n_channels))),
        p=draw(P_VALUES), lmbda=draw(st.floats(0.1, 50.0)),
        solver=draw(st.sampled_from(sorted(SOLVERS))),
        dtype=draw(DTYPES), seed=draw(st.integers(0, 2**16)),
    )


def _encode(problem, X, filters):
    return conv_sparse_encode(
        X, filters, image_shape=problem["image_shape"], connectivity=problem["connectivity"],
        lmbda=problem["lmbda"], p=problem["p"], solver=problem["solver"], max_iter=15, tol=1e-6,
    )


def _problem_data(problem):
    n_features = problem["n_channels"] * prod(problem["image_shape"])
    X = _random((problem["n_samples"], n_features), problem["seed"], problem["dtype"])
    filters = _random(
        (problem["n_filters"], problem["n_channels"]) + problem["filter_shape"],
        problem["seed"] + 1, problem["dtype"],
    )
    return X, filters


@PROPERTY
@given(problem=encode_problems())
def test_encode_shape_dtype_and_finiteness(problem):
    X, filters = _problem_data(problem)
    maps = _encode(problem, X, filters)
    map_shape = tuple(n + h - 1 for n, h in zip(problem["image_shape"], problem["filter_shape"]))
    assert maps.shape == (len(X), problem["n_filters"] * prod(map_shape))
    assert maps.dtype == problem["dtype"]
    assert np.all(np.isfinite(maps))


@PROPERTY
@given(problem=encode_problems(), data=st.data())
def test_encode_invariant_to_row_order_and_batch_composition(problem, data):
    """Every sample is solved on its own: permuting the rows or solving a
    subset gives exactly the same maps (check_methods_subset_invariance)."""
    X, filters = _problem_data(problem)
    maps = _encode(problem, X, filters)
    order = np.array(data.draw(st.permutations(range(len(X)))))
    assert_array_equal(_encode(problem, X[order], filters), maps[order])
    subset = np.array(sorted(data.draw(st.sets(st.integers(0, len(X) - 1), min_size=1))))
    assert_array_equal(_encode(problem, X[subset], filters), maps[subset])
    # a batch mixed with other samples (duplicates, extra rows)
    extra = _random(X.shape, problem["seed"] + 7, problem["dtype"])
    mixed = np.concatenate([extra, X[::-1], X[:1]])
    mixed_maps = _encode(problem, mixed, filters)
    assert_array_equal(mixed_maps[len(X) : 2 * len(X)], maps[::-1])
    assert_array_equal(mixed_maps[-1], maps[0])


# ---------------------------------------------------------------- estimators
@st.composite
def coder_problems(draw):
    image_shape, filter_shape, n_channels, n_filters = draw(geometries(max_axes=2))
    presets = [None, "full", "singles_and_pairs", "random_pairs", "random_1", "random_3"]
    connectivity = draw(st.one_of(st.sampled_from(presets), connectivities(n_filters, n_channels)))
    solver = draw(st.sampled_from(sorted(SOLVERS)))
    algorithms = FIT_ALGORITHMS if solver in interleaved_solvers() else ("alternating",)
    return dict(
        params=dict(
            n_filters=n_filters, filter_shape=filter_shape, image_shape=image_shape,
            connectivity=connectivity, p=draw(P_VALUES), lmbda=draw(st.floats(0.1, 50.0)),
            solver=solver, fit_algorithm=draw(st.sampled_from(algorithms)), max_iter=10,
            tol=1e-4, n_epochs=2, scale_input=draw(st.booleans()), random_state=0,
        ),
        n_channels=n_channels, n_samples=draw(st.integers(1, 4)),
        dtype=draw(DTYPES), seed=draw(st.integers(0, 2**16)),
    )


def _connectivity_error(connectivity, n_filters, n_channels):
    """The documented ValueError of a preset that cannot be built, or None."""
    if not isinstance(connectivity, str):
        return None
    if connectivity == "singles_and_pairs" and n_filters != n_channels + comb(n_channels, 2):
        return "singles_and_pairs"
    if connectivity.startswith("random"):
        m = 2 if connectivity == "random_pairs" else int(connectivity.split("_")[1])
        if m > n_channels:
            return rf"random_{m}.*n_channels={n_channels}"
    return None


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(problem=coder_problems())
def test_coder_only_documented_exceptions_and_float32_preserved(problem):
    params, dtype = problem["params"], problem["dtype"]
    n_features = problem["n_channels"] * prod(params["image_shape"])
    X = _random((problem["n_samples"], n_features), problem["seed"], dtype)
    coder = ConvSparseCoder(**params)
    error = _connectivity_error(params["connectivity"], params["n_filters"], problem["n_channels"])
    if error is not None:
        with pytest.raises(ValueError, match=error):
            coder.fit(X)
        return
    coder.fit(X)
    assert coder.filters_.dtype == dtype
    norms = np.sqrt(np.sum(coder.filters_**2, axis=tuple(range(2, coder.filters_.ndim))))
    assert_allclose(norms[coder.connectivity_], 1, rtol=1e-5)
    assert_array_equal(norms[~coder.connectivity_], 0)
    maps = coder.transform(X)
    assert maps.dtype == dtype and maps.shape == (len(X), prod(coder.feature_map_shape_))
    assert np.all(np.isfinite(maps))
    reconstruction = coder.inverse_transform(maps)
    assert reconstruction.dtype == dtype and reconstruction.shape == X.shape
    assert np.isfinite(coder.score(X))
    coder.partial_fit(X)
    assert coder.filters_.dtype == dtype


@FEW
@given(
    n_filters=st.tuples(st.integers(1, 3), st.integers(1, 4)),
    filter_shape=st.integers(1, 4), side=st.integers(2, 6), dtype=DTYPES,
    p=P_VALUES, seed=st.integers(0, 2**16),
)
def test_network_preserves_dtype_and_shapes(n_filters, filter_shape, side, dtype, p, seed):
    X = _random((3, side * side), seed, dtype)
    net = DeconvNetworkTransformer(
        n_filters=n_filters, filter_shape=filter_shape, connectivity="full",
        image_shape=(side, side), p=p, max_iter=10, n_epochs=1, random_state=0,
    ).fit(X)
    maps = net.transform(X)
    assert maps.dtype == dtype and maps.shape == (3, prod(net.feature_map_shape_))
    assert net.inverse_transform(maps).dtype == dtype
    receptive = 2 * filter_shape - 1  # layer-2 filters seen through layer 1
    assert net.project_filters(2).shape == (n_filters[1], 1, receptive, receptive)


@PROPERTY
@given(
    n_filters=st.integers(1, 12), n_channels=st.integers(1, 6),
    preset=st.sampled_from(["full", "singles_and_pairs", "random_pairs", "random_1", "random_4"]),
    seed=st.integers(0, 2**16),
)
def test_make_connectivity_presets(n_filters, n_channels, preset, seed):
    error = _connectivity_error(preset, n_filters, n_channels)
    if error is not None:
        with pytest.raises(ValueError, match=error):
            make_connectivity(preset, n_filters, n_channels, random_state=seed)
        return
    g = make_connectivity(preset, n_filters, n_channels, random_state=seed)
    assert g.shape == (n_filters, n_channels) and g.dtype == bool
    assert g.any(axis=1).all()
    expected_per_row = {"full": n_channels, "random_pairs": 2, "random_1": 1, "random_4": 4}
    if preset in expected_per_row:
        assert_array_equal(g.sum(axis=1), expected_per_row[preset])
    else:  # one map per channel, then one per unordered pair
        assert_array_equal(g[:n_channels], np.eye(n_channels, dtype=bool))
        pairs = [tuple(np.flatnonzero(row).tolist()) for row in g[n_channels:]]
        assert sorted(pairs) == sorted(combinations(range(n_channels), 2))
