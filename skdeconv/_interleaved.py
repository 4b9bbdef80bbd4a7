"""Interleaved filter learning: one map-solver step and one filter step per epoch.

Every epoch advances each sample's map solver by one step - its state
(iterate, momentum or ADMM duals) carried over from epoch to epoch through
the solver protocol - and then takes one accelerated projected-gradient
step on the filters (the interleaved scheme of SPORCO's dictionary
learning, Garcia-Cardona & Wohlberg, 2018).  The chunk functions here are
shared by the local learner below and the cluster learner of
``_cluster.py``.
"""

import time

import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from ._parallel import chunk_slices, one_blas_thread
from ._fft_ops import ConvOperator
from ._filters import (
    MomentumFilterSteps,
    channel_data_terms,
    correlations_to_gradient,
    filter_gradient_terms,
    normalize_filters,
    power_of_two_scale,
)
from ._shrinkage import penalty
from ._solvers import make_solver, precompute_for

# Interleaved learning splits the samples into at least this many chunks,
# whatever n_jobs: the filter gradient sums the chunks in order, so the
# chunks - and the learned filters, bit for bit - must not depend on n_jobs.
MIN_CHUNKS = 4
# Map-sized arrays per sample a chunk holds: the solver state kept between
# epochs and the spectra (~4) on top of a solver's working arrays (~12).
INTERLEAVED_ARRAYS = 16
# Epochs between two checks for unused filters (restart_unused_filters).
USAGE_CHECK_EVERY = 10


def report_epoch(verbose, epoch, n_epochs, cost, start, what="epoch", cost_name="cost"):
    """Print the cost every 10 epochs (``verbose``) or every epoch (> 1)."""
    if verbose > 1 or (verbose and ((epoch + 1) % 10 == 0 or epoch + 1 == n_epochs)):
        print(
            f"[conv_dict_learning] {what} {epoch + 1}/{n_epochs} "
            f"{cost_name} {cost:.6g} ({time.perf_counter() - start:.2f} s)",
            flush=True,
        )


def scaled_problem(Y, lmbda, p):
    """The images scaled by a power of two ``a`` into [0.5, 1), and ``lambda a^(p - 2)``.

    Its maps are ``a z`` and its cost ``a^p`` times the cost (exactly for
    p = 1), so that float32 products cannot overflow and the solvers see
    data of unit scale.  Returns the images, the weight and ``a``.
    """
    scale = power_of_two_scale(np.max(np.abs(Y)), Y.dtype)
    return Y * scale, lmbda * float(scale) ** (p - 2.0), scale


def interleaved_chunks(Y, filters, op):
    """The chunks of interleaved learning (at least MIN_CHUNKS, memory-bounded)."""
    spectrum_bytes = len(filters) * int(np.prod(op.fft_shape)) * Y.itemsize
    return chunk_slices(len(Y), MIN_CHUNKS, INTERLEAVED_ARRAYS * spectrum_bytes)


def start_chunk(op, Y, method):
    """The solver state of a chunk, from zero maps."""
    init = np.zeros((len(Y), op.n_filters) + op.map_shape, dtype=Y.dtype)
    return method.start(op, Y, init)


def advance_chunk(op, point_op, method, state, Y, epoch, need_power, n_epochs):
    """One solver step of a chunk at ``op``, then its filter-gradient terms at ``point_op``.

    Returns the chunk's state (now holding the maps' spectra, for
    :func:`chunk_data_terms`), its pair correlations, data term per
    channel at ``point_op``'s filters, penalty, if asked, the power
    sum_n |Z_nk(w)|^2 of its maps and, at the epochs of
    :func:`checks_usage`, the number of non-zero coefficients per map.
    """
    method.step(op, state, epoch)
    maps = method.maps(op, state)
    spectra = method.map_spectra(point_op, state)
    correlations, data_terms = filter_gradient_terms(point_op, spectra, Y)
    power = np.sum(np.abs(spectra) ** 2, axis=0, dtype=np.float64) if need_power else None
    usage = None
    if checks_usage(epoch, n_epochs):
        usage = np.count_nonzero(maps.reshape(maps.shape[:2] + (-1,)), axis=(0, 2))
    state["spectra"] = spectra
    sparsity = float(penalty(maps, method.p, axis=None))
    return state, correlations, data_terms, sparsity, power, usage


def checks_usage(epoch, n_epochs):
    """Whether unused filters are restarted after ``epoch`` (every
    USAGE_CHECK_EVERY epochs in the first half of the epochs)."""
    return (epoch + 1) % USAGE_CHECK_EVERY == 0 and epoch + 1 <= n_epochs // 2


def restart_unused_filters(steps, usage, Y, epoch):
    """Restart the filters that no map uses from patches of the images.

    A filter whose maps are zero on every sample gets no gradient, so it
    would keep its random initialisation to the end; as K-SVD replaces its
    unused atoms by signals (Aharon et al., 2006), its planes become the
    normalised planes of a window of a random image at a random place
    (drawn from a generator seeded by ``epoch``; the same for any n_jobs).
    ``usage`` is the number of non-zero coefficients per map over all
    samples.  Returns whether any filter was restarted.
    """
    unused = np.flatnonzero(usage == 0)
    if not unused.size:
        return False
    rng = np.random.RandomState(epoch)
    filter_shape = steps.filters.shape[2:]
    restarted = steps.filters.copy()
    for k in unused:
        corner = [rng.randint(n - h + 1) for n, h in zip(Y.shape[2:], filter_shape)]
        window = tuple(slice(c, c + h) for c, h in zip(corner, filter_shape))
        restarted[k] = Y[(rng.randint(len(Y)), slice(None)) + window]
    restarted = normalize_filters(restarted, steps.connectivity, fallback=steps.filters)
    steps.restart(unused, restarted[unused])
    return True


def chunk_data_terms(op, state, Y):
    """Data term per channel of a chunk's stored maps at ``op``'s filters."""
    return channel_data_terms(op, state["spectra"], Y)


def channel_operator(filters, connectivity, image_shape, channels):
    """The synthesis of the input ``channels`` only (all when None).

    The data term of a channel depends on that channel's planes only, so
    :func:`chunk_data_terms` of this operator and ``Y[:, channels]`` are the
    data terms of those channels.
    """
    if channels is not None:
        filters, connectivity = filters[:, channels], connectivity[:, channels]
    return ConvOperator(filters, connectivity, image_shape)


def backtracking_filter_step(steps, gradient, data_point, data_terms_of):
    """Propose filter steps and backtrack until every channel passes; take it.

    The test is per input channel, and so is the data term: a retry
    evaluates ``data_terms_of(candidate, channels)`` (the summed data terms
    of those channels) for the channels that failed only; the others'
    planes are the same numbers in the retried candidate.  Returns the data
    term per channel at the new filters.
    """
    channels, data_terms = None, np.empty(steps.connectivity.shape[1])
    while True:
        candidate = steps.propose(gradient)
        data_terms[slice(None) if channels is None else channels] = data_terms_of(
            candidate, channels
        )
        fits = steps.sufficient_decrease(candidate, gradient, data_point, data_terms)
        if fits.all():
            steps.accept(candidate)
            return data_terms
        steps.backtrack(~fits)
        channels = np.flatnonzero(~fits)


# ------------------------------------------------------------ local learner
# Tasks get their arrays packed in a tuple (see _encode._encode_chunk).
def _start_task(arrays, method):
    op, Y = arrays
    return start_chunk(op, Y, method)


def _advance_task(arrays, method, epoch, need_power, n_epochs):
    op, point_op, state, Y = arrays
    with one_blas_thread():
        return advance_chunk(op, point_op, method, state, Y, epoch, need_power, n_epochs)


def _data_terms_task(arrays):
    op, state, Y = arrays
    with one_blas_thread():
        return chunk_data_terms(op, state, Y)


def _filter_step(parallel, steps, gradient, data_point, states, slices, Y):
    """:func:`backtracking_filter_step` over the chunks.

    Returns the data term per channel at the new filters (every chunk's
    stored map spectra, summed in chunk order) and the operator of the new
    filters, which the next epoch's map solvers use.
    """
    image_shape, operators = Y.shape[2:], []

    def data_terms_of(candidate, channels):
        op = channel_operator(candidate, steps.connectivity, image_shape, channels)
        operators.append(op)
        rows = slice(None) if channels is None else channels
        return sum(parallel(
            delayed(_data_terms_task)((op, state, Y[s][:, rows]))
            for state, s in zip(states, slices)
        ))

    data_terms = backtracking_filter_step(steps, gradient, data_point, data_terms_of)
    if len(operators) == 1:  # accepted at once: the operator of the new filters
        return data_terms, operators[0]
    return data_terms, ConvOperator(steps.filters, steps.connectivity, image_shape)


def learn_interleaved(
    Y, filters, connectivity, *, lmbda, p, solver, max_iter, tol, n_epochs, n_jobs, verbose,
):
    """One map-solver step per sample and one filter step per epoch.

    ``max_iter`` and ``tol`` are not used: the map solvers take one step
    per epoch for ``n_epochs`` epochs.  Chunks are processed by joblib
    workers (threads by default: the solver state stays in memory).  The
    problem is solved at unit scale (:func:`scaled_problem`).
    """
    Y, lmbda, scale = scaled_problem(Y, lmbda, p)
    image_shape = Y.shape[2:]
    method = make_solver(solver, lmbda=lmbda, p=p)
    op = ConvOperator(filters, connectivity, image_shape)
    slices = interleaved_chunks(Y, filters, op)
    steps = MomentumFilterSteps(filters, connectivity)
    history = []
    start = time.perf_counter()
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        states = parallel(delayed(_start_task)((op, Y[s]), method) for s in slices)
        for epoch in range(n_epochs):
            op = precompute_for(op, method.name)  # the operator of steps.filters
            point_op = ConvOperator(steps.point, connectivity, image_shape)
            need_power = steps.lipschitz is None or not steps.lipschitz.all()
            results = parallel(
                delayed(_advance_task)(
                    (op, point_op, state, Y[s]), method, epoch, need_power, n_epochs
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
            op = new_op
            if checks_usage(epoch, n_epochs) and restart_unused_filters(
                steps, sum(result[5] for result in results), Y, epoch
            ):
                op = ConvOperator(steps.filters, connectivity, image_shape)
            cost = lmbda * float(data_terms.sum()) + sparsity
            history.append(cost / len(Y) / float(scale) ** p)
            report_epoch(verbose, epoch, n_epochs, history[-1], start)
    maps = np.concatenate([method.maps(op, state) for state in states])
    maps /= scale
    return maps, steps.filters, np.asarray(history), np.ones(len(Y), dtype=bool)
