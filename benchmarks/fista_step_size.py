"""FISTA's step: the bound of ||A||^2 against backtracking (issue #12).

    OMP_NUM_THREADS=1 python benchmarks/fista_step_size.py [--quick]

``solver='fista'`` backtracks (``skdeconv/_solvers/fista.py``): each
sample's level ``L`` starts at a cheap bound of ``||A||^2``, shrinks by 0.9
after every accepted step and grows when the curvature ``||A d||^2 /
||d||^2`` of a step exceeds it.  Before 2026-12-02 FISTA stepped by ``1 /
(lambda L)`` with ``L`` the exact bound (the largest eigenvalue of the
per-frequency Gram over all frequencies).  For each problem this prints
that bound, the curvature along the fixed-step run's steps (as a fraction
of the bound), and the work (in iterations: one forward and one adjoint
product; a retry of the backtracking costs half) that the fixed step and
the library's FISTA need to reach a relative gap of 1e-2, 1e-3 and 1e-4 to
the optimum (a long run), then where each stops at ``tol`` 1e-3
(iterations, gap).  Problems: scikit-image's camera (128x128,
contrast-normalised, 16 filters 8x8) at lambda 1, 5 and 20, and the top
layer (150 maps over 45 channels) of the paper's network after a short fit
on two fruit images.  Everything in float64.  ``--quick`` shrinks every
problem (its numbers mean nothing; it checks the script).  Needs
scikit-image.
"""

import argparse

import numpy as np

from run import MapProblem, camera, unit_filters
from skdeconv import DeconvNetworkTransformer
from skdeconv._fft_ops import ConvOperator
from skdeconv._shrinkage import shrink
from skdeconv._solvers import fista, objective, solve
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

GAPS = (1e-2, 1e-3, 1e-4)
STOP_TOL = 1e-3


def fixed_step_costs(op, Y, lmbda, n_iter, n_kept=200):
    """FISTA with adaptive restart and step 1 / (lambda ||A||^2): costs and
    relative changes after every iteration, and the first ``n_kept`` iterates."""
    step = 1.0 / float(op.lipschitz)
    x = previous = np.zeros((1, op.n_filters) + op.map_shape)
    t, weight, costs, changes, path = 1.0, 0.0, [], [], []
    for _ in range(n_iter):
        point = x + weight * (x - previous)
        candidate = shrink(point - step * op.adjoint(op.forward(point) - Y), lmbda / step, 1.0)
        costs.append(float(objective(op, candidate, Y, lmbda, 1.0)[0]))
        changes.append(np.linalg.norm(candidate - x) / np.linalg.norm(candidate))
        if len(path) < n_kept:
            path.append(candidate)
        restart = np.sum((point - candidate) * (candidate - x)) > 0
        previous, x = x, candidate
        t_new = 1.0 if restart else 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        weight, t = (0.0 if restart else (t - 1) / t_new), t_new
    return np.array(costs), np.array(changes), path


def library_costs(op, Y, lmbda, n_iter):
    """Costs of ``solver='fista'`` after each iteration and its work (retries count half)."""
    attempts, costs, works = [0], [], []
    step = fista.gradient_step

    def counted(*args, **kwargs):
        attempts[0] += 1
        return step(*args, **kwargs)

    def record(iteration, index, maps):
        costs.append(float(objective(op, maps, Y, lmbda, 1.0)[0]))
        works.append(iteration + 0.5 * (attempts[0] - iteration))

    fista.gradient_step = counted
    try:
        solve(op, Y, solver="fista", lmbda=lmbda, max_iter=n_iter, tol=0.0, callback=record)
    finally:
        fista.gradient_step = step
    return np.array(costs), np.array(works)


def stops_at_tol(op, Y, lmbda, optimum, fixed, changes):
    """Where the fixed step and the library stop at STOP_TOL: "iterations, gap"."""
    stop = int(np.argmax(changes <= STOP_TOL)) if np.any(changes <= STOP_TOL) else -1
    maps, n_iter, _ = solve(op, Y, solver="fista", lmbda=lmbda, max_iter=len(changes),
                            tol=STOP_TOL)
    gap = float(objective(op, maps, Y, lmbda, 1.0)[0]) / optimum - 1
    fixed_stop = f"{stop + 1 if stop >= 0 else len(changes)}, {fixed[stop] / optimum - 1:.1e}"
    return fixed_stop, f"{int(n_iter[0])}, {gap:.1e}"


def curvatures(op, path, bound):
    """||A d||^2 / ||d||^2 along the steps d of ``path``, as fractions of ``bound``."""
    steps = [b - a for a, b in zip(path[:-1], path[1:])]
    return np.array([
        float(np.sum(op.forward(d) ** 2) / np.sum(d**2)) / bound for d in steps if np.any(d)
    ])


def work_to_gaps(costs, works, optimum):
    gaps = (costs - optimum) / optimum
    return [float(works[np.argmax(gaps <= g)]) if np.any(gaps <= g) else None for g in GAPS]


def top_layer_problem(size, n_epochs):
    """The top layer of the 9/45/150 network after a short fit on 2 fruit images
    (cropped to ``size`` x ``size``)."""
    images = load_zeiler2010("fruit", as_gray=True)[:2, :size, :size]
    X = LocalContrastNormalizer(image_shape=images.shape[1:]).fit_transform(
        images_to_rows(images)
    )
    net = DeconvNetworkTransformer(
        n_filters=(9, 45, 150), image_shape=images.shape[1:], n_epochs=n_epochs,
        random_state=0,
    )
    below = net.fit_transform(X, layers=(2,))[0]
    top = net.pipeline_[-1]
    Y = top._images(below[:1]).astype(np.float64)
    op = ConvOperator(top.filters_.astype(np.float64), top.connectivity_, Y.shape[2:])
    return op, Y, top.lmbda_


def report(name, op, Y, lmbda, n_iter, reference_iter):
    bound = float(op.lipschitz)
    reference, _, _ = solve(op, Y, solver="fista", lmbda=lmbda, max_iter=reference_iter,
                            tol=1e-9)
    optimum = float(objective(op, reference, Y, lmbda, 1.0)[0])
    fixed, changes, path = fixed_step_costs(op, Y, lmbda, n_iter)
    ratios = curvatures(op, path, bound)
    costs, works = library_costs(op, Y, lmbda, n_iter)
    fixed_stop, stop = stops_at_tol(op, Y, lmbda, optimum, fixed, changes)
    print(f"| {name} | {bound:.3g} | {np.percentile(ratios, 10):.3f} - "
          f"{np.percentile(ratios, 90):.3f} | "
          f"{work_to_gaps(fixed, np.arange(1, len(fixed) + 1), optimum)} | "
          f"{work_to_gaps(costs, works, optimum)} | {fixed_stop} | {stop} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny problems: a smoke test")
    quick = parser.parse_args(argv).quick
    size, lmbdas, n_iter, reference_iter = (32, (1.0,), 30, 2000) if quick else (
        128, (1.0, 5.0, 20.0), 600, 20000)
    print("| problem | bound of ||A||^2 | curvature along the fixed steps / bound (10-90%) "
          "| fixed step: iterations to gaps 1e-2, 1e-3, 1e-4 | solver='fista': work to them "
          f"| fixed step: stop at tol {STOP_TOL:g} (iterations, gap) | solver='fista': stop |")
    print("|---|---|---|---|---|---|---|")
    image, filters = camera(size), unit_filters(16, 8)
    for lmbda in lmbdas:
        problem = MapProblem(image, filters, lmbda)
        report(f"camera, lambda {lmbda:g}", problem.op, image[None, None], lmbda, n_iter,
               reference_iter)
    op, Y, lmbda = top_layer_problem(*((24, 2) if quick else (100, 20)))
    report("top layer, 150 maps over 45 channels", op, Y, lmbda, n_iter, reference_iter)


if __name__ == "__main__":
    main()
