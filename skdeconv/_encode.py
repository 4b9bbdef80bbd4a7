"""Map inference for fixed filters: the public function and its workers.

They validate their arguments and dispatch chunks of samples to joblib
workers; the estimators in ``_coder.py`` are thin layers over them.
"""

from math import prod
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.utils import check_array, gen_even_slices
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.parallel import Parallel, delayed

from ._connectivity import CONNECTIVITY_CONSTRAINT, _make_connectivity
from ._fft_ops import ConvOperator
from ._geometry import check_image_shape, map_shape_of
from ._operators import MaskedOperator
from ._parallel import chunk_slices, one_blas_thread
from ._solvers import SOLVERS, auto_solvers, objective, precompute_for, solve
from ._warnings import report_not_converged, single_convergence_warning

# Arrays of the size of the maps' spectra that live at once inside a solver
# (the chunks' memory budget is _parallel.CHUNK_BYTES).
_WORKING_ARRAYS = 12

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
# Each task gets its arrays packed in a tuple: joblib's dask backend scatters
# large array arguments to ONE worker, and a task whose scattered input dies
# with that worker is cancelled (scattered data has no lineage); inside a
# tuple they travel with the task, which the scheduler reruns elsewhere.
def _encode_chunk(arrays, *, lmbda, p, solver, max_iter, tol, options=None):
    """Maps, iterations and convergence of a chunk.

    ``solver`` is one name, or an array of a name per sample ('auto'): each
    group of samples is then solved by its own solver (every sample is
    solved independently, so the results are those of the chosen solver).
    """
    op, Y, init = arrays
    if init is None:
        init = np.zeros((len(Y), op.n_filters) + op.map_shape, dtype=Y.dtype)
    names = np.unique(solver)
    params = dict(lmbda=lmbda, p=p, max_iter=max_iter, tol=tol, options=options)
    with one_blas_thread():
        if names.size == 1:
            return solve(op, Y, solver=str(names[0]), init=init, **params)
        maps = np.empty_like(init)
        n_iter = np.empty(len(Y), dtype=int)
        converged = np.empty(len(Y), dtype=bool)
        for name in names:
            rows = np.flatnonzero(solver == name)
            maps[rows], n_iter[rows], converged[rows] = solve(
                op.take(rows), Y[rows], solver=str(name), init=init[rows], **params
            )
        return maps, n_iter, converged


def _encode(
    Y, filters, connectivity, *, lmbda, p, solver, max_iter, tol, init=None, n_jobs=None,
    mask=None, solver_options=None,
):
    """Maps (n, K, *map_shape) of images Y (n, C, *image_shape); unvalidated.

    ``mask`` (binary, shape of Y) restricts the data term to the pixels
    where it is 1 (:class:`~skdeconv._operators.MaskedOperator`).
    ``solver_options``: extra constructor keywords per solver name
    (:func:`~skdeconv._solvers.make_solver`).
    ``solver='auto'`` picks a solver per sample
    (:func:`~skdeconv._solvers.auto_solvers`).

    Returns the maps, the iterations of each sample and their convergence.
    """
    n_samples = len(Y)
    op = ConvOperator(filters, connectivity, Y.shape[2:])
    spectrum_bytes = len(filters) * prod(op.fft_shape) * Y.itemsize
    if mask is not None:
        op, Y = MaskedOperator(op, mask), Y * mask
    slices = chunk_slices(
        n_samples, effective_n_jobs(n_jobs), _WORKING_ARRAYS * spectrum_bytes
    )
    if solver == "auto":
        with one_blas_thread():
            solver = auto_solvers(op, Y, lmbda, p)
    precompute_for(op, solver)
    # Chunks are written into the output as they arrive: the peak memory is
    # the output plus the chunks in flight, not twice the output.
    maps = np.empty((n_samples, len(filters)) + op.map_shape, dtype=Y.dtype)
    n_iter = np.empty(n_samples, dtype=int)
    converged = np.empty(n_samples, dtype=bool)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_encode_chunk)(
            (op.take(s), Y[s], None if init is None else init[s]),
            lmbda=lmbda, p=p, solver=solver if isinstance(solver, str) else solver[s],
            max_iter=max_iter, tol=tol, options=solver_options,
        )
        for s in slices
    )
    for s, (chunk_maps, chunk_iter, chunk_converged) in zip(slices, results):
        maps[s], n_iter[s], converged[s] = chunk_maps, chunk_iter, chunk_converged
    return maps, n_iter, converged


def warn_not_converged(converged, tol, max_iter, where=""):
    """ConvergenceWarning if some samples' map inference stopped at max_iter.

    Inside a public call the warnings are summed into one (see ``_warnings``).
    """
    if not converged.all():
        report_not_converged(int((~converged).sum()), len(converged), tol, max_iter, where)


def _cost_chunk(arrays, lmbda, p):
    filters, connectivity, Y, maps = arrays  # a tuple: see _encode_chunk
    with one_blas_thread():
        op = ConvOperator(filters, connectivity, Y.shape[2:])
        return objective(op, maps, Y, lmbda, p)


def _costs(Y, maps, filters, connectivity, *, lmbda, p, n_jobs=None):
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


_COMMON_PARAMS = {
    "image_shape": [None, tuple, list],
    "connectivity": CONNECTIVITY_CONSTRAINT,
    "lmbda": [Interval(Real, 0, None, closed="neither")],
    "p": [Interval(Real, 0, 1, closed="right")],
    "solver": [StrOptions(set(SOLVERS) | {"auto"})],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "n_jobs": [Integral, None],
}


@single_convergence_warning
@validate_params(
    {"X": ["array-like"], "filters": ["array-like"], "init": [None, "array-like"],
     "mask": [None, "array-like"], **_COMMON_PARAMS},
    prefer_skip_nested_validation=True,
)
def conv_sparse_encode(
    X, filters, *, image_shape=None, connectivity=None, lmbda=1.0, p=1.0,
    solver="auto", max_iter=1000, tol=1e-3, init=None, mask=None, n_jobs=None,
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
    solver : {'auto', 'fista', 'admm', 'continuation'}, default='auto'
        FISTA with adaptive restart; ADMM with mask decoupling in the Fourier
        domain (Wohlberg 2016), faster when lambda is large (dense maps); or
        the paper's beta continuation with conjugate-gradient z-steps.
        'auto' picks 'admm' or 'fista' per sample by a measured rule on the
        scale-free ``lambda * max|F'x|`` (``lambda`` over the smallest weight
        that gives non-zero maps): 'admm' from 3 on (denser maps; 40 for
        inputs of 2-8 channels), else 'fista'; always 'fista' for p < 1,
        with a ``mask`` and for inputs of more than 8 channels.  Each sample's maps are those of its solver,
        whatever the other rows.
    max_iter : int, default=1000
        Iterations per sample: gradient steps (FISTA), iterations (ADMM) or
        CG steps over the whole beta schedule (continuation).
    tol : float, default=1e-3
        Stop a sample when ``||z_t - z_{t-1}|| <= tol * ||z_t||`` (for ADMM:
        when its relative primal and dual residuals are both ``<= 3 tol``,
        about as close to the optimum).
    init : array-like of shape (n_samples, n_filters * prod(map_shape)), \
default=None
        Warm start; zeros when None.
    mask : array-like of shape (n_samples, n_features), default=None
        Binary weights of the data term: only the values where the mask is
        1 are explained, ``lambda/2 ||W (F z - x)||^2`` (e.g. to predict
        held-out pixels from the others).  Solvers 'fista' and
        'continuation' support it ('auto' picks 'fista').
    n_jobs : int, default=None
        Number of joblib workers over chunks of samples.

    Returns
    -------
    maps : ndarray of shape (n_samples, n_filters * prod(map_shape))
        Maps flattened as ``(n_filters, *map_shape)`` with
        ``map_shape = image_shape + filter_shape - 1``.

    See Also
    --------
    ConvSparseCoder : Learns the filters; its ``transform`` calls this.
    conv_dict_learning : Learns filters and maps.

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
    if mask is not None:
        mask = check_array(mask, dtype=X.dtype, input_name="mask")
        if mask.shape != X.shape or not np.isin(mask, (0, 1)).all():
            raise ValueError(
                f"mask must be a binary array of the shape of X {X.shape}, got shape "
                f"{mask.shape}" + ("." if mask.shape != X.shape else " with other values.")
            )
        mask = mask.reshape(Y.shape)
    maps, _, _ = _encode(
        Y, filters, g, lmbda=lmbda, p=p, solver=solver, max_iter=max_iter, tol=tol,
        init=init, n_jobs=n_jobs, mask=mask,
    )
    return maps.reshape(len(X), -1)
