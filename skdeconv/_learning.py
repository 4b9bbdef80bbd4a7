"""Filter learning: the learners behind ``fit`` and their dispatch.

'interleaved' (the default, ``_interleaved.py``; on a dask cluster
``_cluster.py``) advances every sample's map solver by one step per epoch
and takes one filter step; 'alternating' (here) is the paper's block scheme:
infer the maps to ``tol``, then update the filters; 'online'
(``_online.py``) learns from mini-batches with memory independent of the
number of images.  Every learner runs map inference through the solver
protocol (``_solvers``) and the filter updates of ``_filters.py``.
"""

import time

import numpy as np
from sklearn.utils import check_random_state

from ._cluster import active_dask_client, learn_interleaved_on_cluster
from ._encode import _costs, _encode, check_filters
from ._fft_ops import ConvOperator
from ._filters import normalize_filters, random_filters, update_filters
from ._geometry import map_shape_of
from ._interleaved import learn_interleaved, report_epoch
from ._online import learn_online
from ._solvers import auto_solver_for_learning, interleaved_solvers

FIT_ALGORITHMS = ("interleaved", "alternating", "online")
# Projected-gradient steps on the filters per epoch of 'alternating'.
FILTER_STEPS_PER_EPOCH = 30


def check_fit_algorithm(fit_algorithm, solver):
    """'interleaved' needs a map solver that advances one iteration at a time."""
    interleaved = interleaved_solvers()
    if fit_algorithm == "interleaved" and solver not in interleaved + ("auto",):
        raise ValueError(
            f"fit_algorithm='interleaved' needs solver in {interleaved}, got "
            f"solver={solver!r}; use fit_algorithm='alternating' with it."
        )


def learn_filters(
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
        return learn_online(
            Y, filters, connectivity, batch_size=batch_size, random_state=random_state,
            return_maps=return_maps, **params,
        )
    if fit_algorithm == "interleaved":
        client = active_dask_client()  # joblib's "dask" backend: state stays on the workers
        if client is not None:
            return learn_interleaved_on_cluster(
                client, Y, filters, connectivity, return_maps=return_maps, **params
            )
        return learn_interleaved(Y, filters, connectivity, **params)
    return _learn_alternating(Y, filters, connectivity, **params)


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
    costs = _costs(Y, maps, filters, connectivity, lmbda=lmbda, p=p, n_jobs=n_jobs)
    history = []
    start = time.perf_counter()
    for epoch in range(n_epochs):
        new_maps, _, converged = _encode(
            Y, filters, connectivity, lmbda=lmbda, p=p, solver=solver, max_iter=max_iter,
            tol=tol, init=maps, n_jobs=n_jobs,
        )
        new_costs = _costs(Y, new_maps, filters, connectivity, lmbda=lmbda, p=p, n_jobs=n_jobs)
        better = new_costs <= costs
        maps = np.where(better.reshape((-1,) + (1,) * (maps.ndim - 1)), new_maps, maps)
        filters = update_filters(filters, connectivity, maps, Y, FILTER_STEPS_PER_EPOCH)
        costs = _costs(Y, maps, filters, connectivity, lmbda=lmbda, p=p, n_jobs=n_jobs)
        history.append(float(costs.mean()))
        report_epoch(verbose, epoch, n_epochs, history[-1], start)
    return maps, filters, np.asarray(history), converged


def init_filters(
    filters_init, *, n_filters, n_channels, filter_shape, connectivity, random_state, dtype,
):
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
