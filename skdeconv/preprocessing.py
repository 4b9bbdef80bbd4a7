"""Preprocessing: image stacks <-> rows, and local contrast normalisation.

Estimators of skdeconv take 2-D ``X`` of shape ``(n_samples, n_features)``, each
row one sample flattened in C order, channels first: ``(n_channels,
*image_shape)``. :func:`images_to_rows` and :func:`rows_to_images` convert
between that layout and image stacks; :class:`LocalContrastNormalizer` (and its
function form :func:`local_contrast_normalize`) is the contrast normalisation
applied to images before a Deconvolutional Network learns from them.
"""

from numbers import Integral, Real

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import validate_data

from ._geometry import FLOAT_DTYPES, infer_n_channels, positive_int_tuple

__all__ = [
    "LocalContrastNormalizer",
    "images_to_rows",
    "local_contrast_normalize",
    "rows_to_images",
]

def _check_image_shape(image_shape):
    """Return ``image_shape`` as a tuple of positive ints (an int means 1-D)."""
    if isinstance(image_shape, Integral):
        image_shape = (image_shape,)
    return positive_int_tuple(image_shape, "image_shape")


def _check_channel_axis(channel_axis, ndim):
    """Return ``channel_axis`` as a non-negative axis of an ``ndim`` array."""
    if (
        isinstance(channel_axis, bool)
        or not isinstance(channel_axis, Integral)
        or not (-ndim < channel_axis < ndim)
        or channel_axis % ndim == 0
    ):
        raise ValueError(
            "channel_axis must be None or an axis of the images other than the "
            f"sample axis 0, i.e. in [1, {ndim - 1}] or [{1 - ndim}, -1] for "
            f"{ndim}-D images, got {channel_axis!r}."
        )
    return int(channel_axis) % ndim


def images_to_rows(images, *, channel_axis=None):
    """Flatten a stack of images (or signals) into the rows skdeconv expects.

    Estimators take 2-D ``X`` only; this helper moves the channel axis first
    and flattens every sample in C order. :func:`rows_to_images` inverts it.

    Parameters
    ----------
    images : array-like of shape (n_samples, *image_shape) or with a channel axis
        A stack of images ``(n_samples, height, width)``, of multichannel
        images such as ``(n_samples, height, width, n_channels)``, or of 1-D
        signals ``(n_samples, length)``.

    channel_axis : int or None, default=None
        Axis of ``images`` that holds the channels, e.g. ``-1`` for
        ``(n, H, W, C)`` or ``1`` for ``(n, C, H, W)``. ``None`` means single
        channel: every axis but the first is spatial.

    Returns
    -------
    X : ndarray of shape (n_samples, n_channels * prod(image_shape))
        Each row is one sample flattened in C order, channels first
        ``(n_channels, *image_shape)``. Same dtype as ``images``; a view of
        it when no axis has to move.

    See Also
    --------
    rows_to_images : The inverse conversion.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv.preprocessing import images_to_rows
    >>> rgb = np.zeros((5, 32, 24, 3))
    >>> images_to_rows(rgb, channel_axis=-1).shape
    (5, 2304)
    >>> images_to_rows(np.zeros((5, 32, 24))).shape
    (5, 768)
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(
            "images must have a sample axis and at least one spatial axis, got "
            f"an array of shape {images.shape}."
        )
    if channel_axis is not None:
        if images.ndim < 3:
            raise ValueError(
                "images with a channel axis need at least 3 dimensions "
                f"(n_samples, *image_shape, n_channels), got shape {images.shape}."
            )
        images = np.moveaxis(images, _check_channel_axis(channel_axis, images.ndim), 1)
    return images.reshape(images.shape[0], -1)


def rows_to_images(X, image_shape, *, channel_axis=None):
    """Reshape rows of flattened images back into a stack of images.

    The inverse of :func:`images_to_rows`; also shapes the rows of feature
    maps of ``transform`` into an array of maps.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows flattened in C order, channels first ``(n_channels,
        *image_shape)``, as produced by :func:`images_to_rows` or by the
        ``transform`` of a skdeconv estimator (whose feature maps are rows of
        layout ``(n_filters, *map_shape)``).

    image_shape : int or tuple of int
        Spatial shape of one channel. ``n_channels = n_features //
        prod(image_shape)`` is inferred.

    channel_axis : int or None, default=None
        Where to put the channel axis in the output, e.g. ``-1`` for
        ``(n, H, W, C)`` or ``1`` for ``(n, C, H, W)``. ``None`` returns
        ``(n, *image_shape)`` and requires a single channel.

    Returns
    -------
    images : ndarray of shape (n_samples, *image_shape), or with a channel axis
        A view of ``X``.

    Raises
    ------
    ValueError
        If ``n_features`` is not a multiple of ``prod(image_shape)``, or if
        ``X`` has several channels and ``channel_axis`` is None.

    See Also
    --------
    images_to_rows : The inverse conversion.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv.preprocessing import rows_to_images
    >>> X = np.arange(2 * 3 * 4 * 5).reshape(2, -1)
    >>> rows_to_images(X, (4, 5), channel_axis=-1).shape
    (2, 4, 5, 3)
    >>> rows_to_images(X, (4, 5), channel_axis=1).shape
    (2, 3, 4, 5)
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
    image_shape = _check_image_shape(image_shape)
    n_channels = infer_n_channels(X.shape[1], image_shape)
    if channel_axis is None:
        if n_channels != 1:
            raise ValueError(
                f"X has {n_channels} channels of shape {image_shape} "
                f"(n_features={X.shape[1]}); pass channel_axis (e.g. -1 or 1) "
                "to keep them."
            )
        return X.reshape(X.shape[0], *image_shape)
    images = X.reshape(X.shape[0], n_channels, *image_shape)
    return np.moveaxis(images, 1, _check_channel_axis(channel_axis, images.ndim))


def _gaussian_weights(kernel_size, sigma, dtype):
    """Normalised 1-D Gaussian window; its outer product over axes is the N-D one."""
    offsets = np.arange(kernel_size) - (kernel_size - 1) / 2
    weights = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return (weights / weights.sum()).astype(dtype)


def _local_mean(planes, weights):
    """Gaussian-weighted mean over the spatial axes 1.. with reflect boundaries."""
    for axis in range(1, planes.ndim):
        planes = ndimage.correlate1d(planes, weights, axis=axis, mode="reflect")
    return planes


def _local_contrast_normalize_planes(planes, kernel_size, sigma, std_floor, low_pass_sigma):
    """LCN of each plane of ``planes`` (n_planes, *spatial); returns a new array."""
    spatial_axes = tuple(range(1, planes.ndim))
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
    weights = _gaussian_weights(kernel_size, sigma, planes.dtype)
    if low_pass_sigma > 0:
        planes = ndimage.gaussian_filter(
            planes, (0,) + (low_pass_sigma,) * len(spatial_axes), mode="reflect"
        )
    # LCN is invariant to a constant offset per plane: removing it first only
    # avoids cancellation in E[x^2] - E[x]^2.
    centred = planes - planes.mean(axis=spatial_axes, keepdims=True)
    # ... and to the scale of a plane (a fixed floor scales with it): work at
    # unit scale, exactly (a power of two), so that squares cannot overflow
    # or underflow.
    largest = np.max(np.abs(centred), axis=spatial_axes, keepdims=True)
    exponent = np.minimum(-np.frexp(largest)[1], np.finfo(planes.dtype).maxexp - 1)
    scale = np.ldexp(np.ones_like(largest), exponent)
    centred = centred * scale
    local_mean = _local_mean(centred, weights)
    local_var = _local_mean(centred**2, weights) - local_mean**2
    local_std = np.sqrt(np.maximum(local_var, 0))
    if std_floor == "mean":
        floor = local_std.mean(axis=spatial_axes, keepdims=True)
    elif std_floor == "median":
        floor = np.median(local_std, axis=spatial_axes, keepdims=True)
    else:
        floor = std_floor * scale
    divisor = np.maximum(local_std, floor)
    # A flat plane (zero floor) is left centred rather than divided by zero.
    normalized = (centred - local_mean) / np.where(divisor > 0, divisor, 1)
    return normalized - normalized.mean(axis=spatial_axes, keepdims=True)


_LCN_CONSTRAINTS = {
    "kernel_size": [Interval(Integral, 1, None, closed="left")],
    "sigma": [Interval(Real, 0, None, closed="neither")],
    "std_floor": [
        StrOptions({"mean", "median"}),
        Interval(Real, 0, None, closed="left"),
    ],
    "low_pass_sigma": [Interval(Real, 0, None, closed="left")],
}


@validate_params(
    {"images": ["array-like"], "channel_axis": [None, Integral], **_LCN_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def local_contrast_normalize(
    images, *, channel_axis=None, kernel_size=25, sigma=4.0, std_floor="mean",
    low_pass_sigma=1.0,
):
    """Local contrast normalisation of every channel plane of every image.

    Each plane ``x`` (one channel of one image) becomes::

        x = B * x                                  # low-pass (low_pass_sigma)
        v = x - G * x                              # subtract the local mean
        s = sqrt(G * x**2 - (G * x)**2)            # local standard deviation
        y = v / max(s, floor);  y = y - mean(y)    # divide, then zero mean

    where ``G *`` is correlation with a normalised Gaussian window of
    ``kernel_size`` pixels per spatial axis and ``B *`` a Gaussian blur of
    standard deviation ``low_pass_sigma``. Read more in the documentation
    of :class:`LocalContrastNormalizer`.

    Parameters
    ----------
    images : array-like of shape (n_samples, *image_shape), or with a channel axis
        Image stack (any number of spatial axes, e.g. 1-D signals
        ``(n_samples, length)``); integers are converted to float64.

    channel_axis : int or None, default=None
        Axis of ``images`` holding the channels, normalised independently;
        ``None`` means a single channel.

    kernel_size : int, default=25
        Odd width of the Gaussian window along every spatial axis.

    sigma : float, default=4.0
        Standard deviation of the Gaussian window, in pixels (see
        :class:`LocalContrastNormalizer` for the choice).

    std_floor : {"mean", "median"} or float, default="mean"
        Lower bound of the local standard deviation: its mean or median over
        the plane, or a fixed value (in the units of ``images``).

    low_pass_sigma : float, default=1.0
        Standard deviation, in pixels, of the Gaussian blur applied first
        (0: none; see :class:`LocalContrastNormalizer` for the choice).

    Returns
    -------
    normalized : ndarray of the shape of ``images``
        In float32 if ``images`` is float32, float64 otherwise; every plane
        has zero mean.

    See Also
    --------
    LocalContrastNormalizer : The same as a scikit-learn transformer on rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv.preprocessing import local_contrast_normalize
    >>> rng = np.random.default_rng(0)
    >>> images = rng.random((4, 16, 16, 3))
    >>> normalized = local_contrast_normalize(images, channel_axis=-1)
    >>> normalized.shape
    (4, 16, 16, 3)
    >>> bool(np.allclose(normalized.mean(axis=(1, 2)), 0))
    True
    """
    images = check_array(
        images, allow_nd=True, dtype=FLOAT_DTYPES, input_name="images"
    )
    X = images_to_rows(images, channel_axis=channel_axis)
    spatial_shape = images.shape[1:]
    if channel_axis is not None:
        axis = _check_channel_axis(channel_axis, images.ndim)
        spatial_shape = images.shape[1:axis] + images.shape[axis + 1 :]
    normalized = _normalize_rows(
        X, spatial_shape, kernel_size, sigma, std_floor, low_pass_sigma
    )
    return rows_to_images(normalized, spatial_shape, channel_axis=channel_axis)


def _normalize_rows(X, image_shape, kernel_size, sigma, std_floor, low_pass_sigma):
    """LCN of rows laid out ``(n_channels, *image_shape)``; returns rows."""
    n_channels = infer_n_channels(X.shape[1], image_shape)
    planes = X.reshape(X.shape[0] * n_channels, *image_shape)
    normalized = _local_contrast_normalize_planes(
        planes, kernel_size, sigma, std_floor, low_pass_sigma
    )
    return normalized.reshape(X.shape)


class LocalContrastNormalizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Local contrast normalisation of images stored as rows.

    Every channel plane of every sample is normalised on its own, as the
    authors of Deconvolutional Networks (Zeiler et al., CVPR 2010) do to
    their images before learning: blur it slightly (a Gaussian of standard
    deviation ``low_pass_sigma``), subtract the local mean (correlation with
    a normalised ``kernel_size`` Gaussian window of standard deviation
    ``sigma``), divide by the Gaussian-weighted local standard deviation
    ``sqrt(G * x**2 - (G * x)**2)`` bounded below by ``std_floor``, and
    finally subtract the plane's mean so that each plane has zero mean.

    The transformer is stateless: ``fit`` only records the number of
    features, and ``transform`` treats each row independently.

    Parameters
    ----------
    image_shape : int, tuple of int or None, default=None
        Spatial shape of one channel of a sample; the number of channels is
        inferred as ``n_features // prod(image_shape)`` (rows are flattened
        channels first, see :func:`images_to_rows`). ``None`` means each row is
        a 1-D signal of length ``n_features``.

    kernel_size : int, default=25
        Odd width of the Gaussian window along every spatial axis.

    sigma : float, default=4.0
        Standard deviation of the Gaussian window, in pixels.  The authors'
        toolbox (and Jarrett et al., 2009) use ``kernel_size=5,
        sigma=1.591``; that narrow window keeps mostly pixel-scale detail and
        7x7 filters learned on it come out speckled (the user guide,
        "Preparing your own images", counts the edge-like filters learned
        with each window).

    std_floor : {"mean", "median"} or float, default="mean"
        Lower bound of the local standard deviation, so flat regions are not
        amplified: ``"mean"`` (the mean of the local standard deviation over
        the plane, as Jarrett et al. 2009), ``"median"`` (its median, as a
        later release of the authors' toolbox), or a fixed value in the units
        of ``X`` (an early toolbox release uses 1 for pixels in [0, 255]).

    low_pass_sigma : float, default=1.0
        Standard deviation, in pixels, of a Gaussian blur applied before
        normalising (0: none).  With the subtraction of the local mean it
        makes a band-pass filter, as the whitening filters of sparse coding
        roll off the highest frequencies (Olshausen & Field, 1997): in
        photographs those carry aliasing and pixel-scale texture, which
        7x7 filters otherwise learn as speckle.  With the default, every
        filter of a default :class:`~skdeconv.ConvSparseCoder` on the
        fruit images and on scikit-image's camera is edge-like; without
        it, 4 to 6 of 12 on the camera (the user guide, "Preparing your
        own images", has the counts).  The blur also removes what tells
        fine textures apart: to classify textures, pass 0 (the user guide's
        texture task: accuracy 0.97 with 0, 0.89 with 1, one seed).

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    local_contrast_normalize : Function form, on image stacks.
    images_to_rows : Build ``X`` from an image stack.

    Notes
    -----
    Boundaries are handled by :func:`scipy.ndimage.correlate1d` with
    ``mode="reflect"`` (the plane is extended by its mirror image including
    the edge pixel, ``d c b a | a b c d | d c b a``). The toolbox's
    ``rconv2`` mirrors about the edge pixel instead (scipy's ``"mirror"``);
    results differ only within ``kernel_size // 2`` pixels of the border.
    A plane with zero local standard deviation everywhere (and a zero floor)
    is only centred.

    References
    ----------
    M. D. Zeiler, D. Krishnan, G. W. Taylor and R. Fergus, "Deconvolutional
    Networks", CVPR 2010.

    K. Jarrett, K. Kavukcuoglu, M. Ranzato and Y. LeCun, "What is the best
    multi-stage architecture for object recognition?", ICCV 2009.

    B. A. Olshausen and D. J. Field, "Sparse coding with an overcomplete
    basis set: a strategy employed by V1?", Vision Research 37, 1997.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv.datasets import load_zeiler2010
    >>> from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows
    >>> images = load_zeiler2010("fruit", as_gray=True)
    >>> X = images_to_rows(images)
    >>> lcn = LocalContrastNormalizer(image_shape=(100, 100))
    >>> Xt = lcn.fit_transform(X)
    >>> Xt.shape
    (10, 10000)
    >>> bool(np.allclose(Xt.mean(axis=1), 0))
    True
    """

    _parameter_constraints: dict = {
        "image_shape": [None, Interval(Integral, 1, None, closed="left"), "array-like"],
        **_LCN_CONSTRAINTS,
    }

    def __init__(
        self, image_shape=None, kernel_size=25, sigma=4.0, std_floor="mean", low_pass_sigma=1.0
    ):
        self.image_shape = image_shape
        self.kernel_size = kernel_size
        self.sigma = sigma
        self.std_floor = std_floor
        self.low_pass_sigma = low_pass_sigma

    def fit(self, X, y=None):
        """Check the parameters and record the number of features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples as rows (see ``image_shape``).

        y : None
            Ignored.

        Returns
        -------
        self : object
            The transformer.
        """
        self._validate_params()
        validate_data(self, X, dtype=FLOAT_DTYPES)
        return self

    def transform(self, X):
        """Contrast-normalise every channel plane of every row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples as rows (see ``image_shape``).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Normalised rows; float32 if ``X`` is float32, float64 otherwise.
        """
        self._validate_params()
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        image_shape = (
            (X.shape[1],)
            if self.image_shape is None
            else _check_image_shape(self.image_shape)
        )
        return _normalize_rows(
            X, image_shape, self.kernel_size, self.sigma, self.std_floor, self.low_pass_sigma
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
