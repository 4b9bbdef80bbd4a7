"""
Adaptive Deconvolutional Networks: every layer explains the pixels
==================================================================

A Deconvolutional Network of Zeiler et al. (CVPR 2010) explains each layer's
INPUT only: layer 2 reconstructs the maps of layer 1, layer 3 those of layer 2,
and nothing ties the upper layers to the image, so their reconstructions of the
image degrade layer after layer.

The Adaptive Deconvolutional Network of Zeiler, Taylor and Fergus (ICCV 2011)
fixes this. Between layers, 3-D max pooling keeps one value per block of
``py x px`` positions and ``pk`` neighbouring maps and records where it came
from (its *switch*); each layer's maps are inferred to reconstruct the IMAGE
through the filters and the unpooling switches of all the layers below
(:class:`~skdeconv.AdaptiveDeconvNetwork`). Every layer is accountable in pixel
space.

This example learns both networks, with the same numbers of maps, on fruit images,
compares their reconstructions of an image from every layer, and projects single
strong activations of the adaptive network's top layer down to pixels.

.. note::
   To run in about a minute, this is a reduced run: 6 of the 10 images cropped to
   their central 64x64 pixels, two layers, a few epochs. ``python -m skdeconv
   --model adaptive`` runs the 3-layer network on the ten 100x100 images.
"""

# %%
# Contrast-normalised images, one per row
# ---------------------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdeconv import AdaptiveDeconvNetwork, DeconvNetworkTransformer
from skdeconv.datasets import load_zeiler2010
from skdeconv.plotting import plot_filters, plot_reconstructions
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

warnings.simplefilter("ignore", ConvergenceWarning)
images = load_zeiler2010("fruit", as_gray=True, dtype=np.float32)[:6, 18:82, 18:82]
image_shape = images.shape[1:]
X = LocalContrastNormalizer(image_shape=image_shape).fit_transform(images_to_rows(images))

# %%
# The adaptive network
# --------------------
# Two layers of 9 and 24 maps with 7x7 filters; 3x3 spatial pooling over pairs of
# maps (``pool_shape=(3, 3, 2)``), so layer 2 sees 5 pooled maps of 24x24. The
# default ``lmbda='auto'`` is 10 times ``lambda_min`` of each layer, the weight
# below which all its maps are zero.
adaptive = AdaptiveDeconvNetwork(
    n_filters=(9, 24), filter_shape=7, connectivity="full", pool_shape=(3, 3, 2),
    image_shape=image_shape, max_iter=30, n_epochs=4, random_state=0,
).fit(X)
print("lmbda per layer:", np.round(adaptive.lmbda_, 3))
print("fit seconds per layer:", np.round(adaptive.fit_seconds_, 1))

# %%
# The 2010 network with the same numbers of maps
# ----------------------------------------------
# Layer 2 sees all 9 unpooled layer-1 maps.
deconv = DeconvNetworkTransformer(
    n_filters=(9, 24), filter_shape=7, connectivity=("full", "random_pairs"),
    image_shape=image_shape, lmbda=(5.0, 20.0), max_iter=50, n_epochs=(100, 30),
    random_state=0,
).fit(X)

# %%
# Reconstructions from every layer
# --------------------------------
# The adaptive network's reconstruction from layer ``l`` is ``R_l z_l``, its maps
# projected through the filters and switches of the layers below
# (:meth:`~skdeconv.AdaptiveDeconvNetwork.project`); ``inverse_transform`` of
# ``transform`` gives the top layer's. The 2010 network's is the chained
# ``inverse_transform`` of its layers.
image = 0
adaptive_rec = [adaptive.project(X[:1], layer)[0] for layer in (1, 2)]
deconv_maps = deconv.transform(X[:1], layers=(1, 2))
deconv_rec = [deconv.project(Z, layer)[0] for layer, Z in zip((1, 2), deconv_maps)]
plot_reconstructions(
    X[image], adaptive_rec + deconv_rec, image_shape=image_shape, metric="relative_error",
    labels=["adaptive, layer 1", "adaptive, layer 2", "2010, layer 1", "2010, layer 2"],
)
plt.show()

for name, rec in (("adaptive", adaptive_rec), ("2010", deconv_rec)):
    errors = [np.linalg.norm(r - X[image]) / np.linalg.norm(X[image]) for r in rec]
    print(f"{name:>8}: relative error from layers 1, 2 = {np.round(errors, 3)}")

# %%
# Single activations of layer 2, seen in pixel space
# --------------------------------------------------
# :meth:`~skdeconv.AdaptiveDeconvNetwork.project_activations` keeps the strongest
# activation of each map alone and projects it down with this image's switches:
# what each layer-2 feature draws in the image, where it is strongest. The
# switches make the projections adapt to the image (the "adaptive" of the title).
projections, locations = adaptive.project_activations(X[:1], layer=2)
strength = np.abs(projections[0]).sum(axis=1)
order = np.argsort(-strength)[:16]
tiles = projections[0, order].reshape((-1, 1) + image_shape)
plot_filters(tiles, title="layer 2: single activations projected to pixels")
plt.show()
