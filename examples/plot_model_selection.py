"""
Choosing lambda: without labels, and with a classifier
======================================================

``lmbda`` weights the reconstruction term of the cost (larger = denser maps,
closer reconstructions). This example shows two ways of choosing it with
:class:`~sklearn.model_selection.GridSearchCV`, and why the first one cannot work
on its own:

1. **Without labels**, the search uses the estimator's own ``score``: minus the
   mean per-sample cost of the inferred maps. That score always prefers the
   smallest ``lmbda``.
2. **With labels**, the coder is a step of a classifier pipeline and the search
   maximises cross-validated accuracy, which does have an optimum inside the grid.

.. note::
   To run in under a minute it uses 600 of scikit-learn's 8x8 digits, 50 epochs
   of interleaved filter learning (the default ``fit_algorithm``: one map-solver
   iteration per digit, then one filter step) and short map inference in
   ``transform`` (``max_iter=50``, ``tol=1e-2``).
"""

# %%
# Data
# ----
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skdeconv import ConvSparseCoder
from skdeconv.pooling import PyramidPooledMaps

# Map inference stops at max_iter by design here (a time budget): no warnings.
warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X, y = (X[:600] / 16).astype(np.float32), y[:600]
coder = ConvSparseCoder(
    n_filters=8, filter_shape=3, image_shape=(8, 8), max_iter=50, tol=1e-2,
    n_epochs=50, random_state=0,
)
lmbdas = [1.0, 3.0, 10.0, 30.0, 100.0]

# %%
# 1. Without labels: the model's own score
# ----------------------------------------
# :meth:`ConvSparseCoder.score <skdeconv.ConvSparseCoder.score>` returns minus the
# mean of the cost ``lambda/2 ||F z - y||^2 + |z|_1`` at the inferred maps ``z``.
# ``GridSearchCV`` without ``y`` uses it, on held-out folds.
unsupervised = GridSearchCV(coder, {"lmbda": lmbdas}, cv=3).fit(X)
print("score per lmbda:", np.round(unsupervised.cv_results_["mean_test_score"], 2))
print("chosen without labels: lmbda =", unsupervised.best_params_["lmbda"])

# %%
# The smallest ``lmbda`` wins, whatever the data. For fixed filters, the cost of
# any maps ``z`` grows with ``lambda`` (the reconstruction term it weights is
# non-negative), so its minimum over ``z`` grows too; filters learned at each
# ``lmbda`` do not change that in practice (the left plot below). In the limit
# ``lambda -> 0``, all-zero maps cost nothing. The score compares models with the
# same ``lmbda`` (different filters, ``p`` or numbers of filters), not values of
# ``lmbda``.
#
# What ``lmbda`` trades is visible when one fitted coder infers maps with several
# values (``lmbda`` is read when ``transform`` is called): the reconstruction
# error falls and the fraction of non-zero map values rises.
fitted = ConvSparseCoder(**{**coder.get_params(), "lmbda": 10.0}).fit(X)
errors, densities = [], []
for lmbda in lmbdas:
    maps = fitted.set_params(lmbda=lmbda).transform(X)
    error = np.linalg.norm(fitted.inverse_transform(maps) - X) / np.linalg.norm(X)
    errors.append(error)
    densities.append(np.mean(maps != 0))

fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
axes[0].plot(lmbdas, unsupervised.cv_results_["mean_test_score"], marker="o")
axes[0].set(ylabel="score = - mean cost", title="GridSearchCV without labels")
axes[1].plot(lmbdas, errors, marker="o")
axes[1].set(ylabel="relative reconstruction error", title="closer reconstructions ...")
axes[2].plot(lmbdas, densities, marker="o")
axes[2].set(ylabel="fraction of non-zero maps", title="... from denser maps")
for ax in axes:
    ax.set(xscale="log", xlabel="lmbda")

# %%
# A criterion without labels that is not monotone scores ``lmbda`` on data the
# maps did not see: :func:`~skdeconv.heldout_pixel_score` hides a random subset
# of each image's pixels, infers the maps from the visible pixels only and
# measures the error on the hidden ones (pass it as ``scoring``; see the user
# guide). When clean data exist, adding noise and scoring the denoised result
# against the clean data works too (see the denoising example). When the maps
# serve a task, choose ``lmbda`` for that task, as below.
#
# 2. With labels: the accuracy of a classifier
# --------------------------------------------
# The coder's maps are pooled over a spatial pyramid by
# :class:`~skdeconv.pooling.PyramidPooledMaps` and fed to a logistic regression.
# The wrapper reads the map geometry from the fitted coder, so ``lmbda`` and
# ``filter_shape`` (which changes the map size) are searched in one grid.
pipeline = Pipeline([
    ("pooled", PyramidPooledMaps(coder, levels=(1, 2, 3), pooling="mean")),
    ("scale", StandardScaler()),
    ("clf", LogisticRegression(max_iter=2000)),
])
supervised = GridSearchCV(
    pipeline,
    {
        "pooled__estimator__lmbda": [1.0, 10.0, 100.0],
        "pooled__estimator__filter_shape": [3, 5],
    },
    cv=3,
).fit(X, y)
best = supervised.best_params_
print(
    f"chosen with labels: lmbda = {best['pooled__estimator__lmbda']:g}, "
    f"filter_shape = {best['pooled__estimator__filter_shape']}, "
    f"CV accuracy {supervised.best_score_:.3f}"
)

# %%
# Cross-validated accuracy per ``lmbda``, for each filter size. Unlike the cost,
# accuracy is not monotone by construction: too small a ``lmbda`` leaves the maps
# almost empty, and beyond some value denser maps stop helping: with 3x3 filters
# the accuracy peaks at ``lmbda=10`` (90.3%) and falls at 100 (87.8%); with 5x5
# filters it varies less (the differences are of the order of the error bars on
# these 600 tiny images).
results = supervised.cv_results_
fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
for filter_shape in (3, 5):
    rows = results["param_pooled__estimator__filter_shape"] == filter_shape
    ax.errorbar(
        results["param_pooled__estimator__lmbda"][rows].astype(float),
        results["mean_test_score"][rows],
        yerr=results["std_test_score"][rows],
        marker="o",
        capsize=3,
        label=f"{filter_shape}x{filter_shape} filters",
    )
ax.set(xscale="log", xlabel="lmbda", ylabel="3-fold CV accuracy",
       title="GridSearchCV with a classifier")
ax.legend()
plt.show()
