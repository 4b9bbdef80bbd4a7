"""The scale-free weight of the reconstruction term (``lmbda='auto'``).

For p = 1 every map of ``y`` is zero exactly when ``lambda * max|F'y| <= 1``
(the optimality condition at z = 0), so ``lambda_min = 1 / max|F'y|`` is the
largest weight that learns nothing, as ``alpha_max`` is for the Lasso.
Scaling ``y`` by ``a`` scales the optimal maps by ``a`` when lambda scales
by ``a^(p - 2)``, so references of the form ``1 / s(|F'y|)^(2 - p)``, with
``s`` any statistic that scales with ``y``, are scale-free for every p.

``lmbda='auto'`` uses the 99th percentile of ``|F'y|`` rather than its
maximum: the inputs of upper layers (sparse maps) are heavy-tailed, and a
fixed multiple of ``lambda_min`` that suits layer 1 leaves them nearly empty,
whereas the percentile rule gives a few percent of non-zero maps on every
layer (measurements: docs/performance.rst and the user guide, "Choosing
lmbda").  At the first proximal
step from zero, a coefficient leaves zero where ``lambda |F'y| > 1``: with
``lambda = AUTO_LMBDA_RATIO / q99``, that is where ``|F'y|`` exceeds
``q99 / AUTO_LMBDA_RATIO``.
"""

from math import prod

import numpy as np

from ._fft_ops import ConvOperator

# lmbda='auto' is AUTO_LMBDA_RATIO / q^(2 - p), q the AUTO_QUANTILE of |F'y|
# at the initial filters (measured: see the module docstring).  4.5: the
# paper's 9/45/150 network keeps at least 0.5% of non-zero maps on its top
# layer on the contrast-normalised fruit and city images with a margin
# (numbers in the user guide, "Choosing lmbda").
AUTO_LMBDA_RATIO = 4.5
AUTO_QUANTILE = 0.99
# At most this many values of |F'y| (an even stride through them) enter the
# percentile.
_MAX_VALUES = 2**20

# Samples per adjoint pass: the adjoint of a chunk holds K map-sized arrays
# per sample; this bounds it to about 32 MiB.
_CHUNK_BYTES = 2**25


def adjoint_statistics(Y, filters, connectivity):
    """``max|F'y|`` and a strided sample of ``|F'y|`` over the images Y.

    ``Y`` is (n, C, *image_shape); the adjoint is computed in chunks of about
    32 MiB, so memory does not grow with the number of images.
    """
    op = ConvOperator(filters, connectivity, Y.shape[2:])
    per_sample = len(filters) * prod(op.map_shape) * Y.itemsize
    step = max(1, _CHUNK_BYTES // per_sample)
    stride = max(1, -(-len(Y) * per_sample // Y.itemsize // _MAX_VALUES))
    parts = [_chunk_statistics(op, Y[start:start + step], stride) for start in range(0, len(Y), step)]
    return max(largest for largest, _ in parts), np.concatenate([values for _, values in parts])


def _chunk_statistics(op, Y, stride):
    """``max|F'y|`` and every ``stride``-th value of ``|F'y|`` (a copy) of a chunk."""
    values = np.abs(op.adjoint(Y)).ravel()
    return float(values.max()), values[::stride].copy()


def scale_free_weights(Y, filters, connectivity, p=1.0):
    """``(lambda_min, lambda_auto)`` of the images Y at ``filters``.

    ``lambda_min = 1 / max|F'y|^(2 - p)``: for p = 1 the largest weight at
    which every map of every image is zero (``inf`` when ``F'y = 0``).
    ``lambda_auto = AUTO_LMBDA_RATIO / q^(2 - p)`` with ``q`` the
    ``AUTO_QUANTILE`` of ``|F'y|`` (its maximum if that is 0).
    """
    largest, values = adjoint_statistics(Y, filters, connectivity)
    if largest == 0:
        return np.inf, 1.0
    quantile = float(np.quantile(values, AUTO_QUANTILE)) or largest
    return largest ** (p - 2.0), AUTO_LMBDA_RATIO * quantile ** (p - 2.0)
