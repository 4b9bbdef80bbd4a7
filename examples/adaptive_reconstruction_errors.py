"""
Reconstruction errors of the adaptive network from every layer
==============================================================

Fits the :class:`~skdeconv.AdaptiveDeconvNetwork` of ``python -m skdeconv --model
adaptive`` (9/45/150 maps, 7x7 filters, pool (3, 3, 2), ``lmbda='auto'``, 5 epochs
of 30 iterations, ``n_jobs=2``) on the 10 bundled images of one set, contrast
normalised with an EXPLICIT window (default: the authors' toolbox, 5x5 with sigma
1.591, with which the 2010 network's errors 0.39 / 0.49 / 0.71 on fruit were
measured), and prints the relative reconstruction error, the non-zero maps per
image and the fit time of every layer. ``--model deconv`` fits the 2010 network instead, with the settings
``python -m skdeconv`` used up to commit 71c66ee (the 0.71 baseline): lmbda (5, 20,
30), FISTA, 300/50/2 epochs (interleaved, interleaved, alternating), max_iter
(50, 50, 40), tol (1e-3, 1e-3, 3e-3), n_jobs=2. Not part of the gallery (several
minutes). Run::

    OMP_NUM_THREADS=1 python examples/adaptive_reconstruction_errors.py --dataset fruit
    OMP_NUM_THREADS=1 python examples/adaptive_reconstruction_errors.py --dataset fruit \\
        --model deconv
"""

DECONV_2010 = {
    "n_filters": (9, 45, 150), "filter_shape": 7,
    "connectivity": ("full", "singles_and_pairs", "random_pairs"),
    "lmbda": (5.0, 20.0, 30.0), "solver": "fista", "max_iter": (50, 50, 40),
    "tol": (1e-3, 1e-3, 3e-3), "n_epochs": (300, 50, 2),
    "fit_algorithm": ("interleaved", "interleaved", "alternating"), "n_jobs": 2,
}


def deconv_errors(X, seed):
    net = DeconvNetworkTransformer(**DECONV_2010, image_shape=(100, 100), random_state=seed)
    start = time.perf_counter()
    net.fit(X)
    print(f"2010 network: fit {time.perf_counter() - start:.0f} s")
    maps = net.transform(X, layers=(1, 2, 3))
    for layer, Z in enumerate(maps, start=1):
        error = np.linalg.norm(net.project(Z, layer) - X) / np.linalg.norm(X)
        print(f"layer{layer}: relative error {error:.3f}, "
              f"{np.count_nonzero(Z) / len(X):.0f} non-zeros per image "
              f"({100 * np.mean(Z != 0):.2f}%)", flush=True)

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdeconv import AdaptiveDeconvNetwork, DeconvNetworkTransformer
from skdeconv._adaptive_job import ADAPTIVE, evaluate
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="Adaptive network errors per layer.")
    parser.add_argument("--dataset", choices=("fruit", "city"), default="fruit")
    parser.add_argument("--kernel-size", type=int, default=5)
    parser.add_argument("--sigma", type=float, default=1.591)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=("adaptive", "deconv"), default="adaptive")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    images = load_zeiler2010(args.dataset, as_gray=True, dtype=np.float32)
    X = LocalContrastNormalizer(
        image_shape=(100, 100), kernel_size=args.kernel_size, sigma=args.sigma
    ).fit_transform(images_to_rows(images))
    if args.model == "deconv":
        return deconv_errors(X, args.seed)
    net = AdaptiveDeconvNetwork(**ADAPTIVE["network"], image_shape=(100, 100),
                                n_jobs=ADAPTIVE["n_jobs"], random_state=args.seed)
    start = time.perf_counter()
    net.fit(X)
    fitted = time.perf_counter() - start
    _, _, layers = evaluate(net, X)
    print(f"{args.dataset}, LCN {args.kernel_size}/{args.sigma}: fit {fitted:.0f} s")
    for name, layer in layers.items():
        print(f"{name}: relative error {layer['relative_error']:.3f}, "
              f"{layer['nonzeros_per_image']:.0f} non-zeros per image "
              f"({100 * layer['nonzero_fraction']:.2f}%), lmbda {layer['lmbda']:.4g}, "
              f"fit {layer['fit_seconds']:.0f} s, last epoch costs "
              f"{np.round(layer['cost_history'][-2:], 1).tolist()}", flush=True)


if __name__ == "__main__":
    main()
