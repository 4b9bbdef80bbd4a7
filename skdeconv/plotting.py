"""Figures for filters, feature maps, reconstructions and training curves.

matplotlib is an optional dependency (``pip install 'skdeconv[plot]'``); it is
imported only when one of these functions is called. Every function returns the
:class:`matplotlib.figure.Figure` it drew on.
"""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)

from ._plot_helpers import (
    COMMON_CONSTRAINTS,
    as_panel,
    cost_histories,
    draw_grid,
    filters_of,
    near_square_ncols,
    pyplot,
    quality_line,
    tile_limits,
)

__all__ = [
    "plot_cost_history",
    "plot_feature_maps",
    "plot_filters",
    "plot_reconstructions",
]


@validate_params(
    {"filters": "no_validation", "layer": [Integral, None], **COMMON_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def plot_filters(
    filters,
    *,
    layer=None,
    ncols=None,
    title=None,
    normalize="each",
    cmap="gray",
    fig=None,
):
    """Show a bank of filters as a grid of tiles.

    Every filter (or filter plane) is one tile, drawn as an image for 2-D
    filters and as a line plot for 1-D ones; see ``filters`` for the layouts.

    Parameters
    ----------
    filters : array-like of shape (n_filters, n_channels, *filter_shape) or \
            fitted estimator
        The filters, with one or two spatial axes. A fitted estimator is
        accepted too: one with a ``project_filters`` method (a
        :class:`~skdeconv.DeconvNetworkTransformer`) shows
        ``project_filters(layer)``, the filters of that layer seen in pixel
        space; otherwise (a :class:`~skdeconv.ConvSparseCoder`) its
        ``filters_`` are shown.

        How a filter is drawn depends on its shape:

        - 1-D filters: one line plot per filter, one line per channel;
        - 2-D filters with 1 channel: one gray-level image per filter;
        - 2-D filters with 3 channels: one RGB image per filter, its three
          channels rescaled together to [0, 1];
        - 2-D filters with any other number of channels (the raw filters of
          an upper layer, whose channels are the maps below): one tile per
          (filter, channel) plane, filter-major, so that by default each row
          of the grid is one filter. Planes switched off by the connectivity
          are all zero. ``project_filters`` gives the pixel-space view of
          such filters instead.

    layer : int, default=None
        Layer whose projected filters are shown, numbered from 1 (nearest
        the pixels); -1 is the top. Only for an estimator with
        ``project_filters``; ``None`` means the top layer.

    ncols : int, default=None
        Number of grid columns. ``None`` gives ``n_channels`` columns when
        each channel has its own tile and a near-square grid otherwise.

    title : str, default=None
        Title of the whole figure.

    normalize : {"each", "all"}, default="each"
        ``"each"`` stretches every tile over its own value range, which shows
        the shape of every filter; ``"all"`` uses the range of all filters
        together, which shows their relative strength.

    cmap : str or Colormap, default="gray"
        Colormap of single-channel tiles.

    fig : Figure, default=None
        An empty figure to draw into; ``None`` creates one.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with one axes per tile.

    See Also
    --------
    plot_feature_maps : The maps of one sample.
    plot_reconstructions : An input beside its reconstructions.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skdeconv.plotting import plot_filters
    >>> filters = np.random.default_rng(0).normal(size=(9, 1, 7, 7))
    >>> fig = plot_filters(filters, title="random filters")
    >>> len(fig.axes)
    9
    >>> fig.axes[0].images[0].get_array().shape
    (7, 7)
    """
    plt = pyplot("plot_filters")
    filters = np.asarray(filters_of(filters, layer), dtype=float)
    if filters.ndim not in (3, 4):
        raise ValueError(
            "filters must have shape (n_filters, n_channels, *filter_shape) "
            "with 1 or 2 spatial axes, i.e. 3 or 4 dimensions; got shape "
            f"{filters.shape}."
        )
    n_filters, n_channels, *spatial = filters.shape
    if len(spatial) == 2 and n_channels not in (1, 3):
        tiles = list(filters.reshape(-1, *spatial))
        titles = [f"{k}, c{c}" for k in range(n_filters) for c in range(n_channels)]
        default_ncols = n_channels
    else:
        tiles = [as_panel(f, n_channels, spatial) for f in filters]
        titles = [str(k) for k in range(n_filters)]
        default_ncols = near_square_ncols(n_filters)
    return draw_grid(
        plt,
        tiles,
        titles,
        tile_limits(tiles, normalize),
        lines=len(spatial) == 1,
        ncols=ncols or default_ncols,
        cmap=cmap,
        title=title,
        fig=fig,
    )


@validate_params(
    {
        "maps": ["array-like"],
        "map_shape": [tuple, Integral],
        "max_maps": [Interval(Integral, 1, None, closed="left")],
        **COMMON_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def plot_feature_maps(
    maps,
    *,
    map_shape,
    max_maps=16,
    ncols=None,
    title=None,
    normalize="each",
    cmap="gray",
    fig=None,
):
    """Show the feature maps of one sample.

    Every map is one tile: an image for 2-D maps, a line plot for 1-D ones.
    Sparse maps are mostly zero: the tiles show where each filter is used.

    Parameters
    ----------
    maps : array-like of shape (n_maps * prod(map_shape),) or \
            (n_maps, *map_shape)
        The maps of ONE sample: a row of ``transform``'s output (also
        accepted with shape ``(1, n_maps * prod(map_shape))``) or the maps
        already shaped.

    map_shape : int or tuple of int
        Spatial shape of one map, e.g. ``coder.feature_map_shape_[1:]``.
        1-D maps are drawn as line plots, 2-D maps as images.

    max_maps : int, default=16
        Show only the first ``max_maps`` maps.

    ncols : int, default=None
        Number of grid columns; ``None`` gives a near-square grid.

    title : str, default=None
        Title of the whole figure.

    normalize : {"each", "all"}, default="each"
        ``"each"`` scales every map by its own range; ``"all"`` uses one
        range for all shown maps, which shows which maps are active.  Images
        of maps are shown on a range symmetric about zero (the largest
        magnitude), so that zero, most of a sparse map, is the same mid-grey
        in every tile.

    cmap : str or Colormap, default="gray"
        Colormap of the images.

    fig : Figure, default=None
        An empty figure to draw into; ``None`` creates one.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with one axes per shown map.

    See Also
    --------
    plot_filters : The filters that synthesise the input from these maps.
    skdeconv.preprocessing.rows_to_images : Rows of maps as an array of maps.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skdeconv.plotting import plot_feature_maps
    >>> row = np.zeros(9 * 12 * 12)  # one sample: 9 maps of 12x12, flattened
    >>> fig = plot_feature_maps(row, map_shape=(12, 12), max_maps=4)
    >>> [ax.get_title() for ax in fig.axes]
    ['map 0', 'map 1', 'map 2', 'map 3']
    """
    plt = pyplot("plot_feature_maps")
    map_shape = tuple(np.atleast_1d(map_shape).tolist())
    maps = np.asarray(maps, dtype=float)
    map_size = int(np.prod(map_shape))
    one_row = maps.ndim == 1 or (maps.ndim == 2 and maps.shape[0] == 1)
    if maps.shape[1:] != map_shape and not (one_row and maps.size % map_size == 0):
        raise ValueError(
            f"maps must be one sample's row of n_maps * {map_size} values or an "
            f"array of shape (n_maps, *{map_shape}) for map_shape={map_shape}; "
            f"got shape {maps.shape}."
        )
    tiles = list(maps.reshape(-1, *map_shape)[:max_maps])
    lines = len(map_shape) == 1
    limits = tile_limits(tiles, normalize)
    if not lines:  # signed sparse codes: zero is mid-grey in every tile
        limits = [(-m, m) for m in (max(abs(low), abs(high)) for low, high in limits)]
    return draw_grid(
        plt,
        tiles,
        [f"map {k}" for k in range(len(tiles))],
        limits,
        lines=lines,
        ncols=ncols or near_square_ncols(len(tiles)),
        cmap=cmap,
        title=title,
        fig=fig,
    )


@validate_params(
    {
        "image": ["array-like"],
        "reconstructions": ["array-like"],
        "labels": ["array-like", None],
        "image_shape": [tuple, Integral, None],
        "reference": ["array-like", None],
        "metric": [StrOptions({"snr", "relative_error"})],
        "cmap": "no_validation",
        "fig": [HasMethods(["subplots", "suptitle"]), None],
    },
    prefer_skip_nested_validation=True,
)
def plot_reconstructions(
    image,
    reconstructions,
    *,
    labels=None,
    image_shape=None,
    reference=None,
    metric="snr",
    cmap="gray",
    fig=None,
):
    """Show an input beside its reconstructions, with their quality.

    One panel for the input, then one per reconstruction, titled with its
    signal-to-noise ratio or relative error against ``reference``.

    Parameters
    ----------
    image : array-like
        One sample: a flattened row of ``n_channels * prod(image_shape)``
        values (channels first, the package's convention) or, when
        ``image_shape`` is None, an array of the image's spatial shape,
        ``(height, width)`` or ``(length,)``.

    reconstructions : array-like of shape (n_reconstructions, image.size)
        Reconstructions of ``image``, e.g. ``inverse_transform`` of each
        layer's maps, one per row. A single reconstruction may be given with
        the shape of ``image``.

    labels : list of str, default=None
        One title per reconstruction; ``None`` numbers them.

    image_shape : int or tuple of int, default=None
        Spatial shape of the sample; the number of channels is
        ``image.size // prod(image_shape)``. ``None`` means ``image.shape``
        (one channel). 2-D samples with 3 channels are drawn in RGB, with
        other channel counts as their channel mean; 1-D samples as line
        plots with one line per channel.

    reference : array-like, default=None
        What the reconstructions should be compared with, of the size of
        ``image``: e.g. the clean image when ``image`` is a noisy one, in
        which case the input's own quality is shown as well. ``None`` means
        ``image``.

    metric : {"snr", "relative_error"}, default="snr"
        Quality written in each title: the signal-to-noise ratio
        ``20 log10(||reference|| / ||x - reference||)`` in dB (higher is
        better) or the relative error ``||x - reference|| / ||reference||``
        (lower is better).

    cmap : str or Colormap, default="gray"
        Colormap of single-channel images. All panels share the value range
        of ``image`` so that they are displayed alike.

    fig : Figure, default=None
        An empty figure to draw into; ``None`` creates one.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with one axes for the input and one per reconstruction.

    See Also
    --------
    plot_feature_maps : The maps the reconstructions are made from.
    plot_cost_history : The training objective per epoch.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skdeconv.plotting import plot_reconstructions
    >>> image = np.linspace(0, 1, 64).reshape(8, 8)
    >>> fig = plot_reconstructions(image, [0.9 * image], labels=["layer 1"])
    >>> print(fig.axes[1].get_title())
    layer 1
    SNR 20.0 dB
    """
    plt = pyplot("plot_reconstructions")
    image = np.asarray(image, dtype=float)
    show_input_quality = reference is not None
    reference = image if reference is None else np.asarray(reference, dtype=float)
    reconstructions = np.asarray(reconstructions, dtype=float)
    image_shape = image.shape if image_shape is None else image_shape
    image_shape = tuple(np.atleast_1d(image_shape).tolist())
    n_channels, remainder = divmod(image.size, int(np.prod(image_shape)))
    if remainder or not n_channels:
        raise ValueError(
            f"image has {image.size} values, which is not a multiple of "
            f"prod(image_shape)={int(np.prod(image_shape))} for "
            f"image_shape={image_shape}."
        )
    for name, array in (("reconstructions", reconstructions), ("reference", reference)):
        if array.size % image.size:
            raise ValueError(
                f"{name} must hold arrays of image.size={image.size} values; "
                f"got shape {array.shape}."
            )
    reconstructions = reconstructions.reshape(-1, image.size)
    reference = reference.reshape(-1)
    if labels is None:
        labels = [f"reconstruction {i + 1}" for i in range(len(reconstructions))]
    if len(labels) != len(reconstructions):
        raise ValueError(
            f"labels must have one entry per reconstruction "
            f"({len(reconstructions)}); got {len(labels)}."
        )
    input_title = "input"
    if show_input_quality:
        input_title += "\n" + quality_line(image.ravel(), reference, metric)
    titles = [input_title] + [
        f"{label}\n{quality_line(x, reference, metric)}"
        for label, x in zip(labels, reconstructions)
    ]
    tiles = [
        as_panel(x, n_channels, image_shape)
        for x in (image.ravel(), *reconstructions)
    ]
    return draw_grid(
        plt,
        tiles,
        titles,
        [(tiles[0].min(), tiles[0].max())] * len(tiles),
        lines=len(image_shape) == 1,
        ncols=len(tiles),
        cmap=cmap,
        title=None,
        fig=fig,
        tile_inches=2.5,
    )


@validate_params(
    {
        "cost_history": "no_validation",
        "yscale": [StrOptions({"linear", "log"})],
        "title": [str, None],
        "ax": [HasMethods(["plot", "set_yscale"]), None],
    },
    prefer_skip_nested_validation=True,
)
def plot_cost_history(cost_history, *, yscale="linear", title=None, ax=None):
    """Plot the training objective per epoch.

    One line per fitted layer, so that one can see whether every layer's
    cost has flattened out (more epochs are needed where it has not).

    Parameters
    ----------
    cost_history : array-like of shape (n_epochs,) or fitted estimator
        The objective after each epoch; or a fitted
        :class:`~skdeconv.ConvSparseCoder` (its ``cost_history_`` is used);
        or a fitted :class:`~skdeconv.DeconvNetworkTransformer`, which gives
        one labelled line per layer from ``pipeline_[i].cost_history_``.

    yscale : {"linear", "log"}, default="linear"
        Scale of the cost axis; ``"log"`` helps when layers' costs differ
        by orders of magnitude.

    title : str, default=None
        Title of the axes.

    ax : Axes, default=None
        Axes to draw on; ``None`` creates a figure with one axes.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure of the axes.

    See Also
    --------
    plot_reconstructions : What the trained model reconstructs.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skdeconv.plotting import plot_cost_history
    >>> fig = plot_cost_history([10.0, 6.0, 5.0, 4.8])
    >>> fig.axes[0].lines[0].get_xdata().tolist()
    [1, 2, 3, 4]
    """
    plt = pyplot("plot_cost_history")
    histories = cost_histories(cost_history)
    if ax is None:
        ax = plt.figure(figsize=(5, 3.5), layout="constrained").add_subplot()
    for label, history in histories.items():
        ax.plot(np.arange(1, len(history) + 1), history, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost")
    ax.set_yscale(yscale)
    if title is not None:
        ax.set_title(title)
    if len(histories) > 1:
        ax.legend()
    return ax.figure
