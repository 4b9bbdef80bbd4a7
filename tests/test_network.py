"""Tests of DeconvNetworkTransformer and of the main job (python -m skdeconv)."""

import json
from itertools import combinations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.signal import convolve
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdeconv import ConvSparseCoder, DeconvNetworkTransformer

IMAGE_SHAPE = (10, 11)
N_CHANNELS = 2


def _images(n_samples=5, seed=0, dtype=np.float64):
    """Smooth random images (rows of N_CHANNELS x IMAGE_SHAPE), not all tiny."""
    rng = np.random.RandomState(seed)
    noise = rng.standard_normal((n_samples, N_CHANNELS) + IMAGE_SHAPE)
    smooth = noise + np.roll(noise, 1, axis=-1) + np.roll(noise, 1, axis=-2)
    return smooth.reshape(n_samples, -1).astype(dtype)


def _small_network(**params):
    defaults = dict(
        n_filters=(3, 6, 5), filter_shape=3, image_shape=IMAGE_SHAPE, lmbda=5.0,
        max_iter=30, tol=1e-3, n_epochs=2, random_state=0,
    )
    return DeconvNetworkTransformer(**{**defaults, **params})


@pytest.fixture(scope="module")
def network():
    """A fitted 3-layer network on 2-channel images (3 -> 6 -> 5 maps)."""
    return _small_network().fit(_images())


def _random_maps(net, layer, n_samples=3, seed=1):
    shape = net.pipeline_[layer - 1].feature_map_shape_
    return np.random.RandomState(seed).standard_normal((n_samples,) + shape)


# ------------------------------------------------------------ projections
def _reference_inverse(coder, maps):
    """s * sum_k g[k, c] conv_valid(z_k, f_kc), by scipy.signal.convolve."""
    g, f = coder.connectivity_, coder.filters_
    out = np.zeros((len(maps), coder.n_channels_) + coder.image_shape_)
    for n, k, c in np.ndindex(len(maps), *g.shape):
        if g[k, c]:
            out[n, c] += convolve(maps[n, k], f[k, c], mode="valid")
    return coder.input_scale_ * out


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_project_equals_chained_inverse_transforms(network, layer):
    maps = _random_maps(network, layer)
    expected = maps
    for coder in reversed([step for _, step in network.pipeline_.steps[:layer]]):
        expected = _reference_inverse(coder, expected)
        expected = expected.reshape((len(maps), -1) + coder.image_shape_)
    projected = network.project(maps.reshape(len(maps), -1), layer)
    assert projected.shape == (len(maps), network.n_features_in_)
    assert_allclose(projected, expected.reshape(len(maps), -1), atol=1e-10)


def test_inverse_transform_is_projection_of_the_top(network):
    maps = _random_maps(network, 3).reshape(3, -1)
    assert_allclose(network.inverse_transform(maps), network.project(maps, 3))
    assert_allclose(network.project(maps, -1), network.project(maps, 3))


def test_project_filters_layer1_are_scaled_filters(network):
    coder = network.pipeline_[0]
    assert_allclose(network.project_filters(1), coder.input_scale_ * coder.filters_)


def test_project_filters_layer2_is_full_convolution(network):
    first, second = network.pipeline_[0], network.pipeline_[1]
    f1, f2 = first.filters_, second.filters_
    expected = np.zeros((6, N_CHANNELS, 5, 5))
    for k, c, i in np.ndindex(6, 3, N_CHANNELS):
        expected[k, i] += convolve(f2[k, c], f1[c, i], mode="full")
    expected *= first.input_scale_ * second.input_scale_
    assert_allclose(network.project_filters(2), expected, atol=1e-12)
    assert network.project_filters(-1).shape == (5, N_CHANNELS, 7, 7)


@pytest.mark.parametrize("layer, position", [(1, (4, 6)), (2, (6, 7)), (3, (9, 10))])
def test_project_of_a_unit_impulse_is_the_placed_filter(network, layer, position):
    """A map that is 1 at ``position`` projects to the filter starting at
    ``position - (receptive_field - 1)`` (inside the image here)."""
    filters = network.project_filters(layer)
    field = filters.shape[2:]
    k = 1
    maps = np.zeros((1,) + network.pipeline_[layer - 1].feature_map_shape_)
    maps[(0, k) + position] = 1.0
    expected = np.zeros((N_CHANNELS,) + IMAGE_SHAPE)
    start = [p - (r - 1) for p, r in zip(position, field)]
    window = tuple(slice(s, s + r) for s, r in zip(start, field))
    expected[(slice(None),) + window] = filters[k]
    projected = network.project(maps.reshape(1, -1), layer)[0]
    assert_allclose(projected, expected.ravel(), atol=1e-12)


def test_transform_layers(network):
    X = _images(3, seed=2)
    maps = network.transform(X, layers=(1, -1, 2))
    assert isinstance(maps, list)
    assert [m.shape[1] for m in maps] == [
        np.prod(network.pipeline_[i].feature_map_shape_) for i in (0, 2, 1)
    ]
    assert_allclose(maps[1], network.transform(X))
    assert_allclose(maps[0], network.pipeline_[0].transform(X))
    assert_allclose(maps[2], network.pipeline_[1].transform(maps[0]))


def test_score_is_minus_reconstruction_mse(network):
    X = _images(3, seed=3)
    reconstruction = network.inverse_transform(network.transform(X))
    assert network.score(X) == pytest.approx(-np.mean((X - reconstruction) ** 2))


@pytest.mark.parametrize("layer", [0, 4, -4, 1.0, True, "1"])
def test_bad_layer_numbers(network, layer):
    with pytest.raises(ValueError, match="layer number in 1..3"):
        network.project_filters(layer)
    with pytest.raises(ValueError, match="layer"):
        network.transform(_images(1), layers=(layer,))


@pytest.mark.parametrize("layers", [2, (), "12"])
def test_layers_must_be_a_sequence(network, layers):
    with pytest.raises(ValueError, match="layers must be a non-empty sequence"):
        network.transform(_images(1), layers=layers)


@pytest.mark.parametrize("layers", [None, (1, -1, 2)])
def test_fit_transform_is_fit_then_transform_with_each_layer_inferred_once(
    monkeypatch, layers
):
    """The filters of fit, bit for bit, and the maps of fit(X).transform(X)
    to within tol: each layer's maps are inferred once, by its
    fit_transform (warm started from its training maps), never again by
    transform."""
    X = _images()
    params = dict(max_iter=20000, tol=1e-8)
    fitted = _small_network(**params).fit(X)
    expected = fitted.transform(X, layers=layers)
    monkeypatch.setattr(ConvSparseCoder, "transform", lambda *args: pytest.fail("inferred"))
    network = _small_network(**params)
    maps = network.fit_transform(X, layers=layers)
    for (_, got), (_, want) in zip(network.pipeline_.steps, fitted.pipeline_.steps):
        assert_array_equal(got.filters_, want.filters_)
    for got, want in zip(maps if layers else [maps], expected if layers else [expected]):
        assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("layers", [(4,), (), 2])
def test_fit_transform_checks_layers_before_training(monkeypatch, layers):
    monkeypatch.setattr(ConvSparseCoder, "fit", lambda *args: pytest.fail("trained"))
    with pytest.raises(ValueError, match="layer"):
        _small_network().fit_transform(_images(), layers=layers)


def test_transform_layers_ignores_set_output(network):
    pd = pytest.importorskip("pandas")
    net = clone(network).set_output(transform="pandas").fit(_images())
    X = _images(2, seed=4)
    assert isinstance(net.transform(X), pd.DataFrame)
    assert all(isinstance(m, np.ndarray) for m in net.transform(X, layers=(1, 2)))


# ------------------------------------------------------------ connectivity
def test_default_connectivity_counts():
    """The paper's 9 -> 45 -> 150 network, on tiny 1-D signals."""
    X = np.random.RandomState(0).standard_normal((3, 6))
    net = DeconvNetworkTransformer(max_iter=3, n_epochs=1, random_state=0).fit(X)
    first, second, third = (step for _, step in net.pipeline_.steps)
    assert first.connectivity_.shape == (9, 1) and first.connectivity_.all()
    g2 = second.connectivity_
    assert g2.shape == (45, 9)
    assert_array_equal(g2[:9], np.eye(9, dtype=bool))
    pairs = [tuple(np.flatnonzero(row)) for row in g2[9:]]
    assert sorted(pairs) == list(combinations(range(9), 2))
    g3 = third.connectivity_
    assert g3.shape == (150, 45)
    assert_array_equal(g3.sum(axis=1), 2)
    assert net.feature_map_shape_ == (150, 6 + 3 * 6)
    assert net.project_filters(3).shape == (150, 1, 19)


def test_random_pairs_depend_on_random_state():
    X = _images(2)
    nets = [
        _small_network(random_state=seed, n_epochs=1, max_iter=2).fit(X)
        for seed in (0, 0, 1)
    ]
    g = [net.pipeline_[2].connectivity_ for net in nets]
    assert_array_equal(g[0], g[1])
    assert not np.array_equal(g[0], g[2])


# ------------------------------------------------------------ per-layer parameters
def test_per_layer_parameters_are_broadcast_and_distributed():
    X = _images(2)
    net = DeconvNetworkTransformer(
        n_filters=(3, 4), filter_shape=((3, 2), 4), connectivity="full",
        image_shape=IMAGE_SHAPE, lmbda=(2.0, 3.0), p=1.0, max_iter=(4, 5), tol=0.0,
        n_epochs=(1, 2), random_state=0,
    ).fit(X)
    first, second = (step for _, step in net.pipeline_.steps)
    assert (first.lmbda, second.lmbda) == (2.0, 3.0)
    assert (first.max_iter, second.max_iter) == (4, 5)
    assert (first.n_epochs, second.n_epochs) == (1, 2)
    assert first.filters_.shape == (3, N_CHANNELS, 3, 2)
    assert second.filters_.shape == (4, 3, 4, 4)
    assert second.image_shape == first.feature_map_shape_[1:] == (12, 12)
    assert first.scale_input and second.scale_input
    assert first.random_state != second.random_state
    assert net.feature_map_shape_ == (4, 15, 15)
    assert net.n_iter_ == 3 and isinstance(net.n_iter_, int)


def test_two_tuple_filter_shape_is_per_layer():
    net = _small_network(n_filters=(2, 3), connectivity="full", filter_shape=(2, 4),
                         n_epochs=1, max_iter=2).fit(_images(2))
    assert net.project_filters(1).shape[2:] == (2, 2)
    assert net.project_filters(2).shape[2:] == (5, 5)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(lmbda=(1.0, 2.0, 3.0)),
         r"lmbda=\(1.0, 2.0, 3.0\) has 3 entries .* 2 layers"),
        (dict(filter_shape=(3, 3, 3)), "filter_shape=.* has 3 entries .* 2 layers"),
        (dict(connectivity=("full", "singles_and_pairs", "random_pairs")),
         "connectivity=.* has 3 entries .* 2 layers"),
        (dict(lmbda=(1.0, -1.0)), "'lmbda' parameter of DeconvNetworkTransformer "
         r"\(layer 2\)"),
        (dict(n_filters=(3, 0)), r"'n_filters' parameter of .*\(layer 2\)"),
        (dict(solver=("fista", "ista")), r"'solver' parameter of .*\(layer 2\)"),
        (dict(n_filters=()), "at least one layer"),
    ],
)
def test_per_layer_parameter_errors(params, match):
    net = DeconvNetworkTransformer(
        **{"n_filters": (3, 2), "connectivity": "full", **params}
    )
    with pytest.raises(ValueError, match=match):
        net.fit(_images(2))


def test_user_objects_are_not_modified():
    g1 = np.ones((3, N_CHANNELS), dtype=int)
    connectivity = [g1, "random_pairs"]
    X = _images(3)
    X_before = X.copy()
    net = _small_network(n_filters=(3, 4), connectivity=connectivity).fit(X)
    assert net.connectivity is connectivity and connectivity[0] is g1
    assert_array_equal(g1, 1) and g1.dtype == int
    assert_array_equal(X, X_before)
    assert net.pipeline_[0].connectivity is not g1
    assert_array_equal(net.pipeline_[0].connectivity_, True)


def test_float32_is_preserved(network):
    X = _images(3, dtype=np.float32)
    net = clone(network).fit(X)
    maps = net.transform(X)
    assert maps.dtype == np.float32
    assert all(m.dtype == np.float32 for m in net.transform(X, layers=(1, 2)))
    assert net.inverse_transform(maps).dtype == np.float32
    assert net.project_filters(3).dtype == np.float32


def test_in_a_pipeline_with_a_classifier():
    digits = load_digits()
    X, y = digits.data[:300] / 16.0, digits.target[:300]
    model = make_pipeline(
        DeconvNetworkTransformer(
            n_filters=(4, 6), filter_shape=3, connectivity="full", image_shape=(8, 8),
            lmbda=10.0, max_iter=30, tol=1e-3, n_epochs=2, random_state=0,
        ),
        LogisticRegression(max_iter=500),
    )
    model.fit(X[:200], y[:200])
    assert model.score(X[200:], y[200:]) > 0.7


# ------------------------------------------------------------ scikit-learn checks
@parametrize_with_checks(
    [
        DeconvNetworkTransformer(
            n_filters=(3, 2), filter_shape=2, connectivity=("full", "full"),
            tol=1e-3, n_epochs=2,
        )
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------ the main job
def test_main_quick_run_writes_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from skdeconv.__main__ import main

    assert main(["--quick", "--out", str(tmp_path), "--dataset", "city"]) == 0
    names = {path.name for path in tmp_path.iterdir()}
    assert names >= {
        "filters_layer1.png", "filters_layer2.png", "filters_layer3.png",
        "reconstructions.png", "feature_maps_layer1.png", "feature_maps_layer2.png",
        "cost_history.png", "summary.json", "summary.txt",
    }
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dataset"] == "city" and summary["n_images"] == 2
    assert set(summary["layers"]) == {"layer1", "layer2", "layer3"}
    errors = [layer["relative_error"] for layer in summary["layers"].values()]
    assert all(0 < error < 1.5 for error in errors)
    assert "layer 3/3" in capsys.readouterr().out
