"""3-D max pooling with switches, and unpooling (Zeiler, Taylor & Fergus, ICCV 2011).

Maps of shape ``(n, K, *spatial)`` are tiled into blocks of ``pk`` consecutive
maps times ``(py, px)`` (or ``px`` for signals) spatial positions, from the
first map and the top-left corner; the last block along an axis may be
partial (the maps are padded with zeros).  Pooling keeps, in every block, the
element of largest absolute value with its sign and records its position in
the block, the *switch*: an integer in ``[0, pk * py * px)``, the index of the
element in the block scanned in C order over (map, row, column).  Ties go to
the first element in that order, so an all-zero block gives 0 with switch 0.

Unpooling puts every pooled value back at its switch, zeros elsewhere.  For
fixed switches, pooling by the switches (:func:`pool_by_switches`, which reads
the element at each switch) is the exact adjoint of unpooling, and unpooling
is an isometry (every block receives one value at one position).

``pool_shape`` is given as the user writes it, spatial sizes first and the
map group last: ``(py, px, pk)`` for images, ``(px, pk)`` for signals.

Everything is vectorised: one pad, one reshape/transpose to blocks, one
``argmax`` / ``take_along_axis`` / ``put_along_axis``.
"""

from math import ceil, prod

import numpy as np

from ._geometry import positive_int_tuple

# The default pool shape: 3 on every spatial axis, groups of 2 maps.
DEFAULT_SPATIAL_POOL, DEFAULT_MAP_POOL = 3, 2


def check_pool_shapes(pool_shape, n_layers, n_axes):
    """One pool shape ``(*spatial, pk)`` per layer from the ``pool_shape`` parameter.

    ``None``: the default on every layer; a tuple of ints: that shape on
    every layer; a tuple of tuples: one per layer.
    """
    if pool_shape is None:
        return [(DEFAULT_SPATIAL_POOL,) * n_axes + (DEFAULT_MAP_POOL,)] * n_layers
    nested = len(pool_shape) > 0 and all(isinstance(p, (tuple, list)) for p in pool_shape)
    pools = list(pool_shape) if nested else [pool_shape] * n_layers
    if len(pools) != n_layers:
        raise ValueError(
            f"pool_shape={pool_shape!r} gives {len(pools)} pool shapes for {n_layers} layers."
        )
    shapes = [positive_int_tuple(p, "pool_shape") for p in pools]
    for shape in shapes:
        if len(shape) != n_axes + 1:
            raise ValueError(
                f"pool_shape entries must have {n_axes + 1} values (one per spatial "
                f"axis, then the number of maps per group), got {shape}."
            )
    return shapes


def pooled_shape(map_shape, pool_shape):
    """``(ceil(K / pk), *ceil(spatial / p))`` of maps ``(K, *spatial)``."""
    block = _block(pool_shape)
    return tuple(ceil(m / b) for m, b in zip(map_shape, block))


def _block(pool_shape):
    """User order (spatial..., pk) -> array order (pk, spatial...)."""
    pool_shape = tuple(int(p) for p in pool_shape)
    return (pool_shape[-1],) + pool_shape[:-1]


def _to_blocks(maps, block):
    """(n, K, *S) -> (n, *ceil((K, *S) / block), prod(block)), zero padded."""
    n, *shape = maps.shape
    if len(shape) != len(block):
        raise ValueError(
            f"pool_shape has {len(block)} entries (spatial axes and the map "
            f"group) but the maps have shape {tuple(shape)}."
        )
    counts = [ceil(s / b) for s, b in zip(shape, block)]
    padding = [(0, 0)] + [(0, c * b - s) for s, b, c in zip(shape, block, counts)]
    if any(after for _, after in padding):
        maps = np.pad(maps, padding)
    # (n, c0, b0, c1, b1, ...) -> (n, c0, c1, ..., b0, b1, ...)
    split = maps.reshape((n,) + tuple(x for pair in zip(counts, block) for x in pair))
    n_axes = len(block)
    order = (0,) + tuple(1 + 2 * i for i in range(n_axes)) + tuple(2 + 2 * i for i in range(n_axes))
    return split.transpose(order).reshape((n,) + tuple(counts) + (prod(block),))


def _from_blocks(blocks, block, shape):
    """Inverse of :func:`_to_blocks`, cropped to ``(n, *shape)``."""
    n, *counts, _ = blocks.shape
    n_axes = len(block)
    split = blocks.reshape((n,) + tuple(counts) + tuple(block))
    order = (0,) + tuple(x for i in range(n_axes) for x in (1 + i, 1 + n_axes + i))
    full = split.transpose(order).reshape(
        (n,) + tuple(c * b for c, b in zip(counts, block))
    )
    return full[(slice(None),) + tuple(slice(0, s) for s in shape)]


def max_pool(maps, pool_shape):
    """3-D max pooling of ``maps`` keeping the sign of the largest |value|.

    Parameters
    ----------
    maps : ndarray of shape (n_samples, n_maps, *spatial)
    pool_shape : tuple of int
        ``(py, px, pk)`` (or ``(px, pk)`` for 1-D maps).

    Returns
    -------
    pooled : ndarray of shape (n_samples, ceil(n_maps / pk), *ceil(spatial / p))
        Same dtype as ``maps``.
    switches : ndarray of int, same shape as ``pooled``
        Position of every pooled value in its block (C order over the block
        axes (map, *spatial)).
    """
    blocks = _to_blocks(maps, _block(pool_shape))
    switches = np.argmax(np.abs(blocks), axis=-1)
    pooled = np.take_along_axis(blocks, switches[..., None], axis=-1)[..., 0]
    return pooled, switches.astype(np.intp, copy=False)


def pool_by_switches(maps, switches, pool_shape):
    """The element of ``maps`` at every switch: the adjoint of :func:`unpool`.

    Parameters
    ----------
    maps : ndarray of shape (n_samples, n_maps, *spatial)
    switches : ndarray of int of shape (n_samples, *pooled_shape)
    pool_shape : tuple of int

    Returns
    -------
    pooled : ndarray of the shape of ``switches``, dtype of ``maps``
    """
    blocks = _to_blocks(maps, _block(pool_shape))
    return np.take_along_axis(blocks, switches[..., None], axis=-1)[..., 0]


def unpool(pooled, switches, pool_shape, map_shape):
    """Put every pooled value at its switch, zeros elsewhere.

    Parameters
    ----------
    pooled : ndarray of shape (n_samples, *pooled_shape)
    switches : ndarray of int, same shape (broadcastable over samples)
    pool_shape : tuple of int
    map_shape : tuple of int
        ``(n_maps, *spatial)`` of the unpooled maps.

    Returns
    -------
    maps : ndarray of shape (n_samples, *map_shape)
    """
    block = _block(pool_shape)
    switches = np.broadcast_to(switches, pooled.shape)
    blocks = np.zeros(pooled.shape + (prod(block),), dtype=pooled.dtype)
    np.put_along_axis(blocks, switches[..., None], pooled[..., None], axis=-1)
    return _from_blocks(blocks, block, tuple(map_shape))


def pool_unpool(maps, pool_shape):
    """Keep only the largest |value| of every block: ``U_s P(maps)``.

    Returns the projected maps (same shape) and the switches.
    """
    pooled, switches = max_pool(maps, pool_shape)
    return unpool(pooled, switches, pool_shape, maps.shape[1:]), switches


def keep_block_maxima(maps, pool_shape):
    """``pool_unpool(maps, pool_shape)[0]`` without the switches, faster.

    The block maxima of ``|maps|`` are reduced one block axis at a time by
    element-wise maxima of strided slices, and brought back by repeats, so
    that every pass runs over long rows (the inner block axes are short);
    only when some block's maximum is tied (rare in floating point) does
    it go through :func:`pool_unpool`.
    """
    block = _block(pool_shape)
    n, *shape = maps.shape
    counts = [ceil(s / b) for s, b in zip(shape, block)]
    padding = [(0, 0)] + [(0, c * b - s) for s, b, c in zip(shape, block, counts)]
    padded = np.pad(maps, padding) if any(after for _, after in padding) else maps
    magnitude = np.abs(padded)
    largest = magnitude
    for axis in range(len(block), 0, -1):  # last axis first
        size, count = block[axis - 1], counts[axis - 1]
        split = largest.reshape(largest.shape[:axis] + (count, size) + largest.shape[axis + 1:])
        reduced = split[(slice(None),) * (axis + 1) + (0,)].copy()
        for offset in range(1, size):
            np.maximum(reduced, split[(slice(None),) * (axis + 1) + (offset,)], out=reduced)
        largest = reduced
    n_live = np.count_nonzero(largest)
    for axis, size in enumerate(block, start=1):
        largest = np.repeat(largest, size, axis=axis)
    keep = magnitude == largest
    keep &= largest > 0
    if np.count_nonzero(keep) != n_live:  # ties: the first in scan order wins
        return pool_unpool(maps, pool_shape)[0]
    kept = np.where(keep, padded, np.zeros((), maps.dtype))
    return kept[(slice(None),) + tuple(slice(0, s) for s in shape)]
