"""Filter learning: the function form of fit and its two algorithms.

'interleaved' (the default) advances every sample's map solver by one
iteration - its iterate, momentum or ADMM duals carried over from epoch to
epoch - and then takes one accelerated projected-gradient step on the filters
(the interleaved scheme of SPORCO's dictionary learning, Garcia-Cardona &
Wohlberg, 2018).  'alternating' is the paper's block scheme: infer the maps
to ``tol``, then update the filters.
"""

import time
from numbers import Integral

import numpy as np
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.parallel import Parallel, delayed

from ._connectivity import _make_connectivity
from ._encode import (
    _COMMON_PARAMS,
    _SHAPE_CONSTRAINT,
    _chunk_slices,
    _costs,
    _encode,
    auto_solver_for_learning,
    check_filters,
    one_blas_thread,
    prepare_for_solver,
    warn_not_converged,
)
from ._fft_ops import ConvOperator
from ._filters import (
    MomentumFilterSteps,
    channel_data_terms,
    correlations_to_gradient,
    filter_gradient_terms,
    normalize_filters,
    power_of_two_scale,
    random_filters,
    update_filters,
)
from ._geometry import check_filter_shape, check_image_shape, map_shape_of
from ._shrinkage import penalty
from ._warnings import single_convergence_warning
from ._solvers import (
    admm_maps,
    admm_start,
    advance_one_iteration,
    fista_start,
)

FIT_ALGORITHMS = ("interleaved", "alternating", "online")
# Projected-gradient steps on the filters per epoch of 'alternating'.
FILTER_STEPS_PER_EPOCH = 30
# The map solvers that can be advanced one iteration at a time.
INTERLEAVED_SOLVERS = ("fista", "admm")
# Interleaved learning splits the samples into at least this many chunks,
# whatever n_jobs: the filter gradient sums the chunks in order, so the
# chunks - and the learned filters, bit for bit - must not depend on n_jobs.
MIN_CHUNKS = 4
# Map-sized arrays per sample a chunk holds: the solver state kept between
# epochs and the spectra (~4) on top of a solver's working arrays (~12).
_INTERLEAVED_ARRAYS = 16


def check_fit_algorithm(fit_algorithm, solver):
    """'interleaved' needs a map solver that advances one iteration at a time."""
    if fit_algorithm == "interleaved" and solver not in INTERLEAVED_SOLVERS + ("auto",):
        raise ValueError(
            f"fit_algorithm='interleaved' needs solver in {INTERLEAVED_SOLVERS}, got "
            f"solver={solver!r}; use fit_algorithm='alternating' with it."
        )


def _learn_filters(
    Y, filters, connectivity, *, fit_algorithm, batch_size=10, random_state=None,
    return_maps=True, **params,
):
    """Learn filters with ``fit_algorithm``; unvalidated worker.

    Returns maps, filters, the mean per-sample cost after each epoch and
    whether each sample's map inference converged in the last epoch (always
    True for 'interleaved', whose map solvers never stop).  'online' (see
    ``_online.py``) uses ``batch_size`` and ``random_state``, and returns
    None for the maps unless ``return_maps``.
    """
    if fit_algorithm == "interleaved" and params.get("solver") == "auto":
        # one solver for the whole fit, chosen from the training data
        op = ConvOperator(filters, connectivity, Y.shape[2:])
        params["solver"] = auto_solver_for_learning(op, Y, params["lmbda"], params["p"])
    if fit_algorithm == "online":
        from ._online import learn_online

        return learn_online(
            Y, filters, connectivity, batch_size=batch_size, random_state=random_state,
            return_maps=return_maps, **params,
        )
    if fit_algorithm == "interleaved":
        from ._cluster import active_dask_client, learn_interleaved_on_cluster

        client = active_dask_client()  # joblib's "dask" backend: state stays on the workers
        if client is not None:
            return learn_interleaved_on_cluster(
                client, Y, filters, connectivity, return_maps=return_maps, **params
            )
        return _learn_interleaved(Y, filters, connectivity, **params)
    return _learn_alternating(Y, filters, connectivity, **params)


def _report(verbose, epoch, n_epochs, cost, start):
    if verbose > 1 or (verbose and ((epoch + 1) % 10 == 0 or epoch + 1 == n_epochs)):
        print(
            f"[conv_dict_learning] epoch {epoch + 1}/{n_epochs} "
            f"cost {cost:.6g} ({time.perf_counter() - start:.2f} s)",
            flush=True,
        )


# ------------------------------------------------------------ alternating
def _learn_alternating(
    Y, filters, connectivity, *, lmbda, p, solver, max_iter, tol, n_epochs, n_jobs, verbose,
):
    """Infer the maps to ``tol`` (warm started), then filter steps, per epoch.

    Each sample keeps its new maps only when they lower its cost (FISTA is
    not monotone), so with p = 1 the recorded cost never increases.
    """
    maps = np.zeros(
        (len(Y), len(filters)) + map_shape_of(Y.shape[2:], filters.shape[2:]), dtype=Y.dtype
    )
    costs = _costs(Y, maps, filters, connectivity, lmbda, p, n_jobs)
    history = []
    start = time.perf_counter()
    for epoch in range(n_epochs):
        new_maps, _, converged = _encode(
            Y, filters, connectivity, lmbda, p, solver, max_iter, tol, maps, n_jobs
        )
        new_costs = _costs(Y, new_maps, filters, connectivity, lmbda, p, n_jobs)
        better = new_costs <= costs
        maps = np.where(better.reshape((-1,) + (1,) * (maps.ndim - 1)), new_maps, maps)
        filters = update_filters(filters, connectivity, maps, Y, FILTER_STEPS_PER_EPOCH)
        costs = _costs(Y, maps, filters, connectivity, lmbda, p, n_jobs)
        history.append(float(costs.mean()))
        _report(verbose, epoch, n_epochs, history[-1], start)
    return maps, filters, np.asarray(history), converged


# ------------------------------------------------------------ interleaved
def _start_chunk(arrays, lmbda, solver):
    op, Y = arrays  # tuples of arrays: see _encode._encode_chunk
    init = np.zeros((len(Y), op.n_filters) + op.map_shape, dtype=Y.dtype)
    if solver == "admm":
        return admm_start(op, Y, init, lmbda)
    return fista_start(Y, init)


def _advance_chunk(arrays, lmbda, p, solver, epoch, need_power):
    """One map iteration of a chunk, then its filter-gradient terms.

    Returns the chunk's new state (holding the maps' spectra for
    :func:`_chunk_data_terms`), its pair correlations, data term per
    channel at the extrapolated filters, penalty and, if asked, the power
    sum_n |Z_nk(w)|^2 of its maps.
    """
    op, point_op, state, Y = arrays
    with one_blas_thread():
        maps = advance_one_iteration(op, lmbda, p, solver, state, epoch)
        spectra = op.rfft(maps)
        correlations, data_terms = filter_gradient_terms(point_op, spectra, Y)
        power = np.sum(np.abs(spectra) ** 2, axis=0, dtype=np.float64) if need_power else None
        state["spectra"] = spectra
        sparsity = float(penalty(maps, p, axis=None))
    return state, correlations, data_terms, sparsity, power


def _chunk_data_terms(arrays):
    op, state, Y = arrays
    with one_blas_thread():
        return channel_data_terms(op, state["spectra"], Y)


def _filter_step(parallel, steps, gradient, data_point, states, slices, Y):
    """Backtrack the filter step until it passes; take it.

    Returns the data term per channel at the new filters (every chunk's
    stored map spectra, summed in chunk order) and the operator of the new
    filters, which the next epoch's map solvers use.
    """
    while True:
        candidate = steps.propose(gradient)
        op = ConvOperator(candidate, steps.connectivity, Y.shape[2:])
        data_terms = sum(parallel(
            delayed(_chunk_data_terms)((op, state, Y[s])) for state, s in zip(states, slices)
        ))
        fits = steps.sufficient_decrease(candidate, gradient, data_point, data_terms)
        if fits.all():
            steps.accept(candidate)
            return data_terms, op
        steps.backtrack(~fits)


def _learn_interleaved(
    Y, filters, connectivity, *, lmbda, p, solver, max_iter, tol, n_epochs, n_jobs, verbose,
):
    """One map iteration per sample and one filter step per epoch.

    ``max_iter`` and ``tol`` are not used: the map solvers run one iteration
    per epoch for ``n_epochs`` epochs.  Chunks are processed by joblib
    workers (threads by default: the solver state stays in memory).
    The problem is solved for the images scaled by a power of two ``a``
    into [0.5, 1) and ``lambda a^(p - 2)``, whose maps are ``a z`` and whose
    cost is ``a^p`` times the cost (exactly for p = 1), so that float32
    products cannot overflow and the solvers see data of unit scale.
    """
    scale = power_of_two_scale(np.max(np.abs(Y)), Y.dtype)
    Y, lmbda = Y * scale, lmbda * float(scale) ** (p - 2.0)
    image_shape = Y.shape[2:]
    op = ConvOperator(filters, connectivity, image_shape)
    spectrum_bytes = len(filters) * int(np.prod(op.fft_shape)) * Y.itemsize
    slices = _chunk_slices(len(Y), MIN_CHUNKS, _INTERLEAVED_ARRAYS * spectrum_bytes)
    steps = MomentumFilterSteps(filters, connectivity)
    history = []
    start = time.perf_counter()
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        states = parallel(delayed(_start_chunk)((op, Y[s]), lmbda, solver) for s in slices)
        for epoch in range(n_epochs):
            op = prepare_for_solver(op, solver)  # the operator of steps.filters
            point_op = ConvOperator(steps.point, connectivity, image_shape)
            need_power = steps.lipschitz is None or not steps.lipschitz.all()
            results = parallel(
                delayed(_advance_chunk)(
                    (op, point_op, state, Y[s]), lmbda, p, solver, epoch, need_power
                )
                for state, s in zip(states, slices)
            )
            states = [result[0] for result in results]
            correlations, data_point, sparsity = (
                sum(result[i] for result in results) for i in range(1, 4)
            )
            if need_power:
                steps.start_lipschitz(sum(result[4] for result in results))
            gradient = correlations_to_gradient(point_op, correlations)
            data_terms, new_op = _filter_step(
                parallel, steps, gradient, data_point, states, slices, Y
            )
            op = new_op.follow(op)  # FISTA's bound starts from this epoch's
            cost = lmbda * float(data_terms.sum()) + sparsity
            history.append(cost / len(Y) / float(scale) ** p)
            _report(verbose, epoch, n_epochs, history[-1], start)
    maps = np.concatenate([
        admm_maps(op, state) if solver == "admm" else state["x"] for state in states
    ])
    maps /= scale
    return maps, steps.filters, np.asarray(history), np.ones(len(Y), dtype=bool)


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


@single_convergence_warning
@validate_params(
    {
        "X": ["array-like"],
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "filter_shape": _SHAPE_CONSTRAINT,
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "fit_algorithm": [StrOptions(set(FIT_ALGORITHMS))],
        "filters_init": [None, "array-like"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        **_COMMON_PARAMS,
    },
    prefer_skip_nested_validation=True,
)
def conv_dict_learning(
    X, n_filters, filter_shape, *, image_shape=None, connectivity=None, lmbda=1.0,
    p=1.0, solver="auto", max_iter=200, tol=1e-3, n_epochs=100, fit_algorithm="interleaved",
    filters_init=None, n_jobs=None, random_state=None, verbose=0,
):
    """Learn convolutional filters and sparse maps of X (one layer).

    Minimises over the maps and unit-norm filter planes::

        sum_n lambda/2 * sum_c ||sum_k g[k,c] conv_valid(z_nk, f_kc) - x_nc||^2
              + sum_k |z_nk|_p^p

    by alternating updates of the maps and of the filters, for ``n_epochs``
    epochs (passes over the samples).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows flattened in C order as ``(n_channels, *image_shape)``.
    n_filters : int
        Number of feature maps ``K``.
    filter_shape : int or tuple of int
        Spatial filter shape (an int is used on every axis).
    image_shape, connectivity, lmbda, p, solver, n_jobs
        As in :func:`conv_sparse_encode`.  With 'interleaved', ``solver='auto'``
        runs one solver for the whole fit: the choice of most training samples
        at the initial filters, and 'fista' for inputs of more than 8
        channels (see :func:`skdeconv._encode.auto_solver_for_learning`); with
        'alternating' it chooses per sample at every epoch.
    max_iter, tol
        As in :func:`conv_sparse_encode`, for the map inference of each
        epoch of ``fit_algorithm='alternating'``; not used by 'interleaved'.
    n_epochs : int, default=100
        Epochs: passes over the samples, each ending with a filter update.
    fit_algorithm : {'interleaved', 'alternating'}, default='interleaved'
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
        each costing a full inference.  On the 10 fruit images (lambda 10,
        'admm') interleaved reaches in 99 epochs (4.2 s) the cost
        alternating reaches after ~40 epochs of 100 iterations (130 s).
    filters_init : array-like of shape (n_filters, n_channels, *filter_shape), \
default=None
        Initial filters (projected to unit norm); random normal when None.
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
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    image_shape, n_channels = check_image_shape(image_shape, X.shape[1])
    filter_shape = check_filter_shape(filter_shape, len(image_shape))
    rng = check_random_state(random_state)
    g = _make_connectivity(connectivity, n_filters, n_channels, rng)
    filters = init_filters(
        filters_init, n_filters, n_channels, filter_shape, g, rng, X.dtype
    )
    Y = X.reshape((len(X), n_channels) + image_shape)
    check_fit_algorithm(fit_algorithm, solver)
    maps, filters, history, converged = _learn_filters(
        Y, filters, g, fit_algorithm=fit_algorithm, lmbda=lmbda, p=p, solver=solver,
        max_iter=max_iter, tol=tol, n_epochs=n_epochs, n_jobs=n_jobs, verbose=verbose,
        random_state=rng,
    )
    warn_not_converged(converged, tol, max_iter, where=" in the last epoch")
    return maps.reshape(len(X), -1), filters, history
