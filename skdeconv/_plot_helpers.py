"""Helpers of :mod:`skdeconv.plotting`: what to draw, and the grid drawing.

What to draw: the filters, quality or cost histories of arrays or fitted
estimators; how: tiles on a grid, one axes each. matplotlib is imported only
inside :func:`pyplot`, when a figure is drawn.
"""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

_TITLE_FONTSIZE = 8


def pyplot(caller):
    """Import matplotlib.pyplot, or say how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib: pip install 'skdeconv[plot]'"
        ) from exc
    return plt


# Margins of a grid of image tiles, in inches: around the figure, between
# tiles, and per line of a tile's title.
_MARGIN, _GAP, _TITLE_LINE = 0.05, 0.08, 0.15


def _new_figure(plt, fig, nrows, ncols, title, tile_inches, fixed):
    """Return ``fig`` or a new figure sized for an ``nrows`` x ``ncols`` grid.

    A new figure uses constrained layout unless ``fixed``: then
    :func:`_fixed_grid` places the axes, ~20x faster to draw for a grid of
    150 image tiles (constrained layout measures every title, every draw).
    """
    if fig is None:
        extra = 0.4 if title else 0.0
        fig = plt.figure(
            figsize=(tile_inches * ncols, tile_inches * nrows + extra),
            layout=None if fixed else "constrained",
        )
    if title:
        fig.suptitle(title)
    return fig


def _fixed_grid(fig, nrows, ncols, title, title_lines):
    """Grid-spec margins fitting image tiles and titles of ``title_lines`` lines."""
    width, height = fig.get_size_inches()
    above = title_lines * _TITLE_LINE + _GAP
    top = (0.4 if title else _MARGIN) + above
    axes_width = (width - 2 * _MARGIN - (ncols - 1) * _GAP) / ncols
    axes_height = (height - top - _MARGIN - (nrows - 1) * above) / nrows
    return dict(
        left=_MARGIN / width, right=1 - _MARGIN / width, bottom=_MARGIN / height,
        top=1 - top / height, wspace=_GAP / axes_width, hspace=above / axes_height,
    )


def as_panel(x, n_channels, spatial_shape):
    """Shape one flattened sample for display.

    1-D signals give ``(n_channels, length)`` (one line per channel); 2-D
    images give ``(H, W)`` for one channel, ``(H, W, 3)`` for three and the
    channel mean ``(H, W)`` otherwise.
    """
    x = np.reshape(x, (n_channels, *spatial_shape))
    if len(spatial_shape) == 1:
        return x
    if n_channels == 1:
        return x[0]
    if n_channels == 3:
        return np.moveaxis(x, 0, -1)
    return x.mean(axis=0)


def tile_limits(tiles, normalize):
    """Display range ``(low, high)`` of every tile: its own or a shared one."""
    if normalize == "all":
        shared = (min(t.min() for t in tiles), max(t.max() for t in tiles))
        return [shared] * len(tiles)
    return [(t.min(), t.max()) for t in tiles]


def _draw_tile(ax, tile, low, high, cmap, lines):
    """Draw one tile: line plots for 1-D data, an image otherwise."""
    if lines:
        ax.plot(np.atleast_2d(tile).T, linewidth=1)
        if high > low:
            margin = 0.05 * (high - low)
            ax.set_ylim(low - margin, high + margin)
        ax.tick_params(labelsize=6)
    elif tile.ndim == 3:
        scaled = (tile - low) / (high - low) if high > low else tile * 0.0
        ax.imshow(np.clip(scaled, 0.0, 1.0), interpolation="nearest")
        ax.set_axis_off()
    else:
        ax.imshow(tile, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_axis_off()


def draw_grid(
    plt, tiles, titles, limits, *, lines, ncols, cmap, title, fig, tile_inches=1.3
):
    """Draw ``tiles`` row by row on a grid with ``ncols`` columns.

    Grid cells left over after the last tile are removed, so the figure has
    exactly one axes per tile.
    """
    ncols = min(ncols, len(tiles))
    nrows = -(-len(tiles) // ncols)
    fixed = fig is None and not lines
    fig = _new_figure(plt, fig, nrows, ncols, title, tile_inches, fixed)
    title_lines = max(str(t).count("\n") + 1 for t in titles)
    grid = _fixed_grid(fig, nrows, ncols, title, title_lines) if fixed else None
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=grid).ravel()
    for ax, tile, tile_title, (low, high) in zip(axes, tiles, titles, limits):
        _draw_tile(ax, tile, low, high, cmap, lines)
        # y given: no automatic title placement, which measures the axis
        # decorations of every tile at every draw (tiles have none but 1-D ones)
        ax.set_title(tile_title, fontsize=_TITLE_FONTSIZE, y=None if lines else 1.0)
    for ax in axes[len(tiles) :]:
        ax.remove()
    return fig


def near_square_ncols(n_tiles):
    return int(np.ceil(np.sqrt(n_tiles)))


# ---------------------------------------------------------------- what to draw
def filters_of(filters, layer):
    """Filters array of ``filters``: an array or a fitted estimator."""
    if hasattr(filters, "project_filters"):
        return filters.project_filters(-1 if layer is None else layer)
    if layer is not None:
        raise ValueError(
            "layer applies only to an estimator with project_filters, such as "
            f"DeconvNetworkTransformer; got layer={layer!r} with "
            f"{type(filters).__name__}."
        )
    if hasattr(filters, "get_params"):
        check_is_fitted(filters, "filters_")
        return filters.filters_
    return filters


def quality_line(x, reference, metric):
    """Title line comparing ``x`` with ``reference``."""
    error, norm = np.linalg.norm(x - reference), np.linalg.norm(reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "relative_error":
            return f"rel. error {error / norm:.3f}"
        return f"SNR {20 * np.log10(norm / error):.1f} dB"


def cost_histories(cost_history):
    """``{label: 1-D history}`` of an array, a coder or a network."""
    if hasattr(cost_history, "pipeline_"):
        layers = cost_history.pipeline_
        return {
            f"layer {i + 1}": np.ravel(layers[i].cost_history_)
            for i in range(len(layers))
        }
    if hasattr(cost_history, "get_params"):
        check_is_fitted(cost_history, "cost_history_")
        cost_history = cost_history.cost_history_
    history = np.asarray(cost_history, dtype=float)
    if history.ndim != 1:
        raise ValueError(
            f"cost_history must be 1-D (one value per epoch); got shape "
            f"{history.shape}."
        )
    return {None: history}


# Constraints of the grid options of the plotting functions.
COMMON_CONSTRAINTS = {
    "ncols": [Interval(Integral, 1, None, closed="left"), None],
    "title": [str, None],
    "normalize": [StrOptions({"each", "all"})],
    "cmap": "no_validation",
    "fig": [HasMethods(["subplots", "suptitle"]), None],
}
