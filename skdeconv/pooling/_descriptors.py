"""The Caltech-101 pipeline of Zeiler et al. (CVPR 2010): dense descriptors, bag of words.

:class:`DenseMapDescriptors` describes dense patches by the mean ``|maps|``
of a network's layers; :class:`BagOfWordsPyramid` quantises them into visual
words and counts them over a spatial pyramid (Lazebnik et al., 2006).
"""

import math
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.cluster import MiniBatchKMeans
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)

from .._geometry import FLOAT_DTYPES, layer_numbers
from ._pyramid import _bin_sizes, _check_levels, _pyramid_feature_names


# --------------------------------------------------------------- dense descriptors
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
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
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
        self.layers_ = tuple(layer_numbers(self.layers, len(self.network_.pipeline_)))
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
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        return np.concatenate(
            [self._describe(X[batch]).reshape(batch.stop - batch.start, -1)
             for batch in gen_batches(len(X), self.batch_size)]
        )



# ------------------------------------------------------------- bag of words
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
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
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
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
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

