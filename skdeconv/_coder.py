"""ConvSparseCoder: one layer of a Deconvolutional Network."""

from math import prod
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._connectivity import _make_connectivity
from ._encode import (
    _COMMON_PARAMS,
    _SHAPE_CONSTRAINT,
    _costs,
    _encode,
    _reconstruct,
    warn_not_converged,
)
from ._learning import FIT_ALGORITHMS, check_fit_algorithm, init_filters, learn_filters
from ._lmbda import scale_free_weights
from ._warnings import single_convergence_warning, warn_if_dead_layer
from ._geometry import check_filter_shape, check_image_shape, map_shape_of
from ._online import ONLINE_MAX_ITER, OnlineStatistics, check_fit_memory, online_step


class ConvSparseCoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """One Deconvolutional Network layer: convolutional sparse coding.

    ``fit`` LEARNS the filters (like :class:`~sklearn.decomposition.DictionaryLearning`),
    ``transform`` infers the sparse feature maps of new samples for the
    learned filters and ``inverse_transform`` reconstructs samples from maps.
    Each sample ``y`` (``C`` channels) is explained by ``K`` maps ``z_k``
    minimising (Zeiler et al., CVPR 2010)::

        lambda/2 * sum_c ||sum_k g[k,c] conv_valid(z_k, f_kc) - y_c||^2
        + sum_k |z_k|_p^p

    with unit-norm filter planes ``f_kc`` and a fixed binary connectivity
    ``g``.  ``lambda`` weights the reconstruction (larger = denser maps); it
    is ``1 / lmbda`` in SPORCO and ``1 / alpha`` in scikit-learn.

    Parameters
    ----------
    n_filters : int, default=9
        Number of feature maps ``K``.
    filter_shape : int or tuple of int, default=7
        Spatial filter shape; an int is used on every axis.
    image_shape : tuple of int, default=None
        Spatial shape of one channel, ``(height, width)`` or ``(length,)``;
        ``n_channels = n_features // prod(image_shape)``.  ``None`` means
        every row is a 1-D single-channel signal.
    connectivity : {None, 'full', 'singles_and_pairs', 'random_pairs', \
'random_<m>'} or array-like of shape (n_filters, n_channels), default=None
        Which (map, channel) planes exist; see :func:`make_connectivity`.
    lmbda : float or 'auto', default='auto'
        Weight of the reconstruction term.  'auto': a weight relative to the
        training data, ``4.5 / q^(2 - p)`` with ``q`` the 99th percentile of
        ``|F'y|`` at the initial filters, which gives live, sparse maps
        whatever the scale of the input (see the user guide, "Choosing
        lmbda"); a number is used as given.  The weight used is ``lmbda_``.
    p : float in (0, 1], default=1.0
        Exponent of the sparsity penalty (1 = soft shrinkage).
    solver : {'auto', 'fista', 'admm', 'continuation'}, default='auto'
        Map inference: FISTA with adaptive restart (fastest for sparse maps),
        ADMM in the Fourier domain with mask decoupling (fastest for dense
        maps), or the paper's beta continuation with conjugate-gradient
        steps.  'auto' picks 'fista' or 'admm' per sample by a measured rule
        on ``lambda * max|F'y|`` (see :func:`conv_sparse_encode`), and one
        of them for interleaved learning.
    max_iter : int, default=1000
        Iterations of map inference per sample, in ``transform`` and in each
        epoch of ``fit`` with ``fit_algorithm='alternating'``; read at call
        time.
    tol : float, default=1e-3
        Relative change of a sample's maps that stops its inference (for
        'admm': its relative primal and dual residuals, against ``3 tol``,
        about as close to the optimum).  The default is
        close to the optimum for the features (see the performance page).
    n_epochs : int, default=100
        Epochs of ``fit``: passes over the samples, each ending with a filter
        update.
    fit_algorithm : {'interleaved', 'alternating', 'online'}, default='interleaved'
        'interleaved': every epoch advances each sample's map solver
        ('fista' or 'admm') by one iteration, keeping its state from epoch
        to epoch, then takes one accelerated projected-gradient filter step
        (SPORCO's scheme; cheap epochs, use 100 or more).  'alternating':
        the paper's scheme; every epoch infers the maps to ``tol`` within
        ``max_iter``, then takes filter steps (expensive epochs, ~10 suffice;
        needed for ``solver='continuation'``).  'online': for data sets too
        large for the other two (their solver state grows with the number of
        images); mini-batches of ``batch_size`` random crops (128 pixels per
        axis at most), maps inferred in at most 15 iterations per batch,
        running sufficient statistics of the filter problem and filter steps
        on them (Mairal et al., 2010); memory does not grow with the number
        of images, and ``n_epochs`` counts mini-batches (the work is
        ``n_epochs * batch_size`` crops whatever the data set).  See
        :func:`conv_dict_learning` and the "large data sets and clusters"
        page of the documentation.
    batch_size : int, default=10
        Crops per mini-batch of ``fit_algorithm='online'``; ``partial_fit``
        takes the mini-batches it is given.
    filters_init : array-like of shape (n_filters, n_channels, *filter_shape), \
default=None
        Initial filters; random normal planes when None.
    scale_input : bool, default=False
        Learn a scalar ``input_scale_`` at fit time (the largest absolute
        input value) and divide inputs by it, so every layer of a network
        sees inputs in [-1, 1]; ``inverse_transform`` multiplies back.
    n_jobs : int, default=None
        Joblib workers over chunks of samples (honours
        ``joblib.parallel_config``).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial filters and random connectivity.
    verbose : int, default=0
        Print the cost every 10 epochs (every epoch if > 1).

    Attributes
    ----------
    filters_ : ndarray of shape (n_filters, n_channels, *filter_shape)
        Learned unit-norm filter planes (zeros where ``g[k, c] = 0``).
    connectivity_ : ndarray of shape (n_filters, n_channels), dtype=bool
        The connectivity ``g``.
    feature_map_shape_ : tuple of int
        ``(n_filters, *map_shape)`` with ``map_shape = image_shape +
        filter_shape - 1``: the layout of a row of ``transform``.
    image_shape_ : tuple of int
        Spatial input shape.
    n_channels_ : int
        Input channels.
    input_scale_ : float
        Divisor of the inputs (1.0 unless ``scale_input``).
    lmbda_ : float
        The weight of the reconstruction term used (``lmbda``, or the value
        'auto' resolved to).
    lmbda_min_ : float
        ``1 / max|F'y|^(2 - p)`` over the (scaled) training inputs at the
        initial filters: for p = 1, every map is zero for ``lmbda`` at or
        below it.
    cost_history_ : ndarray of shape (n_epochs,)
        Mean per-sample cost after every epoch.
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Mini-batches seen by ``partial_fit`` since the last ``fit``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    conv_sparse_encode : Maps for fixed filters.
    conv_dict_learning : Function form of ``fit``.
    DeconvNetworkTransformer : A stack of layers.

    References
    ----------
    M. D. Zeiler, D. Krishnan, G. W. Taylor and R. Fergus, "Deconvolutional
    Networks", CVPR 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv import ConvSparseCoder
    >>> X = np.random.RandomState(0).standard_normal((10, 2 * 8 * 8))
    >>> coder = ConvSparseCoder(n_filters=4, filter_shape=3, image_shape=(8, 8),
    ...                         n_epochs=2, random_state=0).fit(X)
    >>> coder.filters_.shape, coder.feature_map_shape_
    ((4, 2, 3, 3), (4, 10, 10))
    >>> maps = coder.transform(X)
    >>> maps.shape
    (10, 400)
    >>> coder.inverse_transform(maps).shape
    (10, 128)
    """

    _parameter_constraints: dict = {
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "filter_shape": _SHAPE_CONSTRAINT,
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "fit_algorithm": [StrOptions(set(FIT_ALGORITHMS))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "filters_init": [None, "array-like"],
        "scale_input": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        **_COMMON_PARAMS,
        "lmbda": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    }

    def __init__(
        self,
        n_filters=9,
        filter_shape=7,
        *,
        image_shape=None,
        connectivity=None,
        lmbda="auto",
        p=1.0,
        solver="auto",
        max_iter=1000,
        tol=1e-3,
        n_epochs=100,
        fit_algorithm="interleaved",
        batch_size=10,
        filters_init=None,
        scale_input=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_filters = n_filters
        self.filter_shape = filter_shape
        self.image_shape = image_shape
        self.connectivity = connectivity
        self.lmbda = lmbda
        self.p = p
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.n_epochs = n_epochs
        self.fit_algorithm = fit_algorithm
        self.batch_size = batch_size
        self.filters_init = filters_init
        self.scale_input = scale_input
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ fitting
    def _initialize(self, X, rng):
        """Geometry, connectivity, input scale and initial filters from X."""
        self.image_shape_, self.n_channels_ = check_image_shape(
            self.image_shape, X.shape[1]
        )
        filter_shape = check_filter_shape(self.filter_shape, len(self.image_shape_))
        self.connectivity_ = _make_connectivity(
            self.connectivity, self.n_filters, self.n_channels_, rng
        )
        self.input_scale_ = self._fit_input_scale(X)
        self.feature_map_shape_ = (self.n_filters,) + map_shape_of(
            self.image_shape_, filter_shape
        )
        self._n_features_out = prod(self.feature_map_shape_)
        return init_filters(
            self.filters_init, n_filters=self.n_filters, n_channels=self.n_channels_,
            filter_shape=filter_shape, connectivity=self.connectivity_, random_state=rng,
            dtype=X.dtype,
        )

    def _fit_input_scale(self, X):
        if not self.scale_input:
            return 1.0
        largest = float(np.max(np.abs(X)))
        return largest if largest > 0 else 1.0

    def _set_lmbda(self, Y, filters):
        """``lmbda_min_`` at the initial filters and the weight ``lmbda_``."""
        self.lmbda_min_, auto = scale_free_weights(Y, filters, self.connectivity_, self.p)
        self.lmbda_ = auto if self.lmbda == "auto" else float(self.lmbda)

    def _images(self, X):
        """Rows -> scaled images (n, C, *image_shape) (a new array if scaled)."""
        Y = X.reshape((len(X), self.n_channels_) + self.image_shape_)
        if self.input_scale_ != 1.0:
            Y = Y / np.asarray(self.input_scale_, dtype=X.dtype)
        return Y

    @single_convergence_warning
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the filters from X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples, rows flattened as ``(n_channels, *image_shape)``.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(self._validated(X))
        return self

    @single_convergence_warning
    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Learn the filters from X and return the maps of X for them.

        For p = 1, the maps of ``fit(X).transform(X)`` to within ``tol``, in
        less time: their inference starts from the maps training ends with
        instead of from zero (except with ``fit_algorithm='online'``, which
        keeps no maps).  For p < 1 (a non-convex penalty, whose local
        optimum depends on the start) it starts from zero, as ``transform``
        does.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples, rows flattened as ``(n_channels, *image_shape)``.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        maps : ndarray of shape (n_samples, n_filters * prod(map_shape))
            As returned by ``transform``.
        """
        X = self._validated(X)
        warm = self.p == 1 and self.fit_algorithm != "online"
        training_maps = self._fit(X, return_maps=warm)
        return self._infer(X, init=training_maps if warm else None)[1].reshape(len(X), -1)

    def _validated(self, X, reset=True):
        """X validated as float64 or float32 (``reset``: training input)."""
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)

    def _fit(self, X, return_maps=False, warn_dead=True):
        """Fit on validated X; the maps of the training samples if ``return_maps``."""
        check_fit_algorithm(self.fit_algorithm, self.solver)
        rng = check_random_state(self.random_state)
        filters = self._initialize(X, rng)
        Y = self._images(X)
        check_fit_memory(self.fit_algorithm, self.solver, Y, filters)
        self._set_lmbda(Y, filters)
        maps, self.filters_, self.cost_history_, converged = learn_filters(
            Y, filters, self.connectivity_, fit_algorithm=self.fit_algorithm,
            lmbda=self.lmbda_, p=self.p, solver=self.solver, max_iter=self.max_iter,
            tol=self.tol, n_epochs=self.n_epochs, n_jobs=self.n_jobs, verbose=self.verbose,
            batch_size=self.batch_size, random_state=rng, return_maps=return_maps,
        )
        warn_not_converged(converged, self.tol, self.max_iter, " in the last epoch")
        self.n_iter_ = len(self.cost_history_)
        if warn_dead:
            warn_if_dead_layer(self, Y, filters, maps)
        self._statistics = OnlineStatistics(self.connectivity_, self.filters_.shape[2:])
        self.n_steps_ = 0
        return maps

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit_with_maps(self, X):
        """Fit and return the maps of X (for :func:`conv_dict_learning`)."""
        return self._fit(self._validated(X), return_maps=True, warn_dead=False)

    @single_convergence_warning
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the filters with one mini-batch (online learning).

        Online dictionary learning (Mairal et al., 2010) for convolutional
        filters, the machinery of ``fit_algorithm='online'``: the maps of the
        batch are inferred for the current filters (at most 15 iterations,
        or ``max_iter``), the sufficient statistics of the filter problem
        (the maps' cross-correlations over lags below the filter size, and
        their correlations with the images) are blended into running averages
        with a forgetting factor, and the filters minimise the resulting
        surrogate over unit-norm planes.  The memory and the work of a call
        do not grow with the number of samples seen.  The first call sets the
        geometry, the connectivity, the input scale, ``lmbda_`` and the
        initial filters from its batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A mini-batch.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first_call = not hasattr(self, "filters_")
        X = self._validated(X, reset=first_call)
        if first_call:
            self.filters_ = self._initialize(X, check_random_state(self.random_state))
            self._statistics = OnlineStatistics(self.connectivity_, self.filters_.shape[2:])
            self.cost_history_ = np.empty(0)
        Y = self._images(X)
        if first_call:
            self._set_lmbda(Y, self.filters_)
        self.filters_, costs, converged = online_step(
            self._statistics, Y, self.filters_.astype(X.dtype, copy=False), self.connectivity_,
            lmbda=self.lmbda_, p=self.p, solver=self.solver, max_iter=self.max_iter,
            tol=self.tol, n_jobs=self.n_jobs,
        )
        if self.max_iter <= ONLINE_MAX_ITER:  # the user's max_iter stopped inference
            warn_not_converged(converged, self.tol, self.max_iter)
        self.cost_history_ = np.append(self.cost_history_, costs.mean())
        self.n_steps_ = self._statistics.n_updates
        self.n_iter_ = self.n_steps_
        return self

    # ------------------------------------------------------------ inference
    def _check_input(self, X):
        check_is_fitted(self)
        return self._validated(X, reset=False)

    def _infer(self, X, init=None):
        """Maps (n, K, *map_shape) of validated X, warning if not converged.

        ``init``: maps to start from (zero maps when None).
        """
        Y = self._images(X)
        maps, _, converged = _encode(
            Y, self.filters_.astype(X.dtype, copy=False), self.connectivity_,
            lmbda=self.lmbda_, p=self.p, solver=self.solver, max_iter=self.max_iter,
            tol=self.tol, init=init, n_jobs=self.n_jobs,
        )
        warn_not_converged(converged, self.tol, self.max_iter)
        return Y, maps

    @single_convergence_warning
    def transform(self, X):
        """Infer the sparse feature maps of X for the learned filters.

        Every sample is solved independently (see ``max_iter``, ``tol``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, rows flattened as ``(n_channels, *image_shape)``.

        Returns
        -------
        maps : ndarray of shape (n_samples, n_filters * prod(map_shape))
            Maps flattened as ``feature_map_shape_``; float32 stays float32.
        """
        X = self._check_input(X)
        return self._infer(X)[1].reshape(len(X), -1)

    def inverse_transform(self, X):
        """Reconstruct samples from feature maps: ``sum_k g z_k * f_k``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_filters * prod(map_shape))
            Maps as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Reconstructions in the input space (times ``input_scale_``).
        """
        check_is_fitted(self)
        maps = self._check_maps(X)
        Y = _reconstruct(
            maps, self.filters_.astype(maps.dtype, copy=False), self.connectivity_,
            self.image_shape_,
        )
        return (Y * np.asarray(self.input_scale_, dtype=Y.dtype)).reshape(len(Y), -1)

    def _check_maps(self, Z):
        Z = check_array(Z, dtype=[np.float64, np.float32], input_name="X")
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects maps "
                f"of {self.feature_map_shape_} = {self._n_features_out} features."
            )
        return Z.reshape((len(Z),) + self.feature_map_shape_)

    @single_convergence_warning
    def score(self, X, y=None):
        """Return minus the mean per-sample cost of X's inferred maps (higher is better).

        The cost is the model's objective ``lambda/2 ||F z - y||^2 + |z|_p^p``
        at the inferred maps.  It grows with ``lmbda``, so comparing models
        with different ``lmbda`` by this score always favours the smallest.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            ``-mean(cost)``.
        """
        X = self._check_input(X)
        Y, maps = self._infer(X)
        costs = _costs(
            Y, maps, self.filters_.astype(X.dtype, copy=False), self.connectivity_,
            lmbda=self.lmbda_, p=self.p, n_jobs=self.n_jobs,
        )
        return -float(costs.mean())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
