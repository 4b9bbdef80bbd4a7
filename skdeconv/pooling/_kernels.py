"""The histogram intersection kernel, for SVMs on bag-of-words histograms."""

import numpy as np
from sklearn.metrics.pairwise import check_pairwise_arrays
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import validate_params

# Elements of the largest temporary array in intersection_kernel (32 MB in float64).
_KERNEL_CHUNK_ELEMENTS = 2**22


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

    See Also
    --------
    BagOfWordsPyramid : Histograms for this kernel.
    sklearn.svm.SVC : The classifier taking it as ``kernel``.

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
