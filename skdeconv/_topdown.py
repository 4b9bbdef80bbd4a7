"""Top-down operator of an Adaptive Deconvolutional Network (ICCV 2011).

Layer ``l``'s maps ``z`` reconstruct the image through the filters and the
unpooling switches of all the layers below:

    R_l z = F_1 U_{s_1} F_2 U_{s_2} ... F_{l-1} U_{s_{l-1}} F_l z
    R_l' r = F_l' P_{s_{l-1}} F_{l-1}' ... P_{s_1} F_1' r

``F_j`` is layer ``j``'s valid synthesis (:class:`~skdeconv._fft_ops.ConvOperator`),
``U_s`` the unpooling with the switches of THIS image and ``P_s = U_s'``
(:mod:`skdeconv._pooling3d`).  The switches differ per sample, so an
operator is built for a batch of samples and applies every sample's own
switches; each sample's result depends on that sample only.

It implements the operator interface of :mod:`skdeconv._operators`
(``forward``, ``adjoint``, ``lipschitz``, ``take``), except that its
``map_shape`` and ``image_shape`` include the maps' and the channels' axes;
docs/architecture.rst says how its projected inference would become a
registered solver of the common driver.
"""

from functools import cached_property
from math import prod

import numpy as np

from ._operators import LinearOperator
from ._pooling3d import pool_by_switches, pooled_shape, unpool

# Power iterations of the per-sample step-size estimate, and its margin over
# the estimate (a Rayleigh quotient, which approaches ||R||^2 from below).
POWER_ITERATIONS = 12
POWER_MARGIN = 1.15


class TopDownOperator(LinearOperator):
    """``R_l`` for fixed filters and fixed switches of the layers below.

    Parameters
    ----------
    operators : list of ConvOperator
        ``F_1, ..., F_l``: layer ``j + 1`` takes the pooled maps of layer
        ``j`` as its input (``n_channels = ceil(K_j / pk)``, spatial shape
        ``ceil(M_j / p)``).
    switches : list of ndarray of int
        ``s_1, ..., s_{l-1}``, each ``(n_samples, *pooled_shape_j)``.
    pool_shapes : list of tuple of int
        Pool shapes ``(py, px, pk)`` of layers ``1..l-1``.
    """

    def __init__(self, operators, switches, pool_shapes):
        self.operators = list(operators)
        self.switches = list(switches)
        self.pool_shapes = [tuple(p) for p in pool_shapes]
        if not (len(self.switches) == len(self.pool_shapes) == len(self.operators) - 1):
            raise ValueError("a top-down operator of layer l needs l - 1 switches and pool shapes.")
        self.lower_map_shapes = [(op.n_filters,) + op.map_shape for op in self.operators[:-1]]
        for j, (shape, pool, upper) in enumerate(
            zip(self.lower_map_shapes, self.pool_shapes, self.operators[1:]), start=1
        ):
            expected = pooled_shape(shape, pool)
            if expected != (upper.n_channels,) + upper.image_shape:
                raise ValueError(
                    f"layer {j + 1} takes inputs {(upper.n_channels,) + upper.image_shape} "
                    f"but the pooled maps of layer {j} are {expected}."
                )
            if self.switches[j - 1].shape[1:] != expected:
                raise ValueError(
                    f"switches of layer {j} have shape {self.switches[j - 1].shape[1:]}, "
                    f"expected {expected}."
                )
        top = self.operators[-1]
        self.map_shape = (top.n_filters,) + top.map_shape
        bottom = self.operators[0]
        self.image_shape = (bottom.n_channels,) + bottom.image_shape
        self.dtype = top.dtype
        self.precomputed = {}

    @property
    def n_layers(self):
        return len(self.operators)

    def take(self, index):
        """The operator of a subset of the samples (same filters)."""
        return TopDownOperator(
            self.operators, [s[index] for s in self.switches], self.pool_shapes
        )

    def lower_forward(self, x):
        """``F_1 U_1 ... F_{l-1} U_{l-1} x`` for the input x of layer l (pooled maps)."""
        for j in range(self.n_layers - 2, -1, -1):
            x = unpool(x, self.switches[j], self.pool_shapes[j], self.lower_map_shapes[j])
            x = self.operators[j].forward(x)
        return x

    def lower_adjoint(self, residual):
        """``P_{l-1} F_{l-1}' ... P_1 F_1' r``: a pixel residual in layer l's input space."""
        x = residual
        for j in range(self.n_layers - 1):
            x = self.operators[j].adjoint(x)
            x = pool_by_switches(x, self.switches[j], self.pool_shapes[j])
        return x

    def forward(self, maps):
        """``R_l z`` for maps (n, K_l, *M_l) -> (n, C, *image_shape)."""
        return self.lower_forward(self.operators[-1].forward(maps))

    def adjoint(self, residual):
        """``R_l' r`` for a pixel residual (n, C, *image_shape) -> (n, K_l, *M_l)."""
        return self.operators[-1].adjoint(self.lower_adjoint(residual))

    @cached_property
    def lipschitz(self):
        """Upper bound of ``||R_l||^2``: the product of the layers' bounds.

        Unpooling with fixed switches is an isometry (one value per block,
        at distinct positions), so ``||R_l|| <= prod ||F_j||``.  Valid for
        every sample; often loose for l > 1 (see :meth:`sample_lipschitz`).
        """
        return float(prod(op.lipschitz for op in self.operators))

    def sample_lipschitz(self, n_iter=POWER_ITERATIONS, margin=POWER_MARGIN, start=None,
                         return_vectors=False):
        """Per-sample estimate of ``||R_l||^2`` (with each sample's switches).

        For layer 1 the exact bound :attr:`lipschitz`.  Above, ``n_iter``
        power iterations on ``R' R`` from a fixed start (the same for every
        sample, so a sample's estimate does not depend on the batch), times
        ``margin``, capped by the product bound.

        ``start`` (n_samples, *map_shape): vectors to start from instead
        (e.g. those of a previous call with nearby filters, returned with
        ``return_vectors``), so that fewer iterations suffice.

        Returns
        -------
        lipschitz : ndarray of shape (n_samples,), float64
        vectors : ndarray, only with ``return_vectors``
        """
        n_samples = len(self.switches[0]) if self.switches else 1
        bound = self.lipschitz
        if self.n_layers == 1:
            return (np.full(n_samples, bound), None) if return_vectors else np.full(n_samples, bound)
        if start is None:
            start = np.random.RandomState(0).standard_normal(self.map_shape).astype(self.dtype)
            vectors = np.repeat(start[None], n_samples, axis=0)
        else:
            vectors = start.astype(self.dtype, copy=True)
        estimate = np.zeros(n_samples)
        for _ in range(n_iter):
            vectors /= _norms(vectors).astype(self.dtype).reshape(_column(vectors.ndim))
            image = self.forward(vectors)
            estimate = np.sum(np.square(image.reshape(n_samples, -1), dtype=np.float64), axis=1)
            vectors = self.adjoint(image)
        lipschitz = np.minimum(margin * estimate, bound)
        return (lipschitz, vectors) if return_vectors else lipschitz


def _column(ndim):
    return (-1,) + (1,) * (ndim - 1)


def _norms(x):
    """Euclidean norm of every sample, float64 (1 where 0, to divide by)."""
    norms = np.sqrt(np.sum(np.square(x.reshape(len(x), -1), dtype=np.float64), axis=1))
    return np.where(norms > 0, norms, 1.0)
