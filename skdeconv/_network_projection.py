"""Projections of a fitted DeconvNetworkTransformer down to pixel space.

The workers of ``project``, ``inverse_transform`` and ``project_filters``
(``_network.py`` keeps the methods and their documentation); each reads only
the fitted ``pipeline_`` of :class:`~skdeconv.ConvSparseCoder` layers.
"""

from math import prod

from scipy.signal import fftconvolve
from sklearn.utils import check_array

from ._geometry import FLOAT_DTYPES, layer_number


def project_maps(pipeline, maps, number):
    """Chained ``inverse_transform`` of layers ``number``, ..., 1 of ``maps``."""
    for _, layer in reversed(pipeline.steps[:number]):
        maps = layer.inverse_transform(maps)
    return maps


def check_layer_maps(pipeline, Z, layer, input_name):
    """``Z`` validated as rows of maps of ``layer``, and its 1-based number."""
    number = layer_number(layer, len(pipeline))
    Z = check_array(Z, dtype=FLOAT_DTYPES, input_name=input_name)
    shape = pipeline[number - 1].feature_map_shape_
    if Z.shape[1] != prod(shape):
        raise ValueError(
            f"{input_name} has {Z.shape[1]} features, but the maps of layer "
            f"{number} have {shape} = {prod(shape)} features."
        )
    return Z, number


def pixel_space_filters(pipeline, number):
    """The filters of layer ``number`` composed with the filters below it.

    Each layer's filters are multiplied by its ``input_scale_``, so that a
    unit impulse in a map of layer ``number`` projects to its filter.
    """
    projected = None
    for _, coder in pipeline.steps[:number]:
        filters = coder.filters_ * coder.input_scale_
        projected = filters if projected is None else _compose(filters, projected)
    return projected


def _compose(upper, lower):
    """Pixel-space filters of ``upper`` (K, C, *h) over ``lower`` (C, C0, *r).

    ``out[k, i] = sum_c upper[k, c] *full lower[c, i]``, shape
    (K, C0, *(h + r - 1)).
    """
    n_axes = upper.ndim - 2
    axes = tuple(range(3, 3 + n_axes))
    planes = fftconvolve(upper[:, :, None], lower[None], axes=axes)
    return planes.sum(axis=1)
