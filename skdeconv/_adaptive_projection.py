"""Projections of a fitted AdaptiveDeconvNetwork down to pixel space.

The workers of ``inverse_transform``, ``project`` and ``project_activations``
(``_adaptive.py`` keeps the methods and their documentation).  Each takes the
maps of one layer, the switches of the layers below it and the layers'
convolution operators (:class:`~skdeconv._fft_ops.ConvOperator`), and applies
the top-down operator ``R_l`` (:mod:`skdeconv._topdown`).
"""

import numpy as np

from ._pooling3d import max_pool
from ._topdown import TopDownOperator


def project_maps(maps, operators, switches, pool_shapes):
    """``R_l z`` of the maps ``z`` of layer ``l = len(operators)``, rows flattened.

    ``switches`` and ``pool_shapes`` are those of layers ``1..l-1`` (longer
    lists are cut to them).
    """
    below = len(operators) - 1
    R = TopDownOperator(operators, switches[:below], pool_shapes[:below])
    return R.forward(maps).reshape(len(maps), -1)


def reconstruct_rows(Z, operators, layer_slices, layer_map_shapes, pool_shapes):
    """Top-down reconstruction of validated rows ``Z`` of ``transform``.

    Every layer's maps are cut out of the rows; the switches of the lower
    layers are read from their maps (each block's non-zero value sits at its
    switch; an all-zero block has switch 0) and the top layer's maps are
    projected with them.
    """
    maps = [Z[:, cols].reshape((len(Z),) + shape)
            for cols, shape in zip(layer_slices, layer_map_shapes)]
    switches = [max_pool(z, pool)[1] for z, pool in zip(maps[:-1], pool_shapes)]
    return project_maps(np.ascontiguousarray(maps[-1]), operators, switches, pool_shapes)


def check_map_indices(maps, n_maps):
    """``maps`` (None for all) as a 1-D array of indices in ``0..n_maps - 1``."""
    selected = np.arange(n_maps) if maps is None else np.asarray(maps, dtype=int).ravel()
    if selected.size == 0 or selected.min() < 0 or selected.max() >= n_maps:
        raise ValueError(f"maps must hold map indices in 0..{n_maps - 1}, got {maps!r}.")
    return selected


def project_strongest(Z, selected, operators, switches, pool_shapes):
    """Projections and locations of the strongest activation of each selected map.

    ``Z`` holds the maps ``(n_samples, n_maps, *map_shape)`` of layer
    ``l = len(operators)``; for every sample and every map in ``selected``,
    its largest absolute value alone is projected with ``R_l`` and that
    sample's switches.  Returns the projections ``(n_samples, n_selected,
    n_pixels)`` and the ``(map, *position)`` of each projected activation.
    """
    n_samples, n_selected = len(Z), len(selected)
    flat = np.abs(Z[:, selected].reshape(n_samples, n_selected, -1))
    strongest = np.argmax(flat, axis=2)
    positions = np.stack(np.unravel_index(strongest, Z.shape[2:]), axis=-1)
    single = np.zeros((n_samples, n_selected) + Z.shape[1:], Z.dtype)
    n_index, m_index = np.meshgrid(np.arange(n_samples), np.arange(n_selected), indexing="ij")
    where = (n_index, m_index, np.broadcast_to(selected, n_index.shape)) + tuple(
        positions[..., axis] for axis in range(positions.shape[-1])
    )
    single[where] = Z[(n_index, np.broadcast_to(selected, n_index.shape)) + where[3:]]
    repeated = [np.repeat(s, n_selected, axis=0) for s in switches[: len(operators) - 1]]
    projections = project_maps(
        single.reshape((-1,) + Z.shape[1:]), operators, repeated, pool_shapes
    ).reshape(n_samples, n_selected, -1)
    locations = np.concatenate(
        [np.broadcast_to(selected[None, :, None], n_index.shape + (1,)), positions], axis=2
    )
    return projections, locations
