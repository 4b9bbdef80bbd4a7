"""Adaptive Deconvolutional Networks: top-down operator, inference, learning, estimator."""

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skdeconv import AdaptiveDeconvNetwork, _parallel
from skdeconv._adaptive_solvers import (
    filter_gradient,
    filter_steps,
    infer_maps,
    infer_maps_parallel,
    layer_costs,
    lmbda_min,
)
from skdeconv._fft_ops import ConvOperator
from skdeconv._filters import random_filters
from skdeconv._pooling3d import max_pool, pooled_shape
from skdeconv._topdown import TopDownOperator

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _stack(image_shape, n_filters, filter_shape, pool_shape, n_samples=2, seed=0,
           dtype=np.float64, connectivity=None):
    """Random unit filters of every layer, and random switches of the layers below."""
    rng = np.random.RandomState(seed)
    operators, switches = [], []
    n_channels, input_shape = 1, tuple(image_shape)
    for layer, n_maps in enumerate(n_filters):
        g = np.ones((n_maps, n_channels), bool) if connectivity is None else connectivity[layer]
        filters = random_filters(n_maps, n_channels, (filter_shape,) * len(input_shape), g, rng,
                                 np.dtype(dtype))
        op = ConvOperator(filters, g, input_shape)
        operators.append(op)
        shape = (n_maps,) + op.map_shape
        if layer < len(n_filters) - 1:
            switches.append(max_pool(rng.standard_normal((n_samples,) + shape), pool_shape)[1])
        n_channels, *input_shape = pooled_shape(shape, pool_shape)
        input_shape = tuple(input_shape)
    return operators, switches, rng


GEOMETRIES = [
    ((13, 11), (3, 4, 5), 3, (2, 2, 2)),
    ((12, 12), (2, 3), 3, (3, 3, 1)),
    ((20,), (3, 4, 4), 3, (2, 2)),   # 1-D: pool shape (px, pk)
]


@pytest.mark.parametrize("image_shape, n_filters, filter_shape, pool_shape", GEOMETRIES)
def test_topdown_adjoint_identity(image_shape, n_filters, filter_shape, pool_shape):
    """<R z, r> = <z, R' r> for every layer l, with each sample's switches."""
    operators, switches, rng = _stack(image_shape, n_filters, filter_shape, pool_shape)
    for layer in range(1, len(n_filters) + 1):
        R = TopDownOperator(operators[:layer], switches[: layer - 1], [pool_shape] * (layer - 1))
        z = rng.standard_normal((2,) + R.map_shape)
        r = rng.standard_normal((2,) + R.image_shape)
        left = np.sum(R.forward(z) * r, axis=tuple(range(1, r.ndim)))
        right = np.sum(z * R.adjoint(r), axis=tuple(range(1, z.ndim)))
        np.testing.assert_allclose(left, right, rtol=1e-10)
        # the lower part alone (layer l's input space -> pixels) too
        x = rng.standard_normal((2, R.operators[-1].n_channels) + R.operators[-1].image_shape)
        np.testing.assert_allclose(
            np.sum(R.lower_forward(x) * r), np.sum(x * R.lower_adjoint(r)), rtol=1e-10
        )


def test_topdown_matches_explicit_composition():
    """R_2 z = F_1 U_{s_1} F_2 z built by hand, per sample."""
    from skdeconv._pooling3d import unpool

    operators, switches, rng = _stack((10, 9), (3, 4), 3, (2, 2, 2), n_samples=3)
    R = TopDownOperator(operators, switches, [(2, 2, 2)])
    z = rng.standard_normal((3,) + R.map_shape)
    for n in range(3):
        upper = operators[1].forward(z[n:n + 1])
        lower_maps = unpool(upper, switches[0][n:n + 1], (2, 2, 2),
                            (3,) + operators[0].map_shape)
        np.testing.assert_allclose(R.forward(z)[n], operators[0].forward(lower_maps)[0],
                                   atol=1e-12)


def test_lipschitz_bounds():
    operators, switches, rng = _stack((16, 16), (3, 5, 6), 3, (2, 2, 2), n_samples=2)
    R = TopDownOperator(operators, switches, [(2, 2, 2)] * 2)
    estimate = R.sample_lipschitz()
    power = R.sample_lipschitz(n_iter=100, margin=1.0)
    assert np.all(estimate <= R.lipschitz * (1 + 1e-12))
    assert np.all(estimate >= power)  # the margin covers the power iterations' shortfall
    for _ in range(5):
        z = rng.standard_normal((2,) + R.map_shape)
        ratio = np.sum(R.forward(z) ** 2, axis=(1, 2, 3)) / np.sum(z**2, axis=(1, 2, 3))
        assert np.all(ratio <= R.lipschitz)
        assert np.all(ratio <= power * (1 + 1e-6))


def test_subset_of_samples_gives_the_same_rows():
    operators, switches, rng = _stack((12, 10), (3, 4), 3, (2, 2, 2), n_samples=4)
    R = TopDownOperator(operators, switches, [(2, 2, 2)])
    z = rng.standard_normal((4,) + R.map_shape)
    index = np.array([3, 1])
    np.testing.assert_allclose(R.take(index).forward(z[index]), R.forward(z)[index], atol=1e-12)


def test_layer_cost_gradients_match_finite_differences():
    """Maps: lambda R'(Rz - y); filters: the gradient through the lower layers."""
    operators, switches, rng = _stack((9, 8), (2, 3), 3, (2, 2, 2), n_samples=2)
    g = np.ones((3, 1), bool)
    R = TopDownOperator(operators, switches, [(2, 2, 2)])
    Y = rng.standard_normal((2,) + R.image_shape)
    z = rng.standard_normal((2,) + R.map_shape)
    lmbda = 0.7

    def data(maps, op=R):
        return 0.5 * lmbda * np.sum((op.forward(maps) - Y) ** 2)

    gradient = lmbda * R.adjoint(R.forward(z) - Y)
    direction = rng.standard_normal(z.shape)
    eps = 1e-6
    numeric = (data(z + eps * direction) - data(z - eps * direction)) / (2 * eps)
    assert np.sum(gradient * direction) == pytest.approx(numeric, rel=1e-6)

    # filters of layer 2: perturb the (unnormalised) planes
    filters = rng.standard_normal((3, 1, 3, 3))

    def with_filters(f):
        top = ConvOperator(f, g, operators[1].image_shape)
        return TopDownOperator([operators[0], top], switches, [(2, 2, 2)])

    R_f = with_filters(filters)
    grad_f = filter_gradient(R_f, R_f.operators[-1].rfft(z), R_f.forward(z) - Y)
    move = rng.standard_normal(filters.shape)
    numeric = (
        np.sum((with_filters(filters + eps * move).forward(z) - Y) ** 2)
        - np.sum((with_filters(filters - eps * move).forward(z) - Y) ** 2)
    ) / (4 * eps)
    rows, cols = np.nonzero(g)
    assert np.sum(grad_f * move[rows, cols]) == pytest.approx(numeric, rel=1e-6)


def _problem(seed=0, n_samples=3):
    operators, switches, rng = _stack((14, 14), (3, 6), 3, (2, 2, 2), n_samples=n_samples,
                                      seed=seed)
    R = TopDownOperator(operators, switches, [(2, 2, 2)])
    Y = rng.standard_normal((n_samples,) + R.image_shape)
    return R, Y, 5 * lmbda_min(R, Y)


def test_ista_cost_decreases_and_fista_reaches_a_lower_cost():
    R, Y, lmbda = _problem()
    costs = []

    def trace(iteration, index, maps):
        assert index.size == len(Y)
        costs.append(layer_costs(R, Y, maps, lmbda))

    maps_ista, switches, _ = infer_maps(R, Y, lmbda, (2, 2, 2), 40, 0.0, "ista",
                                        callback=trace)
    costs = np.array(costs)
    assert np.all(np.diff(costs, axis=0) <= 1e-9 * costs[:-1])  # monotone per sample
    zero = layer_costs(R, Y, np.zeros_like(maps_ista), lmbda)
    assert np.all(costs[-1] < zero)
    # one value per pool block, at the returned switches
    pooled, again = max_pool(maps_ista, (2, 2, 2))
    assert np.count_nonzero(maps_ista) == np.count_nonzero(pooled)
    np.testing.assert_array_equal(again, switches)
    maps_fista, _, _ = infer_maps(R, Y, lmbda, (2, 2, 2), 40, 0.0, "fista")
    assert np.mean(layer_costs(R, Y, maps_fista, lmbda)) < np.mean(costs[-1])


def test_inference_is_independent_of_the_batch():
    R, Y, lmbda = _problem(n_samples=4)
    maps, _, n_iter = infer_maps(R, Y, lmbda, (2, 2, 2), 30, 1e-3)
    index = np.array([2, 0])
    alone, _, n_alone = infer_maps(R.take(index), Y[index], lmbda, (2, 2, 2), 30, 1e-3)
    np.testing.assert_allclose(alone, maps[index], atol=1e-12)
    np.testing.assert_array_equal(n_alone, n_iter[index])


def test_chunked_inference_equals_one_batch(monkeypatch):
    """Chunks of one image each (a tiny memory budget) give the batch's results."""
    R, Y, lmbda = _problem(n_samples=4)
    maps, switches, n_iter = infer_maps(R, Y, lmbda, (2, 2, 2), 30, 1e-3)
    monkeypatch.setattr(_parallel, "CHUNK_BYTES", 1)
    chunked, chunked_switches, chunked_iter, vectors = infer_maps_parallel(
        R, Y, lmbda, (2, 2, 2), 30, 1e-3, n_jobs=1
    )
    np.testing.assert_array_equal(chunked, maps)
    np.testing.assert_array_equal(chunked_switches, switches)
    np.testing.assert_array_equal(chunked_iter, n_iter)
    assert vectors.shape == maps.shape


def test_lmbda_min_gives_zero_maps():
    R, Y, _ = _problem()
    lmin = lmbda_min(R, Y)
    maps, _, _ = infer_maps(R, Y, 0.999 * lmin, (2, 2, 2), 20, 0.0)
    assert not maps.any()
    maps, _, _ = infer_maps(R, Y, 2 * lmin, (2, 2, 2), 20, 0.0)
    assert maps.any()


def test_filter_steps_lower_the_pixel_cost_and_keep_unit_planes():
    R, Y, lmbda = _problem()
    g = np.ones((6, 2), bool)
    filters = random_filters(6, 2, (3, 3), g, np.random.RandomState(1), np.dtype(np.float64))
    R = TopDownOperator(R.operators[:1] + [ConvOperator(filters, g, R.operators[1].image_shape)],
                        R.switches, R.pool_shapes)
    maps, _, _ = infer_maps(R, Y, lmbda, (2, 2, 2), 30, 0.0)
    before = 0.5 * np.sum((R.forward(maps) - Y) ** 2)
    R_new, new_filters, after, _ = filter_steps(R, filters, maps, Y, g, 5)
    assert after < before
    assert after == pytest.approx(0.5 * np.sum((R_new.forward(maps) - Y) ** 2))
    np.testing.assert_allclose(np.linalg.norm(new_filters.reshape(12, -1), axis=1), 1)


# ---------------------------------------------------------------- estimator
def _images(n=4, size=12, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    images = np.cumsum(np.cumsum(rng.standard_normal((n, size, size)), axis=1), axis=2)
    images -= images.mean(axis=(1, 2), keepdims=True)
    images /= images.std(axis=(1, 2), keepdims=True)
    return images.reshape(n, -1).astype(dtype)


def _net(**params):
    defaults = dict(n_filters=(4, 6), filter_shape=3, connectivity="full",
                    pool_shape=(2, 2, 2), image_shape=(12, 12), max_iter=20, n_epochs=3,
                    random_state=0)
    return AdaptiveDeconvNetwork(**{**defaults, **params})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_estimator_round_trip_and_layers(dtype):
    X = _images(dtype=dtype)
    net = _net().fit(X)
    assert net.lmbda_.shape == (2,) and np.all(net.lmbda_ > net.lmbda_min_)
    assert all(f.dtype == dtype for f in net.filters_)
    for f, g in zip(net.filters_, net.connectivity_):
        norms = np.linalg.norm(f.reshape(f.shape[0], f.shape[1], -1), axis=2)
        np.testing.assert_allclose(norms[g], 1, rtol=1e-5)
    Z = net.transform(X)
    assert Z.dtype == dtype and Z.shape == (4, net._n_features_out)
    layers = net.transform(X, layers=(1, -1))
    np.testing.assert_array_equal(layers[0], Z[:, net.layer_slices_[0]])
    np.testing.assert_array_equal(layers[1], Z[:, net.layer_slices_[1]])
    reconstruction = net.inverse_transform(Z)
    assert reconstruction.dtype == dtype
    np.testing.assert_allclose(reconstruction, net.project(X, -1), rtol=1e-4, atol=1e-5)
    errors = [np.linalg.norm(net.project(X, layer) - X) / np.linalg.norm(X) for layer in (1, 2)]
    assert max(errors) < 0.95


def _assert_same_network(a, b):
    for name in ("filters_", "cost_history_"):
        for x, y in zip(getattr(a, name), getattr(b, name)):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.lmbda_, b.lmbda_)


def test_n_jobs_does_not_change_the_results():
    """n_jobs=2 (chunks on joblib's default backend) gives the filters and maps of n_jobs=1."""
    X = _images(n=5)
    serial = _net(n_jobs=1).fit(X)
    parallel = _net(n_jobs=2).fit(X)
    _assert_same_network(serial, parallel)
    np.testing.assert_array_equal(parallel.transform(X), serial.transform(X))
    np.testing.assert_array_equal(parallel.project(X, 1), serial.project(X, 1))
    assert parallel.score(X) == serial.score(X)


def test_n_jobs_under_the_threading_backend():
    X = _images(n=5)
    serial = _net(n_jobs=1).fit(X)
    with joblib.parallel_config(backend="threading"):
        threaded = _net(n_jobs=2).fit(X)
        np.testing.assert_array_equal(threaded.transform(X), serial.transform(X))
        np.testing.assert_array_equal(threaded.project_activations(X, 2)[0],
                                      serial.project_activations(X, 2)[0])
    _assert_same_network(serial, threaded)


def test_project_activations_are_single_activations_projected():
    X = _images()
    net = _net().fit(X)
    projections, locations = net.project_activations(X[:2], layer=2, maps=[0, 3])
    assert projections.shape == (2, 2, X.shape[1]) and locations.shape == (2, 2, 3)
    Z = net.transform(X[:2], layers=(2,))[0].reshape((2,) + net.layer_map_shapes_[1])
    for n in range(2):
        for j, (k, r, c) in enumerate(locations[n]):
            assert abs(Z[n, k, r, c]) == np.abs(Z[n, k]).max()
    # layer 1 (no switches below): the filter placed at the activation, scaled by it
    projections, locations = net.project_activations(X[:1], layer=1, maps=[2])
    Z1 = net.transform(X[:1], layers=(1,))[0].reshape((1,) + net.layer_map_shapes_[0])
    single = np.zeros_like(Z1)
    k, r, c = locations[0, 0]
    single[0, k, r, c] = Z1[0, k, r, c]
    op = ConvOperator(net.filters_[0], net.connectivity_[0], net.image_shape_)
    np.testing.assert_allclose(projections[0, 0], op.forward(single).ravel(), atol=1e-12)


def test_one_dimensional_signals_and_pipeline():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20, 16))
    y = (X[:, :8].sum(axis=1) > 0).astype(int)
    net = AdaptiveDeconvNetwork(n_filters=(3, 4), filter_shape=3, connectivity="full",
                                max_iter=10, n_epochs=2, random_state=0)
    model = make_pipeline(net, LogisticRegression()).fit(X, y)
    assert model.score(X, y) > 0.5
    assert model[0].pool_shape_ == [(3, 2), (3, 2)]


def test_numeric_lmbda_is_absolute_and_per_layer():
    X = _images()
    net = _net(lmbda=(2.0, 3.0), n_epochs=1).fit(X)
    np.testing.assert_array_equal(net.lmbda_, [2.0, 3.0])


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(pool_shape=(2, 2)), "pool_shape entries must have 3 values"),
        (dict(pool_shape=((2, 2, 2),)), "gives 1 pool shapes for 2 layers"),
        (dict(max_iter=(3, 4, 5)), "max_iter=.* has 3 entries"),
        (dict(lmbda=-1.0), "lmbda"),
    ],
)
def test_invalid_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        _net(**params).fit(_images())


def test_layer_cost_decreases_over_the_epochs():
    """Layer 2's pixel-space cost after its last epoch is below its first."""
    X = _images(n=6, size=16, seed=2)
    net = _net(image_shape=(16, 16), n_epochs=6).fit(X)
    history = net.cost_history_[1]
    assert history[-1] < history[0]


@pytest.mark.slow
def test_main_job_quick(tmp_path):
    pytest.importorskip("matplotlib")
    import json

    from skdeconv.__main__ import main

    assert main(["--model", "adaptive", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "adaptive" and len(summary["layers"]) == 3
    assert (tmp_path / "features_layer3.png").is_file()
