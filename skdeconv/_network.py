"""DeconvNetworkTransformer: a stack of ConvSparseCoder layers trained bottom up."""

import time
import warnings
from itertools import islice
from math import prod
from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import check_is_fitted, validate_data

from ._coder import ConvSparseCoder
from ._connectivity import _make_connectivity, layer_connectivity
from ._geometry import (
    FLOAT_DTYPES,
    check_filter_shape,
    check_image_shape,
    map_shape_of,
    layer_number,
    layer_numbers,
)
from ._network_projection import check_layer_maps, pixel_space_filters, project_maps
from ._per_layer import per_layer_constraint, split_per_layer
from ._warnings import DeadLayerWarning, single_convergence_warning, warn_user

# Parameters given per layer: a tuple or list holds one entry per layer,
# anything else is used for every layer.
_PER_LAYER = (
    "filter_shape", "connectivity", "lmbda", "p", "solver", "max_iter", "tol",
    "n_epochs", "fit_algorithm", "batch_size",
)
_LAYER_CONSTRAINTS = {
    name: ConvSparseCoder._parameter_constraints[name]
    for name in ("n_filters",) + _PER_LAYER
}
_LAYER_CONSTRAINTS["connectivity"] = [
    *_LAYER_CONSTRAINTS["connectivity"], StrOptions({"auto"})
]


class _LayerMapsTransform:
    """``transform`` of the network, kept out of the estimator's class body.

    scikit-learn's ``set_output`` wraps a ``transform`` defined in the class
    body of a transformer, which cannot return a list of arrays; this one
    wraps only its default output (the top layer's maps) itself.
    """

    @single_convergence_warning
    def transform(self, X, layers=None):
        """Infer the feature maps of X, layer by layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, rows flattened as ``(n_channels, *image_shape)``.
        layers : sequence of int, default=None
            Layers whose maps to return, numbered from 1 (nearest the
            pixels; -1 is the top).  ``None`` returns the top layer's maps.

        Returns
        -------
        maps : ndarray of shape (n_samples, prod(feature_map_shape_)) or list
            The top layer's maps, flattened as ``feature_map_shape_`` (in the
            container chosen by ``set_output``); with ``layers``, a list of
            ndarrays, the maps of each requested layer flattened as that
            layer's ``feature_map_shape_``.
        """
        X_valid = self._check_input(X)
        if layers is None:
            *_, top = self._layer_maps(X_valid)
            return _wrap_data_with_container("transform", top, X, self)
        numbers = layer_numbers(layers, len(self.pipeline_))
        maps = list(islice(self._layer_maps(X_valid), max(numbers)))
        return [maps[number - 1] for number in numbers]


    @single_convergence_warning
    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, layers=None):
        """Fit, and return the maps of X as ``fit(X).transform(X, layers)``.

        The same maps to within ``tol``, in less time: training infers each
        layer's maps of X as the next layer's input (each layer's
        :meth:`ConvSparseCoder.fit_transform`, warm started from the maps
        its training ends with), and they are not inferred again.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples, rows flattened as ``(n_channels, *image_shape)``.
        y : Ignored
            Not used, present for API consistency.
        layers : sequence of int, default=None
            Layers whose maps to return, as in ``transform``; ``None``
            returns the top layer's maps.

        Returns
        -------
        maps : ndarray of shape (n_samples, prod(feature_map_shape_)) or list
            As returned by ``transform``.
        """
        if layers is None:
            [top] = self._fit(X, layers=(-1,))
            return _wrap_data_with_container("transform", top, X, self)
        return self._fit(X, layers=layers)


class DeconvNetworkTransformer(
    _LayerMapsTransform,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """A Deconvolutional Network: convolutional sparse coding layers, stacked.

    ``fit`` trains the layers one after another (Zeiler et al., CVPR 2010):
    layer 1 learns filters and sparse feature maps explaining the images,
    layer 2 learns to explain the feature maps of layer 1, and so on.  Each
    layer is a :class:`ConvSparseCoder`; the fitted layers are chained in a
    :class:`~sklearn.pipeline.Pipeline`, ``pipeline_``.  ``transform`` infers
    the maps bottom up, ``inverse_transform`` and :meth:`project` project maps
    down to pixel space, and :meth:`project_filters` shows what the filters of
    any layer look like in pixel space.

    Every layer divides its input by a scalar learned at fit time, the
    largest absolute value of its training input (the ``scale_input`` option
    of :class:`ConvSparseCoder`, ``input_scale_`` of each layer), as the
    authors' toolbox rescales every layer's input, and weighs its
    reconstruction term relative to that input (``lmbda='auto'``, see the
    user guide): every layer learns live, sparse maps whatever the range of
    the pixels or of the maps below.  The scales are inside the layers, so
    :meth:`project` is exactly the chained ``inverse_transform`` of the
    layers.  Every layer's parameters are checked against its input before
    any layer trains; a layer that learns (nearly) nothing raises a
    :class:`~skdeconv.DeadLayerWarning` naming it.

    Parameters
    ----------
    n_filters : int or tuple of int, default=(9, 45, 150)
        Number of feature maps of every layer; its length is the number of
        layers (an int is a one-layer network).
    filter_shape : int, tuple of int or tuple of tuple of int, default=7
        Spatial filter shape per layer.  An int is used on every axis of
        every layer; a tuple holds one entry per LAYER: with two layers,
        ``(5, 7)`` means 5x5 filters on layer 1 and 7x7 on layer 2.
        Per-axis shapes are nested, one per layer: ``((5, 3), (7, 7))``.
    connectivity : str, None or tuple, default='auto'
        Connectivity of every layer between its maps and its input channels
        (see :func:`make_connectivity`): ``'auto'``, ``None``, ``'full'``,
        ``'singles_and_pairs'``, ``'random_pairs'`` or ``'random_<m>'`` for
        every layer, or a tuple with one entry per layer (each one of these
        or a binary array of shape (n_filters, n_channels)).  ``'auto'``
        gives the paper's presets where they fit, for any depth: 'full' on
        layer 1, 'singles_and_pairs' on a layer with ``n_filters = C +
        C(C-1)/2`` maps over ``C`` channels, 'random_pairs' on the others
        (the paper's 9/45/150 network gets exactly the paper's).
    image_shape : tuple of int, default=None
        Spatial shape of one input channel, ``(height, width)`` or
        ``(length,)``; ``None`` means every row is a 1-D single-channel
        signal.  Upper layers take the maps below as their input channels.
    lmbda : float, 'auto' or tuple, default='auto'
        Weight of the reconstruction term of every layer (per layer if a
        tuple); larger means denser maps.  'auto' is relative to each
        layer's input (see :class:`ConvSparseCoder`): live, sparse maps on
        every layer (see Notes); a number is used as given.
    p : float or tuple of float, default=1.0
        Exponent of the sparsity penalty, in (0, 1], per layer if a tuple.
    solver : {'auto', 'fista', 'admm', 'continuation'} or tuple, default='auto'
        Map inference of every layer (see :class:`ConvSparseCoder`).
    max_iter : int or tuple of int, default=1000
        Iterations of map inference per sample, per layer if a tuple.
    tol : float or tuple of float, default=1e-3
        Stopping tolerance of map inference, per layer if a tuple.
    n_epochs : int or tuple of int, default=100
        Epochs of filter learning of every layer, per layer if a tuple.
    fit_algorithm : {'interleaved', 'alternating', 'online'} or tuple, \
default='interleaved'
        Filter learning of every layer (see :class:`ConvSparseCoder`);
        'online' learns from mini-batches of random crops in a memory that
        does not grow with the number of samples.
    batch_size : int or tuple of int, default=10
        Crops per mini-batch of the layers fitted with 'online', per layer
        if a tuple.
    n_jobs : int, default=None
        Joblib workers over chunks of samples, in every layer.
    random_state : int, RandomState instance or None, default=None
        Draws one seed per layer in ``fit`` (initial filters, random
        connectivity).
    verbose : int, default=0
        Print the time of every layer and the cost of every epoch.

    Attributes
    ----------
    pipeline_ : Pipeline
        The fitted :class:`ConvSparseCoder` layers, steps named ``"layer1"``,
        ``"layer2"``, ...
    feature_map_shape_ : tuple of int
        ``(n_filters, *map_shape)`` of the top layer: the layout of a row of
        ``transform``.  Maps grow by ``filter_shape - 1`` per layer.
    n_iter_ : int
        Epochs run, summed over the layers.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    ConvSparseCoder : One layer.
    skdeconv.preprocessing.LocalContrastNormalizer : The images' preprocessing.

    Notes
    -----
    The densities and reconstruction errors of default networks of 1 to 4
    layers on the bundled images, at three input scales, are in the user
    guide ("Choosing lmbda"); ``python -m skdeconv`` learns the paper's
    9/45/150 network with these defaults.

    References
    ----------
    M. D. Zeiler, D. Krishnan, G. W. Taylor and R. Fergus, "Deconvolutional
    Networks", CVPR 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv import DeconvNetworkTransformer
    >>> X = np.random.RandomState(0).standard_normal((6, 8 * 8))
    >>> net = DeconvNetworkTransformer(
    ...     n_filters=(4, 6), filter_shape=3, connectivity=("full", "random_pairs"),
    ...     image_shape=(8, 8), n_epochs=2, random_state=0).fit(X)
    >>> [name for name, _ in net.pipeline_.steps], net.feature_map_shape_
    (['layer1', 'layer2'], (6, 12, 12))
    >>> maps = net.transform(X)
    >>> maps.shape
    (6, 864)
    >>> [m.shape for m in net.transform(X, layers=(1, 2))]
    [(6, 400), (6, 864)]
    >>> net.inverse_transform(maps).shape
    (6, 64)
    >>> net.project_filters(2).shape   # 6 filters seen in pixel space
    (6, 1, 5, 5)
    """

    _parameter_constraints: dict = {
        "n_filters": per_layer_constraint(_LAYER_CONSTRAINTS, "n_filters"),
        **{name: per_layer_constraint(_LAYER_CONSTRAINTS, name) for name in _PER_LAYER},
        "image_shape": [None, tuple, list],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_filters=(9, 45, 150),
        filter_shape=7,
        *,
        connectivity="auto",
        image_shape=None,
        lmbda="auto",
        p=1.0,
        solver="auto",
        max_iter=1000,
        tol=1e-3,
        n_epochs=100,
        fit_algorithm="interleaved",
        batch_size=10,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_filters = n_filters
        self.filter_shape = filter_shape
        self.connectivity = connectivity
        self.image_shape = image_shape
        self.lmbda = lmbda
        self.p = p
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.n_epochs = n_epochs
        self.fit_algorithm = fit_algorithm
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ fitting
    def _layer_params(self):
        """One dict of ConvSparseCoder parameters per layer, validated."""
        return split_per_layer(self, _PER_LAYER, _LAYER_CONSTRAINTS)

    def _check_layers(self, layer_params, n_features, seeds):
        """Resolve 'auto' connectivities and check every layer before any trains.

        Each layer's filter shape and connectivity are checked against its
        input: the image channels for layer 1, the maps of the layer below
        above it.  Errors name the layer.
        """
        image_shape, n_channels = check_image_shape(self.image_shape, n_features)
        for number, (params, seed) in enumerate(zip(layer_params, seeds), start=1):
            params["connectivity"] = layer_connectivity(
                params["connectivity"], number, params["n_filters"], n_channels
            )
            try:
                filter_shape = check_filter_shape(params["filter_shape"], len(image_shape))
                _make_connectivity(
                    params["connectivity"], params["n_filters"], n_channels,
                    np.random.RandomState(seed),
                )
            except ValueError as error:
                raise ValueError(
                    f"Layer {number} of {type(self).__name__} ({n_channels} input "
                    f"channels, {params['n_filters']} maps): {error}"
                ) from None
            image_shape = map_shape_of(image_shape, filter_shape)
            n_channels = params["n_filters"]
        return layer_params

    @single_convergence_warning
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the layers one after another.

        Layer 1 is fitted on X, layer ``l + 1`` on the maps that the fitted
        layer ``l`` infers (``transform``) for its training input.

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
        self._fit(X)
        return self

    def _fit(self, X, layers=None):
        """Train the layers; return the maps of X of ``layers`` (None: none;
        checked before any training), each inferred once by the layer's
        ``fit_transform``: those below the top are the next layers' training
        inputs anyway."""
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
        layer_params = self._layer_params()
        seeds = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=len(layer_params)
        )
        layer_params = self._check_layers(layer_params, X.shape[1], seeds)
        numbers = [] if layers is None else layer_numbers(layers, len(layer_params))
        steps, inputs, image_shape, kept = [], X, self.image_shape, {}
        for number, (params, seed) in enumerate(zip(layer_params, seeds), start=1):
            start = time.perf_counter()
            layer = clone(
                ConvSparseCoder(
                    **params, image_shape=image_shape, scale_input=True,
                    n_jobs=self.n_jobs, random_state=int(seed), verbose=self.verbose,
                )
            )
            need_maps = number < len(layer_params) or number in numbers
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DeadLayerWarning)
                if need_maps:
                    inputs = layer.fit_transform(inputs)
                else:
                    layer.fit(inputs)
            _reissue(caught, f"{type(self).__name__} layer {number}")
            steps.append((f"layer{number}", layer))
            if number in numbers:
                kept[number] = inputs
            image_shape = layer.feature_map_shape_[1:]
            self._report(number, len(layer_params), layer, time.perf_counter() - start)
        self.pipeline_ = Pipeline(steps)
        self.feature_map_shape_ = layer.feature_map_shape_
        self._n_features_out = prod(self.feature_map_shape_)
        self.n_iter_ = int(sum(layer.n_iter_ for _, layer in steps))
        return [kept[number] for number in numbers]

    def _report(self, number, n_layers, layer, seconds):
        if self.verbose:
            print(
                f"[DeconvNetworkTransformer] layer {number}/{n_layers}: "
                f"{layer.n_channels_} -> {layer.feature_map_shape_[0]} maps of "
                f"{layer.feature_map_shape_[1:]}, cost {layer.cost_history_[-1]:.6g}, "
                f"{seconds:.1f} s",
                flush=True,
            )

    # ------------------------------------------------------------ inference
    def _check_input(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)

    def _layer_maps(self, X):
        """Yield the maps of layer 1, 2, ... of validated X, bottom up."""
        for _, layer in self.pipeline_.steps:
            X = layer.transform(X)
            yield X

    def project(self, Z, layer=-1):
        """Project maps of one layer down to the input (pixel) space.

        The result is exactly the chained ``inverse_transform`` of layers
        ``layer``, ``layer - 1``, ..., 1: every layer synthesises its input
        from its maps, which are the maps of the layer below.

        Parameters
        ----------
        Z : array-like of shape (n_samples, prod(layer's feature_map_shape_))
            Maps of layer ``layer``, flattened as that layer's ``transform``
            returns them.
        layer : int, default=-1
            Layer number, from 1 (nearest the pixels); -1 is the top.

        Returns
        -------
        X_projected : ndarray of shape (n_samples, n_features_in_)
            The projections in input space.
        """
        return self._project_input(Z, layer, "Z")

    def _project_input(self, Z, layer, input_name):
        check_is_fitted(self)
        Z, number = check_layer_maps(self.pipeline_, Z, layer, input_name)
        return project_maps(self.pipeline_, Z, number)

    def inverse_transform(self, X):
        """Project top-layer maps down to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, prod(feature_map_shape_))
            Top-layer maps, as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Reconstructions in input space (``project(X, -1)``).
        """
        return self._project_input(X, -1, "X")

    def project_filters(self, layer=-1):
        """Every filter of one layer seen in pixel space.

        The projected filter of map ``k`` of layer ``l`` is what a unit
        impulse in that map becomes in pixel space: for layer 1,
        ``s_1 * f1[k]``; for layer 2, ``s_1 s_2 sum_c f2[k, c] *full f1[c]``
        (full convolution, planes absent from the connectivity being zero);
        and so on up, where ``s_l`` is the ``input_scale_`` of layer ``l``.
        So :meth:`project` of a map that is 1 at one position and 0
        elsewhere is the projected filter placed at that position (cropped
        at the borders of the input).

        Parameters
        ----------
        layer : int, default=-1
            Layer number, from 1 (nearest the pixels); -1 is the top.

        Returns
        -------
        filters : ndarray of shape (n_filters_layer, n_channels, *receptive_field)
            ``n_channels`` is the number of input channels of the network;
            the receptive field grows by ``filter_shape - 1`` per layer.
        """
        check_is_fitted(self)
        return pixel_space_filters(self.pipeline_, layer_number(layer, len(self.pipeline_)))

    @single_convergence_warning
    def score(self, X, y=None):
        """Return minus the mean squared error of X's reconstruction from the top layer.

        The reconstruction is ``inverse_transform(transform(X))``; the score
        is ``-mean((X - reconstruction) ** 2)`` over all samples and
        features, so higher is better.  It is not the training objective of
        any layer, and improves as ``lmbda`` grows (denser maps), so do not
        use it alone to choose ``lmbda``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            Minus the mean squared reconstruction error.
        """
        X = self._check_input(X)
        *_, top = self._layer_maps(X)
        reconstruction = project_maps(self.pipeline_, top, len(self.pipeline_))
        return -float(np.mean((X - reconstruction) ** 2))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _reissue(caught, where):
    """Re-issue caught warnings at the user's line, dead layers named by ``where``."""
    for message in caught:
        text = str(message.message)
        if issubclass(message.category, DeadLayerWarning):
            text = f"{where}: {text.split(': ', 1)[-1]}"
        warn_user(text, message.category)
