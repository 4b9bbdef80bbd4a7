"""How conservative is FISTA's step?  A measured lead for faster inference.

    OMP_NUM_THREADS=1 python benchmarks/fista_step_size.py [--quick]

FISTA (``solver='fista'``) steps by ``1 / (lambda L)``, ``L`` the bound of
``||A||^2`` (the largest eigenvalue of the per-frequency Gram over all
frequencies).  For each problem this prints that bound, the curvature
``||A d||^2 / ||d||^2`` along FISTA's own steps ``d`` (as a fraction of the
bound), and the work (in iterations: one forward and one adjoint product)
that FISTA and a FISTA with backtracking (Beck & Teboulle, 2009, section 4:
``L`` doubled until the quadratic model bounds the data term, multiplied by
``DECAY`` after every accepted step, adaptive restart as FISTA's; a retry
costs half an iteration) need to reach a relative gap of 1e-2, 1e-3 and
1e-4 to the optimum (a long FISTA run).  Problems: scikit-image's camera
(128x128, contrast-normalised, 16 filters 8x8) at lambda 1, 5 and 20, and
the top layer (150 maps over 45 channels) of the paper's network after a
short fit on two fruit images.  Everything in float64.  ``--quick``
shrinks every problem (its numbers mean nothing; it checks the script).
Needs scikit-image.
"""

import argparse

import numpy as np

from run import MapProblem, camera, unit_filters
from skdeconv import DeconvNetworkTransformer
from skdeconv._fft_ops import ConvOperator
from skdeconv._shrinkage import shrink
from skdeconv._solvers import objective, solve
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

DECAY, GROWTH = 0.9, 2.0
GAPS = (1e-2, 1e-3, 1e-4)


def fista_path(op, Y, lmbda, n_iter):
    """FISTA's iterates (one sample)."""
    path = []
    solve(op, Y, solver="fista", lmbda=lmbda, max_iter=n_iter, tol=0.0,
          callback=lambda iteration, index, maps: path.append(maps.copy()))
    return path


def curvatures(op, path, bound):
    steps = [b - a for a, b in zip(path[:-1], path[1:])]
    return np.array([
        float(np.sum(op.forward(d) ** 2) / np.sum(d**2)) / bound for d in steps if np.any(d)
    ])


def backtracking_costs(op, Y, lmbda, n_iter):
    """Costs and cumulative work of FISTA with backtracking, per iteration."""
    x = np.zeros((1, op.n_filters) + op.map_shape)
    residual = op.forward(x) - Y
    previous, previous_residual = x, residual
    t, weight, level, work = 1.0, 0.0, float(op.lipschitz), 0.0
    costs, works = [], []
    for _ in range(n_iter):
        point = x + weight * (x - previous)
        point_residual = residual + weight * (residual - previous_residual)
        data = 0.5 * np.sum(point_residual**2)
        gradient = op.adjoint(point_residual)
        work += 0.5
        while True:
            candidate = shrink(point - gradient / level, lmbda * level, 1.0)
            move = candidate - point
            candidate_residual = op.forward(candidate) - Y
            work += 0.5
            model = data + np.sum(gradient * move) + 0.5 * level * np.sum(move**2)
            if 0.5 * np.sum(candidate_residual**2) <= model + 1e-12 * data:
                break
            level *= GROWTH
        costs.append(0.5 * lmbda * np.sum(candidate_residual**2) + np.abs(candidate).sum())
        works.append(work)
        restart = np.sum((point - candidate) * (candidate - x)) > 0
        previous, previous_residual, x, residual = x, residual, candidate, candidate_residual
        t_new = 1.0 if restart else 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        weight = 0.0 if restart else (t - 1) / t_new
        t, level = t_new, level * DECAY
    return np.array(costs), np.array(works)


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
                            tol=1e-8)
    optimum = float(objective(op, reference, Y, lmbda, 1.0)[0])
    path = fista_path(op, Y, lmbda, n_iter)
    fista_costs = np.array([float(objective(op, z, Y, lmbda, 1.0)[0]) for z in path])
    ratios = curvatures(op, path[: min(len(path), 200)], bound)
    costs, works = backtracking_costs(op, Y, lmbda, n_iter)
    print(f"| {name} | {bound:.3g} | {np.percentile(ratios, 10):.3f} - "
          f"{np.percentile(ratios, 90):.3f} | "
          f"{work_to_gaps(fista_costs, np.arange(1, len(path) + 1), optimum)} | "
          f"{work_to_gaps(costs, works, optimum)} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny problems: a smoke test")
    quick = parser.parse_args(argv).quick
    size, lmbdas, n_iter, reference_iter = (32, (1.0,), 30, 2000) if quick else (
        128, (1.0, 5.0, 20.0), 600, 20000)
    print("| problem | bound of ||A||^2 | curvature along FISTA's steps / bound (10-90%) "
          "| FISTA: iterations to gaps 1e-2, 1e-3, 1e-4 | backtracking: work to them |")
    print("|---|---|---|---|---|")
    image, filters = camera(size), unit_filters(16, 8)
    for lmbda in lmbdas:
        problem = MapProblem(image, filters, lmbda)
        report(f"camera, lambda {lmbda:g}", problem.op, image[None, None], lmbda, n_iter,
               reference_iter)
    op, Y, lmbda = top_layer_problem(*((24, 2) if quick else (100, 20)))
    report("top layer, 150 maps over 45 channels", op, Y, lmbda, n_iter, reference_iter)


if __name__ == "__main__":
    main()
