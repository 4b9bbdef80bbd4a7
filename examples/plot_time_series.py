"""
Motifs in time series
=====================

With ``image_shape=None`` (the default) every row of ``X`` is a 1-D signal and
:class:`~skdeconv.ConvSparseCoder` does 1-D convolutional sparse coding: it learns
short filters (motifs) and, for every signal, sparse activations saying where and
how strongly each motif occurs.

Here the signals are synthetic, so the truth is known: three motifs (a Mexican
hat, a short oscillation and a spike with a fast rise and a slow decay) placed a
few times each at random positions, with random signs and amplitudes, plus
Gaussian noise. The coder recovers the motifs and their positions.

.. note::
   The run is small: 60 signals of 400 samples; learning takes a few seconds.
"""

# %%
# Synthetic signals
# -----------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import correlate
from sklearn.exceptions import ConvergenceWarning

from skdeconv import ConvSparseCoder
from skdeconv.plotting import plot_filters

rng = np.random.default_rng(0)
n_signals, length, motif_length = 60, 400, 32
t = np.arange(motif_length) - motif_length / 2
motifs = np.array([
    (1 - (t / 3) ** 2) * np.exp(-0.5 * (t / 3) ** 2),      # Mexican hat
    np.sin(2 * np.pi * t / 8) * np.exp(-0.5 * (t / 5) ** 2),  # oscillation
    np.where(t >= -12, np.exp(-(t + 12) / 5) - np.exp(-(t + 12) / 1.5), 0),  # spike
])
motifs /= np.linalg.norm(motifs, axis=1, keepdims=True)

# Activations: each motif 3 times per signal, amplitude 1 to 2, random sign.
n_positions = length - motif_length + 1
activations = np.zeros((n_signals, len(motifs), n_positions))
for signal in activations:
    for row in signal:
        positions = rng.choice(n_positions, size=3, replace=False)
        row[positions] = rng.uniform(1, 2, size=3) * rng.choice([-1, 1], size=3)
clean = np.array([
    sum(np.convolve(row, motif) for row, motif in zip(signal, motifs))
    for signal in activations
])
X = clean + 0.05 * rng.standard_normal(clean.shape)
print(f"X: {X.shape[0]} signals of {X.shape[1]} samples")

fig, ax = plt.subplots(figsize=(9, 2.5), layout="constrained")
ax.plot(X[0], linewidth=0.8)
ax.set(title="one of the signals", xlabel="time")

# %%
# Learn three filters
# -------------------
# ``filter_shape=32`` is the motif length; maps have ``400 + 32 - 1 = 431``
# samples. A moderate ``lmbda`` gives sparse activations. Learning runs 200
# interleaved epochs (the default ``fit_algorithm``: one FISTA iteration per
# signal, then one filter step), under a second; ``max_iter`` and ``tol`` bound
# the map inference of ``transform``.
coder = ConvSparseCoder(
    n_filters=3, filter_shape=motif_length, lmbda=5.0, max_iter=200, tol=1e-3,
    n_epochs=200, random_state=0,
)
with warnings.catch_warnings():
    # transform: a few signals may need more than max_iter iterations; fine here.
    warnings.simplefilter("ignore", ConvergenceWarning)
    coder.fit(X)
    maps = coder.transform(X[:1]).reshape(coder.feature_map_shape_)
print(f"feature maps per signal: {coder.feature_map_shape_}")
plot_filters(coder, ncols=3, title="learned filters")

# %%
# Learned against true motifs
# ---------------------------
# A filter is recovered up to its sign and a shift, and in any order. Each true
# motif is matched to the filter of largest absolute normalised cross-correlation
# (an assignment, so no filter is used twice), then aligned and sign-corrected.
filters = coder.filters_[:, 0]
correlations = np.array([
    [correlate(motif, f, mode="full") for f in filters] for motif in motifs
])
similarity = np.abs(correlations).max(axis=-1)
true_index, filter_index = linear_sum_assignment(-similarity)

fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), layout="constrained")
names = ["Mexican hat", "oscillation", "spike"]
lags = {}
for ax, k, j in zip(axes, true_index, filter_index):
    c = correlations[k, j]
    lag = lags[k] = int(np.argmax(np.abs(c))) - (motif_length - 1)
    aligned = np.sign(c[lag + motif_length - 1]) * np.roll(filters[j], lag)
    ax.plot(motifs[k], "k", linewidth=2.5, alpha=0.4, label="true motif")
    ax.plot(aligned, "tab:red", label=f"filter {j}")
    ax.set_title(f"{names[k]}: similarity {similarity[k, j]:.3f}")
    ax.legend(fontsize=7)
    print(f"{names[k]:12s} <-> filter {j}: similarity {similarity[k, j]:.3f}")

# %%
# Sparse activations
# ------------------
# The maps of the first signal: each filter fires at a handful of places, at the
# true occurrences of its motif (gray bars). A motif starting at sample ``p`` of the
# signal shows up at ``p + filter_shape - 1`` in the map (maps are longer than
# the signal by ``filter_shape - 1``), shifted by the lag found above.
print(f"non-zero activations: {np.count_nonzero(maps)} of {maps.size}")
fig, axes = plt.subplots(3, 1, figsize=(9, 5), sharex=True, layout="constrained")
for ax, k, j in zip(axes, true_index, filter_index):
    for position in np.flatnonzero(activations[0, k]):
        ax.axvline(position + motif_length - 1 + lags[k], color="0.8", linewidth=4)
    ax.plot(maps[j], "tab:red", linewidth=1)
    ax.set_ylabel(f"map {j}\n({names[k]})")
axes[-1].set_xlabel("position in the map")
plt.show()
