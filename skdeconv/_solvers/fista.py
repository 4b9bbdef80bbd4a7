"""FISTA with backtracking and adaptive restart."""

import numpy as np

from .._momentum import momentum
from .._shrinkage import shrink
from ._base import MapSolver, register_solver
from ._numerics import BLOCK_BYTES, blocks, per_sample, sample_dots, sample_rows, vecdots

# A sample's level L (its step is 1 / (lambda L)) shrinks by LEVEL_DECAY
# after every accepted step and grows by at least LEVEL_GROWTH on a failed
# test.  Measured in benchmarks/fista_step_size.py: along FISTA's steps the
# curvature ||A d||^2 / ||d||^2 is 0.3-2% of the bound of ||A||^2, and these
# values need about half the work of the fixed step 1 / (lambda ||A||^2).
LEVEL_DECAY, LEVEL_GROWTH = 0.9, 2.0
# The test accepts a curvature up to (1 + CURVATURE_SLACK) L: a step taken
# again at L = the curvature it failed with often moves along the same
# direction (same support), and must not fail again on rounding.
CURVATURE_SLACK = 1e-6


@register_solver
class Fista(MapSolver):
    """FISTA (Beck & Teboulle, 2009) with backtracking and adaptive restart.

    Every sample steps by ``1 / (lambda L)`` with its own level ``L``: the
    gradient step from the extrapolated point ``y``, then shrinkage,
    gives a candidate ``x``; it is accepted when the curvature along the
    move, ``||A (x - y)||^2 / ||x - y||^2``, is at most ``L`` (then the
    quadratic model of the data term at ``y`` bounds it at ``x``: the test
    of Beck & Teboulle's backtracking, exact for a least-squares term).
    Otherwise ``L`` grows (at least doubled, at least to that curvature)
    and the candidate is computed again, for the samples that failed only.
    ``L`` starts at, and never exceeds, ``op.cheap_lipschitz`` (a bound of
    ``||A||^2``, where every step is accepted), and shrinks by
    ``LEVEL_DECAY`` after each accepted step.  The momentum restarts
    (O'Donoghue & Candes, 2015) for a sample whose step goes against it.  A
    sample has converged once ``||x_t - x_{t-1}|| <= tol ||x_t||`` after a
    step with momentum, or ``x_t = x_{t-1}``: the two steps after a start or
    a restart move without momentum, 10x shorter than the steps around them
    on the paper's top layer, which stopped some samples 10x farther from
    the optimum.  So does the first step from a warm start, whose level is
    the bound: from the maps interleaved learning ends with on that layer,
    stopping there left the cost 1.3% above the optimum; going on to a
    momentum step, the run stopped within 0.1% of it.

    The residuals ``A x - y`` are kept: the test computes the candidate's
    (its spectra then serve interleaved learning), and the extrapolated
    point's is the same combination of the last two.  A step costs one
    forward and one adjoint product, as a fixed-step FISTA step, and half
    of one more per retry.  Works on any operator.
    """

    name = "fista"
    carries_state = True
    # x, y, momentum and the spectra of x, of the previous x and of the next
    # y (map_spectra): 6.85 spectra per sample measured (peak RSS, 2 and 6
    # images 480x720), before the two residuals (image-sized) were kept too.
    interleaved_arrays = 7.0

    @classmethod
    def precompute(cls, op):
        op.cheap_lipschitz  # noqa: B018 - cached on the operator
        return op

    def start(self, op, Y, init):
        residual = op.forward(init) - Y
        return {
            "x": init.copy(), "y": init.copy(), "t": np.ones(len(Y)),
            "weight": np.zeros(len(Y)), "level": np.full(len(Y), float(op.cheap_lipschitz)),
            "residual": residual, "y_residual": residual.copy(), "target": Y,
        }

    def workspace(self, op, state):
        """Buffers: the spectra, the gradient and the three map-sized points."""
        x = state["x"]
        return op.representation_buffer(x), np.empty((4,) + x.shape, x.dtype)

    def step(self, op, state, iteration, workspace=None):
        if self.lmbda * op.cheap_lipschitz <= 1 / np.finfo(np.float64).max:
            # A is (numerically) zero: the data term is constant, z = 0 minimises.
            state["x"][...] = 0
            zeros = np.zeros(len(state["x"]))
            return 0, (zeros, zeros, zeros == 0)
        return 1, fista_iteration(op, self.lmbda, self.p, state, workspace)

    def converged(self, progress):
        change, size, momentum_step = progress
        return (change <= self.tol * size) & (momentum_step | (change == 0))

    def maps(self, op, state):
        return state["x"]

    def map_spectra(self, op, state):
        """Spectra of x_t (kept by the step); keeps those of the next point too.

        y_{t+1} = x_t + w (x_t - x_{t-1}) (w = 0 after a restart), so its
        spectrum is that combination of the spectra of x_t and x_{t-1}
        (kept from the previous call): the next step computes y's residual
        for the operator it is given (interleaved learning changes it
        between steps) without an FFT of y.
        """
        spectra = state.pop("x_spectra", None)
        if spectra is None:
            spectra = op.represent(state["x"])
        previous = state.pop("previous_spectra", None)  # x_{t-1}'s, if just one step since
        if previous is not None:
            weight = per_sample(state["weight"], spectra.ndim).astype(spectra.real.dtype)
            y_spectra = spectra - previous
            y_spectra *= weight
            y_spectra += spectra
            state["y_spectra"] = y_spectra
        state["previous_spectra"] = spectra
        return spectra


def fista_iteration(op, lmbda, p, state, workspace=None):
    """One FISTA step with backtracking and adaptive restart on every sample.

    ``workspace``: ``(spectra, points)`` buffers reused across the
    iterations of one run on one operator (no page faults of fresh arrays at
    every step): the spectra of the maps and (4, >= n, K, *map_shape)
    map-sized slots holding the iterate, the extrapolated point, the
    gradient and the candidate in turn.  Then the extrapolated point's
    residual is the combination of the kept ones.  Without it (interleaved
    learning: the operator changes between steps) that residual is computed
    for ``op``, and the step keeps the new iterate's spectra in ``state``
    for :meth:`Fista.map_spectra`.  Updates ``state`` and returns
    ``(||x_t - x_{t-1}||, ||x_t||, whether the step had momentum)`` per
    sample.
    """
    x, y = state["x"], state["y"]
    spectra, gradient, candidate = _buffers(workspace, x, y)
    y_residual = _extrapolated_residual(op, state, workspace is not None)
    level = state["level"].copy()
    # The gradient step -A'(A y - target) / L of the first trial, by one adjoint.
    scaled = y_residual * per_sample(-1 / level, y_residual.ndim).astype(y_residual.dtype)
    descent = op.adjoint_into(scaled, out=gradient, buffer=spectra)
    spectra, residual = _backtrack(op, lmbda, p, state, y_residual, descent, level,
                                   candidate, spectra)
    if workspace is None:
        state["x_spectra"] = spectra
    momentum_step = state["weight"] > 0
    t_new, weight = momentum(state["t"], False)  # restarts are known after the update
    dots = extrapolate(candidate, x, y, weight)
    restart = dots[0] > dots[1]
    weight = np.where(restart, 0.0, weight)
    y_new = x  # the previous iterate's array now holds the extrapolation
    y_new[restart] = candidate[restart]
    y_residual = state["residual"]  # becomes the residual of y_new
    y_residual -= residual
    y_residual *= -per_sample(weight, residual.ndim).astype(residual.dtype)
    y_residual += residual
    state.update(x=candidate, y=y_new, t=np.where(restart, 1.0, t_new), weight=weight,
                 level=level * LEVEL_DECAY, residual=residual, y_residual=y_residual)
    return np.sqrt(dots[2]), np.sqrt(dots[3]), momentum_step


def _extrapolated_residual(op, state, same_operator):
    """``A y - target`` for the extrapolated point ``y`` of ``state``.

    The kept one on the same operator; else from the spectra of ``y`` that
    :meth:`Fista.map_spectra` combined, or from ``y``.
    """
    if state.pop("x_spectra", None) is not None:  # no map_spectra since the last step
        state.pop("previous_spectra", None)
    y_spectra = state.pop("y_spectra", None)
    if same_operator:
        return state["y_residual"]
    if y_spectra is None:
        y_spectra = op.represent(state["y"])
    return op.forward_represented(y_spectra) - state["target"]


def _buffers(workspace, x, y):
    """The spectra buffer (or None) and the gradient's and candidate's arrays."""
    if workspace is None:
        return None, None, np.empty_like(x)
    spectra, points = workspace
    free = [
        slot[: len(x)] for slot in points
        if not (np.may_share_memory(slot, x) or np.may_share_memory(slot, y))
    ]
    if spectra is not None:
        spectra = spectra[: len(x)]
    return spectra, free[0], free[1]


def _backtrack(op, lmbda, p, state, y_residual, descent, level, candidate, spectra):
    """Accepted candidates (written to ``candidate``), their spectra and residuals.

    ``descent`` is the gradient step at ``level``, which (updated in place)
    grows for the samples whose test fails; they are computed again (alone:
    a sample's numbers never depend on the batch) until the test passes or
    ``level`` reaches ``op.cheap_lipschitz``.
    """
    y, target, cap = state["y"], state["target"], float(op.cheap_lipschitz)
    first_level = level.copy()
    move = gradient_step(y, descent, None, lmbda * level, p, out=candidate)
    spectra = op.represent(candidate, out=spectra)
    residual = op.forward_represented(spectra) - target
    index = np.arange(len(y))
    trial_residual, trial_move = residual, move
    while True:
        curvature = sample_dots_of_difference(trial_residual, y_residual[index])
        curvature = np.divide(curvature, trial_move, out=np.zeros_like(trial_move),
                              where=trial_move > 0)
        failed = (curvature > (1 + CURVATURE_SLACK) * level[index]) & (level[index] < cap)
        if not failed.any():
            return spectra, residual
        index = index[failed]
        level[index] = np.minimum(
            np.maximum(LEVEL_GROWTH * level[index], curvature[failed]), cap
        )
        trial = np.empty((len(index),) + candidate.shape[1:], candidate.dtype)
        trial_move = gradient_step(y[index], descent[index], first_level[index] / level[index],
                                   lmbda * level[index], p, out=trial)
        sub_op = op.take(index)
        trial_spectra = sub_op.represent(trial)
        trial_residual = sub_op.forward_represented(trial_spectra) - target[index]
        candidate[index], spectra[index], residual[index] = trial, trial_spectra, trial_residual


def sample_dots_of_difference(a, b):
    """||a - b||^2 per sample."""
    difference = a - b
    return sample_dots(difference, difference)


def gradient_step(y, descent, factor, beta, p, out):
    """``out = shrink(y + factor descent, beta)`` per sample, fused over blocks.

    ``factor`` and ``beta`` hold one value per sample (``factor`` None: 1).
    Returns ``||out - y||^2`` per sample (float64).
    """
    n = len(y)
    new, y, descent = (sample_rows(a) for a in (out, y, descent))
    beta = beta.astype(new.dtype)[:, None]
    if factor is not None:
        factor = factor.astype(new.dtype)[:, None]
    partial = np.empty((len(blocks(new)), 1, n))
    block_dots = np.empty((1, n), new.dtype)
    move = np.empty((n, min(new.shape[1], BLOCK_BYTES // new.itemsize)), new.dtype)
    for dots, block in zip(partial, blocks(new)):
        values = new[:, block]
        if factor is None:
            np.add(descent[:, block], y[:, block], out=values)
        else:
            np.multiply(descent[:, block], factor, out=values)
            values += y[:, block]
        shrink(values, beta, p, out=values)
        delta = np.subtract(values, y[:, block], out=move[:, : values.shape[1]])
        dots[:] = vecdots(((delta, delta),), block_dots)
    return partial.sum(axis=0)[0].astype(np.float64)


def extrapolate(new, x, y, weight):
    """FISTA's extrapolation, in place and fused over blocks.

    ``x`` (the previous iterate, needed block by block only) becomes the
    extrapolation ``new + weight (new - x)``.  Each block of each sample's
    elements stays in the cache across the passes (the blocks do not depend
    on the batch, so neither do the results).  Returns ``(y.d, new.d, d.d,
    new.new)`` with ``d = new - x``, shape (4, n_samples), in float64.
    """
    n = len(x)
    new, x, y = (sample_rows(a) for a in (new, x, y))
    weight = weight.astype(x.dtype)[:, None]
    partial = np.empty((len(blocks(new)), 4, n))
    block_dots = np.empty((4, n), x.dtype)
    for dots, block in zip(partial, blocks(new)):
        values, delta = new[:, block], x[:, block]
        np.subtract(values, delta, out=delta)
        pairs = ((y[:, block], delta), (values, delta), (delta, delta), (values, values))
        dots[:] = vecdots(pairs, block_dots)
        delta *= weight
        delta += values
    return partial.sum(axis=0)
