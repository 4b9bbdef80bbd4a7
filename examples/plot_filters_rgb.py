"""
Colour filters and a custom connectivity
========================================

Images with several channels are rows flattened channels first,
``(n_channels, height, width)``; :func:`~skdeconv.preprocessing.images_to_rows`
builds them from ``(n, height, width, 3)`` stacks with ``channel_axis=-1``. The
number of channels is inferred from ``image_shape``.

The ``connectivity`` matrix ``g`` (``n_filters x n_channels``, binary) says which
channels each feature map explains. Here, on RGB fruit images, 6 maps see all
three channels and learn colour filters, while 6 more are tied to a single
channel each (2 for red, 2 for green, 2 for blue) and learn filters of that
channel only: planes outside the connectivity are exact zeros.

.. note::
   A short run: 6 images cropped to 64x64 and 300 interleaved epochs of filter
   learning (one map-solver iteration per image, then one filter step; a few
   seconds).
"""

# %%
# Colour images as rows
# ---------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdeconv import ConvSparseCoder, make_connectivity
from skdeconv.datasets import load_zeiler2010
from skdeconv.plotting import plot_filters, plot_reconstructions
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

images = load_zeiler2010("fruit", dtype=np.float32)[:6, 18:82, 18:82]  # (6, 64, 64, 3)
image_shape = images.shape[1:3]
rows = images_to_rows(images, channel_axis=-1)
print(f"{images.shape} -> X of shape {rows.shape} (3 channels of {image_shape})")
# Every channel plane is contrast normalised on its own.
X = LocalContrastNormalizer(image_shape=image_shape).fit_transform(rows)

# %%
# The connectivity
# ----------------
# :func:`~skdeconv.make_connectivity` validates an explicit matrix (and builds the
# presets: ``"full"``, ``"singles_and_pairs"``, ``"random_pairs"``, ...).
g = np.vstack([np.ones((6, 3)), np.repeat(np.eye(3), 2, axis=0)])
g = make_connectivity(g, n_filters=12, n_channels=3)

fig, ax = plt.subplots(figsize=(2.2, 4), layout="constrained")
ax.imshow(g, cmap="Greys", vmin=0, vmax=1.5)
ax.set(xticks=range(3), xticklabels=["R", "G", "B"], yticks=range(12),
       xlabel="channel", ylabel="feature map", title="connectivity g")

# %%
# Learn the filters
# -----------------
coder = ConvSparseCoder(
    n_filters=12, filter_shape=7, image_shape=image_shape, connectivity=g,
    lmbda=5.0, max_iter=50, tol=1e-3, n_epochs=300, scale_input=True, random_state=0,
)
with warnings.catch_warnings():
    # transform's map inference stops at max_iter by design in this short run.
    warnings.simplefilter("ignore", ConvergenceWarning)
    coder.fit(X)
    maps = coder.transform(X[:1])
print("filters_:", coder.filters_.shape)
zero_planes = np.all(coder.filters_ == 0, axis=(2, 3))
print("planes that are exact zeros match ~g:", bool(np.array_equal(zero_planes, ~g)))

# %%
# Filters with three channels are drawn in colour, their three planes rescaled
# together so that zero is mid-grey. Maps 0-5 learn colour edges and blobs; maps
# 6-11 have a single non-zero plane, so they vary around grey along one colour
# axis only (red-cyan, green-magenta, blue-yellow).
plot_filters(coder, ncols=6, title="12 filters of 7x7x3")

# %%
# Reconstruction of the first image
# ---------------------------------
plot_reconstructions(
    X[0], coder.inverse_transform(maps), labels=["from 12 maps"],
    image_shape=image_shape, metric="relative_error",
)
plt.show()
