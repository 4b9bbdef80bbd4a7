"""Array geometry shared by every entry point (DESIGN section 2).

Rows hold ``n_channels * prod(image_shape)`` values; maps are
``image_shape + filter_shape - 1`` per axis.
"""

from math import prod
from numbers import Integral


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


def positive_int_tuple(value, name):
    """``value`` as a non-empty tuple of positive ints (bools rejected)."""
    try:
        shape = tuple(int(v) for v in value)
        valid = len(shape) > 0 and all(
            isinstance(v, Integral) and not isinstance(v, bool) and s > 0
            for s, v in zip(shape, value)
        )
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be a tuple of positive ints, got {value!r}.")
    return shape


def map_shape_of(image_shape, filter_shape):
    return tuple(n + h - 1 for n, h in zip(image_shape, filter_shape))
