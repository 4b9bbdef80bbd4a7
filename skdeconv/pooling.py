"""Fixed-length features from feature maps, for classifiers.

Two ways to turn the variable-geometry feature maps of a
:class:`~skdeconv.ConvSparseCoder` or a :class:`~skdeconv.DeconvNetworkTransformer`
into features for a classifier:

- **Spatial pyramid pooling** of the maps themselves:
  :func:`spatial_pyramid_pool` (arrays), :class:`SpatialPyramidPooling` (a
  transformer with an explicit ``map_shape``) and :class:`PyramidPooledMaps`
  (a transformer wrapping the coder, which reads the map geometry from the
  fitted coder, so that a grid search over ``filter_shape`` works).
- **The Caltech-101 descriptor pipeline of Zeiler et al. (CVPR 2010)**: dense
  descriptors from the layer-1 and layer-2 maps (:class:`DenseMapDescriptors`),
  a k-means codebook with spatial pyramid histograms (:class:`BagOfWordsPyramid`)
  and a histogram intersection kernel (:func:`intersection_kernel`) for
  :class:`~sklearn.svm.SVC`; :func:`load_image_folder` reads a folder-per-class
  image tree. ``examples/caltech101_protocol.py`` runs the whole protocol.

Why a wrapper rather than a pooling step that guesses its geometry: a
:class:`~sklearn.pipeline.Pipeline` step cannot see the step before it, so a
separate pooling step would need ``map_shape`` by hand, and that shape changes
with the coder's ``filter_shape`` (maps are ``image_shape + filter_shape - 1``).
:class:`PyramidPooledMaps` fits (a clone of) the coder and reads its
``feature_map_shape_``, so every parameter of the coder can be searched, as
``<step>__estimator__<param>``.
"""

import math
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics.pairwise import check_pairwise_arrays
from sklearn.utils import check_array, check_random_state, gen_batches, get_tags
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)

__all__ = [
    "BagOfWordsPyramid",
    "DenseMapDescriptors",
    "PyramidPooledMaps",
    "SpatialPyramidPooling",
    "intersection_kernel",
    "load_image_folder",
    "spatial_pyramid_pool",
]

_FLOAT_DTYPES = [np.float64, np.float32]
_IMAGE_SUFFIXES = {".bmp", ".gif", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".ppm",
                   ".tif", ".tiff", ".webp"}
# Elements of the largest temporary array in intersection_kernel (32 MB in float64).
_KERNEL_CHUNK_ELEMENTS = 2**22


# --------------------------------------------------------------------------- helpers
def _is_positive_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


def _check_levels(levels):
    """Return ``levels`` as a tuple of ints, or raise a ValueError."""
    levels = tuple(levels)
    valid = (
        len(levels) > 0
        and all(_is_positive_int(lv) for lv in levels)
        and all(a < b for a, b in zip(levels, levels[1:]))
    )
    if not valid:
        raise ValueError(
            "levels must be a non-empty, strictly increasing sequence of positive "
            f"ints (bins per spatial axis), got {levels!r}."
        )
    return tuple(int(lv) for lv in levels)


def _check_map_shape(map_shape, n_features):
    """Return ``(n_maps, map_shape)`` for rows of ``n_features`` values."""
    if map_shape is None:
        return 1, (n_features,)
    shape = tuple(map_shape)
    if not shape or not all(_is_positive_int(s) for s in shape):
        raise ValueError(
            f"map_shape must be None or a non-empty tuple of positive ints, got {map_shape!r}."
        )
    size = math.prod(shape)
    if n_features % size:
        raise ValueError(
            f"X has {n_features} features, which is not a multiple of the "
            f"{size} values of one map of map_shape={shape}."
        )
    return n_features // size, tuple(int(s) for s in shape)


def _bin_sizes(n, n_bins):
    """Sizes of the bins of ``numpy.array_split(range(n), n_bins)``."""
    sizes = np.full(n_bins, n // n_bins)
    sizes[: n % n_bins] += 1
    return sizes


def _pool_level(maps, level, pooling):
    """Pool the spatial axes ``maps.shape[2:]`` into ``level`` bins per axis.

    Bins follow ``numpy.array_split``; when an axis has fewer than ``level``
    values the trailing bins are empty and pool to 0.
    """
    out = maps
    for axis in range(2, maps.ndim):
        sizes = _bin_sizes(maps.shape[axis], level)
        filled = sizes > 0
        starts = (np.cumsum(sizes) - sizes)[filled]
        if pooling == "max":
            out = np.maximum.reduceat(out, starts, axis=axis)
        else:
            shape = [1] * out.ndim
            shape[axis] = -1
            out = np.add.reduceat(out, starts, axis=axis)
            out = out / sizes[filled].astype(out.dtype).reshape(shape)
        padding = [(0, 0)] * out.ndim
        padding[axis] = (0, level - np.count_nonzero(filled))
        out = np.pad(out, padding)
    return out


def _spatial_pyramid_pool(maps, levels, pooling, absolute):
    """Unvalidated worker of :func:`spatial_pyramid_pool`."""
    if absolute:
        maps = np.abs(maps)
    n_samples = maps.shape[0]
    return np.concatenate(
        [_pool_level(maps, level, pooling).reshape(n_samples, -1) for level in levels],
        axis=1,
    )


def _pyramid_feature_names(prefix, n_units, unit, n_spatial, levels):
    """Names ``<prefix>_level<l>_<unit><k>_bin<i>[_<j>]`` in [level][unit][bins] order."""
    return np.asarray(
        [
            f"{prefix}_level{level}_{unit}{k}_bin{'_'.join(map(str, index))}"
            for level in levels
            for k in range(n_units)
            for index in np.ndindex(*(level,) * n_spatial)
        ],
        dtype=object,
    )


# --------------------------------------------------------------------------- pooling
@validate_params(
    {
        "maps": ["array-like"],
        "levels": ["array-like"],
        "pooling": [StrOptions({"max", "mean"})],
        "absolute": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def spatial_pyramid_pool(maps, levels=(1, 2, 4), *, pooling="max", absolute=True):
    """Pool feature maps over a spatial pyramid.

    At pyramid level ``l`` every spatial axis of every map is split into ``l``
    nearly equal bins (the boundaries of :func:`numpy.array_split`: the first
    ``n % l`` bins hold one value more) and each of the ``l ** n_spatial`` cells
    is reduced to its maximum or mean. An axis shorter than ``l`` leaves
    trailing bins empty; they pool to 0.

    Parameters
    ----------
    maps : array-like of shape (n_samples, n_maps, *map_shape)
        Feature maps with one or more spatial axes (1-D signals, 2-D images).
    levels : sequence of int, default=(1, 2, 4)
        Bins per spatial axis at each level, strictly increasing.
    pooling : {"max", "mean"}, default="max"
        Reduction over each cell.
    absolute : bool, default=True
        Pool ``|maps|`` (sparse codes are signed; their magnitude is the
        activation) rather than the signed values.

    Returns
    -------
    features : ndarray of shape (n_samples, n_maps * sum(l ** n_spatial))
        Ordered [level][map][bins], bins in C order over the spatial axes: the
        block of level ``l`` is the array ``(n_maps, l, ..., l)`` flattened.
        float32 input stays float32.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv.pooling import spatial_pyramid_pool
    >>> maps = np.arange(8.0).reshape(1, 1, 8) - 4   # one sample, one 1-D map
    >>> spatial_pyramid_pool(maps, levels=(1, 2))
    array([[4., 4., 3.]])
    >>> spatial_pyramid_pool(maps, levels=(1, 2), pooling="mean", absolute=False)
    array([[-0.5, -2.5,  1.5]])
    """
    maps = check_array(maps, dtype=_FLOAT_DTYPES, allow_nd=True, input_name="maps")
    if maps.ndim < 3:
        raise ValueError(
            "maps must have shape (n_samples, n_maps, *map_shape) with at least one "
            f"spatial axis, got an array of shape {maps.shape}."
        )
    return _spatial_pyramid_pool(maps, _check_levels(levels), pooling, absolute)


class _PyramidPoolingMixin:
    """Shared pooling of rows of maps; needs ``n_maps_``, ``map_shape_``, ``levels_``."""

    def _pool_rows(self, Z):
        maps = Z.reshape(Z.shape[0], self.n_maps_, *self.map_shape_)
        return _spatial_pyramid_pool(maps, self.levels_, self.pooling, self.absolute)

    def _set_pyramid(self, n_maps, map_shape):
        self.n_maps_, self.map_shape_ = n_maps, map_shape
        self.levels_ = _check_levels(self.levels)
        self._n_features_out = n_maps * sum(lv ** len(map_shape) for lv in self.levels_)

    def get_feature_names_out(self, input_features=None):
        """Get output feature names for transformation.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen in :meth:`fit`.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``<class>_level<l>_map<k>_bin<i>[_<j>]`` in the order of the output.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        return _pyramid_feature_names(
            type(self).__name__.lower(), self.n_maps_, "map", len(self.map_shape_),
            self.levels_,
        )


class SpatialPyramidPooling(_PyramidPoolingMixin, TransformerMixin, BaseEstimator):
    """Spatial pyramid pooling of flattened feature maps.

    Each row of ``X`` holds ``n_maps`` maps flattened in C order,
    ``(n_maps, *map_shape)`` (the layout of ``ConvSparseCoder.transform``);
    ``n_maps`` is inferred from the number of features. Every map is pooled by
    :func:`spatial_pyramid_pool`.

    Use this step when the map geometry is known. To pool the output of a
    coder whose ``filter_shape`` is being searched, use
    :class:`PyramidPooledMaps`, which reads the geometry from the fitted coder:
    a pipeline step cannot see the step before it.

    Parameters
    ----------
    map_shape : tuple of int or None, default=None
        Spatial shape of one map, e.g. ``coder.feature_map_shape_[1:]``.
        ``None`` means each row is a single 1-D map of length ``n_features``.
    levels : sequence of int, default=(1, 2, 4)
        Bins per spatial axis at each pyramid level, strictly increasing.
    pooling : {"max", "mean"}, default="max"
        Reduction over each cell.
    absolute : bool, default=True
        Pool the magnitudes ``|maps|``.

    Attributes
    ----------
    n_maps_ : int
        Number of maps per row.
    map_shape_ : tuple of int
        Spatial shape of one map.
    levels_ : tuple of int
        The validated ``levels``.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when X has string column names.

    See Also
    --------
    PyramidPooledMaps : Pool the maps of a coder fitted inside the same step.
    spatial_pyramid_pool : The function on arrays of maps.

    Notes
    -----
    Output columns are ordered [level][map][bins] with bins in C order over the
    spatial axes, ``n_maps * sum(l ** len(map_shape) for l in levels)`` in all.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv.pooling import SpatialPyramidPooling
    >>> X = np.arange(2 * 3 * 4 * 4, dtype=float).reshape(2, -1)  # 3 maps of 4x4
    >>> pool = SpatialPyramidPooling(map_shape=(4, 4), levels=(1, 2)).fit(X)
    >>> pool.n_maps_
    3
    >>> pool.transform(X).shape   # 3 maps * (1 + 4) cells
    (2, 15)
    >>> pool.transform(X)[0, :3]  # level 1: the maximum of each map
    array([15., 31., 47.])
    """

    _parameter_constraints: dict = {
        "map_shape": [None, "array-like"],
        "levels": ["array-like"],
        "pooling": [StrOptions({"max", "mean"})],
        "absolute": ["boolean"],
    }

    def __init__(self, map_shape=None, *, levels=(1, 2, 4), pooling="max", absolute=True):
        self.map_shape = map_shape
        self.levels = levels
        self.pooling = pooling
        self.absolute = absolute

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the map geometry against ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of flattened maps.
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        X = validate_data(self, X, dtype=_FLOAT_DTYPES)
        self._set_pyramid(*_check_map_shape(self.map_shape, X.shape[1]))
        return self

    def transform(self, X):
        """Pool every map of every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of flattened maps.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_maps_ * sum(l ** n_spatial))
            Pooled features, ordered [level][map][bins].
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=False)
        return self._pool_rows(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class PyramidPooledMaps(_PyramidPoolingMixin, TransformerMixin, BaseEstimator):
    """Spatial pyramid pooling of the maps of a wrapped coder.

    ``fit`` fits a clone of ``estimator`` (a :class:`~skdeconv.ConvSparseCoder`,
    a :class:`~skdeconv.DeconvNetworkTransformer`, or any transformer exposing
    ``feature_map_shape_ = (n_maps, *map_shape)`` after fit) and reads the map
    geometry from it; ``transform`` pools ``estimator_.transform(X)`` with
    :func:`spatial_pyramid_pool`. Because the geometry is read after fitting,
    every parameter of the coder, ``filter_shape`` included, can be searched,
    named ``<step>__estimator__<param>`` (e.g. ``pooled__estimator__lmbda``).

    To reuse an already fitted coder, pass
    ``sklearn.frozen.FrozenEstimator(coder)``.

    Parameters
    ----------
    estimator : estimator object
        The coder producing flattened maps in ``transform``.
    levels : sequence of int, default=(1, 2, 4)
        Bins per spatial axis at each pyramid level, strictly increasing.
    pooling : {"max", "mean"}, default="max"
        Reduction over each cell.
    absolute : bool, default=True
        Pool the magnitudes ``|maps|``.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator``.
    n_maps_ : int
        Number of maps per sample, ``estimator_.feature_map_shape_[0]``.
    map_shape_ : tuple of int
        Spatial shape of one map, ``estimator_.feature_map_shape_[1:]``.
    levels_ : tuple of int
        The validated ``levels``.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when X has string column names.

    See Also
    --------
    SpatialPyramidPooling : Pooling with an explicit map geometry.

    Notes
    -----
    Output columns are ordered [level][map][bins], as in
    :class:`SpatialPyramidPooling`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import Pipeline
    >>> from skdeconv import ConvSparseCoder
    >>> from skdeconv.pooling import PyramidPooledMaps
    >>> X, y = load_digits(return_X_y=True)
    >>> X, y = X[:60] / 16, y[:60]
    >>> coder = ConvSparseCoder(n_filters=4, filter_shape=3, image_shape=(8, 8),
    ...                         max_iter=100, tol=1e-2, n_epochs=1, random_state=0)
    >>> model = Pipeline([("pooled", PyramidPooledMaps(coder, levels=(1, 2))),
    ...                   ("clf", LogisticRegression(max_iter=200))])
    >>> search = GridSearchCV(model, {"pooled__estimator__filter_shape": [3, 5]}, cv=2)
    >>> search.fit(X, y).best_estimator_["pooled"].n_maps_
    4
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "transform"])],
        "levels": ["array-like"],
        "pooling": [StrOptions({"max", "mean"})],
        "absolute": ["boolean"],
    }

    def __init__(self, estimator, *, levels=(1, 2, 4), pooling="max", absolute=True):
        self.estimator = estimator
        self.levels = levels
        self.pooling = pooling
        self.absolute = absolute

    def _fit_estimator(self, X, y, transform):
        X = validate_data(self, X, dtype=_FLOAT_DTYPES)
        self.estimator_ = clone(self.estimator)
        if transform and hasattr(self.estimator_, "fit_transform"):
            Z = self.estimator_.fit_transform(X, y)
        else:
            self.estimator_.fit(X, y)
            Z = self.estimator_.transform(X) if transform else None
        shape = getattr(self.estimator_, "feature_map_shape_", None)
        if shape is None:
            raise TypeError(
                f"estimator {type(self.estimator).__name__} must expose "
                "feature_map_shape_ = (n_maps, *map_shape) once fitted."
            )
        self._set_pyramid(int(shape[0]), tuple(int(s) for s in shape[1:]))
        return Z

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit a clone of the estimator and read its map geometry.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data for the estimator.
        y : array-like of shape (n_samples,) or None, default=None
            Passed to the estimator's ``fit``.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        self._fit_estimator(X, y, transform=False)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y=None):
        """Fit, then pool the maps of ``X`` (one ``fit_transform`` of the estimator).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data for the estimator.
        y : array-like of shape (n_samples,) or None, default=None
            Passed to the estimator.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_maps_ * sum(l ** n_spatial))
            Pooled features, ordered [level][map][bins].
        """
        return self._pool_rows(self._fit_estimator(X, y, transform=True))

    def transform(self, X):
        """Pool the maps that the fitted estimator infers for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input of the estimator.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_maps_ * sum(l ** n_spatial))
            Pooled features, ordered [level][map][bins].
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=False)
        return self._pool_rows(np.asarray(self.estimator_.transform(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator).transformer_tags
        if inner is not None:
            tags.transformer_tags.preserves_dtype = list(inner.preserves_dtype)
        return tags


# --------------------------------------------------------------- Caltech descriptors
def _normalise_layers(layers, n_layers):
    """Layers numbered from 1 (negative from the top) -> positive ints."""
    layers = tuple(layers)
    resolved = []
    for layer in layers:
        if (not isinstance(layer, Integral) or isinstance(layer, bool)
                or not (1 <= layer <= n_layers or -n_layers <= layer <= -1)):
            raise ValueError(
                f"layers must hold layer numbers in 1..{n_layers} (or -{n_layers}..-1 "
                f"from the top) of the fitted network, got {layers!r}."
            )
        resolved.append(int(layer) if layer > 0 else n_layers + 1 + int(layer))
    if not resolved:
        raise ValueError("layers must name at least one layer, got ().")
    return tuple(resolved)


def _patch_cell_means(maps, image_shape, starts, patch_size, grid):
    """Mean ``|maps|`` over the ``grid x grid`` cells of dense patches.

    ``maps`` of shape ``(n, n_maps, *map_shape)`` are centre-cropped to
    ``image_shape``; patches start at ``starts = (row_starts, col_starts)``.
    Returns ``(n, n_patches, n_maps * grid**2)`` ordered [map][cell row][cell col],
    patches in row-major order. Box sums use a float64 summed-area table.
    """
    offsets = [(m - s) // 2 for m, s in zip(maps.shape[2:], image_shape)]
    crop = maps[..., offsets[0]:offsets[0] + image_shape[0],
                offsets[1]:offsets[1] + image_shape[1]]
    table = np.zeros(crop.shape[:2] + (image_shape[0] + 1, image_shape[1] + 1))
    table[..., 1:, 1:] = np.abs(crop).cumsum(axis=-2, dtype=np.float64).cumsum(axis=-1)
    sizes = _bin_sizes(patch_size, grid)
    edges = np.concatenate(([0], np.cumsum(sizes)))
    rows = starts[0][:, None] + edges  # (n_rows, grid + 1)
    cols = starts[1][:, None] + edges  # (n_cols, grid + 1)

    def corner(r, c):  # -> (n, n_maps, n_rows, grid, n_cols, grid)
        return table[:, :, r[:, :, None, None], c[None, None, :, :]]

    r0, r1, c0, c1 = rows[:, :-1], rows[:, 1:], cols[:, :-1], cols[:, 1:]
    boxes = corner(r1, c1) - corner(r0, c1) - corner(r1, c0) + corner(r0, c0)
    means = boxes / np.multiply.outer(sizes, sizes)[:, None, :]
    means = means.transpose(0, 2, 4, 1, 3, 5)  # (n, rows, cols, maps, grid, grid)
    return means.reshape(len(maps), len(starts[0]) * len(starts[1]), -1).astype(maps.dtype)


class DenseMapDescriptors(TransformerMixin, BaseEstimator):
    """Dense patch descriptors from the feature maps of a deconvolutional network.

    The descriptors of Zeiler et al. (CVPR 2010) for Caltech-101: the maps of
    the chosen layers are centre-cropped to the image size ``(H, W)`` (a layer's
    maps are larger than the image by the filter sizes minus one; the centre
    crop aligns every map pixel with the image pixel it covers), then in every
    ``patch_size x patch_size`` patch, taken every ``step`` pixels, each map's
    ``|values|`` are averaged over a ``grid x grid`` grid of cells
    (:func:`numpy.array_split` boundaries). The descriptors of all layers are
    concatenated.

    ``fit`` fits a clone of ``network``; to reuse a fitted network pass
    ``sklearn.frozen.FrozenEstimator(network)``. The network must have 2-D
    ``image_shape``, a ``pipeline_`` of fitted layers exposing
    ``feature_map_shape_``, and ``transform(X, layers=...)`` returning the
    flattened maps of the chosen layers as a list (as
    :class:`~skdeconv.DeconvNetworkTransformer` does).

    Parameters
    ----------
    network : estimator object
        Unfitted (or frozen) :class:`~skdeconv.DeconvNetworkTransformer`.
    layers : sequence of int, default=(1, 2)
        Layers whose maps are described, numbered from 1 (-1 is the top).
    patch_size : int, default=16
        Side of the square patches, in image pixels.
    step : int, default=8
        Distance between neighbouring patches.
    grid : int, default=4
        Cells per patch side over which the maps are averaged.
    batch_size : int, default=8
        Images passed to the network at once (bounds the memory of the maps).

    Attributes
    ----------
    network_ : estimator object
        The fitted clone of ``network``.
    layers_ : tuple of int
        The described layers, numbered from 1.
    image_shape_ : tuple of int
        ``(H, W)``, the network's image shape.
    patch_centers_ : ndarray of shape (n_patches, 2)
        ``(row, col)`` centre of every patch in image pixel coordinates, in
        the order of the descriptors; ``n_patches = ((H - patch_size) // step + 1)
        * ((W - patch_size) // step + 1)`` with ``(H, W)`` the IMAGE size.
    descriptor_shape_ : tuple of int
        ``(n_patches, n_dims)`` with ``n_dims = grid**2 * (total maps of the
        described layers)``.
    n_features_in_ : int
        Number of features seen during :term:`fit`.

    See Also
    --------
    BagOfWordsPyramid : Spatial pyramid of visual words over these descriptors.

    Notes
    -----
    ``transform`` returns, per image, the ``(n_patches, n_dims)`` descriptors
    flattened in C order: ``transform(X).reshape(-1, *descriptor_shape_)``.
    Within a descriptor the order is [layer][map][cell row][cell col].

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv import DeconvNetworkTransformer
    >>> from skdeconv.pooling import DenseMapDescriptors
    >>> X = np.random.RandomState(0).rand(3, 24 * 24)
    >>> net = DeconvNetworkTransformer(n_filters=(2, 3), filter_shape=3,
    ...                                connectivity="full", image_shape=(24, 24),
    ...                                max_iter=100, tol=1e-2, n_epochs=1, random_state=0)
    >>> desc = DenseMapDescriptors(net).fit(X)
    >>> desc.descriptor_shape_   # 2 x 2 patches; (2 + 3) maps * 16 cells
    (4, 80)
    >>> desc.transform(X).shape
    (3, 320)
    """

    _parameter_constraints: dict = {
        "network": [HasMethods(["fit", "transform"])],
        "layers": ["array-like"],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "step": [Interval(Integral, 1, None, closed="left")],
        "grid": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, network, *, layers=(1, 2), patch_size=16, step=8, grid=4,
                 batch_size=8):
        self.network = network
        self.layers = layers
        self.patch_size = patch_size
        self.step = step
        self.grid = grid
        self.batch_size = batch_size

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit a clone of the network and set the patch geometry.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Images as rows, ``(n_channels, H, W)`` flattened.
        y : array-like of shape (n_samples,) or None, default=None
            Passed to the network's ``fit``.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        X = validate_data(self, X, dtype=_FLOAT_DTYPES)
        if self.grid > self.patch_size:
            raise ValueError(
                f"grid={self.grid} cells per side do not fit in patch_size={self.patch_size}."
            )
        self.network_ = clone(self.network).fit(X, y)
        image_shape = getattr(self.network_, "image_shape_", None)
        if image_shape is None:
            image_shape = getattr(self.network_, "image_shape", None)
        if np.ndim(image_shape) != 1 or len(image_shape) != 2:
            raise ValueError(
                "DenseMapDescriptors needs a network of 2-D images: set "
                f"image_shape=(H, W) on the network, got image_shape={image_shape!r}."
            )
        self.image_shape_ = tuple(int(s) for s in image_shape)
        if min(self.image_shape_) < self.patch_size:
            raise ValueError(
                f"patch_size={self.patch_size} is larger than the images of shape "
                f"{self.image_shape_}."
            )
        self.layers_ = _normalise_layers(self.layers, len(self.network_.pipeline_))
        n_maps = sum(self.network_.pipeline_[layer - 1].feature_map_shape_[0]
                     for layer in self.layers_)
        self._starts = [np.arange(0, s - self.patch_size + 1, self.step)
                        for s in self.image_shape_]
        centre = (self.patch_size - 1) / 2
        rows, cols = np.meshgrid(*self._starts, indexing="ij")
        self.patch_centers_ = np.column_stack([rows.ravel(), cols.ravel()]) + centre
        self.descriptor_shape_ = (len(self.patch_centers_), n_maps * self.grid**2)
        return self

    def _describe(self, X):
        """Descriptors ``(n, n_patches, n_dims)`` of a batch of images."""
        layer_rows = self.network_.transform(X, layers=self.layers_)
        return np.concatenate(
            [
                _patch_cell_means(
                    np.asarray(rows).reshape(
                        len(X), *self.network_.pipeline_[layer - 1].feature_map_shape_
                    ),
                    self.image_shape_, self._starts, self.patch_size, self.grid,
                )
                for layer, rows in zip(self.layers_, layer_rows)
            ],
            axis=2,
        )

    def transform(self, X):
        """Describe every patch of every image.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Images as rows, ``(n_channels, H, W)`` flattened.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_patches * n_dims)
            Per image, the ``descriptor_shape_`` array flattened in C order.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=False)
        return np.concatenate(
            [self._describe(X[batch]).reshape(batch.stop - batch.start, -1)
             for batch in gen_batches(len(X), self.batch_size)]
        )


def _pyramid_cells(centers, image_shape, level):
    """Pyramid cell (C order over axes) holding each patch centre at ``level``."""
    bins = [
        np.searchsorted(np.cumsum(_bin_sizes(size, level)),
                        np.floor(centers[:, axis]).astype(int), side="right")
        for axis, size in enumerate(image_shape)
    ]
    return np.ravel_multi_index(bins, (level,) * len(image_shape))


def _pyramid_weights(n_levels):
    """Lazebnik et al. (2006) level weights, coarsest first; they sum to 1."""
    top = n_levels - 1
    return [2.0**-top] + [2.0 ** -(top - i + 1) for i in range(1, n_levels)]


class BagOfWordsPyramid(TransformerMixin, BaseEstimator):
    """Spatial pyramid histograms of visual words (Lazebnik et al., 2006).

    ``fit`` fits a clone of the descriptor extractor, then learns a codebook of
    ``n_words`` visual words by :class:`~sklearn.cluster.MiniBatchKMeans` on at
    most ``max_descriptors`` descriptors drawn at random from the training
    images. ``transform`` assigns every patch of an image to its nearest word
    and counts the words in every cell of a spatial pyramid over the image
    (a patch belongs to the cell holding its centre; cells follow
    :func:`numpy.array_split` of the image pixels).

    Each level's histogram is divided by the number of patches and weighted as
    in Lazebnik et al. (``1/2**L`` for the coarsest of ``L + 1`` levels,
    ``1/2**(L - i + 1)`` for level ``i >= 1``), so every row sums to 1: ready
    for :func:`intersection_kernel`.

    Parameters
    ----------
    descriptors : estimator object
        Unfitted :class:`DenseMapDescriptors`, or any transformer exposing
        ``descriptor_shape_ = (n_patches, n_dims)``, ``patch_centers_`` and
        ``image_shape_`` once fitted, whose ``transform`` returns per image the
        ``(n_patches, n_dims)`` descriptors flattened.
    n_words : int, default=200
        Size of the codebook.
    levels : sequence of int, default=(1, 2, 4)
        Cells per image axis at each pyramid level, strictly increasing.
    max_descriptors : int, default=100_000
        Descriptors used to learn the codebook (taken from
        ``ceil(max_descriptors / n_patches)`` random training images).
    batch_size : int, default=64
        Images described at once in ``transform``.
    random_state : int, RandomState instance or None, default=None
        Draws the codebook's descriptors and seeds k-means.

    Attributes
    ----------
    descriptors_ : estimator object
        The fitted clone of ``descriptors``.
    kmeans_ : MiniBatchKMeans
        The codebook; ``kmeans_.cluster_centers_`` are the visual words.
    levels_ : tuple of int
        The validated ``levels``.
    level_weights_ : list of float
        Weight of each level's histogram.
    n_features_in_ : int
        Number of features seen during :term:`fit`.

    See Also
    --------
    DenseMapDescriptors : The descriptors of Zeiler et al.
    intersection_kernel : The kernel for the SVM on these histograms.

    Notes
    -----
    Output columns are ordered [level][word][cells], cells in C order (the
    order of :class:`SpatialPyramidPooling`, words playing the part of maps):
    ``n_words * sum(l**2 for l in levels)`` in all.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.svm import SVC
    >>> from skdeconv import DeconvNetworkTransformer
    >>> from skdeconv.pooling import (BagOfWordsPyramid, DenseMapDescriptors,
    ...                               intersection_kernel)
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.rand(8, 24 * 24), np.repeat([0, 1], 4)
    >>> net = DeconvNetworkTransformer(n_filters=(2, 3), filter_shape=3,
    ...                                connectivity="full", image_shape=(24, 24),
    ...                                max_iter=100, tol=1e-2, n_epochs=1, random_state=0)
    >>> bow = BagOfWordsPyramid(DenseMapDescriptors(net), n_words=5, levels=(1, 2),
    ...                         random_state=0)
    >>> model = make_pipeline(bow, SVC(kernel=intersection_kernel)).fit(X, y)
    >>> model[0].transform(X).shape   # 5 words * (1 + 4) cells
    (8, 25)
    """

    _parameter_constraints: dict = {
        "descriptors": [HasMethods(["fit", "transform"])],
        "n_words": [Interval(Integral, 1, None, closed="left")],
        "levels": ["array-like"],
        "max_descriptors": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, descriptors, *, n_words=200, levels=(1, 2, 4),
                 max_descriptors=100_000, batch_size=64, random_state=None):
        self.descriptors = descriptors
        self.n_words = n_words
        self.levels = levels
        self.max_descriptors = max_descriptors
        self.batch_size = batch_size
        self.random_state = random_state

    def _describe(self, X):
        """Descriptors ``(n, n_patches, n_dims)`` of images, by batches."""
        shape = self.descriptors_.descriptor_shape_
        return np.concatenate(
            [self.descriptors_.transform(X[batch]).reshape(-1, *shape)
             for batch in gen_batches(len(X), self.batch_size)]
        )

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the descriptor extractor and learn the codebook.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Images as rows.
        y : array-like of shape (n_samples,) or None, default=None
            Passed to the descriptor extractor's ``fit``.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        X = validate_data(self, X, dtype=_FLOAT_DTYPES)
        self.levels_ = _check_levels(self.levels)
        self.level_weights_ = _pyramid_weights(len(self.levels_))
        rng = check_random_state(self.random_state)
        self.descriptors_ = clone(self.descriptors).fit(X, y)
        n_patches, n_dims = self.descriptors_.descriptor_shape_
        n_images = min(len(X), math.ceil(self.max_descriptors / n_patches))
        images = np.sort(rng.choice(len(X), n_images, replace=False))
        pool = self._describe(X[images]).reshape(-1, n_dims)
        if len(pool) > self.max_descriptors:
            pool = pool[rng.choice(len(pool), self.max_descriptors, replace=False)]
        if len(pool) < self.n_words:
            raise ValueError(
                f"n_words={self.n_words} is larger than the {len(pool)} descriptors "
                "available to learn the codebook."
            )
        self.kmeans_ = MiniBatchKMeans(n_clusters=self.n_words, n_init=3,
                                       random_state=rng).fit(pool)
        centers, shape = self.descriptors_.patch_centers_, self.descriptors_.image_shape_
        self._cells = [_pyramid_cells(centers, shape, level) for level in self.levels_]
        self._n_features_out = self.n_words * sum(
            level ** len(shape) for level in self.levels_
        )
        return self

    def _histograms(self, words):
        """Weighted pyramid histograms of word indices ``(n, n_patches)``."""
        n_images, n_patches = words.shape
        n_spatial = len(self.descriptors_.image_shape_)
        blocks = []
        for level, cells, weight in zip(self.levels_, self._cells, self.level_weights_):
            size = self.n_words * level**n_spatial
            index = words * level**n_spatial + cells + size * np.arange(n_images)[:, None]
            counts = np.bincount(index.ravel(), minlength=size * n_images)
            blocks.append(counts.reshape(n_images, size) * (weight / n_patches))
        return np.concatenate(blocks, axis=1)

    def transform(self, X):
        """Pyramid histograms of the visual words of each image.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Images as rows.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_words * sum(l**2 for l in levels))
            Weighted histograms ordered [level][word][cells]; rows sum to 1.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=False)
        n_patches, n_dims = self.descriptors_.descriptor_shape_
        words = self.kmeans_.predict(self._describe(X).reshape(-1, n_dims))
        return self._histograms(words.reshape(len(X), n_patches))

    def get_feature_names_out(self, input_features=None):
        """Get output feature names for transformation.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen in :meth:`fit`.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``bagofwordspyramid_level<l>_word<k>_bin<i>_<j>`` in output order.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        return _pyramid_feature_names(
            type(self).__name__.lower(), self.n_words, "word",
            len(self.descriptors_.image_shape_), self.levels_,
        )


# ------------------------------------------------------------------------ kernel
@validate_params(
    {"X": ["array-like"], "Y": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def intersection_kernel(X, Y=None):
    """Histogram intersection kernel ``K[i, j] = sum_k min(X[i, k], Y[j, k])``.

    Positive semi-definite on non-negative features such as the histograms of
    :class:`BagOfWordsPyramid`. Pass it as ``SVC(kernel=intersection_kernel)``,
    or precompute it for ``SVC(kernel="precomputed")``.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        First set of histograms.
    Y : array-like of shape (n_samples_Y, n_features), default=None
        Second set; ``None`` means ``Y = X``.

    Returns
    -------
    kernel : ndarray of shape (n_samples_X, n_samples_Y)
        Computed in row chunks to bound memory.

    Examples
    --------
    >>> from skdeconv.pooling import intersection_kernel
    >>> intersection_kernel([[0.5, 0.5], [1.0, 0.0]])
    array([[1. , 0.5],
           [0.5, 1. ]])
    """
    X, Y = check_pairwise_arrays(X, Y)
    kernel = np.empty((len(X), len(Y)), dtype=X.dtype)
    chunk = max(1, _KERNEL_CHUNK_ELEMENTS // max(1, Y.size))
    for rows in gen_batches(len(X), chunk):
        kernel[rows] = np.minimum(X[rows, None, :], Y[None, :, :]).sum(axis=2)
    return kernel


# ------------------------------------------------------------------------ loader
def load_image_folder(path, *, image_size=(150, 150), as_gray=True):
    """Load a folder-per-class image tree, such as Caltech-101.

    Every sub-folder of ``path`` (hidden ones excepted) is a class, named after
    the folder; its image files (png, jpg, ...: Pillow reads them) are resized
    to ``image_size``, ignoring the aspect ratio, as in the Caltech-101
    protocol. Needs Pillow (``pip install "skdeconv[images]"``).

    Parameters
    ----------
    path : str or path-like
        Root folder.
    image_size : tuple of int, default=(150, 150)
        ``(height, width)`` of the returned images.
    as_gray : bool, default=True
        Convert to gray levels; otherwise to RGB.

    Returns
    -------
    images : ndarray of shape (n_images, height, width) or (n_images, height, width, 3)
        Pixel values in [0, 1], float64, channels last for RGB.
    y : ndarray of shape (n_images,)
        Class index of every image into ``class_names``.
    class_names : list of str
        Sorted names of the folders holding at least one image.

    Examples
    --------
    >>> from skdeconv.pooling import load_image_folder
    >>> images, y, class_names = load_image_folder("101_ObjectCategories")  # doctest: +SKIP
    """
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_image_folder needs Pillow; install the 'images' extra: "
            "pip install 'skdeconv[images]'."
        ) from exc
    size = tuple(image_size)
    if len(size) != 2 or not all(_is_positive_int(s) for s in size):
        raise ValueError(
            f"image_size must be (height, width) with positive ints, got {image_size!r}."
        )
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"path {str(root)!r} is not a directory.")
    mode = "L" if as_gray else "RGB"
    images, labels, class_names = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
        if not files:
            continue
        for file in files:
            with Image.open(file) as image:
                image = image.convert(mode).resize(size[::-1], Image.Resampling.BILINEAR)
                images.append(np.asarray(image, dtype=np.float64) / 255.0)
        labels += [len(class_names)] * len(files)
        class_names.append(folder.name)
    if not images:
        raise ValueError(f"no image files in the sub-folders of {str(root)!r}.")
    return np.stack(images), np.asarray(labels, dtype=np.intp), class_names
