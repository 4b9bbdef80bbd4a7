"""
Denoising with a two-layer network
==================================

The authors' toolbox of Deconvolutional Networks (Zeiler et al., CVPR 2010) tests
its models by denoising: gray images scaled to [-1, 1] get Gaussian noise of
standard deviation 0.25, and the image is reconstructed from the sparse maps of
layer 1 and from those of layer 2. Filters learned on clean images represent image
structure (edges, corners) well and noise badly, so a sparse code of the noisy
image keeps the structure and drops much of the noise.

This example learns a 9/45-map network on clean fruit images, chooses the
denoising strength on a validation image, and reports the signal-to-noise ratio
(SNR) of the noisy input and of the reconstructions from layers 1 and 2 on a test
image that was used neither for learning nor for choosing.

.. note::
   To run in under a minute this uses 64x64 crops and 8 training images; the
   filters learn in 300 epochs for layer 1 and 50 for layer 2 (interleaved
   epochs: one map-solver iteration per image, then one filter step).
"""

# %%
# Clean, validation and test images
# ---------------------------------
# Fruit images 2 to 9 are the clean training set; image 1 (noisy) is for choosing
# ``lmbda`` and image 0 (noisy) is the test image.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.exceptions import ConvergenceWarning

from skdeconv import DeconvNetworkTransformer
from skdeconv.datasets import load_zeiler2010
from skdeconv.plotting import plot_filters, plot_reconstructions
from skdeconv.preprocessing import images_to_rows

# Map inference (transform) stops at max_iter by design in this short run: no
# warnings.
warnings.simplefilter("ignore", ConvergenceWarning)

SIGMA = 0.25
images = 2 * load_zeiler2010("fruit", as_gray=True)[:, 18:82, 18:82] - 1
image_shape = images.shape[1:]
rng = np.random.default_rng(0)
noisy = images[:2] + SIGMA * rng.standard_normal(images[:2].shape)


def snr(x, reference):
    """Signal-to-noise ratio in dB, the toolbox's measure."""
    return 20 * np.log10(np.linalg.norm(reference) / np.linalg.norm(x - reference))


fig, axes = plt.subplots(1, 2, figsize=(5, 2.8), layout="constrained")
for ax, image, title in zip(axes, (images[0], noisy[0]), ("clean test image", "noisy")):
    ax.imshow(image, cmap="gray", vmin=-1, vmax=1)
    ax.set_title(title)
    ax.set_axis_off()


# %%
# Code the details, keep the smooth part
# --------------------------------------
# Small filters with sparse maps explain edges and textures but are a poor model
# of the slowly varying brightness of an image (it is neither sparse nor local).
# As is usual in convolutional sparse coding (SPORCO's denoising examples do the
# same), every image is split into a smooth low-pass part (a Gaussian blur of
# standard deviation 2 pixels) and the high-pass details; only the details are
# coded and the low-pass part is added back. The blur averages the noise down, so
# the low-pass part of the noisy image is already much cleaner than the noisy
# image.


def split(stack):
    """Low-pass and high-pass parts of a stack of images."""
    low = gaussian_filter(stack, sigma=(0, 2, 2))
    return low, stack - low


_, train_high = split(images[2:])
noisy_low, noisy_high = split(noisy)
X_train = images_to_rows(train_high)
X_noisy = images_to_rows(noisy_high)

# %%
# Learn the filters on clean images
# ---------------------------------
# A small ``lmbda`` on layer 1 (sparse maps) gives cleaner edge filters and, in
# this example, slightly better denoising than a larger one. Both layers learn
# with the default ``fit_algorithm='interleaved'``, whose epochs are cheap;
# ``max_iter`` and ``tol`` bound the inference of the layer-1 maps that layer 2
# learns from.
net = DeconvNetworkTransformer(
    n_filters=(9, 45),
    filter_shape=7,
    connectivity=("full", "singles_and_pairs"),
    image_shape=image_shape,
    lmbda=(3.0, 20.0),
    max_iter=50,
    tol=1e-3,
    n_epochs=(300, 50),
    random_state=0,
).fit(X_train)
layer1, layer2 = net.pipeline_["layer1"], net.pipeline_["layer2"]
plot_filters(net, layer=1, title="layer-1 filters (high-pass details)")

# %%
# Choose the denoising strength on the validation image
# -----------------------------------------------------
# ``lmbda`` weights the reconstruction term: the larger it is, the more closely
# (noise included) the maps reproduce their input. Denoising needs a smaller
# ``lmbda`` than learning on clean images. ``lmbda`` and ``max_iter`` are read when
# ``transform`` is called, so the fitted layers are re-used with new values. Layer
# 1's value is chosen first, then layer 2's on top of it, each by the SNR of the
# validation image (whose clean version is known). Layer 2's SNR levels off as
# its ``lmbda`` grows: its maps then reproduce the layer-1 maps, noise included,
# and its reconstruction approaches layer 1's.


def denoise(X, lmbda1, lmbda2=None):
    """Reconstruction of the high-pass rows X from layer 1 or layer 2."""
    layer1.set_params(lmbda=lmbda1, max_iter=200)
    maps = layer1.transform(X)
    if lmbda2 is None:
        return layer1.inverse_transform(maps)
    layer2.set_params(lmbda=lmbda2, max_iter=200)
    return net.project(layer2.transform(maps), 2)


def validation_snr(reconstruction):
    return snr(noisy_low[1] + reconstruction.reshape(image_shape), images[1])


lmbdas1, lmbdas2 = [1.0, 1.5, 2.0, 3.0, 4.0], [5.0, 10.0, 20.0, 40.0, 80.0]
snr1 = [validation_snr(denoise(X_noisy[1:2], lm)) for lm in lmbdas1]
best1 = lmbdas1[int(np.argmax(snr1))]
snr2 = [validation_snr(denoise(X_noisy[1:2], best1, lm)) for lm in lmbdas2]
best2 = lmbdas2[int(np.argmax(snr2))]
print(f"validation SNR of the noisy image: {snr(noisy[1], images[1]):.2f} dB")
searches = ((1, lmbdas1, snr1, best1), (2, lmbdas2, snr2, best2))
for layer, lmbdas, values, best in searches:
    scores = ", ".join(f"{lm:g}: {value:.2f}" for lm, value in zip(lmbdas, values))
    print(f"layer {layer}, SNR (dB) per lmbda: {scores} -> lmbda {best:g}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")
for ax, lmbdas, values, layer in zip(axes, (lmbdas1, lmbdas2), (snr1, snr2), (1, 2)):
    ax.semilogx(lmbdas, values, marker="o")
    ax.set(xlabel=f"lmbda of layer {layer}", ylabel="validation SNR (dB)",
           title=f"reconstruction from layer {layer}")

# %%
# Denoise the test image
# ----------------------
rec1 = noisy_low[0] + denoise(X_noisy[:1], best1).reshape(image_shape)
rec2 = noisy_low[0] + denoise(X_noisy[:1], best1, best2).reshape(image_shape)
results = {
    "noisy input": noisy[0],
    "low-pass part only": noisy_low[0],
    "reconstruction from layer 1": rec1,
    "reconstruction from layer 2": rec2,
}
for name, x in results.items():
    print(f"test SNR, {name + ':':29s} {snr(x, images[0]):5.2f} dB")

# %%
# The SNR in each title is measured against the clean image. The low-pass part
# alone is shown as a baseline: the sparse code of the details adds the edges back
# without most of the noise.
plot_reconstructions(
    noisy[0],
    np.stack([noisy_low[0], rec1, rec2]),
    labels=["low-pass part only", "from layer 1", "from layer 2"],
    reference=images[0],
)
plt.show()
