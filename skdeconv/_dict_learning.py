"""conv_dict_learning: the function form of ``ConvSparseCoder.fit``."""

from sklearn.utils._param_validation import validate_params

from ._coder import ConvSparseCoder
from ._warnings import single_convergence_warning


# The estimator validates its own parameters (as scikit-learn's
# dict_learning_online leaves them to MiniBatchDictionaryLearning).
@single_convergence_warning
@validate_params({"X": ["array-like"]}, prefer_skip_nested_validation=False)
def conv_dict_learning(
    X, n_filters, filter_shape, *, image_shape=None, connectivity=None, lmbda=1.0,
    p=1.0, solver="auto", max_iter=1000, tol=1e-3, n_epochs=100, fit_algorithm="interleaved",
    filters_init=None, n_jobs=None, random_state=None, verbose=0,
):
    """Learn convolutional filters and sparse maps of X (one layer).

    Minimises over the maps and unit-norm filter planes::

        sum_n lambda/2 * sum_c ||sum_k g[k,c] conv_valid(z_nk, f_kc) - x_nc||^2
              + sum_k |z_nk|_p^p

    by alternating updates of the maps and of the filters, for ``n_epochs``
    epochs (passes over the samples).  The function form of
    :meth:`ConvSparseCoder.fit`: it builds the estimator, fits it and
    returns the maps of the training samples with the learned filters.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows flattened in C order as ``(n_channels, *image_shape)``.
    n_filters : int
        Number of feature maps ``K``.
    filter_shape : int or tuple of int
        Spatial filter shape (an int is used on every axis).
    image_shape : tuple of int, default=None
        Spatial shape of each channel; ``None`` means 1-D signals of length
        ``n_features``.
    connectivity : {None, 'full', 'singles_and_pairs', 'random_pairs', \
'random_<m>'} or array-like of shape (n_filters, n_channels), default=None
        Which (map, channel) planes exist; see :func:`make_connectivity`.
    lmbda : float or 'auto', default=1.0
        Weight of the reconstruction term; see :class:`ConvSparseCoder`.
    p : float in (0, 1], default=1.0
        Exponent of the sparsity penalty.
    solver : {'auto', 'fista', 'admm', 'continuation'}, default='auto'
        Map solver, as in :func:`conv_sparse_encode`.  With 'interleaved',
        'auto' runs one solver for the whole fit: the choice of most
        training samples at the initial filters ('fista' for inputs of
        more than 8 channels); with 'alternating' it chooses per sample at
        every epoch.
    max_iter : int, default=1000
        Iterations of map inference per sample in each epoch of
        'alternating' (at most 50 per mini-batch for 'online'); not used by
        'interleaved'.
    tol : float, default=1e-3
        Stopping tolerance of that map inference, as in
        :func:`conv_sparse_encode`.
    n_epochs : int, default=100
        Epochs: passes over the samples, each ending with a filter update.
    fit_algorithm : {'interleaved', 'alternating', 'online'}, default='interleaved'
        'interleaved': every epoch advances each sample's map solver
        ('fista' or 'admm') by ONE iteration - its iterate, momentum or ADMM
        duals carried over from the previous epoch - then takes one
        accelerated projected-gradient step on the filters, with a
        backtracked step per input channel (the scheme of SPORCO's
        dictionary learning; Garcia-Cardona & Wohlberg, 2018).  Epochs are
        cheap: use 100 to a few hundred.  'alternating': the paper's block
        scheme; every epoch infers the maps (warm started) within
        ``max_iter`` / ``tol``, then takes up to 30 projected-gradient
        filter steps; the cost never increases (p=1), ~10 epochs suffice,
        each costing a full inference (docs/performance.rst compares the
        two).  'online': mini-batches of 10 random crops (see
        :class:`ConvSparseCoder`); ``n_epochs`` counts mini-batches.
    filters_init : array-like of shape (n_filters, n_channels, *filter_shape), \
default=None
        Initial filters (projected to unit norm); random normal when None.
    n_jobs : int, default=None
        Joblib workers over chunks of samples.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial filters and random connectivity presets.
    verbose : int, default=0
        Print the cost and time every 10 epochs (every epoch if > 1).

    Returns
    -------
    maps : ndarray of shape (n_samples, n_filters * prod(map_shape))
        Maps of the last epoch.
    filters : ndarray of shape (n_filters, n_channels, *filter_shape)
        Learned unit-norm filters (exact zeros where g[k, c] = 0).
    cost_history : ndarray of shape (n_epochs,)
        Mean per-sample cost after each epoch.

    See Also
    --------
    ConvSparseCoder : The estimator this function builds and fits.
    conv_sparse_encode : Maps for fixed filters.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv import conv_dict_learning
    >>> X = np.random.RandomState(0).standard_normal((4, 30))
    >>> maps, filters, costs = conv_dict_learning(
    ...     X, n_filters=3, filter_shape=5, n_epochs=50, random_state=0)
    >>> maps.shape, filters.shape
    ((4, 102), (3, 1, 5))
    >>> bool(costs[-1] < costs[0])
    True
    """
    coder = ConvSparseCoder(
        n_filters, filter_shape, image_shape=image_shape, connectivity=connectivity,
        lmbda=lmbda, p=p, solver=solver, max_iter=max_iter, tol=tol, n_epochs=n_epochs,
        fit_algorithm=fit_algorithm, filters_init=filters_init, n_jobs=n_jobs,
        random_state=random_state, verbose=verbose,
    )
    maps = coder._fit_with_maps(X)
    return maps.reshape(len(maps), -1), coder.filters_, coder.cost_history_
