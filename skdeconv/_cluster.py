"""Interleaved filter learning on a dask.distributed cluster, state on the workers.

Used by ``fit`` (and :func:`conv_dict_learning`) with
``fit_algorithm='interleaved'`` inside ``joblib.parallel_config(backend="dask")``:
joblib's dask backend ships every task's arguments and results through the
client, so each epoch of the ordinary learner would move every chunk's solver
state (maps, momentum or ADMM duals, spectra: several map-sized arrays per
sample) to a worker and back.  Here each chunk of samples becomes a chain of
futures on the cluster instead:

- the chunks are grouped, one group of consecutive chunks per worker thread
  of the cluster, and every task works on a whole group: a task costs the
  scheduler a few milliseconds, and one task per chunk and step (16 chunks)
  made a 2-worker fit only 1.1-1.3x faster than serial;
- a group's images are sent once, inside the task that starts its chunks'
  solvers (not scattered: a task's arguments are kept by the scheduler, so a
  lost group can be recomputed);
- every epoch submits the group's next map iteration on the previous epoch's
  future for that group, so the scheduler runs it where the state already
  lives, and gathers only filter-sized results: each chunk's filter gradient
  (``n_pairs x filter_shape``), its data term per channel and its penalty
  (plus, in the first epoch only, the maps' power spectrum that starts the
  filter step's Lipschitz bound);
- the filter step (and its backtracking) runs in the client on the summed
  results; the candidate filters go back to the workers, which evaluate their
  chunk's data term at them.

A worker lost mid-fit loses its groups' states; the scheduler recomputes them
from their lineage (the start task and every epoch's task, whose arguments are
filters), so the fit finishes with the same filters.  The result equals the
joblib learner's up to the order of a sum: each chunk's gradient is brought
back to filter size (an inverse FFT) before the chunks are summed (equal to
rounding in float64; tests/test_distributed.py checks 1e-12).

Nothing here imports dask: the client comes from joblib's active backend.
"""

import operator
import time
import uuid

import numpy as np
from sklearn.utils import gen_even_slices

from ._parallel import one_blas_thread
from ._fft_ops import ConvOperator
from ._filters import MomentumFilterSteps, correlations_to_gradient
from ._interleaved import (
    advance_chunk,
    backtracking_filter_step,
    channel_operator,
    checks_usage,
    chunk_data_terms,
    interleaved_chunks,
    report_epoch,
    restart_unused_filters,
    scaled_problem,
    start_chunk,
)
from ._solvers import make_solver, precompute_for


def active_dask_client():
    """The client of joblib's active "dask" backend, or None.

    Looks at joblib's active backend only: never imports dask.
    """
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if type(backend).__name__ != "DaskDistributedBackend":
        return None
    return getattr(backend, "client", None)


# ------------------------------------------------------------ worker side
# The operators of the current epoch in this worker process, shared by the
# chunks it holds (as the local learner shares one per epoch): building one
# (filter spectra, step bound, solver precompute) per chunk instead made a
# 2-worker fit of 16 chunks slower than serial.  Key: (fit, role) -> (epoch
# or attempt, operator); a key's older entry is replaced.  A lost entry is
# rebuilt from the task's arguments, with the same values.
_WORKER_OPERATORS = {}


def _shared(key, build):
    """The worker's operator under ``key = (fit, role, number)``, built once."""
    slot, number = key[:2], key[2]
    cached = _WORKER_OPERATORS.get(slot)
    if cached is None or cached[0] != number:
        cached = (number, build())
        _WORKER_OPERATORS[slot] = cached
    return cached[1]


def _forget(fit):
    """Drop the worker's operators of a finished fit (run on every worker)."""
    for slot in [slot for slot in _WORKER_OPERATORS if slot[0] == fit]:
        del _WORKER_OPERATORS[slot]


def _operator(filters, connectivity, image_shape, method):
    """The operator of ``filters`` ready for ``method``."""
    return precompute_for(ConvOperator(filters, connectivity, image_shape), method.name)


# A group is a list of chunks, each a dict: its images "Y", its solver state
# "state" and the operator "op" of that state's last step.
def _start(images, filters, connectivity, method, fit):
    """A group of chunks (``images``: one array per chunk), each with its map
    solver's initial state (the operator of the initial filters is the
    worker's shared one of epoch 0)."""
    with one_blas_thread():
        op = _shared((fit, "filters", 0),
                     lambda: _operator(filters, connectivity, images[0].shape[2:], method))
        return [{"Y": Y, "state": start_chunk(op, Y, method), "op": op} for Y in images]


def _advance(group, filters, point, connectivity, method, epoch, need_power, n_epochs, fit):
    """One map iteration of every chunk of a group at ``filters``;
    filter-sized results at ``point``.

    Returns (the group, each chunk's new state holding its maps' spectra;
    a list of (gradient, data term per channel at ``point``, penalty, power
    or None, usage or None), one per chunk).  ``fit`` names the fit (the
    worker's operators of this epoch are shared).
    """
    image_shape = group[0]["Y"].shape[2:]
    advanced, terms = [], []
    with one_blas_thread():
        op = _shared((fit, "filters", epoch),
                     lambda: _operator(filters, connectivity, image_shape, method))
        point_op = _shared((fit, "point", epoch),
                           lambda: ConvOperator(point, connectivity, image_shape))
        for chunk in group:
            state, correlations, data_terms, sparsity, power, usage = advance_chunk(
                op, point_op, method, chunk["state"], chunk["Y"], epoch, need_power, n_epochs
            )
            gradient = correlations_to_gradient(point_op, correlations)
            advanced.append({"Y": chunk["Y"], "state": state, "op": op})
            terms.append((gradient, data_terms, sparsity, power, usage))
    return advanced, terms


def _data_terms(group, candidate, connectivity, channels, fit, attempt):
    """Each chunk's data terms of input ``channels`` (all: None) at ``candidate``."""
    rows = slice(None) if channels is None else channels
    with one_blas_thread():
        op = _shared((fit, "candidate", attempt), lambda: channel_operator(
            candidate, connectivity, group[0]["Y"].shape[2:], channels))
        return [chunk_data_terms(op, chunk["state"], chunk["Y"][:, rows]) for chunk in group]


def _maps(group, method):
    return np.concatenate([method.maps(chunk["op"], chunk["state"]) for chunk in group])


def _chunk_groups(slices, client):
    """The chunks' slices in consecutive groups, one per worker thread."""
    n_groups = min(len(slices), max(1, sum(client.nthreads().values())))
    return [slices[group] for group in gen_even_slices(len(slices), n_groups)]


def _in_order(parts_of_groups):
    """The per-chunk results of every group, flattened in chunk order."""
    return [part for parts in parts_of_groups for part in parts]


# ------------------------------------------------------------ client side
class _Submitter:
    """client.submit with readable, unique keys (no hashing of the arguments)."""

    def __init__(self, client):
        self.client = client
        self.token = uuid.uuid4().hex[:8]
        self.count = 0
        self.bytes_sent = 0

    def __call__(self, function, *args, name=None):
        self.count += 1
        arrays = [a for arg in args for a in (arg if isinstance(arg, list) else [arg])]
        self.bytes_sent += sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
        key = f"skdeconv-{name or function.__name__.strip('_')}-{self.token}-{self.count}"
        return self.client.submit(function, *args, key=key, pure=False)


def learn_interleaved_on_cluster(
    client, Y, filters, connectivity, *, lmbda, p, solver, max_iter, tol, n_epochs, n_jobs,
    verbose, return_maps=True, stats=None,
):
    """The interleaved learner of ``_learning.py`` with its chunks on ``client``.

    Same chunks, same map iterations, same filter steps and backtracking; the
    state of every chunk stays on a worker.  ``stats`` (a dict), if given,
    receives the bytes sent to and gathered from the cluster per epoch, and
    the numbers of chunks and of groups (tasks per step).
    Returns what ``_learn_interleaved`` returns (maps None unless
    ``return_maps``).
    """
    Y, lmbda, scale = scaled_problem(Y, lmbda, p)
    method = make_solver(solver, lmbda=lmbda, p=p)
    slices = interleaved_chunks(Y, filters, ConvOperator(filters, connectivity, Y.shape[2:]))
    steps = MomentumFilterSteps(filters, connectivity)
    submit = _Submitter(client)
    chunk_groups = _chunk_groups(slices, client)
    groups = [
        submit(_start, [np.ascontiguousarray(Y[s]) for s in group], filters, connectivity,
               method, submit.token)
        for group in chunk_groups
    ]
    data_bytes, submit.bytes_sent = submit.bytes_sent, 0
    gathered = 0
    history = []
    start = time.perf_counter()

    def data_terms_of(candidate, channels):  # of this epoch's chunks, on the workers
        nonlocal gathered
        attempt = submit.count
        parts = _in_order(client.gather([
            submit(_data_terms, group, candidate, connectivity, channels, submit.token, attempt)
            for group in groups
        ]))
        gathered += sum(part.nbytes for part in parts)
        return sum(parts)

    for epoch in range(n_epochs):
        need_power = steps.lipschitz is None or not steps.lipschitz.all()
        advanced = [
            submit(_advance, group, steps.filters, steps.point, connectivity, method, epoch,
                   need_power, n_epochs, submit.token)
            for group in groups
        ]
        groups = [submit(operator.getitem, a, 0, name="state") for a in advanced]
        results = _in_order(client.gather([
            submit(operator.getitem, a, 1, name="terms") for a in advanced
        ]))
        del advanced
        gathered += sum(
            sum(x.nbytes for x in result if isinstance(x, np.ndarray)) for result in results
        )
        gradient, data_point, sparsity = (
            sum(result[i] for result in results) for i in range(3)
        )
        if need_power:
            steps.start_lipschitz(sum(result[3] for result in results))
        data_terms = backtracking_filter_step(steps, gradient, data_point, data_terms_of)
        if checks_usage(epoch, n_epochs):
            restart_unused_filters(steps, sum(result[4] for result in results), Y, epoch)
        cost = lmbda * float(data_terms.sum()) + sparsity
        history.append(cost / len(Y) / float(scale) ** p)
        report_epoch(verbose, epoch, n_epochs, history[-1], start)
    maps = None
    if return_maps:
        maps = np.concatenate(client.gather([submit(_maps, group, method) for group in groups]))
        maps /= scale
    client.run(_forget, submit.token)
    if stats is not None:
        stats.update(
            data_bytes=data_bytes, epochs=n_epochs,
            sent_per_epoch=submit.bytes_sent / n_epochs, gathered_per_epoch=gathered / n_epochs,
            n_chunks=len(slices), n_groups=len(chunk_groups),
        )
    return maps, steps.filters, np.asarray(history), np.ones(len(Y), dtype=bool)
