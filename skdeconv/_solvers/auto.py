"""``solver='auto'``: the measured rule that picks a registered solver.

The only place that knows which solver suits which problem; it returns
registered names, which the driver and the learners run like any other.
"""

from math import prod

import numpy as np

from .._parallel import chunk_slices
from ._base import solver_class

# The solver for sparse maps and the one for dense maps.
SPARSE_SOLVER, DENSE_SOLVER = "fista", "admm"
# Measured crossovers (benchmarks/README.md, "solver='auto'"): ADMM reaches
# 1e-4 of the optimum sooner than FISTA once lambda * max|F'y| exceeds about
# AUTO_DENSE_RATIO for one input channel (camera: FISTA with backtracking
# needs 38 iterations at 8 where ADMM needs 53, 49 against 55 at 12, 63
# against 57 at 16, at about the same cost per iteration; it was 3 with
# FISTA's former fixed step), and AUTO_MULTICHANNEL_RATIO for 2-8 channels
# (RGB fruit, 16 filters: the same time at 10, ADMM 7% faster at 30 and
# 1.45x at 90).  Interleaved learning takes the same rule (ADMM's first
# epochs from zero maps move the filters less: learning kept FISTA up to 10
# when the inference threshold was 3).
AUTO_DENSE_RATIO = 10.0
AUTO_MULTICHANNEL_RATIO = 40.0
# Above this many input channels 'auto' always picks the sparse solver: an
# ADMM iteration then costs 2.2-2.7x a FISTA iteration (its x-step mixes the
# C channels per frequency with a C x C matrix; learning also recomputes its
# inverses every epoch) and saves fewer iterations than that (measured in
# benchmarks/README.md: 150 maps over 45 channels, tol 1e-3, ADMM 69-102
# iterations at 150 ms, FISTA 165 at 55 ms).
AUTO_ADMM_MAX_CHANNELS = 8


def auto_solvers(op, Y, lmbda, p):
    """The solver ``solver='auto'`` picks for every sample: array of names.

    The rule (issue #12, measured in benchmarks/README.md): 'admm' where
    ``lambda * max|A'y| >= AUTO_DENSE_RATIO`` (``AUTO_MULTICHANNEL_RATIO``
    for inputs of 2-8 channels), else 'fista'.  With p = 1 all maps are zero exactly when
    lambda <= lambda_min(y) = 1 / max|A'y|, so the statistic is
    lambda / lambda_min(y): scale-free (the same for y and lambda rescaled
    together) and it grows with the density of the maps, where ADMM's exact
    per-frequency x-step needs far fewer iterations than FISTA's gradient
    steps.  It is per sample (one adjoint, about half a FISTA iteration,
    computed chunk by chunk: memory O(chunk)), so a sample's choice - and
    its maps - never depend on the batch.  'fista'
    always for p < 1 (ADMM's splitting has no convergence guarantee for a
    non-convex penalty), for operators ADMM does not support (a masked
    data term) and for inputs of more than ``AUTO_ADMM_MAX_CHANNELS``
    channels (the upper layers of a network), whose ADMM iterations cost
    more than their fewer number saves.
    """
    choice = np.full(len(Y), SPARSE_SOLVER, dtype=object)
    wide = op.n_channels > AUTO_ADMM_MAX_CHANNELS
    if p != 1 or wide or not solver_class(DENSE_SOLVER).supports(op) or not len(Y):
        return choice
    threshold = AUTO_DENSE_RATIO if op.n_channels == 1 else AUTO_MULTICHANNEL_RATIO
    adjoint_bytes = op.n_filters * prod(op.map_shape) * Y.itemsize
    correlation = np.empty(len(Y))
    for s in chunk_slices(len(Y), 1, adjoint_bytes):
        correlation[s] = np.abs(op.adjoint(Y[s])).reshape(len(Y[s]), -1).max(axis=1)
    choice[lmbda * correlation >= threshold] = DENSE_SOLVER
    return choice


def auto_solver_for_learning(op, Y, lmbda, p):
    """One solver for interleaved learning with ``solver='auto'``.

    The choice of most training samples at the initial filters (one solver
    state is carried over the epochs).
    """
    choice = auto_solvers(op, Y, lmbda, p)
    dense = np.count_nonzero(choice == DENSE_SOLVER)
    return DENSE_SOLVER if dense * 2 > len(choice) else SPARSE_SOLVER
