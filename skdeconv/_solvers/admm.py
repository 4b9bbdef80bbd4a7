"""ADMM with mask decoupling in the Fourier domain (Wohlberg 2016)."""

import numpy as np

from .._shrinkage import shrink
from ._base import MapSolver, register_solver
from ._numerics import blocks, per_sample, sample_dots, sample_rows, vecdots

# Iterations between two residual-balancing updates of rho.
RHO_PERIOD = 10
# Initial penalty rho of every sample (SPORCO's default for ConvBPDNMaskDcpl).
# The problem is scaled so that the data term has unit weight, so rho is
# relative to it whatever the scale of the images or lambda.  On the camera
# problem of benchmarks/run.py at lambda 1, 5 and 20 it takes 35, 63 and 156
# iterations to 1e-4 of the optimum (0.5-3 were no better); SPORCO's generic
# 50 / lambda + 1 (the former default) took 66, 97 and 177 when y0 still
# started at D x, one iteration more than now (benchmarks/README.md, 1b).
RHO_INIT = 1.0
# ADMM stops when both relative residuals are <= RESIDUAL_TOL_FACTOR * tol:
# the same ``tol`` then stops ADMM and FISTA (whose test is the relative
# change of the maps) at about the same distance from the optimum.  Measured
# (benchmarks/README.md, "Stopping tests"): at tol 1e-3 FISTA stops 2e-6 to
# 7e-3 above the optimum; ADMM's residuals <= 1e-3 stop it 3e-8 to 2e-5
# above, after 2-4x the iterations (418-1020 on 32x32 texture patches, 1000
# being max_iter), and residuals <= 3e-3 stop it 3e-7 to 2.5e-4 above.
RESIDUAL_TOL_FACTOR = 3.0
# Key of the precomputed Woodbury inverse in ``op.precomputed``.
_WOODBURY = "admm.woodbury_inverse"


@register_solver
class Admm(MapSolver):
    """ADMM with mask decoupling in the Fourier domain (Wohlberg 2016).

    Solves the same problem scaled by 1 / lambda,
    min 1/2 ||W(D x) - y||^2 + (1/lambda) |x|^p, with the circular synthesis
    D on the FFT grid and the mask W of the valid window, by splitting
    D x = y0 (data) and x = y1 (sparse maps): the x-step is exact per
    frequency (Woodbury on the C x C system), y0 is a masked average and y1
    a shrinkage.  Over-relaxation 1.8 and residual balancing of each
    sample's own penalty rho every ``RHO_PERIOD`` iterations, as in SPORCO,
    by a factor 2 whenever one relative residual exceeds 3 times the other
    (SPORCO's generic ADMM ratio, 10, leaves rho unbalanced much longer; see
    benchmarks/README.md).  A sample stops when its primal and dual
    residuals, relative to ||A x|| and ||rho u||, are both
    ``<= RESIDUAL_TOL_FACTOR * tol`` (3 tol: about as close to the optimum
    as FISTA's test at the same ``tol``).  The state starts with y0 after
    the data step at the initial maps.  The maps are the sparse iterate
    ``y1`` cropped to the map shape.  Needs an operator with circular
    spectra (``op.circular``).
    """

    name = "admm"
    carries_state = True
    interleaved_arrays = 7.0  # five grid-sized arrays of state (measured peak RSS)

    def __init__(self, *, rho_init=None, **params):
        """``rho_init``: the initial penalty, a number, or 'lambda' for
        SPORCO's generic ``50 / lambda + 1``; RHO_INIT when None."""
        super().__init__(**params)
        self.rho_init = RHO_INIT if rho_init is None else rho_init

    def _initial_rho(self):
        if self.rho_init == "lambda":
            return 50.0 / self.lmbda + 1.0
        return float(self.rho_init)

    @classmethod
    def supports(cls, op):
        return getattr(op, "circular", False)

    @classmethod
    def precompute(cls, op):
        if _WOODBURY not in op.precomputed:
            op.precomputed[_WOODBURY] = woodbury_inverse(op)
        return op

    def start(self, op, Y, init):
        data = np.zeros((len(Y), op.n_channels) + op.fft_shape, dtype=Y.dtype)
        data[op.valid_window] = Y
        sparse = _on_grid(op, init)
        rho = np.full(len(Y), self._initial_rho())
        synthesis = _circular_synthesis(op, sparse)
        return {
            "y0": _data_step(op, data, synthesis, rho), "y1": sparse,
            "u0": np.zeros_like(data), "u1": np.zeros_like(sparse), "data": data, "rho": rho,
        }

    def step(self, op, state, iteration, workspace=None):
        balance = (iteration + 1) % RHO_PERIOD == 0
        return 1, admm_iteration(op, self.lmbda, self.p, state, balance)

    def converged(self, progress):
        primal_rel, dual_rel = progress
        bound = RESIDUAL_TOL_FACTOR * self.tol
        return (primal_rel <= bound) & (dual_rel <= bound)

    def maps(self, op, state):
        return state["y1"][op.map_window]


def woodbury_inverse(op):
    """(I + D(w) D(w)^H)^{-1} per frequency, shape (C, C, *freq).

    With it, (I + D^H D)^{-1} b = b - D^H (I + D D^H)^{-1} D b on the FFT
    grid (the x-step of ADMM).
    """
    freq_shape = op.pair_spectra.shape[1:]
    n_freq = int(np.prod(freq_shape))
    inverse = np.empty((n_freq, op.n_channels, op.n_channels), op.pair_spectra.dtype)
    identity = np.eye(op.n_channels)
    for block, gram in op.filter_grams(channel_side=True):
        inverse[block] = np.linalg.inv(identity + gram)
    return np.moveaxis(inverse, 0, -1).reshape((op.n_channels, op.n_channels) + freq_shape)


def _on_grid(op, maps):
    """Zero-pad maps (n, K, *map_shape) at the origin of the FFT grid."""
    out = np.zeros(maps.shape[:2] + op.fft_shape, dtype=maps.dtype)
    out[op.map_window] = maps
    return out


def _circular_synthesis(op, maps):
    """D x on the FFT grid (circular)."""
    return op.irfft(op.synthesis_spectra(op.rfft(maps)))


def _admm_x_step(op, data_target, map_target):
    """argmin_x ||D x - data_target||^2 + ||x - map_target||^2 (exact per frequency).

    Returns x and D x, both on the FFT grid.
    """
    rhs = op.circular_adjoint_spectra(op.rfft(data_target), out=op.rfft(map_target))
    inverse = op.precomputed[_WOODBURY]
    reduced = np.einsum("cd...,nd...->nc...", inverse, op.synthesis_spectra(rhs))
    op.circular_adjoint_spectra(np.negative(reduced), out=rhs)
    return op.irfft(rhs, overwrite_x=True), op.irfft(reduced, overwrite_x=True)


def admm_iteration(
    op, lmbda, p, state, balance, relaxation=1.8, rho_scaling=2.0, residual_ratio=3.0,
):
    """One over-relaxed ADMM iteration on every sample of ``state``.

    ``balance``: rescale each sample's rho by residual balancing.  Updates
    ``state`` and returns the relative primal and dual residuals.
    """
    y0, y1, u0, u1 = state["y0"], state["y1"], state["u0"], state["u1"]
    ndim = y1.ndim
    x, dx = _admm_x_step(op, y0 - u0, y1 - u1)
    map_dots = _admm_sparse_step(x, y1, u1, relaxation, state["rho"] * lmbda, p)
    y1_new, u1 = u1, x  # the buffers _admm_sparse_step wrote them to
    data_scale = sample_dots(dx, dx)
    dx -= y0
    data_primal = sample_dots(dx, dx)
    v0 = _relaxed(dx, relaxation, y0, u0)
    y0_new = _data_step(op, state["data"], v0, state["rho"])
    y0 -= y0_new
    data_dual = sample_dots(y0, y0)
    u0 = np.subtract(v0, y0_new, out=v0)
    scale = np.sqrt(data_scale + map_dots[0])
    primal = np.sqrt(data_primal + map_dots[1])
    dual = state["rho"] * np.sqrt(data_dual + map_dots[2])
    dual_scale = state["rho"] * np.sqrt(sample_dots(u0, u0) + map_dots[3])
    with np.errstate(over="ignore"):  # nothing to compare with (F = 0): inf, never converged
        primal_rel = primal / np.maximum(scale, np.finfo(float).tiny)
        dual_rel = dual / np.maximum(dual_scale, np.finfo(float).tiny)
    if balance:
        factor = _rho_factor(primal_rel, dual_rel, residual_ratio, rho_scaling)
        u0 /= per_sample(factor, ndim).astype(u0.dtype)
        u1 /= per_sample(factor, ndim).astype(u1.dtype)
        state["rho"] = state["rho"] * factor
    state.update(y0=y0_new, y1=y1_new, u0=u0, u1=u1)
    return primal_rel, dual_rel


def _data_step(op, data, target, rho):
    """ADMM's step on the data split: argmin 1/2 ||W y0 - data||^2 + rho/2 ||y0 - target||^2.

    The masked average ``(data + rho target) / (1 + rho)`` in the valid
    window, ``target`` outside it (per-sample ``rho``).
    """
    rho = per_sample(rho, target.ndim).astype(target.dtype)
    return np.where(op.valid_mask, (data + rho * target) / (1 + rho), target)


def _admm_sparse_step(x, y1, u1, relaxation, beta, p):
    """ADMM's steps on the sparse maps, in place, fused over cache-sized blocks.

    ``x`` are the x-step's maps, ``y1`` the sparse maps and ``u1`` the scaled
    dual (n, ...) on the FFT grid.  With the relaxed
    ``v1 = relaxation (x - y1) + y1 + u1``, writes ``y1_new = shrink(v1)``
    (threshold 1 / ``beta``, per sample) to ``u1``'s buffer and the new dual
    ``v1 - y1_new`` to ``x``'s (``y1`` is scratch).  Returns ``(|x|^2,
    |x - y1|^2, |y1 - y1_new|^2, |u1_new|^2)`` per sample, shape (4, n), in
    float64: the map parts of the residuals and of their scales.
    """
    x, y1, u1 = (sample_rows(a) for a in (x, y1, u1))
    beta = np.asarray(beta, dtype=np.float64)[:, None]
    dots = np.zeros((4, len(x)))
    block_dots = np.empty((2, len(x)), x.dtype)
    for block in blocks(x):
        xb, yb, ub = x[:, block], y1[:, block], u1[:, block]
        dots[0] += vecdots(((xb, xb),), block_dots[:1])[0]
        xb -= yb
        dots[1] += vecdots(((xb, xb),), block_dots[:1])[0]
        shrink(_relaxed(xb, relaxation, yb, ub), beta, p, out=ub)
        yb -= ub
        xb -= ub
        dots[2:] += vecdots(((yb, yb), (xb, xb)), block_dots)
    return dots


def _relaxed(residual, relaxation, previous, dual):
    """previous + relaxation * residual + dual, in the residual's buffer."""
    residual *= relaxation
    residual += previous
    residual += dual
    return residual


def _rho_factor(primal_rel, dual_rel, residual_ratio, rho_scaling):
    """Residual balancing: grow rho when the primal residual dominates."""
    factor = np.ones(len(primal_rel))
    factor[primal_rel > residual_ratio * dual_rel] = rho_scaling
    factor[dual_rel > residual_ratio * primal_rel] = 1 / rho_scaling
    return factor
