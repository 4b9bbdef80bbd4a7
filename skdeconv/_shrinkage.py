"""Proximal maps of |x|^p: the x-step of the paper and the prox of FISTA."""

import numpy as np


def shrink(values, beta, p, out=None):
    """Per-value minimiser of ``|x|^p + beta/2 (x - v)^2``.

    Parameters
    ----------
    values : ndarray
        The values ``v``.
    beta : float or ndarray broadcastable to ``values``
        Weight of the quadratic term (> 0).
    p : float in (0, 1]
        Exponent of the sparsity penalty.
    out : ndarray, optional
        Where to write the result (``values`` itself is allowed).

    Returns
    -------
    x : ndarray of the dtype of ``values``
        Soft thresholding at ``1 / beta`` for ``p = 1``.  For ``p < 1`` the
        global minimiser is 0 below the threshold
        ``x_t + p x_t^(p-1) / beta`` with ``x_t = (2 (1 - p) / beta)^(1/(2-p))``
        and otherwise the largest root of ``p x^(p-1) + beta (x - |v|) = 0``:
        in closed form for ``p = 1/2`` (half thresholding), by Newton's
        method from ``|v|`` (monotone, quadratic) for other ``p``.
    """
    if p == 1:  # v - clip(v, -t, t): two passes
        threshold = np.asarray(1 / beta, dtype=values.dtype)
        clipped = np.clip(values, -threshold, threshold)
        return np.subtract(values, clipped, out=clipped if out is None else out)
    if out is None:
        return _shrink_fractional(values, beta, p)
    out[...] = _shrink_fractional(values, beta, p)
    return out


def _threshold_fractional(beta, p):
    """Smallest |v| for which the minimiser is non-zero, and the minimiser there."""
    x_t = (2 * (1 - p) / beta) ** (1 / (2 - p))
    return x_t + p * x_t ** (p - 1) / beta, x_t


def _shrink_fractional(values, beta, p, n_newton=30):
    beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), values.shape)
    magnitude = np.abs(values).astype(np.float64)
    threshold, _ = _threshold_fractional(beta, p)
    active = magnitude > threshold
    if p == 0.5:
        x = _half_root(magnitude[active], beta[active])
    else:
        x = _newton_root(magnitude[active], beta[active], p, n_newton)
    out = np.zeros(values.shape, dtype=np.float64)
    out[active] = x
    return np.copysign(out, values).astype(values.dtype, copy=False)


def _half_root(v, beta):
    """Closed form of the p = 1/2 minimiser above the threshold.

    Half thresholding (Xu et al., 2012) of ``(x - v)^2 + (2 / beta) |x|^(1/2)``:
    ``x = 2/3 v (1 + cos(2 pi / 3 - 2/3 arccos(beta^-1 / 4 (v / 3)^(-3/2))))``.
    """
    angle = np.arccos(np.minimum(1.0, (0.25 / beta) * (v / 3) ** -1.5))
    return (2 / 3) * v * (1 + np.cos(2 * np.pi / 3 - (2 / 3) * angle))


def _newton_root(v, beta, p, n_newton):
    """Largest root of x - v + (p / beta) x^(p-1) = 0, per value, from x = v.

    Each value stops once its own step is below machine precision, so its
    result never depends on the other values of the array.
    """
    x = v.copy()
    todo = np.arange(x.size)
    for _ in range(n_newton):
        xs, vs, bs = x[todo], v[todo], beta[todo]
        g = xs - vs + (p / bs) * xs ** (p - 1)
        dg = 1 - (p * (1 - p) / bs) * xs ** (p - 2)
        step = g / dg
        x[todo] = xs - step
        todo = todo[np.abs(step) > 1e-15 * xs]
        if not todo.size:
            break
    return x


def penalty(maps, p, axis):
    """sum |z|^p over ``axis``."""
    magnitude = np.abs(maps)
    if p != 1:
        magnitude = magnitude**p
    return magnitude.sum(axis=axis)
