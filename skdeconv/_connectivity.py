"""Connectivity matrices g (n_filters x n_channels) between maps and input channels."""

import re
from itertools import combinations
from math import comb
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

_RANDOM_PATTERN = re.compile(r"random_(\d+)$")

CONNECTIVITY_PRESETS = ("full", "singles_and_pairs", "random_pairs")


def _singles_and_pairs(n_filters, n_channels):
    expected = n_channels + comb(n_channels, 2)
    if n_filters != expected:
        raise ValueError(
            "connectivity='singles_and_pairs' with n_channels="
            f"{n_channels} needs n_filters = n_channels + C(n_channels, 2) = "
            f"{expected}, got n_filters={n_filters}."
        )
    g = np.zeros((n_filters, n_channels), dtype=bool)
    g[np.arange(n_channels), np.arange(n_channels)] = True
    for row, (a, b) in enumerate(combinations(range(n_channels), 2), n_channels):
        g[row, [a, b]] = True
    return g


def _random_subsets(n_filters, n_channels, size, random_state):
    if size > n_channels:
        raise ValueError(
            f"connectivity='random_{size}' connects each map to {size} distinct "
            f"input channels, but there are only n_channels={n_channels}."
        )
    rng = check_random_state(random_state)
    g = np.zeros((n_filters, n_channels), dtype=bool)
    for row in g:
        row[rng.choice(n_channels, size=size, replace=False)] = True
    return g


def _check_connectivity_array(connectivity, n_filters, n_channels):
    expected = f"(n_filters, n_channels) = ({n_filters}, {n_channels})"
    try:
        g = np.asarray(connectivity)
    except ValueError as error:
        raise ValueError(
            f"connectivity must be an array of shape {expected}, got a ragged "
            f"sequence ({error})."
        ) from None
    if g.shape != (n_filters, n_channels):
        raise ValueError(f"connectivity must have shape {expected}, got shape {g.shape}.")
    if not (np.issubdtype(g.dtype, np.number) or g.dtype == bool):
        raise ValueError(
            f"connectivity must be a binary array of 0/1 (or bool) values, got dtype {g.dtype}."
        )
    other = g[(g != 0) & (g != 1)]
    if other.size:
        raise ValueError(
            "connectivity must be a binary array of 0/1 (or bool) values, got "
            f"{other.size} other values such as {other[:3].tolist()}."
        )
    g = g.astype(bool)
    if not g.any(axis=1).all():
        rows = np.flatnonzero(~g.any(axis=1)).tolist()
        raise ValueError(
            f"connectivity leaves feature maps {rows} connected to no input "
            "channel; every row needs at least one 1."
        )
    return g


@validate_params(
    {
        "connectivity": [None, str, "array-like"],
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "n_channels": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_connectivity(connectivity, n_filters, n_channels, random_state=None):
    """Build the binary connectivity matrix ``g`` between maps and channels.

    ``g[k, c] = 1`` when feature map ``k`` is convolved with a filter plane to
    explain input channel ``c``; planes where ``g[k, c] = 0`` do not exist
    (their filters are exact zeros).

    Parameters
    ----------
    connectivity : {None, 'full', 'singles_and_pairs', 'random_pairs', \
'random_<m>'} or array-like of shape (n_filters, n_channels)
        - ``None`` or ``'full'``: every map sees every channel.
        - ``'singles_and_pairs'``: one map per channel and one per unordered
          pair of channels (needs ``n_filters = C + C(C-1)/2``); layer 2 of
          the paper's network (9 channels, 45 maps).
        - ``'random_pairs'``: each map sees 2 distinct random channels (layer
          3 of the paper); ``'random_<m>'`` draws ``m`` distinct channels.
        - a binary array: used as given after validation.
    n_filters : int
        Number of feature maps ``K``.
    n_channels : int
        Number of input channels ``C``.
    random_state : int, RandomState instance or None, default=None
        Seeds the random presets.

    Returns
    -------
    g : ndarray of shape (n_filters, n_channels), dtype=bool
        The connectivity matrix.

    See Also
    --------
    ConvSparseCoder : Takes the same ``connectivity`` values.
    DeconvNetworkTransformer : Takes one ``connectivity`` per layer.

    Examples
    --------
    >>> from skdeconv import make_connectivity
    >>> make_connectivity("singles_and_pairs", n_filters=6, n_channels=3).astype(int)
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 0, 1],
           [1, 1, 0],
           [1, 0, 1],
           [0, 1, 1]])
    >>> make_connectivity("random_pairs", 150, 45, random_state=0).sum(axis=1)[:5]
    array([2, 2, 2, 2, 2])
    """
    return _make_connectivity(connectivity, n_filters, n_channels, random_state)


def _make_connectivity(connectivity, n_filters, n_channels, random_state=None):
    """Unvalidated worker of :func:`make_connectivity`."""
    if connectivity is None or (isinstance(connectivity, str) and connectivity == "full"):
        return np.ones((n_filters, n_channels), dtype=bool)
    if not isinstance(connectivity, str):
        return _check_connectivity_array(connectivity, n_filters, n_channels)
    if connectivity == "singles_and_pairs":
        return _singles_and_pairs(n_filters, n_channels)
    if connectivity == "random_pairs":
        return _random_subsets(n_filters, n_channels, 2, random_state)
    match = _RANDOM_PATTERN.match(connectivity)
    if match and int(match.group(1)) >= 1:
        return _random_subsets(n_filters, n_channels, int(match.group(1)), random_state)
    raise ValueError(
        "connectivity must be None, 'full', 'singles_and_pairs', 'random_pairs', "
        f"'random_<m>' with m >= 1, or a binary array; got {connectivity!r}."
    )


def layer_connectivity(connectivity, layer_number, n_filters, n_channels):
    """Resolve a network layer's ``'auto'`` connectivity to a preset.

    The paper's presets where they fit: layer 1 'full'; above it
    'singles_and_pairs' when ``n_filters = C + C(C-1)/2`` (layer 2 of the
    9/45/150 network), else 'random_pairs' (layer 3), or 'full' over a
    single channel.  Other values are returned unchanged.
    """
    if not (isinstance(connectivity, str) and connectivity == "auto"):
        return connectivity
    if layer_number == 1 or n_channels == 1:
        return "full"
    if n_filters == n_channels + comb(n_channels, 2):
        return "singles_and_pairs"
    return "random_pairs"


class _RandomMOptions(StrOptions):
    """Constraint satisfied by the strings 'random_<m>'."""

    def __init__(self):
        super().__init__({"random_<m>"})

    def is_satisfied_by(self, val):
        return isinstance(val, str) and bool(_RANDOM_PATTERN.match(val))


CONNECTIVITY_CONSTRAINT = [
    None,
    StrOptions(set(CONNECTIVITY_PRESETS)),
    _RandomMOptions(),
    "array-like",
]
