"""Inference and filter learning of one layer of an Adaptive Deconvolutional Network.

Layer ``l``'s cost for an image ``y`` (Zeiler, Taylor & Fergus, ICCV 2011)::

    C_l(z) = lambda_l / 2 ||R_l z - y||^2 + ||z||_1,   z in S (one value per pool block)

with ``R_l`` the top-down operator (:class:`~skdeconv._topdown.TopDownOperator`,
the switches of the layers below fixed).  Inference is the paper's
Algorithm 1 (ISTA: gradient step through ``R_l``, shrinkage, then 3-D
pool-unpool so each block keeps one value) or its accelerated form (FISTA
with gradient restart, the default: same steps, extrapolated points).
Shrinking then keeping the largest |value| of every block is the exact
proximal map of ``||z||_1`` plus the one-value-per-block constraint, so both
are proximal-gradient methods on the (non-convex) constrained cost.

Filters are learned with the maps and all switches fixed by projected
gradient on unit-norm planes, against the PIXEL-space error: the gradient
of layer ``l``'s filters correlates its maps with the error brought down to
its input space, ``P_{l-1} F_{l-1}' ... P_1 F_1' (R_l z - y)``.
"""

from math import prod

import numpy as np
from joblib import effective_n_jobs
from sklearn.utils.parallel import Parallel, delayed

from ._fft_ops import ConvOperator
from ._momentum import momentum
from ._filters import _channel_lipschitz, correlations_to_gradient, normalize_filters
from ._parallel import chunk_slices, one_blas_thread
from ._pooling3d import keep_block_maxima, pool_unpool
from ._shrinkage import shrink
from ._topdown import POWER_ITERATIONS, TopDownOperator

# lmbda='auto' is this multiple of lambda_min = 1 / max|R_l' y| (the largest
# weight giving all-zero maps) at the initial filters of each layer; measured
# on the contrast-normalised fruit and city images (see docs/adaptive.rst).
AUTO_LMBDA_RATIO = 10.0
# Projected-gradient filter steps per epoch (10 rather than 2: layer costs 4-11%
# lower after 5 epochs on fruit for 10% more time), and the shrinking of their
# backtracked Lipschitz constant after an accepted step.
FILTER_STEPS = 10
# Power iterations of the step-size estimate after the first epoch, warm started.
WARM_POWER_ITERATIONS = 4
_FILTER_L_DECREASE = 0.7
# Arrays of the size of a sample's spectra (summed over the layers of R_l)
# that live at once inside inference: the iterates, the gradient and the
# transforms' intermediates (the chunks' budget is _parallel.CHUNK_BYTES).
_INFERENCE_ARRAYS = 12


def _column(values, ndim):
    return np.asarray(values).reshape((-1,) + (1,) * (ndim - 1))


def sample_sq_norms(x):
    return np.sum(np.square(x.reshape(len(x), -1), dtype=np.float64), axis=1)


def layer_costs(R, Y, maps, lmbda):
    """``lambda/2 ||R z - y||^2 + ||z||_1`` per sample, float64."""
    residual = R.forward(maps) - Y
    return 0.5 * lmbda * sample_sq_norms(residual) + np.sum(
        np.abs(maps.reshape(len(maps), -1)), axis=1, dtype=np.float64
    )


def lmbda_min(R, Y):
    """``1 / max|R' y|`` over the samples: the largest weight with all-zero maps."""
    largest = float(np.max(np.abs(R.adjoint(Y))))
    return np.inf if largest == 0 else 1.0 / largest


def resolve_lmbda(lmbda, reference):
    """Absolute weight of ``lmbda``: 'auto' is ``AUTO_LMBDA_RATIO * reference``.

    ``reference`` is the layer's :func:`lmbda_min`; 'auto' gives 1.0 where it
    is infinite (all-zero training images).  A number is used as it is.
    """
    if isinstance(lmbda, str):
        return AUTO_LMBDA_RATIO * reference if np.isfinite(reference) else 1.0
    return float(lmbda)


def infer_maps(R, Y, lmbda, pool_shape, max_iter, tol, solver="fista", init=None,
               callback=None, lipschitz=None):
    """Maps of layer l for every sample of ``Y``, each solved independently.

    Parameters
    ----------
    R : TopDownOperator
        ``R_l`` with the switches of the samples of ``Y``.
    Y : ndarray of shape (n, C, *image_shape)
    lmbda : float
    pool_shape : tuple of int
        Layer l's pool shape: each of its blocks keeps one value.
    max_iter, tol : int, float
        A sample stops after ``max_iter`` iterations or once its maps move by
        less than ``tol`` relatively.
    solver : {'fista', 'ista'}
    init : ndarray of shape (n, *R.map_shape), default=None
        Warm start (projected on the constraint); zeros when None.
    callback : callable, default=None
        Called as ``callback(iteration, index, maps)`` after every iteration
        with the samples still iterating (for traces).
    lipschitz : ndarray of shape (n,), default=None
        Per-sample bounds of ``||R||^2``; ``R.sample_lipschitz()`` when None.

    Returns
    -------
    maps : ndarray (n, *R.map_shape), one value at most per pool block
    switches : ndarray of int, the switches of ``pool_shape``
    n_iter : ndarray of int (n,)
    """
    n = len(Y)
    shape = (n,) + R.map_shape
    if init is None:
        x = np.zeros(shape, Y.dtype)
    else:
        x = keep_block_maxima(init.astype(Y.dtype, copy=False), pool_shape)
    out = x.copy()
    n_iter = np.zeros(n, int)
    if lipschitz is None:
        lipschitz = R.sample_lipschitz()
    lipschitz = np.broadcast_to(lipschitz, (n,)).copy()  # one value for layer 1
    live = lipschitz * lmbda > 1 / np.finfo(np.float64).max
    index = np.flatnonzero(live)  # an R of zero keeps z = 0
    if index.size < n:
        out[~live] = 0
    step = 1.0 / (lmbda * lipschitz)  # the paper's beta
    y, t = x.copy(), np.ones(n)
    op = R if index.size == n else R.take(index)
    x, y, t, step_a, target = x[index], y[index], t[index], step[index], Y[index]
    for iteration in range(max_iter):
        if not index.size:
            break
        ndim = y.ndim
        gradient = op.adjoint(op.forward(y) - target)
        gradient *= _column(lmbda * step_a, ndim).astype(y.dtype)
        point = np.subtract(y, gradient, out=gradient)
        point = shrink(point, _column(1.0 / step_a, ndim), 1.0, out=point)
        x_new = keep_block_maxima(point, pool_shape)
        delta = x_new - x
        change = np.sqrt(sample_sq_norms(delta))
        size = np.sqrt(sample_sq_norms(x_new))
        if solver == "fista":
            # gradient restart (O'Donoghue & Candes): the step went against the momentum
            restart = np.sum((y - x_new).reshape(len(y), -1) * delta.reshape(len(y), -1),
                             axis=1, dtype=np.float64) > 0
            t, weight = momentum(t, restart)
            y = x_new + _column(weight, ndim).astype(x_new.dtype) * delta
        else:
            y = x_new
        x = x_new
        n_iter[index] += 1
        if callback is not None:
            callback(iteration, index, x)
        done = change <= tol * size
        if done.any() or iteration == max_iter - 1:
            finished = done | (iteration == max_iter - 1)
            out[index[finished]] = x[finished]
            keep = ~finished
            index = index[keep]
            if index.size:
                op = op.take(np.flatnonzero(keep))
            x, y, t, step_a, target = x[keep], y[keep], t[keep], step_a[keep], target[keep]
    _, switches = pool_unpool(out, pool_shape)
    return out, switches, n_iter


# Each task gets its arrays packed in a tuple (see _encode._encode_chunk).
def _infer_chunk(arrays, lmbda, pool_shape, max_iter, tol, solver, power_iterations):
    R, Y, init, start = arrays
    with one_blas_thread():
        lipschitz, vectors = R.sample_lipschitz(
            n_iter=power_iterations, start=start, return_vectors=True
        )
        maps, switches, n_iter = infer_maps(R, Y, lmbda, pool_shape, max_iter, tol, solver,
                                            init=init, lipschitz=lipschitz)
    return maps, switches, n_iter, vectors


def infer_maps_parallel(R, Y, lmbda, pool_shape, max_iter, tol, solver="fista", *,
                        init=None, start=None, power_iterations=POWER_ITERATIONS,
                        n_jobs=None):
    """:func:`infer_maps` of chunks of the samples in joblib workers.

    Every chunk estimates its samples' step sizes (``R.sample_lipschitz``
    with ``power_iterations`` power iterations from ``start``, or the fixed
    start when None) and infers their maps; each sample's result depends on
    that sample only, so the output does not depend on the chunks nor on
    ``n_jobs``.  Chunks: at least ``effective_n_jobs(n_jobs)``, each within
    the memory budget of :func:`~skdeconv._parallel.chunk_slices`.

    Returns the maps, switches and iterations of :func:`infer_maps`, and the
    power-iteration vectors (None for layer 1, whose bound is exact).
    """
    spectrum_bytes = sum(op.n_filters * prod(op.fft_shape) for op in R.operators)
    slices = chunk_slices(len(Y), effective_n_jobs(n_jobs),
                          _INFERENCE_ARRAYS * spectrum_bytes * Y.itemsize)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_infer_chunk)(
            (R.take(s), Y[s], None if init is None else init[s],
             None if start is None else start[s]),
            lmbda, pool_shape, max_iter, tol, solver, power_iterations,
        )
        for s in slices
    )
    # Chunks are written into the outputs as they arrive (peak memory: the
    # outputs and the chunks in flight).
    outputs = None
    for s, chunk in zip(slices, results):
        if outputs is None:
            outputs = [None if part is None else np.empty((len(Y),) + part.shape[1:], part.dtype)
                       for part in chunk]
        for out, part in zip(outputs, chunk):
            if out is not None:
                out[s] = part
    return tuple(outputs)


def _replace_top(R, filters, connectivity):
    """``R`` with the top layer's filters replaced."""
    top = R.operators[-1]
    op = ConvOperator(filters, connectivity, top.image_shape)
    return TopDownOperator(R.operators[:-1] + [op], R.switches, R.pool_shapes)


def filter_gradient(R, map_spectra, residual):
    """Gradient of ``1/2 sum_n ||R_l z_n - y_n||^2`` w.r.t. layer l's planes.

    ``map_spectra`` are the spectra of the maps on the top operator's grid,
    ``residual = R_l z - y``.  The pixel residual is brought down to layer
    l's input space (``P_{l-1} F_{l-1}' ... P_1 F_1'``) and correlated with
    the maps.  Returns (n_pairs, *filter_shape), float64, in the pair order
    of the connectivity (``np.nonzero``).
    """
    top = R.operators[-1]
    error = R.lower_adjoint(residual)
    correlations = top.mixer.pair_correlations(map_spectra, top.rfft(error) * top.shift_phase)
    return correlations_to_gradient(top, correlations).astype(np.float64)


def filter_steps(R, filters, maps, Y, connectivity, n_steps, lipschitz=None):
    """Projected-gradient steps on the top layer's unit-norm planes.

    Minimises ``1/2 sum_n ||R_l(f) z_n - y_n||^2`` over the filters ``f`` of
    layer l (maps and switches fixed), with a backtracked step 1 / L (L
    doubles until the quadratic model bounds the new cost, and shrinks after
    every accepted step).

    ``filters`` are those of ``R``'s top layer.  Returns the new operator
    ``R``, the filters, the data cost and ``L``.
    """
    top = R.operators[-1]
    rows, cols = np.nonzero(connectivity)
    map_spectra = top.rfft(maps)
    if lipschitz is None:  # the bound of the top layer alone; backtracking does the rest
        lipschitz = float(np.max(_channel_lipschitz(map_spectra, connectivity)))
        if lipschitz <= 0:
            return R, filters, 0.5 * float(np.sum(sample_sq_norms(Y))), 1.0
    residual = R.forward(maps) - Y
    cost = 0.5 * float(np.sum(sample_sq_norms(residual)))
    for _ in range(n_steps):
        gradient = filter_gradient(R, map_spectra, residual)
        for _ in range(60):
            moved = filters.astype(np.float64)
            moved[rows, cols] -= gradient / lipschitz
            candidate = normalize_filters(moved, connectivity, fallback=filters).astype(
                filters.dtype)
            R_new = _replace_top(R, candidate, connectivity)
            residual_new = R_new.forward(maps) - Y
            cost_new = 0.5 * float(np.sum(sample_sq_norms(residual_new)))
            move = (candidate - filters)[rows, cols].astype(np.float64)
            bound = cost + np.sum(gradient * move) + 0.5 * lipschitz * np.sum(move * move)
            if cost_new <= bound + 1e-9 * abs(cost):
                break
            lipschitz *= 2
        if cost_new > cost:  # never worse: keep the filters
            break
        R, top, filters, residual, cost = R_new, R_new.operators[-1], candidate, residual_new, cost_new
        lipschitz *= _FILTER_L_DECREASE
    return R, filters, cost, lipschitz


def learn_layer(R, Y, filters, connectivity, *, lmbda, pool_shape, n_epochs, max_iter,
                tol, solver, n_filter_steps=FILTER_STEPS, report=None, n_jobs=None):
    """Learn the filters of the top layer of ``R`` (layers below fixed).

    Every epoch infers the maps (warm started from the previous epoch's) in
    chunks of samples on ``n_jobs`` joblib workers
    (:func:`infer_maps_parallel`) and takes ``n_filter_steps`` filter steps
    on all the samples in this process.

    Returns the filters, the maps and switches of the last epoch (for the
    last filters' inference run by the caller), and the cost history
    (mean per-sample layer cost after every epoch).
    """
    R = _replace_top(R, filters, connectivity)
    maps, history, lipschitz, vectors = None, [], None, None
    for epoch in range(n_epochs):
        # the power iterations restart from the previous epoch's vectors (the
        # filters moved a little): a few iterations keep the estimate
        maps, _, _, vectors = infer_maps_parallel(
            R, Y, lmbda, pool_shape, max_iter, tol, solver, init=maps, start=vectors,
            power_iterations=POWER_ITERATIONS if vectors is None else WARM_POWER_ITERATIONS,
            n_jobs=n_jobs,
        )
        R, filters, data_cost, lipschitz = filter_steps(
            R, filters, maps, Y, connectivity, n_filter_steps, lipschitz
        )
        penalty = float(np.sum(np.abs(maps), dtype=np.float64))
        history.append((lmbda * data_cost + penalty) / len(Y))
        if report is not None:
            report(epoch, history[-1])
    return filters, np.array(history)
