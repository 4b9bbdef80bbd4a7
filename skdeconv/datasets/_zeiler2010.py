"""Loader for the fruit and city images of Zeiler et al. (CVPR 2010)."""

from importlib import resources

import numpy as np

_SUBSETS = {"fruit": ("fruit",), "city": ("city",), "all": ("fruit", "city")}

# Luma weights of skimage.color.rgb2gray (ITU-R BT.709 primaries).
_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])


def _read_pixels(names):
    """Return the uint8 RGB arrays ``names`` of the bundled file, stacked."""
    data = resources.files(__package__) / "data" / "zeiler2010.npz"
    with resources.as_file(data) as path, np.load(path) as stored:
        return np.concatenate([stored[name] for name in names])


def load_zeiler2010(subset="fruit", *, as_gray=False, dtype=np.float64):
    """Load the fruit and city images used in the Deconvolutional Networks paper.

    Ten 100x100 RGB photographs of fruit and ten of city scenes, from the
    toolbox of Zeiler, Krishnan, Taylor and Fergus, "Deconvolutional
    Networks", CVPR 2010. The pixels are bundled with skdeconv (see
    ``skdeconv/datasets/data/README.md`` for their source), so no network or
    image library is needed.

    Parameters
    ----------
    subset : {"fruit", "city", "all"}, default="fruit"
        Which images to return; ``"all"`` gives the 10 fruit images followed
        by the 10 city images.

    as_gray : bool, default=False
        If True, convert to gray levels with the luma weights of
        :func:`skimage.color.rgb2gray` (0.2125 R + 0.7154 G + 0.0721 B,
        ITU-R BT.709). Note that MATLAB's ``rgb2gray``, which the authors'
        toolbox used, applies the ITU-R BT.601 weights (0.299, 0.587, 0.114)
        instead, so gray levels differ slightly from the toolbox's.

    dtype : float dtype, default=np.float64
        Floating point type of the returned array.

    Returns
    -------
    images : ndarray of shape (n_images, 100, 100, 3) or (n_images, 100, 100)
        Pixel values in [0, 1]; ``n_images`` is 10, or 20 for ``"all"``. The
        last axis holds the R, G, B channels unless ``as_gray`` is True. Use
        :func:`skdeconv.preprocessing.images_to_rows` to obtain estimator input.

    See Also
    --------
    load_image_folder : Load one's own folder-per-class image tree.
    skdeconv.preprocessing.images_to_rows : Images as the rows estimators take.

    Examples
    --------
    >>> from skdeconv.datasets import load_zeiler2010
    >>> images = load_zeiler2010("city")
    >>> images.shape, images.dtype
    ((10, 100, 100, 3), dtype('float64'))
    >>> gray = load_zeiler2010("all", as_gray=True, dtype="float32")
    >>> gray.shape, gray.dtype
    ((20, 100, 100), dtype('float32'))
    >>> bool(0.0 <= gray.min() and gray.max() <= 1.0)
    True
    """
    if not isinstance(subset, str) or subset not in _SUBSETS:
        raise ValueError(
            f"subset must be one of {sorted(_SUBSETS)}, got {subset!r}."
        )
    if not isinstance(as_gray, (bool, np.bool_)):
        raise TypeError(f"as_gray must be a bool, got {as_gray!r}.")
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a floating point type, got {dtype!r}.") from exc
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating point type, got {dtype}.")

    images = _read_pixels(_SUBSETS[subset]) / 255.0
    if as_gray:
        images = images @ _GRAY_WEIGHTS
    return images.astype(dtype, copy=False)
