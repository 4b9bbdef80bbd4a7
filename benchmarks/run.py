"""skdeconv side by side with SPORCO and scikit-learn, in one process (issue 4).

    python benchmarks/run.py                  # full run (about 10 minutes)
    python benchmarks/run.py --quick          # tiny smoke run (CI)
    python benchmarks/run.py --only inference,floor --output benchmarks/results.md

Everything runs on one thread (BLAS, OpenMP, pyFFTW and scipy.fft), in
float64 unless said otherwise; every time is the best of a few repeats, in
CPU seconds of this process (wall time only for the n_jobs section).
See benchmarks/README.md for what each section measures and why.
"""

import os

# One thread everywhere, set before numpy is imported (SPORCO is 5-10x slower
# on this 2-core machine when its pyFFTW plans use all cores).
for _variable in (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from joblib import parallel_config  # noqa: E402
from scipy import fft as sp_fft  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import _sporco_adapter as sporco  # noqa: E402  (benchmarks/, the script's folder)
import skdeconv  # noqa: E402
from skdeconv import conv_dict_learning, conv_sparse_encode  # noqa: E402
# The solver protocol and the operator interface (docs/architecture.rst):
# the driver's callback records per-iteration traces.
from skdeconv._fft_ops import ConvOperator  # noqa: E402
from skdeconv._solvers import auto_solvers, make_solver, objective, solve  # noqa: E402
from skdeconv._solvers.fista import extrapolate, gradient_step  # noqa: E402
from skdeconv.datasets import load_zeiler2010  # noqa: E402
from skdeconv.preprocessing import local_contrast_normalize  # noqa: E402


@dataclass(frozen=True)
class Config:
    repeats: int
    # 1. map inference
    image_size: int
    n_filters: int
    filter_size: int
    trace_iter: int
    optimum_iter: int
    continuation_budgets: tuple
    check_size: int
    check_filters: int
    check_iter_ours: int
    check_iter_sporco: int
    auto_lmbdas: tuple  # 1b. solver='auto' on the camera problem at these lambdas
    # 2./3. filter learning and the scikit-learn baseline
    learn_images: int
    learn_size: int
    sporco_iters: tuple
    learn_settings: tuple  # (map solver, epochs of the cost trace) of interleaved learning
    coder_epochs: int
    sklearn_epochs: int
    # 4.-6. floor, float32, n_jobs
    floor_iter: int
    batch_images: int
    batch_size: int
    # 7. memory
    memory_images: int
    memory_size: int
    memory_filters: int
    # 8. scaling (empty = skipped)
    scaling_counts: tuple
    scaling_sizes: tuple


FULL = Config(
    repeats=2, image_size=128, n_filters=16, filter_size=8, trace_iter=600,
    optimum_iter=3000, continuation_budgets=(240, 480, 960),
    check_size=32, check_filters=4, check_iter_ours=10000, check_iter_sporco=1500,
    auto_lmbdas=(1.0, 5.0, 20.0), learn_images=10, learn_size=100, sporco_iters=(100, 200),
    learn_settings=(("admm", 400), ("fista", 400)), coder_epochs=150, sklearn_epochs=5, floor_iter=200, batch_images=32, batch_size=64,
    memory_images=1000, memory_size=64, memory_filters=32,
    scaling_counts=(10, 100, 1000), scaling_sizes=(32, 64, 128, 256),
)
QUICK = Config(
    repeats=1, image_size=32, n_filters=4, filter_size=8, trace_iter=150,
    optimum_iter=1000, continuation_budgets=(30, 60),
    check_size=16, check_filters=2, check_iter_ours=3000, check_iter_sporco=300,
    auto_lmbdas=(1.0, 20.0), learn_images=2, learn_size=32, sporco_iters=(10,), learn_settings=(("admm", 10),),
    coder_epochs=2, sklearn_epochs=1, floor_iter=20, batch_images=4, batch_size=32,
    memory_images=20, memory_size=32, memory_filters=8,
    scaling_counts=(), scaling_sizes=(),
)


@dataclass
class Row:
    """One line of the final table."""

    section: str
    skdeconv: str
    anchor: str
    ratio: float = float("nan")
    target: str = ""
    passed: object = None  # True, False or None (informative)

    def cells(self):
        passed = {True: "yes", False: "**no**", None: "-"}[self.passed]
        ratio = "-" if np.isnan(self.ratio) else f"{self.ratio:.2f}"
        return [self.section, self.skdeconv, self.anchor, ratio, self.target or "-", passed]


def markdown_table(rows):
    header = ["section", "skdeconv", "anchor", "ratio", "target", "pass?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def check_ratio(ratio, bound, at_most=True):
    if not np.isfinite(ratio):
        return False
    return bool(ratio <= bound) if at_most else bool(ratio >= bound)


# ------------------------------------------------------------------ helpers
# Single-threaded work is timed in CPU seconds of this process, which a
# shared machine inflates much less than wall time; parallel runs use wall time.
CLOCK = time.process_time


def best_time(function, repeats, clock=None):
    """Smallest time of ``repeats`` calls (the machine is shared) and the result."""
    clock = clock or CLOCK
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        result = function()
        best = min(best, clock() - start)
    return best, result


def per_iteration(run, n_iter, repeats):
    """Seconds per iteration of ``run(max_iter)``: (t(3n) - t(n)) / 2n, set-up cancels."""
    short, _ = best_time(lambda: run(n_iter), repeats)
    long, _ = best_time(lambda: run(3 * n_iter), repeats)
    return (long - short) / (2 * n_iter), short


def first_within(gaps, tol):
    """1-based index of the first relative gap <= tol, or None."""
    hits = np.flatnonzero(np.asarray(gaps) <= tol)
    return int(hits[0]) + 1 if hits.size else None


def say(text=""):
    print(text, flush=True)


# The benchmark problems keep the contrast normalisation they were defined
# with, without the normaliser's low-pass (its default since 2026-12-02), so
# that their figures stay comparable with results.md and the docs' history.
PROBLEM_LCN = {"low_pass_sigma": 0.0}


def unit_filters(n_filters, size, seed=0):
    """Random normal planes of unit norm, (n_filters, 1, size, size)."""
    filters = np.random.RandomState(seed).standard_normal((n_filters, 1, size, size))
    return filters / np.sqrt(np.sum(filters**2, axis=(2, 3), keepdims=True))


def camera(size):
    """skimage's camera, resized, scaled to [0, 1], contrast-normalised."""
    from skimage import data, transform

    image = transform.resize(data.camera().astype(float), (size, size), anti_aliasing=True)
    image = (image - image.min()) / (image.max() - image.min())
    return local_contrast_normalize(image[None], **PROBLEM_LCN)[0]


def fruit(n_images, size):
    """The first fruit images, gray, top-left crop, contrast-normalised."""
    images = load_zeiler2010("fruit", as_gray=True)[:n_images, :size, :size]
    return local_contrast_normalize(images, **PROBLEM_LCN)


def random_crops(images, n_crops, size, seed=0):
    rng = np.random.RandomState(seed)
    which = rng.randint(len(images), size=n_crops)
    top = rng.randint(images.shape[1] - size + 1, size=n_crops)
    left = rng.randint(images.shape[2] - size + 1, size=n_crops)
    return np.stack([images[i, t:t + size, s:s + size] for i, t, s in zip(which, top, left)])


# ---------------------------------------------------- 1. map inference
class MapProblem:
    """One image, fixed filters; costs in SPORCO's units (our cost / lambda)."""

    def __init__(self, image, filters, lmbda):
        self.image, self.filters, self.lmbda = image, filters, lmbda
        self.n_filters, self.h = len(filters), filters.shape[-1]
        self.X = image.reshape(1, -1)
        self.op = ConvOperator(filters, np.ones((len(filters), 1), bool), image.shape)
        self.D = sporco.dictionary(filters)
        self.S, self.W = (a[..., 0] for a in sporco.layout(image[None], self.h))

    def cost(self, maps):
        maps = maps.reshape((1, self.n_filters) + self.op.map_shape)
        data = objective(self.op, maps, self.image[None, None], self.lmbda, 1.0)
        return float(data[0]) / self.lmbda

    def encode(self, max_iter, tol, solver="fista", dtype=np.float64):
        return conv_sparse_encode(
            self.X.astype(dtype), self.filters.astype(dtype), image_shape=self.image.shape,
            lmbda=self.lmbda, solver=solver, max_iter=max_iter, tol=tol,
        )

    def sporco(self, method, max_iter, **options):
        return sporco.map_solver(method, self.D, self.S, self.W, self.lmbda, max_iter, **options)

    def sporco_cost(self, x):
        return self.cost(sporco.to_our_maps(x, self.n_filters, self.h - 1))


def camera_problem(cfg):
    """The map-inference problem of sections 1, 4 and 5 (lambda 20)."""
    return MapProblem(camera(cfg.image_size), unit_filters(cfg.n_filters, cfg.filter_size), 20.0)


def fista_trace(problem, n_iter, solver="fista"):
    """Cost of the maps after each iteration of ``solver`` (FISTA or ADMM), in one run.

    The driver calls ``callback(iteration, index, maps)`` after every step
    with the current maps, exactly the run of ``conv_sparse_encode``
    (``tol=0``: ``n_iter`` steps); the final recorded cost is checked
    against the returned maps.  Restarting FISTA with ``max_iter=1..n``
    from warm starts would be wrong: it loses momentum.
    """
    costs = []

    def record(iteration, index, maps):
        costs.append(problem.cost(maps[0]))

    Y = problem.image[None, None]
    maps, _, _ = solve(problem.op, Y, solver=solver, lmbda=problem.lmbda, max_iter=n_iter,
                       tol=0.0, callback=record)
    assert problem.cost(maps) == costs[-1], "the trace does not match the solver's output"
    assert np.array_equal(maps.reshape(1, -1), problem.encode(n_iter, 0.0, solver))
    return np.asarray(costs)


def sporco_trace(problem, method, n_iter):
    """Cost of SPORCO's sparse iterate after each iteration (Callback option)."""
    costs = []

    def record(solver):
        costs.append(problem.sporco_cost(solver.getcoef()))

    solver = problem.sporco(method, n_iter, Callback=record)
    maps = sporco.to_our_maps(solver.solve(), problem.n_filters, problem.h - 1)
    return np.asarray(costs), maps


@dataclass
class SolverResult:
    name: str
    ms_per_iter: float
    iterations: dict  # tol -> iterations (None = not reached)
    seconds: dict  # tol -> seconds (inf = not reached)


TOLS = (1e-3, 1e-4)


def time_to_tols(gaps, run_for, repeats):
    """Iterations and best (CPU) time to every tolerance of TOLS."""
    iterations = {tol: first_within(gaps, tol) for tol in TOLS}
    seconds = {
        tol: best_time(lambda k=k: run_for(k), repeats)[0] if k else float("inf")
        for tol, k in iterations.items()
    }
    return iterations, seconds


def bench_fista(problem, optimum, cfg, solver="fista"):
    gaps = (fista_trace(problem, cfg.trace_iter, solver) - optimum) / optimum

    def run_for(k):
        return problem.encode(k, 0.0, solver)

    iterations, seconds = time_to_tols(gaps, run_for, cfg.repeats)
    per_iter, _ = per_iteration(run_for, cfg.floor_iter // 4, cfg.repeats)
    return SolverResult(f"skdeconv {solver}", 1e3 * per_iter, iterations, seconds)


def bench_continuation(problem, optimum, cfg):
    """``max_iter`` spreads CG steps over the beta levels, so the path depends
    on it: every budget is a separate run from zero (a user's setting)."""
    iterations, seconds = dict.fromkeys(TOLS), dict.fromkeys(TOLS, float("inf"))
    gaps = []
    for budget in cfg.continuation_budgets:
        elapsed, maps = best_time(lambda b=budget: problem.encode(b, 0.0, "continuation"), 1)
        gaps.append((problem.cost(maps) - optimum) / optimum)
        for tol in TOLS:
            if gaps[-1] <= tol and iterations[tol] is None:
                iterations[tol], seconds[tol] = budget, elapsed
    say(f"  continuation: budgets {cfg.continuation_budgets} -> gaps "
        + ", ".join(f"{g:.1e}" for g in gaps))
    return SolverResult("skdeconv continuation", 1e3 * elapsed / budget, iterations, seconds)


def bench_sporco(problem, method, gaps, cfg):
    def run_for(k):
        return problem.sporco(method, k, FastSolve=True).solve()

    iterations, seconds = time_to_tols(gaps, run_for, cfg.repeats)
    per_iter, _ = per_iteration(run_for, cfg.floor_iter // 4, cfg.repeats)
    return SolverResult(f"SPORCO {method}", 1e3 * per_iter, iterations, seconds)


def same_problem_check(cfg):
    """Both libraries converged to a tight tolerance on a small problem of the
    same geometry: maximum difference of the maps."""
    problem = MapProblem(
        camera(cfg.image_size)[:cfg.check_size, :cfg.check_size],
        unit_filters(cfg.n_filters, cfg.filter_size)[:cfg.check_filters], 20.0,
    )
    ours = problem.encode(cfg.check_iter_ours, 1e-15).reshape(
        (problem.n_filters,) + problem.op.map_shape)
    solver = problem.sporco("AddMaskSim(ConvBPDN)", cfg.check_iter_sporco, FastSolve=True)
    theirs = sporco.to_our_maps(solver.solve(), problem.n_filters, problem.h - 1)
    difference = float(np.abs(ours - theirs).max())
    say(f"  same-problem check ({cfg.check_size}x{cfg.check_size}, {problem.n_filters} "
        f"filters): max |maps_skdeconv - roll(maps_SPORCO, h-1)| = {difference:.2e} "
        f"(max |map| {np.abs(ours).max():.2f}); costs {problem.cost(ours):.10f} vs "
        f"{problem.cost(theirs):.10f}")
    return difference


def section_inference(cfg):
    say("== 1. Map inference, fixed filters (costs in SPORCO's units: ours / lambda)")
    problem = camera_problem(cfg)
    say(f"  camera {cfg.image_size}x{cfg.image_size}, {cfg.n_filters} filters "
        f"{cfg.filter_size}x{cfg.filter_size}, lambda 20 (SPORCO lmbda 0.05)")
    long_maps = problem.encode(cfg.optimum_iter, 1e-12)
    candidates = {"skdeconv fista long": problem.cost(long_maps)}
    sporco_costs = {}
    if sporco.AVAILABLE:
        same_problem_check(cfg)
        for method in sporco.MAP_METHODS:
            sporco_costs[method], maps = sporco_trace(problem, method, cfg.trace_iter)
            candidates[f"SPORCO {method}"] = float(sporco_costs[method].min())
            say(f"  {method}: {cfg.trace_iter} iterations, max |maps - ours(long)| = "
                f"{np.abs(maps - long_maps.reshape(maps.shape)).max():.2e}")
    optimum = min(candidates.values())
    say("  optimal cost " + f"{optimum:.10f} = min of " + ", ".join(
        f"{name}: {value:.10f}" for name, value in candidates.items()))
    results = [
        bench_fista(problem, optimum, cfg),
        bench_fista(problem, optimum, cfg, "admm"),
        bench_continuation(problem, optimum, cfg),
    ]
    theirs = [
        bench_sporco(problem, method, (costs - optimum) / optimum, cfg)
        for method, costs in sporco_costs.items()
    ]
    say("  ms/it = (t(3n) - t(n)) / 2n; times to a tolerance include set-up; "
        "None = not reached in the trace")
    say(f"  {'solver':32s} {'ms/it':>7s} " + " ".join(
        f"{'it->' + format(t, '.0e'):>9s} {'s->' + format(t, '.0e'):>8s}" for t in TOLS))
    for result in results + theirs:
        say(f"  {result.name:32s} {result.ms_per_iter:7.2f} " + " ".join(
            f"{str(result.iterations[t]):>9s} {result.seconds[t]:8.3f}" for t in TOLS))
    return inference_rows(results, theirs)


def describe(result, tol):
    name = result.name.split(" ", 1)[1]
    if result.iterations[tol] is None:
        return f"not reached ({name})"
    return f"{result.seconds[tol]:.3f} s ({name}, {result.iterations[tol]} it)"


def inference_rows(ours, theirs):
    rows = []
    for tol in TOLS:
        best = min(ours, key=lambda r: r.seconds[tol])
        label = f"1. map inference: s to {tol:.0e} of optimum"
        mine = describe(best, tol)
        if not theirs:
            rows.append(Row(label, mine, "SPORCO missing"))
            continue
        anchor = min(theirs, key=lambda r: r.seconds[tol])
        ratio = best.seconds[tol] / anchor.seconds[tol]
        rows.append(Row(label, mine, describe(anchor, tol), ratio, "<= 0.5",
                        check_ratio(ratio, 0.5)))
    fista = ours[0]
    if theirs:
        anchor = min(theirs, key=lambda r: r.ms_per_iter)
        rows.append(Row("1. map inference: ms per iteration", f"{fista.ms_per_iter:.2f} (fista)",
                        f"{anchor.ms_per_iter:.2f} ({anchor.name[7:]})",
                        fista.ms_per_iter / anchor.ms_per_iter))
    return rows


# ---------------------------------------------------- 1b. solver='auto'
def section_auto(cfg):
    """The default solver='auto' next to 'fista', 'admm' and SPORCO's best.

    The camera problem of section 1 at several lambdas (sparse to dense
    maps).  Iterations to a gap come from traces, as in section 1; 'auto'
    runs the solver its rule picks (``skdeconv._solvers.auto_solvers``), so
    its iterations are that solver's, and its time is a timed run of
    ``solver='auto'`` with that budget (the rule's statistic included).
    """
    say("== 1b. solver='auto' (the default) on the camera problem, by lambda")
    image, filters = camera(cfg.image_size), unit_filters(cfg.n_filters, cfg.filter_size)
    rows = []
    tol = TOLS[-1]
    for lmbda in cfg.auto_lmbdas:
        problem = MapProblem(image, filters, lmbda)
        statistic = lmbda * float(np.abs(problem.op.adjoint(image[None, None])).max())
        chosen = str(auto_solvers(problem.op, image[None, None], lmbda, 1.0)[0])
        maps = problem.encode(cfg.optimum_iter, 1e-12)
        traces = {name: fista_trace(problem, cfg.trace_iter, name) for name in ("fista", "admm")}
        candidates = [problem.cost(maps)] + [float(t.min()) for t in traces.values()]
        sporco_costs = {}
        if sporco.AVAILABLE:
            for method in sporco.MAP_METHODS:
                sporco_costs[method], _ = sporco_trace(problem, method, cfg.trace_iter)
                candidates.append(float(sporco_costs[method].min()))
        optimum = min(candidates)
        iterations = {name: first_within((t - optimum) / optimum, tol)
                      for name, t in traces.items()}
        iterations["auto"] = iterations[chosen]
        seconds = {name: float("inf") for name in iterations}
        for _ in range(cfg.repeats):  # interleaved: the same load for all three
            for name, k in iterations.items():
                if k:
                    elapsed, _ = best_time(lambda k=k, n=name: problem.encode(k, 0.0, n), 1)
                    seconds[name] = min(seconds[name], elapsed)
        theirs = [bench_sporco(problem, method, (costs - optimum) / optimum, cfg)
                  for method, costs in sporco_costs.items()]
        nonzero = float(np.mean(maps != 0))
        say(f"  lambda {lmbda:g}: lambda*max|F'y| = {statistic:.1f}, non-zeros {nonzero:.1%}, "
            f"auto -> {chosen}; to {tol:.0e}: " + ", ".join(
                f"{name} {iterations[name]} it {seconds[name]:.3f} s"
                for name in ("fista", "admm", "auto")) + "".join(
                f", SPORCO {r.name[7:]} {r.iterations[tol]} it {r.seconds[tol]:.3f} s"
                for r in theirs))
        mine = (f"{seconds['auto']:.3f} s (auto -> {chosen}; fista {seconds['fista']:.3f}, "
                f"admm {seconds['admm']:.3f})")
        label = f"1b. solver='auto', lambda {lmbda:g} (ratio {statistic:.0f}): s to {tol:.0e}"
        if not theirs:
            rows.append(Row(label, mine, "SPORCO missing"))
            continue
        anchor = min(theirs, key=lambda r: r.seconds[tol])
        ratio = seconds["auto"] / anchor.seconds[tol]
        rows.append(Row(label, mine, describe(anchor, tol), ratio, "<= 0.5",
                        check_ratio(ratio, 0.5)))
        faster = min(seconds["fista"], seconds["admm"])
        rows.append(Row(f"1b. solver='auto', lambda {lmbda:g}: vs the faster of fista/admm",
                        f"{seconds['auto']:.3f} s", f"{faster:.3f} s",
                        seconds["auto"] / faster, "<= 1.1", check_ratio(seconds["auto"] / faster, 1.1)))
    return rows


# ---------------------------------------------------- 2. filter learning
def learning_data(cfg):
    images = fruit(cfg.learn_images, cfg.learn_size)
    filters = unit_filters(9, 7)
    return images, filters


def our_learning_cost(images, maps, filters, lmbda):
    """sum over images of (our cost / lambda) = SPORCO's cost."""
    op = ConvOperator(filters, np.ones((len(filters), 1), bool), images.shape[1:])
    return float(objective(op, maps, images[:, None], lmbda, 1.0).sum()) / lmbda


def sporco_learning(images, filters, lmbda, iters):
    """ConvBPDNMaskDictLearn (admm / cns): (iterations, cumulative seconds, cost)."""
    start = CLOCK()
    learner = sporco.dictionary_learner(filters, images, lmbda, iters[0])
    results, done, elapsed = [], 0, 0.0
    for total in iters:
        learner.opt["MaxMainIter"] = total - done
        learner.solve()
        elapsed += CLOCK() - start
        done = total
        ours_filters = sporco.our_filters(learner.getdict())
        maps = sporco.to_our_maps(learner.getcoef(), len(filters), filters.shape[-1] - 1)
        results.append((total, elapsed, our_learning_cost(images, maps, ours_filters, lmbda)))
        start = CLOCK()
    return results


def our_learning(images, filters, lmbda, n_epochs, solver):
    return conv_dict_learning(
        images.reshape(len(images), -1), len(filters), filters.shape[-1],
        image_shape=images.shape[1:], lmbda=lmbda, n_epochs=n_epochs, solver=solver,
        filters_init=filters,
    )


def our_learning_times(images, filters, lmbda, targets, settings):
    """For each map solver of interleaved learning: epochs and seconds to
    reach every target cost.  Learning is deterministic, so the cost after
    epoch e of a long run is the final cost of a run of e epochs, which is
    then timed."""
    reached = {}
    for solver, n_epochs in settings:
        _, _, history = our_learning(images, filters, lmbda, n_epochs, solver)
        history = history * len(images) / lmbda  # mean per-sample cost -> SPORCO's sum
        say(f"  skdeconv interleaved ({solver}): cost every 50 epochs "
            + ", ".join(f"{c:.1f}" for c in history[49::50]) + f"; last {history[-1]:.1f}")
        timed = {}
        for target in targets:
            epochs = first_within(history - target, 0.0)
            if epochs is not None and epochs not in timed:
                timed[epochs], _ = best_time(
                    lambda e=epochs: our_learning(images, filters, lmbda, e, solver), 1)
                say(f"    {epochs} epochs: {timed[epochs]:.2f} s, cost {history[epochs - 1]:.1f}")
            reached[solver, target] = (
                (epochs, timed[epochs], history[epochs - 1]) if epochs else
                (None, float("inf"), history[-1]))
    return reached


def section_learning(cfg):
    say("== 2. Filter learning (costs in SPORCO's scale, summed over images)")
    images, filters = learning_data(cfg)
    lmbda = 10.0
    say(f"  {len(images)} fruit images {images.shape[1]}x{images.shape[2]}, 9 filters 7x7, "
        "lambda 10 (SPORCO lmbda 0.1); same random initial filters for both; "
        "skdeconv's default fit_algorithm='interleaved'")
    if not sporco.AVAILABLE:
        return [Row("2. filter learning", "-", "SPORCO missing")]
    anchors = sporco_learning(images, filters, lmbda, cfg.sporco_iters)
    for iterations, seconds, cost in anchors:
        say(f"  SPORCO ConvBPDNMaskDictLearn admm/cns, {iterations} iterations: "
            f"{seconds:.2f} s, cost {cost:.1f}")
    reached = our_learning_times(
        images, filters, lmbda, [cost for _, _, cost in anchors], cfg.learn_settings)
    rows = []
    for iterations, seconds, cost in anchors:
        solver = min((m for m, _ in cfg.learn_settings), key=lambda m: reached[m, cost][1])
        epochs, elapsed, ours = reached[solver, cost]
        mine = (f"{elapsed:.2f} s ({solver}, {epochs} epochs, {ours:.1f})" if epochs
                else f"not reached ({ours:.1f})")
        ratio = elapsed / seconds
        rows.append(Row(f"2. filter learning: s to SPORCO's {iterations}-it cost", mine,
                        f"{seconds:.2f} s ({cost:.1f})", ratio, "<= 0.5",
                        check_ratio(ratio, 0.5)))
    return rows


# ---------------------------------------------------- 3. scikit-learn baseline
def sklearn_baseline(images, alpha, n_epochs):
    """MiniBatchDictionaryLearning on all 7x7 patches; images rebuilt by
    averaging the overlapping reconstructed patches.  Coordinate descent for
    fit and transform: the same objective as LARS, 10x faster here."""
    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.feature_extraction.image import (
        extract_patches_2d, reconstruct_from_patches_2d)

    patches = np.concatenate([extract_patches_2d(image, (7, 7)) for image in images])
    patches = patches.reshape(len(patches), -1)
    model = MiniBatchDictionaryLearning(
        n_components=9, alpha=alpha, max_iter=n_epochs, batch_size=256, fit_algorithm="cd",
        transform_algorithm="lasso_cd", transform_alpha=alpha, random_state=0,
    )
    start = CLOCK()
    codes = model.fit(patches).transform(patches)
    elapsed = CLOCK() - start
    rebuilt = (codes @ model.components_).reshape(len(images), -1, 7, 7)
    images_hat = np.stack([reconstruct_from_patches_2d(p, images.shape[1:]) for p in rebuilt])
    return elapsed, relative_error(images, images_hat), np.count_nonzero(codes) / images.size


def relative_error(reference, estimate):
    return float(np.linalg.norm(estimate - reference) / np.linalg.norm(reference))


def section_sklearn(cfg):
    say("== 3. scikit-learn MiniBatchDictionaryLearning on 7x7 patches (non-convolutional)")
    images, filters = learning_data(cfg)
    X = images.reshape(len(images), -1)
    coder = skdeconv.ConvSparseCoder(
        9, 7, image_shape=images.shape[1:], lmbda=10.0, n_epochs=cfg.coder_epochs,
        solver="admm", filters_init=filters,
    )
    start = CLOCK()
    coder.fit(X)
    maps = coder.set_params(max_iter=200, tol=1e-4).transform(X)
    ours_time = CLOCK() - start
    ours_error = relative_error(X, coder.inverse_transform(maps))
    ours_density = np.count_nonzero(maps) / X.size
    theirs_time, theirs_error, theirs_density = sklearn_baseline(images, 0.1, cfg.sklearn_epochs)
    say(f"  ConvSparseCoder (lambda 10, admm, fit {cfg.coder_epochs} interleaved epochs, "
        "transform max_iter 200 tol 1e-4): fit+transform "
        f"{ours_time:.2f} s, relative error {ours_error:.3f}, {ours_density:.2f} non-zeros/pixel")
    say(f"  MiniBatchDictionaryLearning (alpha 0.1, at most {cfg.sklearn_epochs} epochs, "
        "lasso_cd): "
        f"fit+transform {theirs_time:.2f} s, relative error {theirs_error:.3f}, "
        f"{theirs_density:.2f} non-zeros/pixel")
    return [Row(
        "3. vs sklearn patches: relative error (s)",
        f"{ours_error:.3f} ({ours_time:.1f} s, {ours_density:.2f} nnz/px)",
        f"{theirs_error:.3f} ({theirs_time:.1f} s, {theirs_density:.2f} nnz/px)",
        ours_error / theirs_error,
    )]


# ---------------------------------------------------- 4. FFT floor
def fft_floor(op, n_samples, repeats):
    """Time of the 2 (K + C) real FFTs of one gradient step, batched as the solver does.

    The faster of scipy.fft (fresh output arrays, whose page faults can cost
    as much as the transforms: the time then depends on the heap's state)
    and the same transforms into preallocated buffers (``ConvOperator.rfft``
    / ``irfft`` with ``out=``, numpy.fft): the floor is the best either path
    achieves, so it does not move with the allocator.
    """
    rng = np.random.RandomState(0)
    maps = rng.standard_normal((n_samples, op.n_filters) + op.map_shape)
    images = rng.standard_normal((n_samples, op.n_channels) + op.image_shape)
    map_spectra = sp_fft.rfftn(maps, s=op.fft_shape, axes=op.axes)
    image_spectra = map_spectra[:, :op.n_channels]

    def scipy_ffts():
        sp_fft.rfftn(maps, s=op.fft_shape, axes=op.axes, workers=1)
        sp_fft.irfftn(image_spectra, s=op.fft_shape, axes=op.axes, workers=1)
        sp_fft.rfftn(images, s=op.fft_shape, axes=op.axes, workers=1)
        sp_fft.irfftn(map_spectra, s=op.fft_shape, axes=op.axes, workers=1)

    buffers = [(data, np.empty(data.shape[:2] + op.freq_shape, complex),
                np.empty(data.shape[:2] + op.fft_shape)) for data in (maps, images)]

    def buffered_ffts():  # skdeconv's own path: numpy.fft into the buffers
        for data, spectra, real in buffers:
            op.irfft(op.rfft(data, out=spectra), overwrite_x=True, out=real)

    return min(best_time(lambda f=f: [f() for _ in range(20)], repeats)[0] / 20
               for f in (scipy_ffts, buffered_ffts))


def iteration_parts(problem, n_warm, repeats):
    """Seconds of the work of one FISTA iteration that is not FFTs.

    On the state after ``n_warm`` iterations: the (K, C) spectrum mixing
    (``to_channels`` then ``to_maps``) and the fused element-wise updates
    (gradient step and shrinkage with the backtracking test's norm, then
    extrapolation with the restart and stopping dot products), each
    repeated in place on the same buffers.
    """
    op, lmbda = problem.op, problem.lmbda
    maps_shape = (1, op.n_filters) + op.map_shape
    fista = make_solver("fista", lmbda=lmbda)
    state = fista.start(op, problem.image[None, None], np.zeros(maps_shape))
    workspace = fista.workspace(op, state)
    for iteration in range(n_warm):
        fista.step(op, state, iteration, workspace)
    map_spectra = op.rfft(state["y"])
    residual_spectra = op.rfft(problem.image[None, None])
    point, x, y = (state[name].copy() for name in ("x", "x", "y"))
    gradient, level, weight = state["x"] - state["y"], state["level"], np.ones(1)

    def mixing():
        op.mixer.to_channels(map_spectra, op.pair_spectra)
        op.mixer.to_maps(residual_spectra, op.adjoint_spectra, out=map_spectra)

    def update():
        gradient_step(y, gradient, None, lmbda * level, 1.0, out=point)
        extrapolate(point, x, y, weight)

    return [best_time(lambda f=f: [f() for _ in range(50)], repeats)[0] / 50
            for f in (mixing, update)]


def section_floor(cfg):
    say("== 4. FFT floor: per-iteration time of FISTA vs the 2 (K + C) real FFTs of a step")
    problem = camera_problem(cfg)
    floor = fft_floor(problem.op, 1, 5 * cfg.repeats)
    short = cfg.floor_iter
    per_iter, t_short = per_iteration(lambda k: problem.encode(k, 0.0), short, cfg.repeats)
    say(f"  fft_shape {problem.op.fft_shape}, K={problem.n_filters}, C=1: floor "
        f"{1e3 * floor:.3f} ms, fista {1e3 * per_iter:.3f} ms/iteration "
        f"(set-up {1e3 * (t_short - short * per_iter):.1f} ms)")
    mixing, update = iteration_parts(problem, short, 5 * cfg.repeats)
    say(f"  not FFTs: spectrum mixing {1e3 * mixing:.3f} ms + element-wise update "
        f"{1e3 * update:.3f} ms = {1e3 * (mixing + update):.3f} ms; the rest of the "
        f"iteration {1e3 * (per_iter - floor - mixing - update):.3f} ms; "
        f"a 1.5x ratio leaves {0.5e3 * floor:.3f} ms for all of it")
    ratio = per_iter / floor
    return [Row("4. fista ms/iteration vs FFT floor", f"{1e3 * per_iter:.2f} ms",
                f"{1e3 * floor:.2f} ms", ratio, "<= 1.5", check_ratio(ratio, 1.5)),
            Row("4. mixing + update (not FFTs) vs half the floor",
                f"{1e3 * (mixing + update):.2f} ms", f"{0.5e3 * floor:.2f} ms",
                (mixing + update) / (0.5 * floor))]


# ---------------------------------------------------- 5. float32
def section_float32(cfg):
    say("== 5. float32 vs float64, map inference end to end (tol 1e-4)")
    problem = camera_problem(cfg)
    times, costs = {}, {}
    for dtype in (np.float64, np.float32):
        times[dtype], maps = best_time(
            lambda d=dtype: problem.encode(10 * cfg.trace_iter, 1e-4, dtype=d), cfg.repeats)
        costs[dtype] = problem.cost(maps.astype(np.float64))
        say(f"  {np.dtype(dtype).name}: {times[dtype]:.3f} s, cost {costs[dtype]:.6f}")
    ratio = times[np.float64] / times[np.float32]
    return [Row("5. float32 speed-up (t64 / t32)", f"{times[np.float32]:.3f} s (float32)",
                f"{times[np.float64]:.3f} s (float64)", ratio, ">= 1.6",
                check_ratio(ratio, 1.6, at_most=False))]


# ---------------------------------------------------- 6. n_jobs
def section_jobs(cfg):
    say(f"== 6. n_jobs=2 vs n_jobs=1 on {cfg.batch_images} images "
        f"{cfg.batch_size}x{cfg.batch_size} (tol 1e-4, max_iter 100; wall time)")
    images = load_zeiler2010("all", as_gray=True)
    X = random_crops(
        local_contrast_normalize(images, **PROBLEM_LCN), cfg.batch_images, cfg.batch_size
    )
    X = X.reshape(len(X), -1)
    filters = unit_filters(cfg.n_filters, cfg.filter_size)

    def encode(n_jobs, rows=X):
        return conv_sparse_encode(rows, filters, image_shape=(cfg.batch_size,) * 2,
                                  lmbda=20.0, max_iter=100, tol=1e-4, n_jobs=n_jobs)

    serial, reference = best_time(lambda: encode(1), cfg.repeats, time.perf_counter)
    times = {}
    for backend in ("loky", "threading"):
        with parallel_config(backend=backend):
            encode(2, X[:2])  # start the workers
            times[backend], maps = best_time(lambda: encode(2), cfg.repeats, time.perf_counter)
        say(f"  {backend}: {times[backend]:.3f} s vs {serial:.3f} s serial (wall) "
            f"-> throughput x{serial / times[backend]:.2f}; same maps as n_jobs=1: "
            f"{np.array_equal(maps, reference)}")
    backend = min(times, key=times.get)
    ratio = serial / times[backend]
    return [Row("6. n_jobs=2 throughput (t1 / t2)", f"{times[backend]:.2f} s ({backend})",
                f"{serial:.2f} s (n_jobs=1)", ratio, ">= 1.8",
                check_ratio(ratio, 1.8, at_most=False))]


# ---------------------------------------------------- 7. memory
MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from skdeconv import conv_sparse_encode

    def peak_rss():  # VmHWM is per address space: unlike ru_maxrss, exec resets it
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM"))
        return int(line.split()[1]) * 1024

    n, size, k = (int(v) for v in sys.argv[1:4])
    rng = np.random.RandomState(0)
    X = rng.standard_normal((n, size * size))
    filters = rng.standard_normal((k, 1, 8, 8))
    conv_sparse_encode(X[:2], filters, image_shape=(size, size), max_iter=2)  # lazy imports
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak to the current RSS
    before = peak_rss()
    maps = conv_sparse_encode(X, filters, image_shape=(size, size), max_iter=3, tol=0.0)
    print(json.dumps({"before": before, "after": peak_rss(), "output": maps.nbytes}))
""")


def peak_memory(n_images, size, n_filters):
    completed = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(n_images), str(size), str(n_filters)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def section_memory(cfg):
    n, size, k = cfg.memory_images, cfg.memory_size, cfg.memory_filters
    say(f"== 7. Peak memory of transform: {n} images {size}x{size}, {k} filters 8x8, "
        "float64, 3 iterations (memory does not depend on them), in a subprocess")
    rows = []
    for count in (n // 4, n):
        usage = peak_memory(count, size, k)
        extra = usage["after"] - usage["before"]
        say(f"  {count} images: output {usage['output'] / 2**20:.0f} MiB, peak RSS "
            f"{usage['after'] / 2**20:.0f} MiB, {extra / 2**20:.0f} MiB above the RSS before "
            f"the call -> working set {(extra - usage['output']) / 2**20:.0f} MiB beyond "
            "the output")
    ratio = extra / usage["output"]
    working = extra - usage["output"]
    rows.append(Row(
        "7. transform peak RSS increase / output size",
        f"{extra / 2**20:.0f} MiB", f"output {usage['output'] / 2**20:.0f} MiB", ratio,
        "output + <= 512 MiB", bool(working <= 512 * 2**20),
    ))
    return rows


# ---------------------------------------------------- 8. scaling
def fit_time(images, cfg):
    """conv_dict_learning with a fixed amount of work per image (20 epochs)."""
    X = images.reshape(len(images), -1)
    elapsed, _ = best_time(lambda: conv_dict_learning(
        X, 9, 7, image_shape=images.shape[1:], lmbda=10.0, n_epochs=20, random_state=0), 1)
    return elapsed


def section_scaling(cfg):
    if not cfg.scaling_counts:
        say("== 8. Scaling: skipped in --quick mode")
        return []
    say("== 8. Scaling of fit (9 filters 7x7, 20 interleaved epochs, FISTA)")
    gray = local_contrast_normalize(load_zeiler2010("all", as_gray=True), **PROBLEM_LCN)
    per_image = []
    for count in cfg.scaling_counts:
        elapsed = fit_time(random_crops(gray, count, 32), cfg)
        per_image.append(elapsed / count)
        say(f"  {count:5d} crops 32x32: {elapsed:7.2f} s, {1e3 * per_image[-1]:.2f} ms/image")
    big = camera(512)
    per_pixel = []
    for size in cfg.scaling_sizes:
        elapsed = fit_time(random_crops(big[None], 4, size), cfg)
        per_pixel.append(elapsed / (4 * size * size))
        say(f"  4 crops {size:3d}x{size:3d}: {elapsed:7.2f} s, "
            f"{1e6 * per_pixel[-1]:.2f} us/pixel")
    count_ratio = per_image[-1] / per_image[0]
    size_ratio = per_pixel[-1] / per_pixel[0]
    return [
        Row("8. fit time per image, 1000 vs 10 crops", f"{1e3 * per_image[-1]:.2f} ms",
            f"{1e3 * per_image[0]:.2f} ms", count_ratio, "~1 (linear)",
            check_ratio(count_ratio, 1.5)),
        Row(f"8. fit time per pixel, {cfg.scaling_sizes[-1]}^2 vs {cfg.scaling_sizes[0]}^2",
            f"{1e6 * per_pixel[-1]:.2f} us", f"{1e6 * per_pixel[0]:.2f} us", size_ratio,
            "~1 (linear)", check_ratio(size_ratio, 1.5)),
    ]


# ---------------------------------------------------- 10. large data sets and clusters
# Self-contained (issue #14): online learning on 100 gray 480x720 images with
# SPORCO's OnlineConvBPDNDictLearn beside it, peak memory against the number
# of images, and interleaved fit on a 2-worker dask LocalCluster.
LARGE_TRAIN = ("astronaut", "camera", "cat", "coffee", "coins", "grass", "gravel", "moon",
               "rocket", "brick", "immunohistochemistry", "retina", "hubble_deep_field")
LARGE_HELDOUT = ("chelsea", "stereo_motorcycle")  # never seen in training


def large_images(n_images, shape=(480, 720), bases=LARGE_TRAIN, seed=0):
    """Gray images from scikit-image's photos: random resizes (1-1.5x the
    smallest cover of ``shape``), crops and flips; contrast-normalised, float32."""
    from skimage import color, data, transform

    grays = []
    for name in bases:
        image = getattr(data, name)()
        image = np.asarray(image[0] if isinstance(image, tuple) else image, dtype=float)
        if image.ndim == 3:
            image = color.rgb2gray(image[..., :3] / image.max())
        grays.append((image - image.min()) / (image.max() - image.min()))
    rng = np.random.RandomState(seed)
    out = np.empty((n_images,) + tuple(shape), dtype=np.float32)
    for i in range(n_images):
        base = grays[i % len(grays)]
        factor = rng.uniform(1.0, 1.5) * max(s / b for s, b in zip(shape, base.shape))
        size = tuple(int(np.ceil(b * factor)) for b in base.shape)
        big = transform.resize(base, size, anti_aliasing=True)
        top, left = (rng.randint(z - s + 1) for z, s in zip(size, shape))
        crop = big[top:top + shape[0], left:left + shape[1]]
        if rng.rand() < 0.5:
            crop = crop[:, ::-1]
        if rng.rand() < 0.5:
            crop = crop[::-1]
        out[i] = crop
    return local_contrast_normalize(out, **PROBLEM_LCN).astype(np.float32)


LARGE_FIT_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time, warnings
    import numpy as np
    warnings.filterwarnings("ignore")
    from skdeconv import ConvSparseCoder
    path, n_images, algorithm, n_epochs = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    images = np.load(path, mmap_mode="r")[:n_images]
    X = np.ascontiguousarray(images.reshape(n_images, -1))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    params = dict(n_filters=32, filter_shape=8, image_shape=images.shape[1:], lmbda=5.0,
                  n_jobs=2, random_state=0, fit_algorithm=algorithm, n_epochs=n_epochs)
    start = time.perf_counter()
    try:
        coder = ConvSparseCoder(**params).fit(X)
        error = None
    except MemoryError as exc:
        coder, error = None, str(exc)
    seconds = time.perf_counter() - start
    if coder is not None and len(sys.argv) > 5:
        np.save(sys.argv[5], coder.filters_)
    print(json.dumps({"seconds": seconds, "before": before, "error": error,
                      "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
""")


def large_fit_in_subprocess(path, n_images, algorithm, n_epochs, filters_path=None):
    """Fit in a fresh process; its peak RSS (ru_maxrss, as /usr/bin/time -v)."""
    command = [sys.executable, "-c", LARGE_FIT_SCRIPT, path, str(n_images), algorithm,
               str(n_epochs)] + ([filters_path] if filters_path else [])
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def large_sporco_online(images, filters, lmbda, n_steps, batch_size, crop, budget, seed=0):
    """SPORCO's OnlineConvBPDNDictLearn on the same kind of mini-batches
    (random crops, zero-padded by h - 1 as its circular model needs); its
    default options (100 ADMM iterations per batch, eta = 10 / (j + 5)).

    Stops after ``n_steps`` mini-batches or once ``budget`` seconds have
    passed (it takes ~20 minutes for 100 mini-batches here).  Returns its
    filters, the seconds and the mini-batches it took.
    """
    h = filters.shape[-1]
    learner = sporco.online_learner(filters, lmbda)
    rng = np.random.RandomState(seed)
    start = time.perf_counter()
    steps = 0
    while steps < n_steps and time.perf_counter() - start < budget:
        steps += 1
        which = rng.randint(len(images), size=batch_size)
        tops = rng.randint(images.shape[1] - crop + 1, size=batch_size)
        lefts = rng.randint(images.shape[2] - crop + 1, size=batch_size)
        batch = np.zeros((crop + h - 1, crop + h - 1, batch_size), np.float32)
        for j, (i, t, s) in enumerate(zip(which, tops, lefts)):
            batch[:crop, :crop, j] = images[i, t:t + crop, s:s + crop]
        learner.solve(batch)
    seconds = time.perf_counter() - start
    learned = sporco.our_filters(learner.getdict()).astype(np.float32)
    learned /= np.sqrt(np.sum(learned**2, axis=(2, 3), keepdims=True))
    return learned, seconds, steps


def large_heldout_crops(heldout, size):
    """Two crops of ``size`` of every unseen image, at fixed places: whole
    480x720 images would take FISTA ~15 minutes per set of filters to tol 1e-4."""
    height, width = heldout.shape[1:]
    corners = ((height // 8, width // 8), (height - size - height // 8, width - size - width // 8))
    return np.stack([image[top:top + size, left:left + size]
                     for image in heldout for top, left in corners])


def large_heldout_cost(filters, heldout, lmbda, max_iter):
    """Mean cost of unseen images, maps inferred to tol 1e-4 (our objective)."""
    X = heldout.reshape(len(heldout), -1)
    g = np.ones((len(filters), 1), bool)
    maps = conv_sparse_encode(X, filters, image_shape=heldout.shape[1:], lmbda=lmbda,
                              solver="fista", tol=1e-4, max_iter=max_iter, n_jobs=2)
    op = ConvOperator(filters, g, heldout.shape[1:])
    maps = maps.reshape((len(X), len(filters)) + op.map_shape)
    return float(objective(op, maps, heldout[:, None], lmbda, 1.0).mean())


def large_cluster_speedup(quick, repeats):
    """Interleaved fit, n_jobs=1 against a 2-worker LocalCluster on loopback.

    Both times are the best of ``repeats`` fits, as everywhere in this script:
    on this shared 2-core machine one fit's time varies by 10-20%.
    """
    import distributed
    from joblib import parallel_config as joblib_config

    from skdeconv import ConvSparseCoder
    from skdeconv._cluster import learn_interleaved_on_cluster
    from skdeconv._learning import init_filters

    n, size, epochs = (4, 32, 3) if quick else (16, 256, 30)
    rng = np.random.RandomState(0)
    X = rng.standard_normal((n, size * size))
    X = X + np.roll(X, 1, axis=1)
    params = dict(n_filters=16, filter_shape=8, image_shape=(size, size), lmbda=5.0,
                  solver="fista", n_epochs=epochs, random_state=0)
    serial_seconds, serial = best_time(
        lambda: ConvSparseCoder(n_jobs=1, **params).fit(X), repeats, time.perf_counter)
    import dask

    # glibc's dynamic mmap threshold on (docs/distributed.rst, "Let the workers
    # keep glibc's own memory settings").
    unset_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(unset_trim), distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        scheduler_port=0, dashboard_address=None, worker_dashboard_address=None,
        silence_logs=50, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        with joblib_config(backend="dask"):
            ConvSparseCoder(n_jobs=2, **{**params, "n_epochs": 2}).fit(X)  # warm up
            cluster_seconds, clustered = best_time(
                lambda: ConvSparseCoder(n_jobs=2, **params).fit(X), repeats, time.perf_counter)
        stats = {}
        g = np.ones((16, 1), bool)
        filters = init_filters(None, n_filters=16, n_channels=1, filter_shape=(8, 8),
                               connectivity=g, random_state=np.random.RandomState(0),
                               dtype=X.dtype)
        learn_interleaved_on_cluster(
            client, X.reshape(n, 1, size, size), filters, g, lmbda=5.0, p=1.0, solver="fista",
            max_iter=1, tol=0.0, n_epochs=epochs, n_jobs=None, verbose=0, return_maps=False,
            stats=stats)
    difference = float(np.abs(clustered.filters_ - serial.filters_).max())
    return serial_seconds, cluster_seconds, difference, stats, (n, size, epochs)


def section_large(cfg):
    import tempfile

    from skdeconv._online import crop_shape_for

    quick = cfg.repeats == 1 and cfg.image_size <= 32
    shape = (96, 144) if quick else (480, 720)
    counts = (4, 8, 12) if quick else (10, 30, 100)
    # SPORCO's mini-batches stay crops of 64, as in every earlier run of this
    # section: its time per step grows with the crop's pixels, and it already
    # gets through less than half of the steps within its budget.
    lmbda, batch_size, sporco_crop = 5.0, 10, 64
    crop = "x".join(map(str, crop_shape_for(shape, (8, 8))))
    n_steps = 3 if quick else 100  # 100: the online algorithm's default n_epochs
    say(f"== 10. Large data sets: {counts[-1]} gray images {shape[0]}x{shape[1]} from "
        "scikit-image's photos (resized, cropped, flipped; contrast-normalised), float32, "
        "32 filters 8x8, lambda 5 (SPORCO lmbda 0.2), n_jobs=2; peak RSS of each fit in a "
        "fresh process")
    rows = []
    start = time.perf_counter()
    images = large_images(counts[-1], shape)
    heldout_size = 32 if quick else 128
    heldout = large_heldout_crops(large_images(5, shape, bases=LARGE_HELDOUT, seed=1),
                                  heldout_size)
    say(f"  images built in {time.perf_counter() - start:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "images.npy")
        np.save(path, images)
        online = large_fit_in_subprocess(path, counts[-1], "online", n_steps,
                                         os.path.join(tmp, "online.npy"))
        online_filters = np.load(os.path.join(tmp, "online.npy"))
        say(f"  online ({n_steps} mini-batches of 10 crops {crop}): {online['seconds']:.0f} s, "
            f"peak RSS {online['peak'] / 2**30:.2f} GiB")
        batch = large_fit_in_subprocess(path, counts[0], "interleaved", n_steps,
                                        os.path.join(tmp, "batch.npy"))
        batch_filters = np.load(os.path.join(tmp, "batch.npy"))
        say(f"  batch fit on {counts[0]} images (interleaved, {n_steps} epochs): "
            f"{batch['seconds']:.0f} s, peak RSS {batch['peak'] / 2**30:.2f} GiB")
        memory = {}
        for count in counts:
            for algorithm, epochs in (("interleaved", 1), ("online", 2 if quick else 5)):
                usage = large_fit_in_subprocess(path, count, algorithm, epochs)
                memory[algorithm, count] = usage
                state = (f"MemoryError up front: {usage['error'][:150]}" if usage["error"]
                         else f"peak RSS {usage['peak'] / 2**30:.2f} GiB")
                say(f"  memory, {count:3d} images, {algorithm} ({epochs} epochs): {state}")
    rng = np.random.RandomState(0)
    initial = rng.standard_normal((32, 1, 8, 8)).astype(np.float32)
    initial /= np.sqrt(np.sum(initial**2, axis=(2, 3), keepdims=True))
    sporco_filters, sporco_seconds = (None, float("nan"))
    if sporco.AVAILABLE:  # within the 10 minutes our online fit is allowed
        budget = 60 if quick else 600
        sporco_filters, sporco_seconds, sporco_steps = large_sporco_online(
            images, initial, lmbda, n_steps, batch_size, sporco_crop, budget)
        say(f"  SPORCO OnlineConvBPDNDictLearn, mini-batches of 10 crops {sporco_crop}x"
            f"{sporco_crop}: {sporco_steps} of "
            f"{n_steps} in {sporco_seconds:.0f} s (budget {budget} s)")
    max_iter = 300 if quick else 2000
    costs = {"online": large_heldout_cost(online_filters, heldout, lmbda, max_iter),
             "batch": large_heldout_cost(batch_filters, heldout, lmbda, max_iter),
             "initial": large_heldout_cost(initial, heldout, lmbda, max_iter)}
    if sporco_filters is not None:
        costs["sporco"] = large_heldout_cost(sporco_filters, heldout, lmbda, max_iter)
    say(f"  held-out cost (2 crops {heldout_size}x{heldout_size} of each of 5 unseen images, "
        "maps to tol 1e-4): "
        + ", ".join(f"{name} {value:.1f}" for name, value in costs.items()))
    ratio = costs["online"] / costs["batch"]
    rows.append(Row("10. online fit, 100 images: held-out cost / batch fit on 10",
                    f"{costs['online']:.1f} ({online['seconds']:.0f} s)",
                    f"{costs['batch']:.1f} ({batch['seconds']:.0f} s)", ratio, "<= 1",
                    bool(ratio <= 1)))
    rows.append(Row("10. online fit, 100 images: minutes", f"{online['seconds'] / 60:.1f}",
                    "-", target="<= 10", passed=bool(online["seconds"] <= 600)))
    rows.append(Row("10. online fit, 100 images: peak RSS GiB", f"{online['peak'] / 2**30:.2f}",
                    "-", target="<= 4", passed=bool(online["peak"] <= 4 * 2**30)))
    if "sporco" in costs:
        rows.append(Row("10. online held-out cost vs SPORCO online", f"{costs['online']:.1f}",
                        f"{costs['sporco']:.1f} ({sporco_steps} batches, {sporco_seconds:.0f} s)",
                        costs["online"] / costs["sporco"]))
    for count in counts:
        cells = []
        for algorithm in ("interleaved", "online"):
            usage = memory[algorithm, count]
            cells.append("MemoryError up front" if usage["error"]
                         else f"{usage['peak'] / 2**30:.2f} GiB")
        rows.append(Row(f"10. peak RSS, {count} images: online | batch", cells[1], cells[0]))
    serial, clustered, difference, stats, (n, size, epochs) = large_cluster_speedup(
        quick, cfg.repeats)
    speedup = serial / clustered
    say(f"  dask fit, {n} images {size}x{size}, 16 filters 8x8, {epochs} epochs: n_jobs=1 "
        f"{serial:.1f} s, 2-worker LocalCluster {clustered:.1f} s (x{speedup:.2f}), "
        f"filters differ by {difference:.1e}; per epoch {stats['sent_per_epoch'] / 1e3:.1f} kB "
        f"sent, {stats['gathered_per_epoch'] / 1e3:.1f} kB gathered (images once: "
        f"{stats['data_bytes'] / 1e6:.1f} MB)")
    rows.append(Row("10. dask fit speed-up, 2 workers vs n_jobs=1", f"{clustered:.1f} s",
                    f"{serial:.1f} s", speedup, ">= 1.5", bool(speedup >= 1.5)))
    rows.append(Row("10. dask fit: kB moved per epoch (sent + gathered)",
                    f"{(stats['sent_per_epoch'] + stats['gathered_per_epoch']) / 1e3:.1f}",
                    f"images {stats['data_bytes'] / 1e6:.1f} MB once"))
    return rows


# ------------------------------------------------------------------ main
# The sections, in the order they run: name -> function(cfg) -> rows.
SECTIONS = {
    "inference": section_inference,
    "auto": section_auto,
    "learning": section_learning,
    "sklearn": section_sklearn,
    "floor": section_floor,
    "float32": section_float32,
    "jobs": section_jobs,
    "memory": section_memory,
    "scaling": section_scaling,
    "large": section_large,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (CI)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help="comma-separated sections among: " + ", ".join(SECTIONS))
    parser.add_argument("--output", help="also write the table (Markdown) to this file")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose among {list(SECTIONS)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    # Budgets are fixed on purpose (tol=0, short inner solves): no warnings.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    context = (
        f"skdeconv {skdeconv.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"SPORCO {sporco.version()}; "
        f"{'quick' if args.quick else 'full'} run, one thread, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M')}")
    say(context)
    start = time.perf_counter()
    rows, failed = [], []
    for name, section in SECTIONS.items():
        if name in args.only:
            section_start = time.perf_counter()
            try:
                rows += section(cfg)
            except Exception as error:  # report it, run the other sections, exit 1
                traceback.print_exc()
                failed.append(name)
                message = f"{type(error).__name__}: {error}".replace("|", "/")[:80]
                rows.append(Row(f"{name}: ERROR", message, "-"))
            say(f"  ({time.perf_counter() - section_start:.1f} s wall; load average "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n")
    table = markdown_table(rows)
    say(table)
    say(f"\ntotal {time.perf_counter() - start:.1f} s")
    if args.output:
        with open(args.output, "w") as stream:
            stream.write(f"{context}; load average at the end {os.getloadavg()[0]:.1f}\n\n"
                         f"{table}\n")
    if failed:
        say(f"sections that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
