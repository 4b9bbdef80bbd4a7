"""Per-sample reductions and cache blocking shared by the map solvers."""

import numpy as np

from .._shrinkage import penalty


def sample_dots(x, y):
    """Inner product of every sample of x with the same sample of y.

    Accumulated in the arrays' dtype (casting float32 to float64 would
    double the cost of a FISTA step), and again in float64 when that
    overflows: squares of float32 values above ~1e19 would otherwise stop
    every sample after one step (silently wrong).
    """
    pairs = ((x.reshape(len(x), -1), y.reshape(len(y), -1)),)
    dots = vecdots(pairs, np.empty((1, len(x)), np.result_type(x, y)))[0]
    return dots.astype(np.float64, copy=False)


def sample_norms(x):
    return np.sqrt(sample_dots(x, x))


def per_sample(values, ndim):
    """Per-sample values (n,) shaped to broadcast against arrays of ``ndim``."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


def objective(op, maps, Y, lmbda, p):
    """Cost of every sample: lambda/2 ||A z - y||^2 + sum |z|^p, shape (n,)."""
    residual = op.forward(maps) - Y
    data = 0.5 * lmbda * sample_dots(residual, residual)
    return data + penalty(maps, p, axis=tuple(range(1, maps.ndim)))


def vecdots(pairs, out):
    """``np.vecdot`` of each pair of (n, m) blocks, into the rows of ``out``.

    In the arrays' dtype; float32 products that overflow are computed again
    in float64 (see :func:`sample_dots`), which float64 has nothing wider
    for.  Returns the dots, shape (len(pairs), n).
    """
    if out.dtype == np.float64:
        for row, (a, b) in zip(out, pairs):
            np.vecdot(a, b, out=row)
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        for row, (a, b) in zip(out, pairs):
            np.vecdot(a, b, out=row)
    if np.isfinite(out).all():
        return out
    return np.array([np.vecdot(a, b, dtype=np.float64) for a, b in pairs])


# Bytes of each sample handled at a time by the fused updates: the block of
# every array they read stays in the L2 cache across their passes.
BLOCK_BYTES = 2**18


def blocks(rows):
    """Slices of cache-sized blocks of the columns of ``rows`` (n, size)."""
    size = BLOCK_BYTES // rows.itemsize
    return [slice(start, start + size) for start in range(0, rows.shape[1], size)]


def sample_rows(array):
    """View (never a copy) of an array (n, ...) as (n, size): each sample is contiguous."""
    return np.reshape(array, (len(array), -1), copy=False)
