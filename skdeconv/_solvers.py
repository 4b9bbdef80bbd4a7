"""Per-sample inference of the feature maps for fixed filters.

Both solvers minimise, for every sample independently,

    lambda/2 ||F z - y||^2 + sum |z|^p

with the FFTs batched over samples: each sample has its own iterate, momentum
or beta level, stopping test and iteration count, and leaves the batch as soon
as it has converged, so the result never depends on the other samples.
"""

import numpy as np

from ._fft_ops import complex_dtype
from ._shrinkage import penalty, shrink


def _sample_dots(x, y):
    """Inner product of every sample of x with the same sample of y.

    Accumulated in the arrays' dtype (casting float32 to float64 would
    double the cost of a FISTA step), and again in float64 when that
    overflows: squares of float32 values above ~1e19 would otherwise stop
    every sample after one step (silently wrong).
    """
    pairs = ((x.reshape(len(x), -1), y.reshape(len(y), -1)),)
    dots = _vecdots(pairs, np.empty((1, len(x)), np.result_type(x, y)))[0]
    return dots.astype(np.float64, copy=False)


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

    def finish(self, result_name):
        """Retire every sample still iterating, as not converged."""
        remaining = np.ones(self.index.size, dtype=bool)
        self.retire(remaining, ~remaining, result_name)

    def count(self, iterations):
        self.n_iter[self.index] += iterations


def fista_start(Y, init, weights=None):
    """FISTA's per-sample state from the initial maps (arrays are copies)."""
    if weights is None:
        weights = np.ones((len(Y),) + (1,) * (Y.ndim - 1), Y.dtype)
    return {"x": init.copy(), "y": init.copy(), "t": np.ones(len(Y)), "target": Y,
            "weights": weights}


def fista_iteration(op, lmbda, p, step, state, spectra=None, points=None):
    """One FISTA step with adaptive restart on every sample of ``state``.

    ``step`` is lambda times a bound of ||F||^2.  Optional buffers reused
    across iterations (no page faults of fresh arrays at every step):
    ``spectra`` (n, K, *freq) complex for the maps' spectra and ``points``
    (3, >= n, K, *map_shape), whose slots hold the iterate, the
    extrapolated point and the next gradient step in turn.  Updates
    ``state`` and returns ``(||x_t - x_{t-1}||, ||x_t||)`` per sample.
    """
    x, y = state["x"], state["y"]
    spectra = op.rfft(y, out=spectra)
    residual = op.forward_spectra(spectra) - state["target"]
    residual *= state["weights"]
    residual *= -lmbda / step
    if points is not None:  # a slot holding neither x nor y
        points = next(
            slot for slot in points
            if not (np.may_share_memory(slot, x) or np.may_share_memory(slot, y))
        )[: len(y)]
    x_new = op.gradient_point(spectra, residual, out=points)
    t_new, momentum = _momentum(state["t"], False)  # restarts are known after the update
    dots = _shrink_and_extrapolate(x_new, x, y, step, p, momentum)
    y_new = x  # the previous iterate's array now holds the extrapolation
    restart = dots[0] > dots[1]
    if restart.any():  # no momentum: y = x and t starts again from 1
        y_new[restart] = x_new[restart]
        t_new = np.where(restart, 1.0, t_new)
    state.update(x=x_new, y=y_new, t=t_new)
    return np.sqrt(dots[2]), np.sqrt(dots[3])


# Bytes of each sample handled at a time by the fused updates: the block of
# every array they read stays in the L2 cache across their passes.
_BLOCK_BYTES = 2**18


def _blocks(rows):
    """Slices of cache-sized blocks of the columns of ``rows`` (n, size)."""
    size = _BLOCK_BYTES // rows.itemsize
    return [slice(start, start + size) for start in range(0, rows.shape[1], size)]


def _shrink_and_extrapolate(point, x, y, step, p, momentum):
    """FISTA's update after the gradient step, in place and fused over blocks.

    ``point`` becomes the new iterate ``x_new = shrink(point)`` and ``x``
    (the previous iterate, needed block by block only) the extrapolation
    ``x_new + momentum (x_new - x)``.  Each block of each sample's elements
    stays in the cache across the passes (the blocks do not depend on the
    batch, so neither do the results).  Returns ``(y.d, x_new.d, d.d,
    x_new.x_new)`` with ``d = x_new - x``, shape (4, n_samples), in float64.
    """
    n = len(x)
    new, x, y = (_sample_rows(a) for a in (point, x, y))
    weight = momentum.astype(x.dtype)[:, None]
    blocks = _blocks(new)
    partial = np.empty((len(blocks), 4, n))
    block_dots = np.empty((4, n), x.dtype)
    for dots, block in zip(partial, blocks):
        values, delta = new[:, block], x[:, block]
        shrink(values, step, p, out=values)
        np.subtract(values, delta, out=delta)
        pairs = ((y[:, block], delta), (values, delta), (delta, delta), (values, values))
        dots[:] = _vecdots(pairs, block_dots)
        delta *= weight
        delta += values
    return partial.sum(axis=0)


def _vecdots(pairs, out):
    """``np.vecdot`` of each pair of (n, m) blocks, into the rows of ``out``.

    In the arrays' dtype; float32 products that overflow are computed again
    in float64 (see :func:`_sample_dots`), which float64 has nothing wider
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


def fista(op, Y, lmbda, p, init, max_iter, tol, weights=None):
    """FISTA with adaptive (gradient) restart, step 1 / (lambda ||F||^2).

    ``weights`` (binary, shape of Y) restricts the data term to the pixels
    where it is 1: lambda/2 ||W (F z - y)||^2 (used to score held-out
    pixels).  Returns the maps, the iterations run and whether each sample
    met ``||z_t - z_{t-1}|| <= tol ||z_t||``.
    """
    step = lmbda * op.lipschitz
    if step <= 1 / np.finfo(np.float64).max:
        # F is (numerically) zero: the data term is constant, z = 0 minimises.
        n_samples = len(Y)
        return np.zeros_like(init), np.zeros(n_samples, int), np.ones(n_samples, bool)
    active = _ActiveSet(len(Y), init.copy(), **fista_start(Y, init, weights))
    spectra = np.empty((len(Y), op.n_filters) + op.freq_shape, complex_dtype(init.dtype))
    points = np.empty((3,) + init.shape, init.dtype)
    for _ in range(max_iter):
        if not active.index.size:
            break
        change, size = fista_iteration(
            op, lmbda, p, step, active.state, spectra[: active.index.size], points
        )
        converged = change <= tol * size
        active.count(1)
        active.retire(converged, converged, "x")
    active.finish("x")
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
    active.finish("x")
    return active.output, active.n_iter, active.converged


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
    reduced = np.einsum("cd...,nd...->nc...", op.woodbury_inverse, op.synthesis_spectra(rhs))
    op.circular_adjoint_spectra(np.negative(reduced), out=rhs)
    return op.irfft(rhs, overwrite_x=True), op.irfft(reduced, overwrite_x=True)


# Iterations between two residual-balancing updates of ADMM's rho.
RHO_PERIOD = 10


def admm_start(op, Y, init, lmbda):
    """ADMM's per-sample state on the FFT grid from the initial maps."""
    data = np.zeros((len(Y), op.n_channels) + op.fft_shape, dtype=Y.dtype)
    data[op.valid_window] = Y
    sparse = _on_grid(op, init)
    return {"y0": _circular_synthesis(op, sparse), "y1": sparse, "u0": np.zeros_like(data),
            "u1": np.zeros_like(sparse), "data": data,
            "rho": np.full(len(Y), 50.0 / lmbda + 1.0)}


def admm_iteration(
    op, lmbda, p, state, balance, relaxation=1.8, rho_scaling=2.0, residual_ratio=3.0,
):
    """One over-relaxed ADMM iteration on every sample of ``state``.

    ``balance``: rescale each sample's rho by residual balancing.  Updates
    ``state`` and returns the relative primal and dual residuals.
    """
    y0, y1, u0, u1 = state["y0"], state["y1"], state["u0"], state["u1"]
    ndim = y1.ndim
    rho = _per_sample(state["rho"], ndim).astype(y1.dtype)
    x, dx = _admm_x_step(op, y0 - u0, y1 - u1)
    map_dots = _admm_sparse_step(x, y1, u1, relaxation, state["rho"] * lmbda, p)
    y1_new, u1 = u1, x  # the buffers _admm_sparse_step wrote them to
    data_scale = _sample_dots(dx, dx)
    dx -= y0
    data_primal = _sample_dots(dx, dx)
    v0 = _relaxed(dx, relaxation, y0, u0)
    y0_new = np.where(op.valid_mask, (state["data"] + rho * v0) / (1 + rho), v0)
    y0 -= y0_new
    data_dual = _sample_dots(y0, y0)
    u0 = np.subtract(v0, y0_new, out=v0)
    scale = np.sqrt(data_scale + map_dots[0])
    primal = np.sqrt(data_primal + map_dots[1])
    dual = state["rho"] * np.sqrt(data_dual + map_dots[2])
    dual_scale = state["rho"] * np.sqrt(_sample_dots(u0, u0) + map_dots[3])
    primal_rel = primal / np.maximum(scale, np.finfo(float).tiny)
    dual_rel = dual / np.maximum(dual_scale, np.finfo(float).tiny)
    if balance:
        factor = _rho_factor(primal_rel, dual_rel, residual_ratio, rho_scaling)
        u0 /= _per_sample(factor, ndim).astype(u0.dtype)
        u1 /= _per_sample(factor, ndim).astype(u1.dtype)
        state["rho"] = state["rho"] * factor
    state.update(y0=y0_new, y1=y1_new, u0=u0, u1=u1)
    return primal_rel, dual_rel


def admm_maps(op, state):
    """The sparse iterate y1 cropped from the FFT grid to the maps."""
    return state["y1"][op.map_window]


def admm(op, Y, lmbda, p, init, max_iter, tol):
    """ADMM with mask decoupling in the Fourier domain (Wohlberg 2016).

    Solves the same problem scaled by 1 / lambda,
    min 1/2 ||W(D x) - y||^2 + (1/lambda) |x|^p, with the circular synthesis
    D on the FFT grid and the mask W of the valid window, by splitting
    D x = y0 (data) and x = y1 (sparse maps): the x-step is exact per
    frequency (Woodbury on the C x C system), y0 is a masked average and y1
    a shrinkage.  Over-relaxation 1.8 and residual balancing of each
    sample's own penalty rho every ``RHO_PERIOD`` iterations, as in SPORCO,
    by a factor 2 whenever one relative residual exceeds 3 times the other
    (SPORCO's generic ADMM ratio, 10, leaves rho unbalanced much longer:
    238 instead of 143 iterations to 1e-4 of the optimum on the benchmark's
    camera problem).
    A sample stops when its primal and dual residuals, relative to ||A x||
    and ||rho u||, are both ``<= tol``.  Returns the sparse maps ``y1``
    cropped to the map shape.
    """
    active = _ActiveSet(len(Y), init.copy(), **admm_start(op, Y, init, lmbda))
    for iteration in range(1, max_iter + 1):
        if not active.index.size:
            break
        primal_rel, dual_rel = admm_iteration(
            op, lmbda, p, active.state, balance=iteration % RHO_PERIOD == 0
        )
        converged = (primal_rel <= tol) & (dual_rel <= tol)
        active.count(1)
        if converged.any():
            active.update(maps=admm_maps(op, active.state))
            active.retire(converged, converged, "maps")
    active.update(maps=admm_maps(op, active.state))
    active.finish("maps")
    return active.output, active.n_iter, active.converged


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
    x, y1, u1 = (_sample_rows(a) for a in (x, y1, u1))
    beta = np.asarray(beta, dtype=np.float64)[:, None]
    dots = np.zeros((4, len(x)))
    block_dots = np.empty((2, len(x)), x.dtype)
    for block in _blocks(x):
        xb, yb, ub = x[:, block], y1[:, block], u1[:, block]
        dots[0] += _vecdots(((xb, xb),), block_dots[:1])[0]
        xb -= yb
        dots[1] += _vecdots(((xb, xb),), block_dots[:1])[0]
        shrink(_relaxed(xb, relaxation, yb, ub), beta, p, out=ub)
        yb -= ub
        xb -= ub
        dots[2:] += _vecdots(((yb, yb), (xb, xb)), block_dots)
    return dots


def _sample_rows(array):
    """View (never a copy) of an array (n, ...) as (n, size): each sample is contiguous."""
    return np.reshape(array, (len(array), -1), copy=False)


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


def advance_one_iteration(op, lmbda, p, solver, state, epoch):
    """One iteration of ``solver`` ('fista' or 'admm') on a kept ``state``.

    Used by interleaved learning (one iteration per sample and epoch, locally
    or on a cluster); ADMM rebalances rho every ``RHO_PERIOD`` epochs.
    Returns the current maps (a view into the state for FISTA).
    """
    if solver == "admm":
        admm_iteration(op, lmbda, p, state, balance=(epoch + 1) % RHO_PERIOD == 0)
        return admm_maps(op, state)
    fista_iteration(op, lmbda, p, lmbda * op.lipschitz, state)
    return state["x"]


SOLVERS = {"fista": fista, "continuation": continuation, "admm": admm}
