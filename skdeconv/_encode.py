"""Public functions: map inference for fixed filters and filter learning.

They validate their arguments and dispatch chunks of samples to joblib
workers; the estimators in ``_coder.py`` are thin layers over them.
"""

import sys
import time
import warnings
from math import prod
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state, gen_even_slices
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

from ._connectivity import CONNECTIVITY_CONSTRAINT, _make_connectivity
from ._fft_ops import ConvOperator
from ._geometry import check_filter_shape, check_image_shape, map_shape_of
from ._filters import normalize_filters, random_filters, update_filters
from ._solvers import SOLVERS, objective

# Bytes of working memory one chunk of samples may use (about 12 arrays of
# the size of the maps' spectra live at once inside a solver).
_CHUNK_BYTES = 2**25
_WORKING_ARRAYS = 12
FILTER_STEPS_PER_EPOCH = 30

_SHAPE_CONSTRAINT = [Interval(Integral, 1, None, closed="left"), tuple, list]


def check_filters(filters, n_channels, n_axes, dtype, name="filters"):
    """Validate a filter array of shape (n_filters, n_channels, *filter_shape)."""
    filters = check_array(
        filters, allow_nd=True, ensure_2d=False, dtype=dtype, input_name=name
    )
    if filters.ndim != 2 + n_axes or filters.shape[1] != n_channels or not filters.size:
        raise ValueError(
            f"{name} must have shape (n_filters, n_channels={n_channels}, "
            f"*filter_shape) with {n_axes} spatial axes, none empty, got shape "
            f"{filters.shape}."
        )
    return filters


# ---------------------------------------------------------------- dispatch
def _chunk_slices(n_samples, n_jobs, bytes_per_sample):
    """Even slices: at least one per job, each within the memory budget."""
    per_chunk = max(1, _CHUNK_BYTES // max(1, bytes_per_sample))
    n_chunks = max(effective_n_jobs(n_jobs), -(-n_samples // per_chunk))
    return list(gen_even_slices(n_samples, min(n_samples, n_chunks)))


# Each task gets its arrays packed in a tuple: joblib's dask backend scatters
# large array arguments to ONE worker, and a task whose scattered input dies
# with that worker is cancelled (scattered data has no lineage); inside a
# tuple they travel with the task, which the scheduler reruns elsewhere.
def _encode_chunk(arrays, lmbda, p, solver, max_iter, tol):
    op, Y, init, weights = arrays
    if init is None:
        init = np.zeros((len(Y), op.n_filters) + op.map_shape, dtype=Y.dtype)
    extra = {} if weights is None else {"weights": weights}
    with threadpool_limits(limits=1, user_api="blas"):
        return SOLVERS[solver](op, Y, lmbda, p, init, max_iter, tol, **extra)


# The filter-only quantities each solver needs, computed once per call and
# shipped to the workers with the operator.
_SOLVER_PRECOMPUTE = {"fista": "lipschitz", "admm": "woodbury_inverse"}


def _encode(
    Y, filters, connectivity, lmbda, p, solver, max_iter, tol, init, n_jobs, weights=None
):
    """Maps (n, K, *map_shape) of images Y (n, C, *image_shape); unvalidated.

    ``weights`` (binary, shape of Y; FISTA only) masks the data term.

    Returns the maps, the iterations of each sample and their convergence.
    """
    n_samples = len(Y)
    op = ConvOperator(filters, connectivity, Y.shape[2:])
    if solver in _SOLVER_PRECOMPUTE:
        with threadpool_limits(limits=1, user_api="blas"):
            getattr(op, _SOLVER_PRECOMPUTE[solver])
    spectrum_bytes = len(filters) * prod(op.fft_shape) * Y.itemsize
    slices = _chunk_slices(n_samples, n_jobs, _WORKING_ARRAYS * spectrum_bytes)
    # Chunks are written into the output as they arrive: the peak memory is
    # the output plus the chunks in flight, not twice the output.
    maps = np.empty((n_samples, len(filters)) + op.map_shape, dtype=Y.dtype)
    n_iter = np.empty(n_samples, dtype=int)
    converged = np.empty(n_samples, dtype=bool)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_encode_chunk)(
            (op, Y[s], None if init is None else init[s],
             None if weights is None else weights[s]),
            lmbda, p, solver, max_iter, tol,
        )
        for s in slices
    )
    for s, (chunk_maps, chunk_iter, chunk_converged) in zip(slices, results):
        maps[s], n_iter[s], converged[s] = chunk_maps, chunk_iter, chunk_converged
    return maps, n_iter, converged


def warn_not_converged(converged, tol, max_iter, where=""):
    """ConvergenceWarning if some samples' map inference stopped at max_iter.

    The warning points at the first caller outside skdeconv and scikit-learn
    (whose wrappers - set_output, _fit_context, validate_params, Pipeline -
    sit in between).
    """
    if converged.all():
        return
    frame, stacklevel = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
        "skdeconv", "sklearn"
    ):
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(
        f"Map inference did not reach tol={tol} within max_iter={max_iter} for "
        f"{int((~converged).sum())} of {len(converged)} samples{where}; "
        "increase max_iter.",
        ConvergenceWarning,
        stacklevel=stacklevel,
    )


def _cost_chunk(arrays, lmbda, p):
    filters, connectivity, Y, maps = arrays  # a tuple: see _encode_chunk
    with threadpool_limits(limits=1, user_api="blas"):
        op = ConvOperator(filters, connectivity, Y.shape[2:])
        return objective(op, maps, Y, lmbda, p)


def _costs(Y, maps, filters, connectivity, lmbda, p, n_jobs):
    """Per-sample cost lambda/2 ||F z - y||^2 + sum |z|^p; unvalidated."""
    slices = list(gen_even_slices(len(Y), min(len(Y), effective_n_jobs(n_jobs))))
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_cost_chunk)((filters, connectivity, Y[s], maps[s]), lmbda, p)
        for s in slices
    )
    return np.concatenate(parts)


def _reconstruct(maps, filters, connectivity, image_shape):
    """F z for maps (n, K, *map_shape) -> (n, C, *image_shape)."""
    return ConvOperator(filters, connectivity, image_shape).forward(maps)


# ---------------------------------------------------------------- learning
def _learn_filters(
    Y, filters, connectivity, *, lmbda, p, solver, max_iter, tol, n_epochs,
    n_jobs, verbose, init_maps=None, filter_steps=FILTER_STEPS_PER_EPOCH,
):
    """Alternate map inference and filter steps; unvalidated worker.

    Each sample keeps its new maps only when they lower its cost (FISTA is
    not monotone), so with p = 1 the recorded cost never increases.

    Returns maps, filters, the mean per-sample cost after each epoch and
    whether each sample's map inference converged in the last epoch.
    """
    maps = init_maps
    if maps is None:
        maps = np.zeros(
            (len(Y), len(filters)) + map_shape_of(Y.shape[2:], filters.shape[2:]),
            dtype=Y.dtype,
        )
    costs = _costs(Y, maps, filters, connectivity, lmbda, p, n_jobs)
    history = []
    for epoch in range(n_epochs):
        start = time.perf_counter()
        new_maps, _, converged = _encode(
            Y, filters, connectivity, lmbda, p, solver, max_iter, tol, maps, n_jobs
        )
        new_costs = _costs(Y, new_maps, filters, connectivity, lmbda, p, n_jobs)
        better = new_costs <= costs
        maps = np.where(better.reshape((-1,) + (1,) * (maps.ndim - 1)), new_maps, maps)
        filters = update_filters(filters, connectivity, maps, Y, filter_steps)
        costs = _costs(Y, maps, filters, connectivity, lmbda, p, n_jobs)
        history.append(float(costs.mean()))
        if verbose:
            print(
                f"[conv_dict_learning] epoch {epoch + 1}/{n_epochs} "
                f"cost {history[-1]:.6g} ({time.perf_counter() - start:.2f} s)",
                flush=True,
            )
    return maps, filters, np.asarray(history), converged


def init_filters(filters_init, n_filters, n_channels, filter_shape, connectivity, random_state, dtype):
    """Validated initial filters: given ones projected, or random unit planes."""
    if filters_init is None:
        return random_filters(
            n_filters, n_channels, filter_shape, connectivity,
            check_random_state(random_state), dtype,
        )
    filters = check_filters(
        filters_init, n_channels, len(filter_shape), dtype, name="filters_init"
    )
    expected = (n_filters, n_channels) + tuple(filter_shape)
    if filters.shape != expected:
        raise ValueError(
            f"filters_init must have shape {expected}, got {filters.shape}."
        )
    norms = np.sqrt(np.sum(filters**2, axis=tuple(range(2, filters.ndim))))
    zero = np.argwhere((norms == 0) & connectivity)
    if zero.size:
        raise ValueError(
            "filters_init has planes of zero norm, which cannot be normalised, "
            "where the connectivity is 1: (map, channel) = "
            f"{[tuple(map(int, kc)) for kc in zero[:5]]}."
        )
    return normalize_filters(filters, connectivity)


_COMMON_PARAMS = {
    "image_shape": [None, tuple, list],
    "connectivity": CONNECTIVITY_CONSTRAINT,
    "lmbda": [Interval(Real, 0, None, closed="neither")],
    "p": [Interval(Real, 0, 1, closed="right")],
    "solver": [StrOptions(set(SOLVERS))],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "n_jobs": [Integral, None],
}


@validate_params(
    {"X": ["array-like"], "filters": ["array-like"], "init": [None, "array-like"],
     **_COMMON_PARAMS},
    prefer_skip_nested_validation=True,
)
def conv_sparse_encode(
    X, filters, *, image_shape=None, connectivity=None, lmbda=1.0, p=1.0,
    solver="fista", max_iter=200, tol=1e-3, init=None, n_jobs=None,
):
    """Infer sparse feature maps of X for FIXED filters.

    Every sample is solved independently for::

        lambda/2 * sum_c ||sum_k g[k,c] conv_valid(z_k, f_kc) - x_c||^2
        + sum_k |z_k|_p^p

    where ``lambda`` weights the reconstruction as in Zeiler et al. (2010)
    (SPORCO's ``lmbda`` is ``1 / lambda``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows flattened in C order as ``(n_channels, *image_shape)``.
    filters : array-like of shape (n_filters, n_channels, *filter_shape)
        The filter planes (used as given, not normalised).
    image_shape : tuple of int, default=None
        Spatial shape of each channel; ``None`` means 1-D signals of length
        ``n_features``.
    connectivity : {None, 'full', 'singles_and_pairs', 'random_pairs', \
'random_<m>'} or array-like of shape (n_filters, n_channels), default=None
        Which planes exist; see :func:`make_connectivity`.  Random presets
        use a fixed seed of 0 here; pass an array to choose.
    lmbda : float, default=1.0
        Weight of the reconstruction term (> 0).
    p : float in (0, 1], default=1.0
        Exponent of the sparsity penalty.
    solver : {'fista', 'admm', 'continuation'}, default='fista'
        FISTA with adaptive restart; ADMM with mask decoupling in the Fourier
        domain (Wohlberg 2016), faster when lambda is large (dense maps); or
        the paper's beta continuation with conjugate-gradient z-steps.
    max_iter : int, default=200
        Iterations per sample: gradient steps (FISTA), iterations (ADMM) or
        CG steps over the whole beta schedule (continuation).
    tol : float, default=1e-4
        Stop a sample when ``||z_t - z_{t-1}|| <= tol * ||z_t||`` (for ADMM:
        when its relative primal and dual residuals are both ``<= tol``).
    init : array-like of shape (n_samples, n_filters * prod(map_shape)), \
default=None
        Warm start; zeros when None.
    n_jobs : int, default=None
        Number of joblib workers over chunks of samples.

    Returns
    -------
    maps : ndarray of shape (n_samples, n_filters * prod(map_shape))
        Maps flattened as ``(n_filters, *map_shape)`` with
        ``map_shape = image_shape + filter_shape - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv import conv_sparse_encode
    >>> filters = np.array([[[1.0, -1.0]]])          # one 1-D filter
    >>> X = np.array([[0.0, 3.0, -3.0, 0.0]])
    >>> maps = conv_sparse_encode(X, filters, lmbda=10.0, tol=1e-10, max_iter=2000)
    >>> maps.shape
    (1, 5)
    >>> np.flatnonzero(maps), round(float(maps[0, 2]), 3)
    (array([2]), 2.95)
    """
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    image_shape, n_channels = check_image_shape(image_shape, X.shape[1])
    filters = check_filters(filters, n_channels, len(image_shape), X.dtype)
    g = _make_connectivity(connectivity, len(filters), n_channels, random_state=0)
    Y = X.reshape((len(X), n_channels) + image_shape)
    map_shape = map_shape_of(image_shape, filters.shape[2:])
    if init is not None:
        init = check_array(init, dtype=X.dtype, input_name="init")
        expected = (len(X), len(filters) * prod(map_shape))
        if init.shape != expected:
            raise ValueError(f"init must have shape {expected}, got {init.shape}.")
        init = init.reshape((len(X), len(filters)) + map_shape)
    maps, _, _ = _encode(Y, filters, g, lmbda, p, solver, max_iter, tol, init, n_jobs)
    return maps.reshape(len(X), -1)


@validate_params(
    {
        "X": ["array-like"],
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "filter_shape": _SHAPE_CONSTRAINT,
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "filters_init": [None, "array-like"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        **_COMMON_PARAMS,
    },
    prefer_skip_nested_validation=True,
)
def conv_dict_learning(
    X, n_filters, filter_shape, *, image_shape=None, connectivity=None, lmbda=1.0,
    p=1.0, solver="fista", max_iter=200, tol=1e-3, n_epochs=10, filters_init=None,
    n_jobs=None, random_state=None, verbose=0,
):
    """Learn convolutional filters and sparse maps of X (one layer).

    Alternates, for ``n_epochs``, map inference for every sample (warm
    started) and projected-gradient steps on the filters, to minimise::

        sum_n lambda/2 * sum_c ||sum_k g[k,c] conv_valid(z_nk, f_kc) - x_nc||^2
              + sum_k |z_nk|_p^p

    over maps and unit-norm filter planes.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows flattened in C order as ``(n_channels, *image_shape)``.
    n_filters : int
        Number of feature maps ``K``.
    filter_shape : int or tuple of int
        Spatial filter shape (an int is used on every axis).
    image_shape, connectivity, lmbda, p, solver, max_iter, tol, n_jobs
        As in :func:`conv_sparse_encode`.
    n_epochs : int, default=10
        Alternations of map inference and filter update.
    filters_init : array-like of shape (n_filters, n_channels, *filter_shape), \
default=None
        Initial filters (projected to unit norm); random normal when None.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial filters and random connectivity presets.
    verbose : int, default=0
        Print the cost and time of every epoch.

    Returns
    -------
    maps : ndarray of shape (n_samples, n_filters * prod(map_shape))
        Maps of the last epoch.
    filters : ndarray of shape (n_filters, n_channels, *filter_shape)
        Learned unit-norm filters (exact zeros where g[k, c] = 0).
    cost_history : ndarray of shape (n_epochs,)
        Mean per-sample cost after each epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeconv import conv_dict_learning
    >>> X = np.random.RandomState(0).standard_normal((4, 30))
    >>> maps, filters, costs = conv_dict_learning(
    ...     X, n_filters=3, filter_shape=5, n_epochs=3, random_state=0)
    >>> maps.shape, filters.shape
    ((4, 102), (3, 1, 5))
    >>> bool(np.all(np.diff(costs) <= 1e-12))
    True
    """
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    image_shape, n_channels = check_image_shape(image_shape, X.shape[1])
    filter_shape = check_filter_shape(filter_shape, len(image_shape))
    rng = check_random_state(random_state)
    g = _make_connectivity(connectivity, n_filters, n_channels, rng)
    filters = init_filters(
        filters_init, n_filters, n_channels, filter_shape, g, rng, X.dtype
    )
    Y = X.reshape((len(X), n_channels) + image_shape)
    maps, filters, history, converged = _learn_filters(
        Y, filters, g, lmbda=lmbda, p=p, solver=solver, max_iter=max_iter, tol=tol,
        n_epochs=n_epochs, n_jobs=n_jobs, verbose=verbose,
    )
    warn_not_converged(converged, tol, max_iter, where=" in the last epoch")
    return maps.reshape(len(X), -1), filters, history
