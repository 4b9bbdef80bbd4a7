"""Projections of a fitted DeconvNetworkTransformer down to pixel space.

Kept apart from the estimator (``_network.py``) as a mixin: every method reads
only the fitted ``pipeline_`` of :class:`~skdeconv.ConvSparseCoder` layers.
"""

from math import prod

from scipy.signal import fftconvolve
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._geometry import FLOAT_DTYPES, layer_number


class NetworkProjectionMixin:
    """``project``, ``inverse_transform`` and ``project_filters`` of a network."""

    def _project(self, maps, number):
        for _, layer in reversed(self.pipeline_.steps[:number]):
            maps = layer.inverse_transform(maps)
        return maps

    def project(self, Z, layer=-1):
        """Project maps of one layer down to the input (pixel) space.

        The result is exactly the chained ``inverse_transform`` of layers
        ``layer``, ``layer - 1``, ..., 1: every layer synthesises its input
        from its maps, which are the maps of the layer below.

        Parameters
        ----------
        Z : array-like of shape (n_samples, prod(layer's feature_map_shape_))
            Maps of layer ``layer``, flattened as that layer's ``transform``
            returns them.
        layer : int, default=-1
            Layer number, from 1 (nearest the pixels); -1 is the top.

        Returns
        -------
        X_projected : ndarray of shape (n_samples, n_features_in_)
            The projections in input space.
        """
        return self._project_input(Z, layer, "Z")

    def _project_input(self, Z, layer, input_name):
        check_is_fitted(self)
        number = layer_number(layer, len(self.pipeline_))
        Z = check_array(Z, dtype=FLOAT_DTYPES, input_name=input_name)
        shape = self.pipeline_[number - 1].feature_map_shape_
        if Z.shape[1] != prod(shape):
            raise ValueError(
                f"{input_name} has {Z.shape[1]} features, but the maps of layer "
                f"{number} have {shape} = {prod(shape)} features."
            )
        return self._project(Z, number)

    def inverse_transform(self, X):
        """Project top-layer maps down to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, prod(feature_map_shape_))
            Top-layer maps, as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Reconstructions in input space (``project(X, -1)``).
        """
        return self._project_input(X, -1, "X")

    def project_filters(self, layer=-1):
        """Every filter of one layer seen in pixel space.

        The projected filter of map ``k`` of layer ``l`` is what a unit
        impulse in that map becomes in pixel space: for layer 1,
        ``s_1 * f1[k]``; for layer 2, ``s_1 s_2 sum_c f2[k, c] *full f1[c]``
        (full convolution, planes absent from the connectivity being zero);
        and so on up, where ``s_l`` is the ``input_scale_`` of layer ``l``.
        So :meth:`project` of a map that is 1 at one position and 0
        elsewhere is the projected filter placed at that position (cropped
        at the borders of the input).

        Parameters
        ----------
        layer : int, default=-1
            Layer number, from 1 (nearest the pixels); -1 is the top.

        Returns
        -------
        filters : ndarray of shape (n_filters_layer, n_channels, *receptive_field)
            ``n_channels`` is the number of input channels of the network;
            the receptive field grows by ``filter_shape - 1`` per layer.
        """
        check_is_fitted(self)
        number = layer_number(layer, len(self.pipeline_))
        projected = None
        for _, coder in self.pipeline_.steps[:number]:
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
