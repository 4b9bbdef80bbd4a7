"""Tests of skdeconv.plotting: figure structure and displayed data, not pixels."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

matplotlib = pytest.importorskip(
    "matplotlib", reason="matplotlib (the 'plot' extra) is not installed"
)
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skdeconv import ConvSparseCoder  # noqa: E402
from skdeconv.plotting import (  # noqa: E402
    plot_cost_history,
    plot_feature_maps,
    plot_filters,
    plot_reconstructions,
)

rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class _Coder(BaseEstimator):
    """Stand-in for a fitted ConvSparseCoder (plotting only duck-types it)."""

    def __init__(self, filters=None, cost_history=None):
        self.filters = filters
        self.cost_history = cost_history

    def fit(self):
        self.filters_ = self.filters
        self.cost_history_ = self.cost_history
        return self


class _Network(BaseEstimator):
    """Stand-in for a fitted DeconvNetworkTransformer."""

    def __init__(self, layers=()):
        self.layers = layers

    def fit(self):
        self.pipeline_ = list(self.layers)
        return self

    def project_filters(self, layer):
        self.requested_layer_ = layer
        return self.pipeline_[layer if layer < 0 else layer - 1].filters_


def _titles(fig):
    return [ax.get_title() for ax in fig.axes]


def _image(ax):
    return np.asarray(ax.images[0].get_array())


def _geometry(ax):
    return ax.get_subplotspec().get_geometry()[:2]


# --------------------------------------------------------------- plot_filters


def test_plot_filters_gray_grid():
    filters = rng.normal(size=(5, 1, 7, 6))
    fig = plot_filters(filters, title="layer 1")
    assert len(fig.axes) == 5  # the sixth cell of the 2 x 3 grid is removed
    assert _geometry(fig.axes[0]) == (2, 3)
    assert _titles(fig) == ["0", "1", "2", "3", "4"]
    assert fig.get_suptitle() == "layer 1"
    for ax, f in zip(fig.axes, filters):
        np.testing.assert_array_equal(_image(ax), f[0])
        assert ax.images[0].get_clim() == (f.min(), f.max())


def test_plot_filters_normalize_all_shares_the_range():
    filters = rng.normal(size=(4, 1, 3, 3))
    fig = plot_filters(filters, normalize="all")
    for ax in fig.axes:
        assert ax.images[0].get_clim() == (filters.min(), filters.max())


def test_plot_filters_rgb_rescaled_per_tile():
    filters = rng.normal(size=(4, 3, 5, 5))
    fig = plot_filters(filters)
    assert len(fig.axes) == 4
    for ax, f in zip(fig.axes, filters):
        expected = (np.moveaxis(f, 0, -1) - f.min()) / (f.max() - f.min())
        np.testing.assert_allclose(_image(ax), expected, rtol=1e-12)


def test_plot_filters_other_channel_counts_one_tile_per_plane():
    filters = rng.normal(size=(3, 2, 4, 4))
    filters[1, 0] = 0.0  # a plane switched off by the connectivity
    fig = plot_filters(filters)
    assert len(fig.axes) == 6
    assert _geometry(fig.axes[0]) == (3, 2)  # one row per filter
    assert _titles(fig) == ["0, c0", "0, c1", "1, c0", "1, c1", "2, c0", "2, c1"]
    np.testing.assert_array_equal(_image(fig.axes[3]), filters[1, 1])
    np.testing.assert_array_equal(_image(fig.axes[2]), np.zeros((4, 4)))


def test_plot_filters_one_dimensional_as_lines():
    filters = rng.normal(size=(4, 2, 9))
    fig = plot_filters(filters, ncols=4)
    assert len(fig.axes) == 4
    assert _geometry(fig.axes[0]) == (1, 4)
    for ax, f in zip(fig.axes, filters):
        assert not ax.images
        assert len(ax.lines) == 2
        for line, channel in zip(ax.lines, f):
            np.testing.assert_array_equal(line.get_ydata(), channel)


def test_plot_filters_draws_into_given_figure():
    fig = plt.figure()
    assert plot_filters(rng.normal(size=(2, 1, 3, 3)), fig=fig) is fig
    assert len(fig.axes) == 2


def test_plot_filters_uses_coder_filters():
    filters = rng.normal(size=(2, 1, 3, 3))
    fig = plot_filters(_Coder(filters).fit())
    np.testing.assert_array_equal(_image(fig.axes[1]), filters[1, 0])


def test_plot_filters_uses_network_projection():
    low, top = rng.normal(size=(2, 1, 3, 3)), rng.normal(size=(3, 1, 5, 5))
    net = _Network([_Coder(low).fit(), _Coder(top).fit()]).fit()
    fig = plot_filters(net, layer=1)
    assert net.requested_layer_ == 1
    assert len(fig.axes) == 2
    fig = plot_filters(net)
    assert net.requested_layer_ == -1
    assert _image(fig.axes[0]).shape == (5, 5)


def test_plot_filters_errors():
    with pytest.raises(NotFittedError):
        plot_filters(_Coder(rng.normal(size=(2, 1, 3, 3))))
    with pytest.raises(ValueError, match="layer applies only"):
        plot_filters(rng.normal(size=(2, 1, 3, 3)), layer=1)
    with pytest.raises(ValueError, match=r"3 or 4 dimensions; got shape \(2, 3\)"):
        plot_filters(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="'normalize' parameter"):
        plot_filters(np.zeros((2, 1, 3, 3)), normalize="none")


# ---------------------------------------------------------- plot_feature_maps


@pytest.mark.parametrize("layout", ["flat", "row", "shaped"])
def test_plot_feature_maps_layouts(layout):
    maps = rng.normal(size=(6, 5, 4))
    given = {
        "flat": maps.ravel(),
        "row": maps.reshape(1, -1),
        "shaped": maps,
    }[layout]
    fig = plot_feature_maps(given, map_shape=(5, 4), max_maps=4)
    assert _titles(fig) == ["map 0", "map 1", "map 2", "map 3"]
    for ax, z in zip(fig.axes, maps):
        np.testing.assert_array_equal(_image(ax), z)


def test_plot_feature_maps_normalize_all_and_lines():
    maps = rng.normal(size=(3, 10))
    fig = plot_feature_maps(maps.ravel(), map_shape=10, normalize="all", ncols=1)
    assert _geometry(fig.axes[0]) == (3, 1)
    margin = 0.05 * (maps.max() - maps.min())
    for ax, z in zip(fig.axes, maps):
        np.testing.assert_array_equal(ax.lines[0].get_ydata(), z)
        np.testing.assert_allclose(
            ax.get_ylim(), (maps.min() - margin, maps.max() + margin)
        )


def test_plot_feature_maps_wrong_size():
    with pytest.raises(ValueError, match=r"n_maps \* 12 values.*got shape \(2, 13\)"):
        plot_feature_maps(np.zeros((2, 13)), map_shape=(3, 4))


# ------------------------------------------------------- plot_reconstructions


def _snr(x, reference):
    return 20 * np.log10(np.linalg.norm(reference) / np.linalg.norm(x - reference))


def test_plot_reconstructions_titles_and_images():
    image = rng.normal(size=(6, 7))
    recs = [image + 0.1 * rng.normal(size=image.shape) for _ in range(2)]
    fig = plot_reconstructions(image, recs, labels=["layer 1", "layer 2"])
    assert len(fig.axes) == 3
    assert _geometry(fig.axes[0]) == (1, 3)
    assert _titles(fig) == [
        "input",
        f"layer 1\nSNR {_snr(recs[0], image):.1f} dB",
        f"layer 2\nSNR {_snr(recs[1], image):.1f} dB",
    ]
    for ax, x in zip(fig.axes, [image, *recs]):
        np.testing.assert_array_equal(_image(ax), x)
        assert ax.images[0].get_clim() == (image.min(), image.max())


def test_plot_reconstructions_reference_and_relative_error():
    clean = rng.normal(size=20)
    noisy, rec = clean + 0.5, clean + 0.1
    fig = plot_reconstructions(
        noisy, rec, reference=clean, metric="relative_error"
    )
    norm = np.linalg.norm(clean)
    assert _titles(fig) == [
        f"input\nrel. error {np.linalg.norm(noisy - clean) / norm:.3f}",
        f"reconstruction 1\nrel. error {np.linalg.norm(rec - clean) / norm:.3f}",
    ]
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), rec)


def test_plot_reconstructions_rgb_rows():
    image = rng.uniform(size=(3, 4, 5))  # channels first, flattened as a row
    fig = plot_reconstructions(
        image.ravel(), np.stack([image.ravel()] * 2), image_shape=(4, 5)
    )
    assert len(fig.axes) == 3
    expected = (np.moveaxis(image, 0, -1) - image.min()) / np.ptp(image)
    for ax in fig.axes:
        np.testing.assert_allclose(_image(ax), expected, rtol=1e-12)
    assert fig.axes[1].get_title() == "reconstruction 1\nSNR inf dB"


def test_plot_reconstructions_errors():
    image = np.ones((4, 4))
    with pytest.raises(ValueError, match="labels must have one entry per"):
        plot_reconstructions(image, [image, image], labels=["a"])
    with pytest.raises(ValueError, match="reconstructions must hold arrays of"):
        plot_reconstructions(image, np.ones(15))
    with pytest.raises(ValueError, match="not a multiple of prod"):
        plot_reconstructions(image.ravel(), image, image_shape=(3, 3))


# ---------------------------------------------------------- plot_cost_history


def test_plot_cost_history_array():
    fig = plot_cost_history(np.array([5.0, 3.0, 2.5]), title="layer 1")
    (ax,) = fig.axes
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(line.get_ydata(), [5.0, 3.0, 2.5])
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "epoch",
        "cost",
        "layer 1",
    )
    assert ax.get_legend() is None


def test_plot_cost_history_estimators():
    coder = _Coder(cost_history=np.array([4.0, 2.0])).fit()
    ax = plt.figure().add_subplot()
    fig = plot_cost_history(coder, ax=ax, yscale="log")
    assert fig is ax.figure and ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [4.0, 2.0])

    net = _Network([coder, _Coder(cost_history=np.array([9.0])).fit()]).fit()
    ax = plot_cost_history(net).axes[0]
    assert [line.get_label() for line in ax.lines] == ["layer 1", "layer 2"]
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [9.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "layer 1",
        "layer 2",
    ]


def test_plot_cost_history_errors():
    with pytest.raises(NotFittedError):
        plot_cost_history(_Coder())
    with pytest.raises(ValueError, match=r"must be 1-D.*got shape \(2, 2\)"):
        plot_cost_history(np.ones((2, 2)))


def test_plots_of_a_fitted_coder():
    X = rng.normal(size=(3, 2 * 6 * 6))
    coder = ConvSparseCoder(
        n_filters=3, filter_shape=3, image_shape=(6, 6), n_epochs=2, random_state=0
    ).fit(X)
    fig = plot_filters(coder)
    assert len(fig.axes) == 6  # 2 channels: one tile per (filter, channel)
    np.testing.assert_array_equal(_image(fig.axes[1]), coder.filters_[0, 1])
    ax = plot_cost_history(coder).axes[0]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), coder.cost_history_)
    fig = plot_feature_maps(
        coder.transform(X[:1]), map_shape=coder.feature_map_shape_[1:]
    )
    assert len(fig.axes) == 3 and _image(fig.axes[0]).shape == (8, 8)


# ---------------------------------------------------------- optional import


@pytest.mark.parametrize(
    "plot, args",
    [
        (plot_filters, (np.zeros((1, 1, 2, 2)),)),
        (plot_feature_maps, (np.zeros(4),)),
        (plot_reconstructions, (np.zeros(4), np.zeros(4))),
        (plot_cost_history, (np.zeros(3),)),
    ],
)
def test_missing_matplotlib_message(monkeypatch, plot, args):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    kwargs = {"map_shape": (2, 2)} if plot is plot_feature_maps else {}
    message = f"{plot.__name__} requires matplotlib: pip install 'skdeconv\\[plot\\]'"
    with pytest.raises(ImportError, match=message):
        plot(*args, **kwargs)


def test_import_does_not_load_matplotlib():
    code = "import sys, skdeconv.plotting; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_feature_maps_zero_is_mid_grey_in_every_tile():
    """Sparse signed maps: each image's colour range is symmetric about zero."""
    maps = np.zeros((3, 5, 4))
    maps[0, 1, 1], maps[1, 2, 3], maps[2, 0, 0], maps[2, 4, 3] = 2.0, -0.5, 1.0, -3.0
    fig = plot_feature_maps(maps, map_shape=(5, 4))
    limits = [ax.images[0].get_clim() for ax in fig.axes[:3]]
    assert limits == [(-2.0, 2.0), (-0.5, 0.5), (-3.0, 3.0)]
    fig = plot_feature_maps(maps, map_shape=(5, 4), normalize="all")
    assert {ax.images[0].get_clim() for ax in fig.axes[:3]} == {(-3.0, 3.0)}
