"""Spatial pyramid pooling of feature maps (arrays, rows, a wrapped coder)."""

import math

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils import check_array, get_tags
from sklearn.utils._param_validation import HasMethods, StrOptions, validate_params
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)

from .._geometry import FLOAT_DTYPES, is_positive_int, positive_int_tuple


# --------------------------------------------------------------------------- helpers
def _check_levels(levels):
    """Return ``levels`` as a tuple of ints, or raise a ValueError."""
    levels = tuple(levels)
    valid = (
        len(levels) > 0
        and all(is_positive_int(lv) for lv in levels)
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
    shape = positive_int_tuple(map_shape, "map_shape")
    size = math.prod(shape)
    if n_features % size:
        raise ValueError(
            f"X has {n_features} features, which is not a multiple of the "
            f"{size} values of one map of map_shape={shape}."
        )
    return n_features // size, shape


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

    See Also
    --------
    SpatialPyramidPooling : The same pooling as a transformer of rows.
    PyramidPooledMaps : The pooling of the maps of a wrapped coder.

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
    maps = check_array(maps, dtype=FLOAT_DTYPES, allow_nd=True, input_name="maps")
    if maps.ndim < 3:
        raise ValueError(
            "maps must have shape (n_samples, n_maps, *map_shape) with at least one "
            f"spatial axis, got an array of shape {maps.shape}."
        )
    return _spatial_pyramid_pool(maps, _check_levels(levels), pooling, absolute)


class _PyramidPoolingMixin:
    """Shared pooling of rows of maps.

    Needs ``n_maps_``, ``map_shape_``, ``levels_`` (set by ``_set_pyramid``) and
    ``_maps(X)``, the rows of flattened maps of validated ``X``.
    """

    def _pool_transform(self, X):
        """``transform``: validate ``X``, pool the maps of its rows."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        return self._pool_rows(self._maps(X))

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
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
        self._set_pyramid(*_check_map_shape(self.map_shape, X.shape[1]))
        return self

    def _maps(self, X):
        """Rows of flattened maps: ``X`` itself."""
        return X

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
        return self._pool_transform(X)

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
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
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

    def _maps(self, X):
        """Rows of flattened maps: what the fitted estimator infers for ``X``."""
        return np.asarray(self.estimator_.transform(X))

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
        return self._pool_transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator).transformer_tags
        if inner is not None:
            tags.transformer_tags.preserves_dtype = list(inner.preserves_dtype)
        return tags

