"""The paper's solver: half-quadratic splitting with beta continuation."""

import numpy as np

from .._momentum import momentum
from .._shrinkage import shrink
from ._base import MapSolver, register_solver
from ._numerics import per_sample, sample_dots, sample_norms


@register_solver
class Continuation(MapSolver):
    """Half-quadratic splitting with beta continuation (Zeiler et al., 2010).

    Minimises lambda/2 ||A z - y||^2 + beta/2 ||z - x||^2 + |x|^p by
    alternating ``cg_steps`` conjugate-gradient steps on
    (lambda A'A + beta I) z = lambda A'y + beta x and the shrinkage x-step,
    with beta growing by ``beta_rate`` over ``n_levels`` levels.  At fixed
    beta this alternation is proximal gradient on the Moreau envelope of the
    data term (step 1 / beta), so x is extrapolated with FISTA's momentum
    (restarted adaptively and at every new level), which the paper's plain
    alternation lacks and which lets the last level converge.

    ``max_iter`` bounds the total number of CG steps: each level but the last
    gets ``max_iter // n_levels`` and moves on early once
    ``||x_t - x_{t-1}|| <= tol ||x_t||``; the last level runs until that
    test holds or the budget is spent.  The maps are the sparse ``x``.
    Works on any operator (only ``forward`` and ``adjoint``).
    """

    name = "continuation"
    beta_init, beta_rate, n_levels, cg_steps = 1.0, 10.0, 6, 2

    def start(self, op, Y, init):
        n_samples = len(Y)
        return {
            "z": init.copy(), "x": init.copy(), "x_hat": init.copy(),
            "t": np.ones(n_samples), "data_term": self.lmbda * op.adjoint(Y),
            "level": np.zeros(n_samples, dtype=int),
            "level_iter": np.zeros(n_samples, dtype=int),
        }

    def step(self, op, state, iteration, workspace=None):
        lmbda, tol = self.lmbda, self.tol
        z, x, level = state["z"], state["x"], state["level"]
        ndim = z.ndim
        beta = per_sample(self.beta_init * self.beta_rate ** level.astype(float), ndim)
        beta = beta.astype(z.dtype)

        def normal_operator(v):
            return lmbda * op.adjoint(op.forward(v)) + beta * v

        steps = min(self.cg_steps, self.max_iter - iteration)
        rhs = state["data_term"] + beta * state["x_hat"]
        z = _conjugate_gradient(normal_operator, z, rhs, steps)
        x_new = shrink(z, beta, self.p)
        delta = x_new - x
        small_change = sample_norms(delta) <= tol * sample_norms(x_new)
        last = level == self.n_levels - 1
        level_iter = state["level_iter"] + steps
        level_budget = max(self.cg_steps, self.max_iter // self.n_levels)
        advance = ~last & (small_change | (level_iter >= level_budget))
        restart = advance | (sample_dots(state["x_hat"] - x_new, delta) > 0)
        t, weight = momentum(state["t"], restart)
        state.update(
            z=z, x=x_new, t=t,
            x_hat=x_new + per_sample(weight, ndim).astype(z.dtype) * delta,
            level=level + advance,
            level_iter=np.where(advance, 0, level_iter),
        )
        return steps, last & small_change

    def converged(self, progress):
        return progress

    def maps(self, op, state):
        return state["x"]


def _conjugate_gradient(apply, z, rhs, n_steps):
    """A few CG steps on A z = rhs from z, per sample (A is SPD, per sample)."""
    ndim = z.ndim
    residual = rhs - apply(z)
    direction = residual
    rr = sample_dots(residual, residual)
    for _ in range(n_steps):
        a_dir = apply(direction)
        curvature = sample_dots(direction, a_dir)
        alpha = np.divide(rr, curvature, out=np.zeros_like(rr), where=curvature > 0)
        z = z + per_sample(alpha, ndim).astype(z.dtype) * direction
        residual = residual - per_sample(alpha, ndim).astype(z.dtype) * a_dir
        rr_new = sample_dots(residual, residual)
        ratio = np.divide(rr_new, rr, out=np.zeros_like(rr), where=rr > 0)
        direction = residual + per_sample(ratio, ndim).astype(z.dtype) * direction
        rr = rr_new
    return z
