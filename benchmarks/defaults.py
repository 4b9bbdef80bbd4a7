"""What a user gets WITHOUT tuning: default networks and coders, measured.

    OMP_NUM_THREADS=1 python benchmarks/defaults.py networks   # table of the user guide
    OMP_NUM_THREADS=1 python benchmarks/defaults.py filters    # edge-like filters

``networks``: default :class:`DeconvNetworkTransformer` of 1-4 layers
(``lmbda='auto'``, ``connectivity='auto'``): the paper's 9/45/150 network on
the fruit and city images and an 8/16/32/64 one on the fruit images, at three
input scales (contrast-normalised, [0, 1] pixels, 0..255 pixels): percent of
non-zero maps and relative reconstruction error from every layer, fit time
and warnings.  A deeper network's first layers are those of the shallower
ones (the same seeds), so one 4-layer fit gives the figures of the networks
of 1 to 4 layers.

``filters``: how many of a default :class:`ConvSparseCoder`'s filters are
edge-like (more than half of a plane's spectral energy below half the
Nyquist frequency; random 7x7 planes: ~0.2) on the fruit images and on
scikit-image's camera (16 crops: 64x64 at half size, 128x128 at full size),
for several preprocessings and two seeds.  Needs scikit-image (``pip install -e ".[bench]"``).
"""

import sys
import time
import warnings

import numpy as np
from scipy.ndimage import gaussian_filter

from skdeconv import ConvSparseCoder, DeconvNetworkTransformer
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

SCALES = ("contrast-normalised", "[0, 1]", "0..255")


def edge_fraction(filters):
    """Per plane: fraction of spectral energy below half the Nyquist frequency."""
    planes = filters.reshape(-1, *filters.shape[-2:])
    power = np.abs(np.fft.fft2(planes, s=(32, 32))) ** 2
    freqs = np.fft.fftfreq(32) * 2
    low = np.hypot(freqs[:, None], freqs[None, :]) < 0.5
    return power[:, low].sum(axis=1) / power.sum(axis=(1, 2))


def _inputs(dataset, scale):
    images = load_zeiler2010(dataset, as_gray=True).astype(np.float32)
    X = images_to_rows(images)
    if scale == "contrast-normalised":
        return LocalContrastNormalizer(image_shape=(100, 100)).fit_transform(X)
    return X * 255 if scale == "0..255" else X


NETWORKS = (("fruit", (9, 45, 150)), ("city", (9, 45, 150)), ("fruit", (8, 16, 32, 64)))


def networks():
    print("| data | input | layer | non-zero maps | error from layer | fit_transform (s) |")
    print("|---|---|---|---|---|---|")
    for dataset, n_filters in NETWORKS:
        for scale in SCALES:
            X = _inputs(dataset, scale)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                net = DeconvNetworkTransformer(
                    n_filters=n_filters, image_shape=(100, 100), n_jobs=2, random_state=0
                )
                layers = tuple(range(1, len(n_filters) + 1))
                maps = net.fit_transform(X, layers=layers)
                seconds = time.perf_counter() - start
            for layer, Z in zip(layers, maps):
                error = np.linalg.norm(net.project(Z, layer) - X) / np.linalg.norm(X)
                print(
                    f"| {dataset} | {scale} | {layer} ({n_filters[layer - 1]} maps) | "
                    f"{np.mean(Z != 0):.2%} | {error:.3f} | {seconds:.0f} |", flush=True
                )
            names = sorted({w.category.__name__ for w in caught})
            print(f"|   |   | warnings: {len(caught)} {names} |   |   |   |", flush=True)


def _camera_crops(preprocess, half_size=True):
    """16 crops of scikit-image's camera: 64x64 at half size, or 128x128."""
    from skimage import data

    image = data.camera().astype(np.float32) / 255
    if half_size:
        image = image.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    image = preprocess(image)
    side = len(image) // 4
    return images_to_rows(np.array([
        image[top:top + side, left:left + side]
        for top in range(0, 4 * side, side) for left in range(0, 4 * side, side)
    ]))


def _lcn(sigma, kernel_size, low_pass_sigma=1.0):
    def transform(image):
        lcn = LocalContrastNormalizer(
            image_shape=image.shape, sigma=sigma, kernel_size=kernel_size,
            low_pass_sigma=low_pass_sigma,
        )
        return lcn.fit_transform(image.reshape(1, -1)).reshape(image.shape)
    return transform


def _high_pass(image, sigma=4.0):
    out = image - gaussian_filter(image, sigma)
    return out / out.std()


PREPROCESSINGS = {
    "LCN, defaults (low-pass 1, window (25, 4))": _lcn(4.0, 25),
    "LCN, low-pass 0.75": _lcn(4.0, 25, 0.75),
    "LCN, low-pass 0.5": _lcn(4.0, 25, 0.5),
    "LCN, no low-pass": _lcn(4.0, 25, 0.0),
    "LCN, no low-pass, toolbox window (5, 1.591)": _lcn(1.591, 5, 0.0),
    "LCN, no low-pass, window (49, 8)": _lcn(8.0, 49, 0.0),
    "high-pass (sigma 4)": _high_pass,
}
SEEDS = (0, 1)


def filters():
    print("| images | preprocessing | random_state | edge-like filters | non-zero maps "
          "| fit (s) |")
    print("|---|---|---|---|---|---|")
    fruit = load_zeiler2010("fruit", as_gray=True).astype(np.float32)
    for name, preprocess in PREPROCESSINGS.items():
        for images, X, shape, n_filters in (
            ("fruit (10 x 100x100)", images_to_rows(np.array([preprocess(i) for i in fruit])),
             (100, 100), 9),
            ("camera (16 x 64x64)", _camera_crops(preprocess), (64, 64), 12),
            ("camera, full size (16 x 128x128)", _camera_crops(preprocess, half_size=False),
             (128, 128), 12),
        ):
            for seed in SEEDS:
                start = time.perf_counter()
                coder = ConvSparseCoder(
                    n_filters, 7, image_shape=shape, n_jobs=2, random_state=seed
                ).fit(X)
                seconds = time.perf_counter() - start
                edge = edge_fraction(coder.filters_) > 0.5
                density = np.mean(coder.transform(X) != 0)
                print(
                    f"| {images} | {name} | {seed} | {edge.sum()}/{n_filters} | "
                    f"{density:.2%} | {seconds:.0f} |", flush=True
                )


if __name__ == "__main__":
    {"networks": networks, "filters": filters}[sys.argv[1] if len(sys.argv) > 1 else "networks"]()
