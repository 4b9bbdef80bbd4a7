"""3-D max pooling with switches and unpooling, against brute-force loops."""

import itertools
from math import ceil

import numpy as np
import pytest

from skdeconv._pooling3d import (
    max_pool,
    pool_by_switches,
    pool_unpool,
    pooled_shape,
    unpool,
)


def _brute_pool(maps, pool_shape):
    """Loops over blocks and elements: the definition of DESIGN section 10."""
    *spatial_pool, pk = pool_shape
    block = (pk, *spatial_pool)
    n, *shape = maps.shape
    counts = [ceil(s / b) for s, b in zip(shape, block)]
    pooled = np.zeros((n, *counts), maps.dtype)
    switches = np.zeros((n, *counts), int)
    for sample in range(n):
        for cell in itertools.product(*(range(c) for c in counts)):
            best, best_switch = 0.0, 0
            for offset, position in enumerate(itertools.product(*(range(b) for b in block))):
                index = tuple(c * b + o for c, b, o in zip(cell, block, position))
                if any(i >= s for i, s in zip(index, shape)):
                    continue  # outside a partial block: a padded zero
                value = maps[(sample,) + index]
                if abs(value) > abs(best):  # strict: ties keep the first
                    best, best_switch = value, offset
            pooled[(sample,) + cell] = best
            switches[(sample,) + cell] = best_switch
    return pooled, switches


def _brute_unpool(pooled, switches, pool_shape, map_shape):
    *spatial_pool, pk = pool_shape
    block = (pk, *spatial_pool)
    out = np.zeros((len(pooled), *map_shape), pooled.dtype)
    offsets = list(itertools.product(*(range(b) for b in block)))
    for sample in range(len(pooled)):
        for cell in itertools.product(*(range(c) for c in pooled.shape[1:])):
            position = offsets[switches[(sample,) + cell]]
            index = tuple(c * b + o for c, b, o in zip(cell, block, position))
            if all(i < s for i, s in zip(index, map_shape)):
                out[(sample,) + index] = pooled[(sample,) + cell]
    return out


CASES = [
    ((5, 7, 8), (3, 3, 2)),   # partial blocks on every axis (maps, rows, columns)
    ((4, 6, 6), (2, 3, 2)),   # exact tiling
    ((3, 5, 4), (1, 1, 1)),   # identity
    ((3, 4, 5), (4, 2, 3)),   # block larger than the maps along rows
    ((6, 11), (3, 2)),        # 1-D signals: (px, pk)
    ((1, 7), (2, 3)),         # one map, padded group
]


@pytest.mark.parametrize("shape, pool_shape", CASES)
def test_pool_matches_brute_force(shape, pool_shape):
    rng = np.random.RandomState(0)
    maps = rng.standard_normal((3, *shape))
    maps[0, :2] = 0  # all-zero blocks give 0 with switch 0
    maps[1] = np.round(maps[1])  # ties: the first in scan order
    pooled, switches = max_pool(maps, pool_shape)
    expected, expected_switches = _brute_pool(maps, pool_shape)
    assert pooled.shape == (3, *pooled_shape(shape, pool_shape))
    np.testing.assert_array_equal(pooled, expected)
    np.testing.assert_array_equal(switches, expected_switches)
    np.testing.assert_array_equal(pool_by_switches(maps, switches, pool_shape), pooled)


@pytest.mark.parametrize("shape, pool_shape", CASES)
def test_unpool_matches_brute_force(shape, pool_shape):
    rng = np.random.RandomState(1)
    counts = pooled_shape(shape, pool_shape)
    pooled = rng.standard_normal((2, *counts))
    switches = rng.randint(0, np.prod(pool_shape), size=(2, *counts))
    np.testing.assert_array_equal(
        unpool(pooled, switches, pool_shape, shape),
        _brute_unpool(pooled, switches, pool_shape, shape),
    )


@pytest.mark.parametrize("shape, pool_shape", CASES)
@pytest.mark.parametrize("switch_source", ["pooling", "random"])
def test_unpool_is_the_adjoint_of_pooling_by_switches(shape, pool_shape, switch_source):
    """<P_s x, y> = <x, U_s y> for fixed switches (also switches into the padding)."""
    rng = np.random.RandomState(2)
    x = rng.standard_normal((2, *shape))
    if switch_source == "pooling":
        _, switches = max_pool(rng.standard_normal((2, *shape)), pool_shape)
    else:
        counts = pooled_shape(shape, pool_shape)
        switches = rng.randint(0, np.prod(pool_shape), size=(2, *counts))
    y = rng.standard_normal(switches.shape)
    left = np.sum(pool_by_switches(x, switches, pool_shape) * y)
    right = np.sum(x * unpool(y, switches, pool_shape, shape))
    assert left == pytest.approx(right, rel=1e-12)


def test_pool_unpool_keeps_one_value_per_block_and_is_idempotent():
    rng = np.random.RandomState(3)
    maps = rng.standard_normal((2, 5, 9, 7)).astype(np.float32)
    projected, switches = pool_unpool(maps, (3, 3, 2))
    assert projected.dtype == np.float32
    assert np.count_nonzero(projected) == switches.size
    again, again_switches = pool_unpool(projected, (3, 3, 2))
    np.testing.assert_array_equal(again, projected)
    np.testing.assert_array_equal(again_switches, switches)
    # the kept values are the block maxima of |maps|, with their signs
    pooled, _ = max_pool(maps, (3, 3, 2))
    np.testing.assert_array_equal(np.sort(projected[projected != 0]), np.sort(pooled.ravel()))


def test_pool_shape_must_match_the_maps():
    with pytest.raises(ValueError, match="pool_shape has 3 entries"):
        max_pool(np.zeros((1, 2, 5)), (2, 2, 2))


@pytest.mark.parametrize("shape, pool_shape", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_keep_block_maxima_equals_pool_unpool(shape, pool_shape, dtype):
    from skdeconv._pooling3d import keep_block_maxima

    rng = np.random.RandomState(4)
    maps = rng.standard_normal((3, *shape)).astype(dtype)
    maps[0, :1] = 0
    for case in (maps, np.round(maps)):  # rounded: ties between non-zeros
        kept = keep_block_maxima(case, pool_shape)
        assert kept.dtype == case.dtype and kept.shape == case.shape
        np.testing.assert_array_equal(kept, pool_unpool(case, pool_shape)[0])
