"""Array geometry and validators shared by every entry point (DESIGN section 2).

Rows hold ``n_channels * prod(image_shape)`` values; maps are
``image_shape + filter_shape - 1`` per axis.  Layers are numbered from 1
(nearest the pixels), negative numbers counting from the top.
"""

from math import prod
from numbers import Integral

import numpy as np

# The dtypes every estimator computes in (others are converted to float64).
FLOAT_DTYPES = [np.float64, np.float32]


def check_image_shape(image_shape, n_features):
    """Spatial shape and number of channels of rows of ``n_features`` values."""
    if image_shape is None:
        return (n_features,), 1
    shape = positive_int_tuple(image_shape, "image_shape")
    return shape, infer_n_channels(n_features, shape)


def infer_n_channels(n_features, image_shape):
    """n_channels = n_features / prod(image_shape), which must be an integer."""
    n_pixels = prod(image_shape)
    if n_features < n_pixels or n_features % n_pixels:
        raise ValueError(
            f"n_features={n_features} is not a multiple of the number of pixels "
            f"{n_pixels} of image_shape={tuple(image_shape)}: each row must hold "
            "n_channels * prod(image_shape) values."
        )
    return n_features // n_pixels


def check_filter_shape(filter_shape, n_axes):
    """Filter shape as a tuple with one entry per spatial axis."""
    if isinstance(filter_shape, Integral):
        filter_shape = (filter_shape,) * n_axes
    shape = positive_int_tuple(filter_shape, "filter_shape")
    if len(shape) != n_axes:
        raise ValueError(
            f"filter_shape={shape} has {len(shape)} axes but the images have "
            f"{n_axes} spatial axes; give an int or a tuple of length {n_axes}."
        )
    return shape


def is_positive_int(value):
    """True for an int >= 1 (bools rejected)."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


def positive_int_tuple(value, name):
    """``value`` as a non-empty tuple of positive ints (bools rejected)."""
    try:
        shape = tuple(int(v) for v in value)
        valid = len(shape) > 0 and all(is_positive_int(v) for v in value)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be a tuple of positive ints, got {value!r}.")
    return shape


def map_shape_of(image_shape, filter_shape):
    return tuple(n + h - 1 for n, h in zip(image_shape, filter_shape))


def layer_number(layer, n_layers, name="layer"):
    """1-based number of ``layer`` in 1..n_layers (or -n_layers..-1 from the top)."""
    if (
        not isinstance(layer, Integral)
        or isinstance(layer, bool)
        or not (1 <= abs(layer) <= n_layers)
    ):
        raise ValueError(
            f"{name} must be a layer number in 1..{n_layers} (or -{n_layers}..-1 "
            f"counting from the top) of the fitted network, got {layer!r}."
        )
    return int(layer) if layer > 0 else n_layers + 1 + int(layer)


def layer_numbers(layers, n_layers):
    """1-based numbers of a non-empty sequence of layers (see :func:`layer_number`)."""
    if not np.iterable(layers) or isinstance(layers, str) or not len(layers):
        raise ValueError(
            f"layers must be a non-empty sequence of layer numbers, got {layers!r}."
        )
    return [layer_number(layer, n_layers, "each entry of layers") for layer in layers]
