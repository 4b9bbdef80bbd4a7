"""Choosing lambda without labels: scoring held-out pixels."""

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._encode import conv_sparse_encode
from ._warnings import single_convergence_warning


@single_convergence_warning
def heldout_pixel_score(estimator, X, y=None, *, fraction=0.2, random_state=0):
    """Score a fitted coder by minus its relative error on hidden pixels.

    A random ``fraction`` of the pixels of every sample is hidden; the maps
    are inferred from the visible pixels only (:func:`conv_sparse_encode`
    with a ``mask``: the data term ``lambda/2 ||W (F z - y)||^2 + |z|_p^p``,
    solved by the solver ``solver='auto'`` picks for it) and the hidden
    pixels are predicted by ``F z`` (``estimator.inverse_transform``).  The score is
    ``-sum_hidden (F z - y)^2 / sum_hidden y^2`` (higher is better).  Unlike
    ``estimator.score`` (minus the model's cost, which always prefers the
    smallest ``lmbda``), it is not monotone in ``lmbda``: too small leaves
    the maps empty, too large fits the visible pixels' noise.  It has the
    signature of a scikit-learn scorer, so pass it as
    ``GridSearchCV(..., scoring=heldout_pixel_score)``.

    Parameters
    ----------
    estimator : ConvSparseCoder
        A fitted coder; its ``lmbda``, ``p``, ``max_iter``, ``tol`` and
        ``n_jobs`` are used.
    X : array-like of shape (n_samples, n_features)
        Samples.
    y : Ignored
        Not used, present for the scorer API.
    fraction : float in (0, 1), default=0.2
        Fraction of the pixels hidden.
    random_state : int, RandomState instance or None, default=0
        Draws the hidden pixels (fixed by default, so that every candidate
        of a grid search is scored on the same pixels).

    Returns
    -------
    score : float
        Minus the relative squared error on the hidden pixels.

    See Also
    --------
    conv_sparse_encode : Its ``mask`` gives the masked data term.
    ConvSparseCoder.score : Minus the model's cost (monotone in ``lmbda``).

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv import ConvSparseCoder, heldout_pixel_score
    >>> t = np.linspace(0, 6 * np.pi, 60)
    >>> X = np.sin(t + np.arange(8)[:, None])
    >>> coder = ConvSparseCoder(4, 9, lmbda=10, n_epochs=3, random_state=0).fit(X)
    >>> bool(-1 < heldout_pixel_score(coder, X) < 0)
    True
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}.")
    check_is_fitted(estimator)
    X = validate_data(estimator, X, dtype=[np.float64, np.float32], reset=False)
    scale = estimator.input_scale_
    if scale != 1.0:
        X = X / np.asarray(scale, dtype=X.dtype)
    hidden = check_random_state(random_state).random_sample(X.shape) < fraction
    maps = conv_sparse_encode(
        X, estimator.filters_, image_shape=estimator.image_shape_,
        connectivity=estimator.connectivity_, lmbda=estimator.lmbda_, p=estimator.p,
        max_iter=estimator.max_iter, tol=estimator.tol, mask=~hidden, n_jobs=estimator.n_jobs,
    )
    error = estimator.inverse_transform(maps)
    if scale != 1.0:
        error = error / np.asarray(scale, dtype=error.dtype)
    error -= X
    reference = float(np.sum(X[hidden] ** 2))
    return -float(np.sum(error[hidden] ** 2)) / max(reference, np.finfo(float).tiny)
