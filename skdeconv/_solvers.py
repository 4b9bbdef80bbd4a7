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
    return np.vecdot(x.reshape(len(x), -1), y.reshape(len(y), -1))


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
        x, y = active.x, active.y
        point = op.adjoint(op.forward(y) - active.target)
        point *= -lmbda / step
        point += y
        x_new = shrink(point, step, p)
        delta = np.subtract(x_new, x, out=point)
        restart = _sample_dots(y, delta) > _sample_dots(x_new, delta)
        converged = _sample_norms(delta) <= tol * _sample_norms(x_new)
        t_new, momentum = _momentum(active.t, restart)
        delta *= _per_sample(momentum, ndim).astype(x.dtype)
        y_new = np.add(x_new, delta, out=delta)
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


def _momentum(t, restart):
    """FISTA's next t and extrapolation weight; a restart resets both."""
    t_new = np.where(restart, 1.0, 0.5 * (1 + np.sqrt(1 + 4 * t * t)))
    return t_new, np.where(restart, 0.0, (t - 1) / t_new)


def continuation(
    op, Y, lmbda, p, init, max_iter, tol,
    beta_init=1.0, beta_rate=10.0, n_levels=6, cg_steps=2,
):
    """The paper's solver: half-quadratic splitting with beta continuation.

    Minimises lambda/2 ||F z - y||^2 + beta/2 ||z - x||^2 + |x|^p by
    alternating ``cg_steps`` conjugate-gradient steps on
    (lambda F'F + beta I) z = lambda F'y + beta x and the shrinkage x-step,
    with beta growing by ``beta_rate`` over ``n_levels`` levels.  At fixed
    beta this alternation is proximal gradient on the Moreau envelope of the
    data term (step 1 / beta), so x is extrapolated with FISTA's momentum
    (restarted adaptively and at every new level), which the paper's plain
    alternation lacks and which lets the last level converge.

    ``max_iter`` bounds the total number of CG steps: each level but the last
    gets ``max_iter // n_levels`` and moves on early once
    ``||x_t - x_{t-1}|| <= tol ||x_t||``; the last level runs until that
    test holds or the budget is spent.  Returns the sparse maps ``x``.
    """
    ndim = init.ndim
    n_samples = len(Y)
    level_budget = max(cg_steps, max_iter // n_levels)
    active = _ActiveSet(
        n_samples, init.copy(), z=init.copy(), x=init.copy(), x_hat=init.copy(),
        t=np.ones(n_samples), data_term=lmbda * op.adjoint(Y),
        level=np.zeros(n_samples, dtype=int),
        level_iter=np.zeros(n_samples, dtype=int),
    )
    spent = 0
    while active.index.size and spent < max_iter:
        z, x, level = active.z, active.x, active.level
        beta = _per_sample(beta_init * beta_rate ** level.astype(float), ndim)
        beta = beta.astype(z.dtype)

        def normal_operator(v):
            return lmbda * op.adjoint(op.forward(v)) + beta * v

        steps = min(cg_steps, max_iter - spent)
        z = _conjugate_gradient(normal_operator, z, active.data_term + beta * active.x_hat, steps)
        spent += steps
        active.count(steps)
        x_new = shrink(z, beta, p)
        delta = x_new - x
        small_change = _sample_norms(delta) <= tol * _sample_norms(x_new)
        last = level == n_levels - 1
        level_iter = active.level_iter + steps
        advance = ~last & (small_change | (level_iter >= level_budget))
        restart = advance | (_sample_dots(active.x_hat - x_new, delta) > 0)
        t, weight = _momentum(active.t, restart)
        active.update(
            z=z, x=x_new, t=t,
            x_hat=x_new + _per_sample(weight, ndim).astype(z.dtype) * delta,
            level=level + advance,
            level_iter=np.where(advance, 0, level_iter),
        )
        done = last & small_change
        active.retire(done, done, "x")
    active.retire(np.ones(active.index.size, bool), np.zeros(active.index.size, bool), "x")
    return active.output, active.n_iter, active.converged


SOLVERS = {"fista": fista, "continuation": continuation}
