"""Per-sample inference of the feature maps for fixed filters.

Both solvers minimise, for every sample independently,

    lambda/2 ||F z - y||^2 + sum |z|^p

with the FFTs batched over samples: each sample has its own iterate, momentum
or beta level, stopping test and iteration count, and leaves the batch as soon
as it has converged, so the result never depends on the other samples.
"""

import numpy as np

from ._shrinkage import penalty, shrink


def _sample_dots(x, y):
    """Inner product of every sample of x with the same sample of y."""
    return np.einsum("ij,ij->i", x.reshape(len(x), -1), y.reshape(len(y), -1))


def _sample_norms(x):
    return np.sqrt(_sample_dots(x, x))


def _per_sample(values, ndim):
    return values.reshape((-1,) + (1,) * (ndim - 1))


def objective(op, maps, Y, lmbda, p):
    """Cost of every sample: lambda/2 ||F z - y||^2 + sum |z|^p, shape (n,)."""
    residual = op.forward(maps) - Y
    data = 0.5 * lmbda * _sample_dots(residual, residual)
    return data + penalty(maps, p, axis=tuple(range(1, maps.ndim)))


class _ActiveSet:
    """Samples still iterating, with their per-sample state compacted."""

    def __init__(self, n_samples, output, **state):
        self.index = np.arange(n_samples)
        self.output = output
        self.state = state
        self.converged = np.zeros(n_samples, dtype=bool)
        self.n_iter = np.zeros(n_samples, dtype=int)

    def __getattr__(self, name):
        try:
            return self.__dict__["state"][name]
        except KeyError:
            raise AttributeError(name) from None

    def update(self, **state):
        self.state.update(state)

    def retire(self, done, converged, result_name):
        """Write finished samples to the output and drop them from the state."""
        if not done.any():
            return
        finished = self.index[done]
        self.output[finished] = self.state[result_name][done]
        self.converged[finished] = converged[done]
        keep = ~done
        self.index = self.index[keep]
        self.state = {k: v[keep] for k, v in self.state.items()}

    def count(self, iterations):
        self.n_iter[self.index] += iterations


def fista(op, Y, lmbda, p, init, max_iter, tol):
    """FISTA with adaptive (gradient) restart, step 1 / (lambda ||F||^2).

    Returns the maps, the iterations run and whether each sample met
    ``||z_t - z_{t-1}|| <= tol ||z_t||``.
    """
    step = lmbda * op.lipschitz
    ndim = init.ndim
    active = _ActiveSet(
        len(Y), init.copy(), x=init.copy(), y=init.copy(),
        t=np.ones(len(Y)), target=Y,
    )
    for _ in range(max_iter):
        if not active.index.size:
            break
        x, y, t = active.x, active.y, active.t
        gradient = op.adjoint(op.forward(y) - active.target)
        x_new = shrink(y - (lmbda / step) * gradient, step, p)
        delta = x_new - x
        restart = _sample_dots(y - x_new, delta) > 0
        t_new = np.where(restart, 1.0, 0.5 * (1 + np.sqrt(1 + 4 * t * t)))
        momentum = np.where(restart, 0.0, (t - 1) / t_new)
        y_new = x_new + _per_sample(momentum, ndim).astype(x.dtype) * delta
        converged = _sample_norms(delta) <= tol * _sample_norms(x_new)
        active.count(1)
        active.update(x=x_new, y=y_new, t=t_new)
        active.retire(converged, converged, "x")
    active.retire(np.ones(active.index.size, bool), np.zeros(active.index.size, bool), "x")
    return active.output, active.n_iter, active.converged


def _conjugate_gradient(apply, z, rhs, n_steps):
    """A few CG steps on A z = rhs from z, per sample (A is SPD, per sample)."""
    ndim = z.ndim
    residual = rhs - apply(z)
    direction = residual
    rr = _sample_dots(residual, residual)
    for _ in range(n_steps):
        a_dir = apply(direction)
        curvature = _sample_dots(direction, a_dir)
        alpha = np.divide(rr, curvature, out=np.zeros_like(rr), where=curvature > 0)
        z = z + _per_sample(alpha, ndim).astype(z.dtype) * direction
        residual = residual - _per_sample(alpha, ndim).astype(z.dtype) * a_dir
        rr_new = _sample_dots(residual, residual)
        ratio = np.divide(rr_new, rr, out=np.zeros_like(rr), where=rr > 0)
        direction = residual + _per_sample(ratio, ndim).astype(z.dtype) * direction
        rr = rr_new
    return z


def continuation(
    op, Y, lmbda, p, init, max_iter, tol,
    beta_init=1.0, beta_rate=10.0, n_levels=6, cg_steps=2,
):
    """The paper's solver: half-quadratic splitting with beta continuation.

    Minimises lambda/2 ||F z - y||^2 + beta/2 ||z - x||^2 + |x|^p by
    alternating the shrinkage x-step and ``cg_steps`` conjugate-gradient
    steps on (lambda F'F + beta I) z = lambda F'y + beta x, with beta growing
    by ``beta_rate`` over ``n_levels`` levels.  ``max_iter`` bounds the total
    number of CG steps: each level but the last gets ``max_iter // n_levels``
    and moves on early once ``||z_t - z_{t-1}|| <= tol ||z_t||``; the last
    level runs until that test holds or the budget is spent.  Returns the
    sparse auxiliary maps ``x``.
    """
    ndim = init.ndim
    n_samples = len(Y)
    level_budget = max(cg_steps, max_iter // n_levels)
    active = _ActiveSet(
        n_samples, init.copy(), z=init.copy(),
        data_term=lmbda * op.adjoint(Y),
        level=np.zeros(n_samples, dtype=int),
        level_iter=np.zeros(n_samples, dtype=int),
    )
    spent = 0
    while active.index.size and spent < max_iter:
        z, level = active.z, active.level
        beta = beta_init * beta_rate ** level.astype(float)
        beta_z = _per_sample(beta, ndim).astype(z.dtype)
        x = shrink(z, beta_z, p)

        def normal_operator(v):
            return lmbda * op.adjoint(op.forward(v)) + beta_z * v

        steps = min(cg_steps, max_iter - spent)
        z_new = _conjugate_gradient(normal_operator, z, active.data_term + beta_z * x, steps)
        spent += steps
        active.count(steps)
        small_change = _sample_norms(z_new - z) <= tol * _sample_norms(z_new)
        last = level == n_levels - 1
        level_iter = active.level_iter + steps
        advance = ~last & (small_change | (level_iter >= level_budget))
        active.update(
            z=z_new,
            level=level + advance,
            level_iter=np.where(advance, 0, level_iter),
            x=shrink(z_new, beta_z, p),
        )
        done = last & small_change
        active.retire(done, done, "x")
    if active.index.size:
        beta = beta_init * beta_rate ** active.level.astype(float)
        active.update(x=shrink(active.z, _per_sample(beta, ndim).astype(init.dtype), p))
        active.retire(np.ones(active.index.size, bool), np.zeros(active.index.size, bool), "x")
    return active.output, active.n_iter, active.converged


SOLVERS = {"fista": fista, "continuation": continuation}
