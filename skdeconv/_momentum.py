"""Nesterov/FISTA momentum, shared by the map solvers and the filter steps."""

import numpy as np


def momentum(t, restart):
    """FISTA's next t and extrapolation weight; a restart resets both.

    ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2`` and the weight
    ``(t_k - 1) / t_{k+1}``; where ``restart`` is True, ``t = 1`` and the
    weight is 0.
    """
    t_new = np.where(restart, 1.0, 0.5 * (1 + np.sqrt(1 + 4 * t * t)))
    return t_new, np.where(restart, 0.0, (t - 1) / t_new)
