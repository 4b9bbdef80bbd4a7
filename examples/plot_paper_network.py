"""
The paper's three-layer network on the fruit images
===================================================

Zeiler, Krishnan, Taylor and Fergus (CVPR 2010) learn a Deconvolutional Network of
three layers on ten small photographs of fruit: 9 feature maps in layer 1, 45 in
layer 2 and 150 in layer 3, all with 7x7 filters. Layer 1 is fully connected to the
image; each layer-2 map sees one or two layer-1 maps ("singles and all pairs") and
each layer-3 map two random layer-2 maps ("random pairs").

This example learns that network with :class:`~skdeconv.DeconvNetworkTransformer`
and shows what the paper shows: the filters of every layer **in pixel space**
(:meth:`~skdeconv.DeconvNetworkTransformer.project_filters`) and the reconstruction
of an image from the maps of each layer
(:meth:`~skdeconv.DeconvNetworkTransformer.project`).

.. note::
   To run in well under a minute, this is a reduced run: 6 of the 10 images, each
   cropped to its central 64x64 pixels, in float32, with weights and epochs set by
   hand (below). ``python -m skdeconv`` learns the full network with the defaults
   (all ten 100x100 images, ``lmbda='auto'``, 100, 40 and 80 interleaved epochs)
   in about 70 seconds.
"""

# %%
# Load and contrast-normalise the images
# --------------------------------------
# The images are converted to gray levels and locally contrast normalised, as in
# the paper: after a slight blur, every pixel has the local mean subtracted and is
# divided by the local standard deviation
# (:class:`~skdeconv.preprocessing.LocalContrastNormalizer`).
# Estimators take one image per row (:func:`~skdeconv.preprocessing.images_to_rows`).
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdeconv import DeconvNetworkTransformer
from skdeconv.datasets import load_zeiler2010
from skdeconv.plotting import (
    plot_cost_history,
    plot_feature_maps,
    plot_filters,
    plot_reconstructions,
)
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

images = load_zeiler2010("fruit", as_gray=True, dtype=np.float32)[:6, 18:82, 18:82]
image_shape = images.shape[1:]
lcn = LocalContrastNormalizer(image_shape=image_shape)
X = lcn.fit_transform(images_to_rows(images))
print(f"{X.shape[0]} images of {image_shape} -> X of shape {X.shape}")

# %%
# Learn the network, layer by layer
# ---------------------------------
# ``lmbda`` weights the reconstruction term of each layer (larger = denser maps).
# A small value on layer 1 (sparse maps) gives clean edge filters; every layer
# rescales its input to [-1, 1], as the authors' toolbox does, and a larger
# ``lmbda`` on the upper layers keeps their maps from becoming almost empty.
#
# Layers 1 and 2 learn with ``fit_algorithm='interleaved'`` (the default): every
# epoch takes one map-solver iteration per image and one filter step, so epochs
# are cheap and 300 and 50 of them are used. Layer 3 has 45 input channels and
# 150 maps, which makes an interleaved epoch expensive; there 2 epochs of
# ``'alternating'`` (maps inferred within ``max_iter`` iterations, then filter
# steps) learn more per second. That map inference, and ``transform``'s, stops at
# ``max_iter`` by design here (a time budget), so convergence warnings are
# silenced.
net = DeconvNetworkTransformer(
    n_filters=(9, 45, 150),
    filter_shape=7,
    connectivity=("full", "singles_and_pairs", "random_pairs"),
    image_shape=image_shape,
    lmbda=(5.0, 20.0, 30.0),
    max_iter=(50, 50, 30),
    tol=(1e-3, 1e-3, 3e-3),
    n_epochs=(300, 50, 2),
    fit_algorithm=("interleaved", "interleaved", "alternating"),
    random_state=0,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    net.fit(X)
    maps = net.transform(X[:1], layers=(1, 2, 3))

for number, (name, layer) in enumerate(net.pipeline_.steps, start=1):
    print(
        f"{name}: {layer.n_channels_:3d} input channels -> "
        f"{layer.feature_map_shape_[0]:3d} maps of {layer.feature_map_shape_[1:]}, "
        f"{100 * np.mean(maps[number - 1] != 0):.1f}% non-zero"
    )

# %%
# The training cost of every layer falls epoch after epoch.
plot_cost_history(net, yscale="log", title="cost per epoch")

# %%
# Layer-1 filters
# ---------------
# Layer 1 learns small oriented edge and bar detectors, as in the paper.
plot_filters(net, layer=1, title="layer 1: 9 filters, 7x7 pixels")

# %%
# Layer-2 and layer-3 filters in pixel space
# ------------------------------------------
# A layer-2 filter acts on layer-1 maps; seen in pixel space it is the sum of its
# planes convolved with the layer-1 filters they connect to, a 13x13 pattern.
# Layer 3 grows to 19x19 pixels. Upper layers combine the edges below into larger
# structures: corners, curves and junctions.
plot_filters(net, layer=2, ncols=9, title="layer 2: 45 filters in pixel space (13x13)")

# %%
fig = plt.figure(figsize=(12, 8), layout="constrained")
plot_filters(
    net.project_filters(3)[:60],
    ncols=12,
    fig=fig,
    title="layer 3: the first 60 of 150 filters in pixel space (19x19)",
)

# %%
# Feature maps of one image
# -------------------------
# The layer-1 maps are sparse: most pixels are exactly zero and each map fires
# where its filter's edge appears in the image.
plot_feature_maps(
    maps[0][0], map_shape=net.pipeline_[0].feature_map_shape_[1:], ncols=9,
    title="layer 1 feature maps of the first image",
)

# %%
# Reconstructions from every layer
# --------------------------------
# Each layer's maps are projected down to pixel space through the layers below.
# Layer 1 keeps the image's edges; layers 2 and 3 keep its main structures with
# ever fewer active units (the short training run makes them coarser than the
# paper's).
reconstructions = [net.project(Z, layer) for layer, Z in zip((1, 2, 3), maps)]
for layer, R in zip((1, 2, 3), reconstructions):
    error = np.linalg.norm(R - X[:1]) / np.linalg.norm(X[:1])
    print(f"relative reconstruction error from layer {layer}: {error:.3f}")
plot_reconstructions(
    X[0],
    np.vstack(reconstructions),
    labels=["from layer 1", "from layer 2", "from layer 3"],
    image_shape=image_shape,
    metric="relative_error",
)
plt.show()
