"""The one driver of map inference: run a registered solver on an operator."""

import numpy as np

from .._parallel import one_blas_thread
from ._base import ActiveSet, MapSolver, solver_class


def make_solver(solver, *, lmbda, p=1.0, max_iter=1000, tol=1e-3, options=None):
    """A :class:`MapSolver` from a registered name (an instance is returned as is).

    ``options``: ``{name: {keyword: value}}``, extra constructor keywords of
    the solvers of those names.
    """
    if isinstance(solver, MapSolver):
        return solver
    extra = (options or {}).get(solver, {})
    return solver_class(solver)(lmbda=lmbda, p=p, max_iter=max_iter, tol=tol, **extra)


def precompute_for(op, solver):
    """Compute (and cache on ``op``) what ``solver`` needs; returns ``op``.

    ``solver`` is a name or an array of names (one per sample, from
    'auto').  Done once, before the operator is shared by joblib tasks.
    """
    with one_blas_thread():
        for name in np.unique(solver):
            method = solver_class(str(name))
            check_supported(method, op)
            method.precompute(op)
    return op


def check_supported(solver, op):
    if not solver.supports(op):
        raise ValueError(
            f"solver={solver.name!r} does not support {type(op).__name__} "
            "(e.g. a masked data term); use solver='fista'."
        )


def solve(
    op, Y, *, solver, lmbda, p=1.0, max_iter=1000, tol=1e-3, init=None, callback=None,
    options=None,
):
    """Maps of every sample of ``Y`` for operator ``op``, each solved independently.

    Parameters
    ----------
    op : LinearOperator
        The operator ``A`` (with the quantities ``solver`` needs precomputed,
        or they are computed here).
    Y : ndarray of shape (n_samples, n_channels, *image_shape)
        The data.
    solver : str or MapSolver
        A registered name or an instance.
    lmbda, p, max_iter, tol : float, float, int, float
        The problem and the stopping rule (ignored for an instance).
    init : ndarray of shape (n_samples, n_filters, *map_shape), default=None
        Warm start; zeros when None.
    callback : callable, default=None
        Called after every step as ``callback(iteration, index, maps)`` with
        the steps taken so far, the indices of the samples still iterating
        (before those that have just converged leave) and their current maps.
    options : dict, default=None
        Extra constructor keywords per solver name (:func:`make_solver`).

    Returns
    -------
    maps : ndarray of shape (n_samples, n_filters, *map_shape)
    n_iter : ndarray of int, shape (n_samples,)
    converged : ndarray of bool, shape (n_samples,)
    """
    method = make_solver(solver, lmbda=lmbda, p=p, max_iter=max_iter, tol=tol, options=options)
    check_supported(method, op)
    method.precompute(op)
    if init is None:
        init = np.zeros((len(Y), op.n_filters) + op.map_shape, dtype=Y.dtype)
    active = ActiveSet(len(Y), np.empty_like(init), method.start(op, Y, init))
    workspace = method.workspace(op, active.state)
    full_op, spent = op, 0
    while active.index.size and spent < method.max_iter:
        n_steps, progress = method.step(op, active.state, spent, workspace)
        spent += n_steps
        active.count(n_steps)
        maps = method.maps(op, active.state)
        if callback is not None:
            callback(spent, active.index, maps)
        done = method.converged(progress)
        if active.retire(done, done, maps):
            op = full_op.take(active.index)
    active.finish(method.maps(op, active.state))
    return active.output, active.n_iter, active.converged
