"""
Filters from a photograph of your own
=====================================

How to learn filters on an image that is not bundled with skdeconv, with the
default parameters: here scikit-learn's sample photograph of a Chinese
temple (``sklearn.datasets.load_sample_image``, 427x640 RGB), in gray levels.

Three steps matter more than any parameter:

1. **Scale.** 7x7 filters see structure at the scale of 7 pixels: halve the
   photograph so that edges, not film grain, fill them.
2. **Preprocessing.** Sparse coding explains whatever the input holds; remove
   what the filters should not learn.
   :class:`~skdeconv.preprocessing.LocalContrastNormalizer` blurs slightly
   (the finest texture and aliasing would otherwise be learned as speckle),
   subtracts a local mean and divides by the local standard deviation
   (bounded below by its mean over the image, so flat sky is not amplified
   into noise).  Normalise the whole image *before* cutting crops: each crop
   would otherwise get its own floor.  A plain band-pass (the same slight
   blur minus a wide Gaussian blur, divided by one global standard
   deviation) is the simpler alternative: it keeps the contrast differences
   between regions, which LCN evens out.
3. **Crops.** A few dozen crops of 64x64 pixels, a few filter widths wide,
   learn the same filters as whole images at a fraction of the cost.

Everything else is left at its default: ``lmbda='auto'`` (a weight relative
to the data, see the user guide), ``solver='auto'``, interleaved learning.
"""

# %%
# The photograph, at half size
# ----------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_sample_image

from skdeconv import ConvSparseCoder
from skdeconv.plotting import plot_filters, plot_reconstructions
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

photo = load_sample_image("china.jpg").mean(axis=2) / 255.0  # gray, (427, 640)
height, width = (s // 2 * 2 for s in photo.shape)
photo = photo[:height, :width].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
print("half-size photograph:", photo.shape)


def crops(image, size=64, n_crops=24, seed=0):
    """``n_crops`` random ``size`` x ``size`` crops of ``image`` as rows."""
    rng = np.random.RandomState(seed)
    tops = rng.randint(image.shape[0] - size, size=n_crops)
    lefts = rng.randint(image.shape[1] - size, size=n_crops)
    return images_to_rows(np.array([image[t:t + size, s:s + size] for t, s in zip(tops, lefts)]))


# %%
# Two preprocessings of the whole image
# -------------------------------------
lcn = LocalContrastNormalizer(image_shape=photo.shape).fit_transform(photo.reshape(1, -1))
lcn = lcn.reshape(photo.shape)
band_pass = gaussian_filter(photo, sigma=1.0) - gaussian_filter(photo, sigma=4.0)
band_pass /= band_pass.std()

fig, axes = plt.subplots(1, 3, figsize=(10, 2.6), layout="constrained")
for ax, image, title in zip(
    axes, (photo, lcn, band_pass), ("half size", "local contrast normalised", "band-pass")
):
    ax.imshow(image, cmap="gray")
    ax.set(title=title, xticks=[], yticks=[])

# %%
# Learn 12 filters with the defaults on each
# ------------------------------------------
coders = {}
for name, image in (("LCN", lcn), ("band-pass", band_pass)):
    X = crops(image)
    start = time.perf_counter()
    coder = ConvSparseCoder(n_filters=12, filter_shape=7, image_shape=(64, 64), random_state=0)
    coders[name] = coder.fit(X)
    maps = coder.transform(X)
    error = np.linalg.norm(coder.inverse_transform(maps) - X) / np.linalg.norm(X)
    print(
        f"{name}: {time.perf_counter() - start:.1f} s, lmbda_={coder.lmbda_:.3g}, "
        f"{np.mean(maps != 0):.1%} non-zero maps, relative error {error:.2f}"
    )

# %%
# Both give oriented edges and bars (with, on this photograph, a blob or a
# corner): all 12 filters are edge-like with either preprocessing (more than
# half of their spectral energy below half the Nyquist frequency, the count
# of ``benchmarks/defaults.py``).  The two sets look alike because the fit is
# non-convex and both start from the same random filters
# (``random_state=0``).  Without the slight blur (``low_pass_sigma=0``, or a
# plain high-pass) half of them come out as checkerboard-like filters that
# code the foliage's and the roof tiles' finest texture; filters learned on
# the toolbox's narrow LCN window (``kernel_size=5, sigma=1.591``) come out
# speckled (the user guide compares the preprocessings).
for name, coder in coders.items():
    plot_filters(coder, ncols=12, title=f"12 filters of 7x7 learned on {name} crops")

# %%
# A crop and its reconstruction from its sparse maps
# --------------------------------------------------
coder = coders["LCN"]
X = crops(lcn, n_crops=1, seed=1)
plot_reconstructions(
    X[0], coder.inverse_transform(coder.transform(X)), labels=["from 12 maps"],
    image_shape=(64, 64), metric="relative_error",
)
plt.show()
