"""AdaptiveDeconvNetwork: Zeiler, Taylor & Fergus (ICCV 2011)."""

import time
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
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import check_is_fitted, validate_data

from ._adaptive_projection import (
    check_map_indices,
    project_maps,
    project_strongest,
    reconstruct_rows,
)
from ._adaptive_solvers import infer_maps_parallel, learn_layer, lmbda_min, resolve_lmbda
from ._connectivity import CONNECTIVITY_CONSTRAINT, _make_connectivity
from ._fft_ops import ConvOperator
from ._filters import random_filters
from ._geometry import (
    FLOAT_DTYPES,
    check_filter_shape,
    check_image_shape,
    layer_number,
    layer_numbers,
)
from ._per_layer import per_layer_constraint, split_per_layer
from ._pooling3d import check_pool_shapes, pooled_shape
from ._topdown import TopDownOperator

_LAYER_CONSTRAINTS = {
    "n_filters": [Interval(Integral, 1, None, closed="left")],
    "filter_shape": [Interval(Integral, 1, None, closed="left"), tuple, list],
    "connectivity": CONNECTIVITY_CONSTRAINT,
    "lmbda": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "n_epochs": [Interval(Integral, 1, None, closed="left")],
}
_PER_LAYER = ("filter_shape", "connectivity", "lmbda", "max_iter", "tol", "n_epochs")


class _AdaptiveTransform:
    """``transform`` kept out of the estimator's class body (see _network)."""

    def transform(self, X, layers=None):
        """Infer the maps of every layer of X, bottom up.

        Each layer's maps are inferred to reconstruct the image through the
        filters and the switches of the layers below, then pooled (3-D, with
        switches) for the next layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, rows flattened as ``(n_channels, *image_shape)``.
        layers : sequence of int, default=None
            Layers whose maps to return, numbered from 1 (-1 is the top).
            ``None`` returns one row per sample holding the maps of every
            layer (see Returns).

        Returns
        -------
        maps : ndarray of shape (n_samples, n_features_out) or list
            Without ``layers``: the unpooled maps of layers 1, 2, ..., top,
            each flattened as its ``layer_map_shapes_`` entry and
            concatenated (``layer_slices_`` locates them).  Every map keeps at
            most one value per pool block, at its switch, so the row carries
            the switches the top-down reconstruction needs:
            ``inverse_transform`` reconstructs X from the TOP layer's values
            with the lower layers' switches.  With ``layers``: a list of
            ndarrays, the unpooled maps of each requested layer.
        """
        X_valid = self._check_input(X)
        if layers is None:
            maps = self._infer(X_valid, len(self.filters_))[0]
            rows = np.concatenate([z.reshape(len(z), -1) for z in maps], axis=1)
            return _wrap_data_with_container("transform", rows, X, self)
        numbers = layer_numbers(layers, len(self.filters_))
        maps = self._infer(X_valid, max(numbers))[0]
        return [maps[number - 1].reshape(len(X_valid), -1) for number in numbers]


class AdaptiveDeconvNetwork(
    _AdaptiveTransform, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Adaptive Deconvolutional Network (Zeiler, Taylor & Fergus, ICCV 2011).

    Layers of convolutional sparse coding alternate with 3-D max pooling
    (over a spatial block AND a group of ``pk`` consecutive maps) that keeps
    one value per block and records where it came from, its switch.  Unlike
    :class:`DeconvNetworkTransformer` (CVPR 2010), where each layer explains
    its input only, layer ``l``'s maps ``z_l`` are inferred to reconstruct the
    INPUT IMAGE through the filters and the unpooling switches of all the
    layers below, minimising::

        lambda_l / 2 ||F_1 U_1 F_2 U_2 ... F_l z_l - y||^2 + ||z_l||_1

    with one value at most per pool block of ``z_l``, so every layer is
    accountable in pixel space.  Layer ``l + 1`` takes the pooled maps of
    layer ``l`` as its input channels.  ``fit`` learns the layers bottom up
    (maps and filters alternately, the filters against the pixel-space
    error, unit-norm planes).

    Parameters
    ----------
    n_filters : int or tuple of int, default=(9, 45, 150)
        Maps per layer; its length is the number of layers.
    filter_shape : int, tuple of int or tuple of tuple of int, default=7
        Spatial filter shape per layer (as in :class:`DeconvNetworkTransformer`).
    connectivity : str, None, array or tuple, default=('full', 'full', 'random_pairs')
        Connectivity of every layer between its maps and its input channels
        (the pooled maps below); see :func:`make_connectivity`.
    pool_shape : tuple of int or tuple of tuple of int, default=None
        3-D pool shape ``(py, px, pk)`` (``(px, pk)`` for 1-D signals): a
        tuple of ints is used on every layer, a tuple of such tuples gives
        one per layer.  ``None`` means 3 on every spatial axis and groups of
        2 maps.  The last (partial) block along an axis is padded with zeros.
    image_shape : tuple of int, default=None
        Spatial shape of one input channel; ``None`` means 1-D signals.
    lmbda : 'auto', float or tuple, default='auto'
        Weight of the pixel-space reconstruction term per layer.  'auto' is
        10 times ``lambda_min = 1 / max|R_l' y|`` over the training images at
        the layer's initial filters (the largest weight at which all its maps
        are zero); numbers are absolute.
    solver : {'fista', 'ista'}, default='fista'
        Map inference: the paper's ISTA steps (gradient step through the
        top-down operator, shrinkage, pool-unpool) or the same steps with
        FISTA's extrapolation and gradient restart (lower cost in the same
        time, see the user guide).
    max_iter : int or tuple of int, default=30
        Inference iterations per layer and sample (in ``transform`` and in
        every epoch of ``fit``, where the maps are warm started from the
        previous epoch's).
    tol : float or tuple of float, default=1e-3
        A sample stops once its maps move by less than ``tol`` relatively.
    n_epochs : int or tuple of int, default=5
        Epochs of filter learning per layer (inference, then ten filter
        steps).  On the fruit images the layer costs still fall by 1-4% per
        epoch after 5 epochs: more epochs learn more, at a proportional cost.
    n_jobs : int, default=None
        Number of joblib workers over chunks of images: the map inference of
        every layer in ``fit`` (every epoch; the filter steps run in this
        process), ``transform``, ``project``, ``project_activations`` and
        ``score``.  The results do not depend on it (each image is inferred
        on its own).
    random_state : int, RandomState instance or None, default=None
        Initial filters and random connectivity.
    verbose : int, default=0
        Print the cost after every epoch and the time of every layer.

    Attributes
    ----------
    filters_ : list of ndarray
        Filters of every layer, ``(n_filters, n_channels, *filter_shape)``;
        layer ``l + 1`` has ``ceil(n_filters_l / pk_l)`` channels.
    connectivity_ : list of ndarray of bool
    pool_shape_ : list of tuple of int
    lmbda_ : ndarray of shape (n_layers,)
        The absolute weights used.
    lmbda_min_ : ndarray of shape (n_layers,)
        ``1 / max|R_l' y|`` at every layer's initial filters.
    layer_map_shapes_ : list of tuple of int
        ``(n_filters, *map_shape)`` of every layer.
    layer_slices_ : list of slice
        Columns of every layer's maps in a row of ``transform``.
    feature_map_shape_ : tuple of int
        ``layer_map_shapes_[-1]``, the top layer's maps.
    image_shape_ : tuple of int
    n_channels_ : int
    cost_history_ : list of ndarray
        Mean per-sample cost of every layer after each of its epochs.
    fit_seconds_ : ndarray of shape (n_layers,)
    n_iter_ : int
        Epochs run, summed over the layers.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    DeconvNetworkTransformer : The CVPR 2010 network.

    Notes
    -----
    Every layer is inferred against the pixels, so the reconstruction error
    from the top layer stays close to that of layer 1 where the 2010
    network's grows with depth (measured errors and numbers of non-zero
    coefficients: :doc:`/performance`, and the user guide page "Adaptive
    Deconvolutional Networks").

    ``transform`` returns every layer's unpooled maps in one row because the
    reconstruction from the top layer needs the switches of the layers below,
    which an unpooled map carries (the position of each block's value).

    References
    ----------
    M. D. Zeiler, G. W. Taylor and R. Fergus, "Adaptive Deconvolutional
    Networks for Mid and High Level Feature Learning", ICCV 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv import AdaptiveDeconvNetwork
    >>> X = np.random.RandomState(0).standard_normal((4, 12 * 12))
    >>> net = AdaptiveDeconvNetwork(
    ...     n_filters=(4, 6), filter_shape=3, connectivity="full", pool_shape=(2, 2, 2),
    ...     image_shape=(12, 12), max_iter=20, n_epochs=2, random_state=0).fit(X)
    >>> net.layer_map_shapes_, [f.shape for f in net.filters_]
    ([(4, 14, 14), (6, 9, 9)], [(4, 1, 3, 3), (6, 2, 3, 3)])
    >>> Z = net.transform(X)     # unpooled maps of layers 1 and 2
    >>> Z.shape
    (4, 1270)
    >>> net.inverse_transform(Z).shape   # reconstruction from layer 2
    (4, 144)
    >>> net.project(X, layer=1).shape
    (4, 144)
    """

    _parameter_constraints: dict = {
        "n_filters": per_layer_constraint(_LAYER_CONSTRAINTS, "n_filters"),
        **{name: per_layer_constraint(_LAYER_CONSTRAINTS, name) for name in _PER_LAYER},
        "pool_shape": [None, tuple, list],
        "image_shape": [None, tuple, list],
        "solver": [StrOptions({"fista", "ista"})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_filters=(9, 45, 150),
        filter_shape=7,
        *,
        connectivity=("full", "full", "random_pairs"),
        pool_shape=None,
        image_shape=None,
        lmbda="auto",
        solver="fista",
        max_iter=30,
        tol=1e-3,
        n_epochs=5,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_filters = n_filters
        self.filter_shape = filter_shape
        self.connectivity = connectivity
        self.pool_shape = pool_shape
        self.image_shape = image_shape
        self.lmbda = lmbda
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.n_epochs = n_epochs
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ parameters
    def _layer_params(self, n_axes):
        layers = split_per_layer(self, _PER_LAYER, _LAYER_CONSTRAINTS)
        n_layers = len(layers)
        for params, pool in zip(layers, check_pool_shapes(self.pool_shape, n_layers, n_axes)):
            params["pool_shape"] = pool
        return layers

    # ------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the layers bottom up.

        Layer ``l``'s filters are learned with the filters and the switches
        of the layers below fixed (their switches computed once for the
        training images), then its maps are inferred with the learned
        filters and pooled to give the switches of layer ``l + 1``.

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
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
        self.image_shape_, self.n_channels_ = check_image_shape(self.image_shape, X.shape[1])
        layers = self._layer_params(len(self.image_shape_))
        rng = check_random_state(self.random_state)
        Y = X.reshape((len(X), self.n_channels_) + self.image_shape_)
        operators, switches = [], []
        n_channels, input_shape = self.n_channels_, self.image_shape_
        self.filters_, self.connectivity_, self.pool_shape_ = [], [], []
        self.layer_map_shapes_, self.cost_history_ = [], []
        self.lmbda_, self.lmbda_min_ = np.zeros(len(layers)), np.zeros(len(layers))
        self.fit_seconds_ = np.zeros(len(layers))
        for number, params in enumerate(layers, start=1):
            start = time.perf_counter()
            filter_shape = check_filter_shape(params["filter_shape"], len(input_shape))
            g = _make_connectivity(params["connectivity"], params["n_filters"], n_channels, rng)
            filters = random_filters(params["n_filters"], n_channels, filter_shape, g, rng, X.dtype)
            R = TopDownOperator(
                operators + [ConvOperator(filters, g, input_shape)], switches, self.pool_shape_
            )
            self.lmbda_min_[number - 1] = lmbda_min(R, Y)
            lmbda = resolve_lmbda(params["lmbda"], self.lmbda_min_[number - 1])
            filters, history = learn_layer(
                R, Y, filters, g, lmbda=lmbda, pool_shape=params["pool_shape"],
                n_epochs=params["n_epochs"], max_iter=params["max_iter"], tol=params["tol"],
                solver=self.solver, report=self._reporter(number), n_jobs=self.n_jobs,
            )
            operator = ConvOperator(filters, g, input_shape)
            operators.append(operator)
            map_shape = (params["n_filters"],) + operator.map_shape
            if number < len(layers):  # the switches of this layer for the next ones
                R = TopDownOperator(operators, switches, self.pool_shape_)
                _, top_switches, _, _ = infer_maps_parallel(
                    R, Y, lmbda, params["pool_shape"], params["max_iter"], params["tol"],
                    self.solver, n_jobs=self.n_jobs,
                )
                switches.append(top_switches)
            self.pool_shape_.append(params["pool_shape"])
            n_channels, *input_shape = pooled_shape(map_shape, params["pool_shape"])
            input_shape = tuple(input_shape)
            self.filters_.append(filters)
            self.connectivity_.append(g)
            self.layer_map_shapes_.append(map_shape)
            self.cost_history_.append(history)
            self.lmbda_[number - 1] = lmbda
            self.fit_seconds_[number - 1] = time.perf_counter() - start
            if self.verbose:
                print(f"[AdaptiveDeconvNetwork] layer {number}/{len(layers)}: "
                      f"{map_shape} maps, lmbda {lmbda:.4g}, cost {history[-1]:.6g}, "
                      f"{self.fit_seconds_[number - 1]:.1f} s", flush=True)
        self._layer_settings = [(p["max_iter"], p["tol"]) for p in layers]
        sizes = np.cumsum([0] + [prod(shape) for shape in self.layer_map_shapes_])
        self.layer_slices_ = [slice(int(a), int(b)) for a, b in zip(sizes[:-1], sizes[1:])]
        self.feature_map_shape_ = self.layer_map_shapes_[-1]
        self._n_features_out = int(sizes[-1])
        self.n_iter_ = int(sum(len(h) for h in self.cost_history_))
        return self

    def _reporter(self, number):
        if not self.verbose:
            return None

        def report(epoch, cost):
            print(f"[AdaptiveDeconvNetwork] layer {number} epoch {epoch + 1}: "
                  f"cost {cost:.6g}", flush=True)

        return report

    # ------------------------------------------------------------ inference
    def _check_input(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)

    def _operators(self, dtype, n_layers=None):
        """ConvOperators of layers 1..n_layers in ``dtype`` (built per call)."""
        operators, input_shape = [], self.image_shape_
        for filters, g, shape, pool in list(zip(
            self.filters_, self.connectivity_, self.layer_map_shapes_, self.pool_shape_
        ))[:n_layers]:
            operators.append(ConvOperator(filters.astype(dtype, copy=False), g, input_shape))
            input_shape = pooled_shape(shape, pool)[1:]
        return operators

    def _infer(self, X, n_layers):
        """Maps and switches of layers 1..n_layers of validated X, and the operators."""
        Y = X.reshape((len(X), self.n_channels_) + self.image_shape_)
        operators = self._operators(X.dtype, n_layers)
        maps, switches = [], []
        for number in range(1, n_layers + 1):
            R = TopDownOperator(operators[:number], switches, self.pool_shape_[: number - 1])
            max_iter, tol = self._layer_settings[number - 1]
            z, s, _, _ = infer_maps_parallel(
                R, Y, self.lmbda_[number - 1], self.pool_shape_[number - 1], max_iter, tol,
                self.solver, n_jobs=self.n_jobs,
            )
            maps.append(z)
            switches.append(s)
        return maps, switches, operators

    def inverse_transform(self, X):
        """Top-down reconstruction of the samples from the top layer's maps.

        ``R_L z_L = F_1 U_1 ... F_L z_L`` with the switches of the lower
        layers read from their maps in the row (each block's non-zero value
        sits at its switch; an all-zero block has switch 0).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_out)
            Rows as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Reconstructions in pixel space.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects rows of "
                f"transform with {self._n_features_out} features."
            )
        return reconstruct_rows(
            Z, self._operators(Z.dtype), self.layer_slices_, self.layer_map_shapes_,
            self.pool_shape_,
        )

    def project(self, X, layer=-1):
        """Reconstruction of images from the maps of one layer, in pixel space.

        Infers layers 1..``layer`` for X and returns ``R_l z_l``, the
        top-down projection of layer ``l``'s maps with each image's switches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Images.
        layer : int, default=-1
            Layer number, from 1 (nearest the pixels); -1 is the top.

        Returns
        -------
        X_projected : ndarray of shape (n_samples, n_features_in_)
            The projections, rows flattened like X.
        """
        X = self._check_input(X)
        return self._project(X, layer_number(layer, len(self.filters_)))

    def _project(self, X, number):
        maps, switches, operators = self._infer(X, number)
        return project_maps(maps[-1], operators, switches, self.pool_shape_)

    def project_activations(self, X, layer=-1, maps=None):
        """Single activations of one layer projected down to pixel space.

        For every image and every selected map ``k`` of layer ``l``, the
        strongest activation of map ``k`` (largest absolute value) alone, all
        others set to zero, is projected with ``R_l`` and that image's
        switches: what this feature contributes to the image, where it is
        strongest (the paper's visualisation of high-layer features).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Images.
        layer : int, default=-1
            Layer number, from 1; -1 is the top.
        maps : array-like of int, default=None
            Maps of the layer to project; ``None`` means all.

        Returns
        -------
        projections : ndarray of shape (n_samples, n_maps, n_features_in_)
            Pixel-space projection of each activation (zeros for a map that
            is all zero in that image).
        locations : ndarray of int of shape (n_samples, n_maps, 1 + n_axes)
            ``(map, *position)`` of each projected activation in the maps.
        """
        X = self._check_input(X)
        number = layer_number(layer, len(self.filters_))
        selected = check_map_indices(maps, self.layer_map_shapes_[number - 1][0])
        inferred, switches, operators = self._infer(X, number)
        return project_strongest(inferred[-1], selected, operators, switches, self.pool_shape_)

    def score(self, X, y=None):
        """Return minus the mean squared error of X's reconstruction from the top layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Images, rows flattened as ``(n_channels, *image_shape)``.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            ``-mean((X - project(X)) ** 2)``: higher is better.
        """
        X = self._check_input(X)
        return -float(np.mean((X - self._project(X, len(self.filters_))) ** 2))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
