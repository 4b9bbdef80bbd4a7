"""
ISTA (the paper's Algorithm 1) or FISTA for the adaptive network's maps?
========================================================================

Learns a 2-layer :class:`~skdeconv.AdaptiveDeconvNetwork` (9 and 45 maps) on the
10 fruit images, then infers layer 2's maps (through the layer-1 filters and
switches, fixed) with both solvers for the same number of iterations, and prints
the mean per-image cost of layer 2 against iterations and seconds. Both take the
same steps (gradient step through the top-down operator, shrinkage, 3-D
pool-unpool); FISTA adds the extrapolation and a gradient restart.

Not part of the gallery. Run::

    OMP_NUM_THREADS=1 python examples/adaptive_solver_comparison.py
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdeconv import AdaptiveDeconvNetwork
from skdeconv._adaptive_solvers import infer_maps, layer_costs
from skdeconv._topdown import TopDownOperator
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

warnings.simplefilter("ignore", ConvergenceWarning)
images = load_zeiler2010("fruit", as_gray=True, dtype=np.float32)
X = LocalContrastNormalizer(image_shape=(100, 100)).fit_transform(images_to_rows(images))
net = AdaptiveDeconvNetwork(
    n_filters=(9, 45), filter_shape=7, connectivity="full", pool_shape=(3, 3, 2),
    image_shape=(100, 100), max_iter=30, n_epochs=3, random_state=0,
).fit(X)
Y = X.reshape(10, 1, 100, 100)
maps, switches, operators = net._infer(X, 1)
R = TopDownOperator(operators + net._operators(X.dtype)[1:2], switches, net.pool_shape_[:1])
lmbda = net.lmbda_[1]
checkpoints = (5, 10, 20, 30, 50, 100)
for solver in ("ista", "fista"):
    trace = {}

    def record(iteration, index, z, start=time.perf_counter()):
        if iteration + 1 in checkpoints:
            trace[iteration + 1] = (time.perf_counter() - start,
                                    float(np.mean(layer_costs(R, Y, z, lmbda))))

    infer_maps(R, Y, lmbda, net.pool_shape_[1], max(checkpoints), 0.0, solver,
               callback=record)
    print(solver, " ".join(f"it {k}: {c:.2f} ({t:.1f} s)" for k, (t, c) in trace.items()))
