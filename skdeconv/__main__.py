"""The paper's experiment: learn a 3-layer network on the fruit or city images.

Run ``python -m skdeconv --help`` (or the console script ``skdeconv-paper``).
Learns the 9/45/150-map network of Zeiler et al. (CVPR 2010) with 7x7
filters on the bundled gray-level, contrast-normalised images and writes to
``--out``:

- ``filters_layer<l>.png``: the filters of every layer in pixel space
  (:meth:`DeconvNetworkTransformer.project_filters`);
- ``reconstructions.png``: one image and its reconstructions from the maps
  of every layer (:meth:`DeconvNetworkTransformer.project`);
- ``feature_maps_layer1.png``, ``feature_maps_layer2.png``: maps of that image;
- ``cost_history.png``: the training cost of every layer per epoch;
- ``summary.json`` and ``summary.txt``: settings, timings, map densities and
  the relative reconstruction error from every layer.

matplotlib is needed (``pip install 'skdeconv[plot]'``).
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._network import DeconvNetworkTransformer
from .datasets import load_zeiler2010
from .preprocessing import LocalContrastNormalizer, images_to_rows

# Per-layer settings, chosen to finish well within 5 minutes on 2 cores.
# lmbda grows with the layer: with every layer's input scaled to [-1, 1],
# lmbda = 1 leaves the maps empty and a fixed lmbda gives ever sparser upper
# layers; (10, 20, 20) gives ~6%, ~4% and ~?% non-zeros.  Layer 3 (150 maps
# from 45 channels) costs ~10x more per iteration than layers 1 and 2
# together, so it gets fewer epochs and a looser tolerance; map inference is
# warm started across epochs, so later epochs need few iterations.
PAPER = {
    "n_images": 10,
    "crop": None,
    "n_filters": (9, 45, 150),
    "filter_shape": 7,
    "lmbda": (10.0, 20.0, 30.0),
    "max_iter": (50, 50, 40),
    "tol": (1e-3, 1e-3, 3e-3),
    "n_epochs": (30, 5, 2),
}
# --quick: a smoke test of the whole job in a few seconds.
QUICK = {
    "n_images": 2,
    "crop": 24,
    "n_filters": (3, 6, 12),
    "filter_shape": 5,
    "lmbda": (10.0, 20.0, 20.0),
    "max_iter": 10,
    "tol": 1e-2,
    "n_epochs": 1,
}
CONNECTIVITY = ("full", "singles_and_pairs", "random_pairs")


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m skdeconv",
        description="Learn the 3-layer Deconvolutional Network of Zeiler et al. "
        "(CVPR 2010) on the bundled images and write its figures as PNG files.",
    )
    parser.add_argument("--dataset", choices=("fruit", "city"), default="fruit")
    parser.add_argument("--out", type=Path, default=Path("figures"),
                        help="output directory (default: ./figures)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny images and iterations: a smoke test")
    parser.add_argument("--image", type=int, default=0,
                        help="index of the image shown in the figures")
    parser.add_argument("--float64", action="store_true",
                        help="compute in float64 (default float32, ~2x faster)")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="joblib workers over images (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser.parse_args(argv)


def _load(dataset, config, dtype):
    """Contrast-normalised gray images as rows, and their spatial shape."""
    images = load_zeiler2010(dataset, as_gray=True, dtype=dtype)[: config["n_images"]]
    if config["crop"]:
        images = images[:, : config["crop"], : config["crop"]]
    image_shape = images.shape[1:]
    X = LocalContrastNormalizer(image_shape=image_shape).fit_transform(
        images_to_rows(images)
    )
    return X, image_shape


def _network(config, image_shape, args):
    settings = {k: v for k, v in config.items() if k not in ("n_images", "crop")}
    return DeconvNetworkTransformer(
        **settings, connectivity=CONNECTIVITY, image_shape=image_shape,
        n_jobs=args.n_jobs, random_state=args.seed, verbose=int(not args.quiet),
    )


def _relative_error(X, reconstruction):
    return float(np.linalg.norm(reconstruction - X) / np.linalg.norm(X))


def _evaluate(net, X):
    """Maps of every layer, reconstructions from each and their errors."""
    layers = tuple(range(1, len(net.pipeline_) + 1))
    maps = net.transform(X, layers=layers)
    reconstructions = [net.project(Z, layer) for layer, Z in zip(layers, maps)]
    return maps, reconstructions, {
        f"layer{layer}": {
            "relative_error": _relative_error(X, R),
            "nonzero_fraction": float(np.mean(Z != 0)),
            "input_scale": float(net.pipeline_[layer - 1].input_scale_),
            "cost_history": net.pipeline_[layer - 1].cost_history_.tolist(),
        }
        for layer, Z, R in zip(layers, maps, reconstructions)
    }


def _write_figures(net, X, image_shape, maps, reconstructions, index, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import (
        plot_cost_history,
        plot_feature_maps,
        plot_filters,
        plot_reconstructions,
    )

    n_layers = len(net.pipeline_)
    figures = {
        f"filters_layer{layer}": plot_filters(
            net, layer=layer, title=f"layer {layer} filters in pixel space"
        )
        for layer in range(1, n_layers + 1)
    }
    figures["reconstructions"] = plot_reconstructions(
        X[index], [R[index] for R in reconstructions], image_shape=image_shape,
        labels=[f"from layer {layer}" for layer in range(1, n_layers + 1)],
        metric="relative_error",
    )
    for layer in (1, 2)[:n_layers]:
        figures[f"feature_maps_layer{layer}"] = plot_feature_maps(
            maps[layer - 1][index], map_shape=net.pipeline_[layer - 1].feature_map_shape_[1:],
            title=f"layer {layer} feature maps of image {index}",
        )
    figures["cost_history"] = plot_cost_history(net, yscale="log")
    paths = []
    for name, figure in figures.items():
        paths.append(out / f"{name}.png")
        figure.savefig(paths[-1], dpi=100)
        plt.close(figure)
    return paths


def _write_summary(summary, out):
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"{summary['dataset']}: {summary['n_images']} images of {summary['image_shape']}, "
        f"{summary['dtype']}; fit {summary['fit_seconds']:.1f} s, "
        f"evaluation {summary['evaluate_seconds']:.1f} s, "
        f"total {summary['total_seconds']:.1f} s",
    ]
    for name, layer in summary["layers"].items():
        lines.append(
            f"{name}: relative reconstruction error {layer['relative_error']:.3f}, "
            f"non-zero maps {100 * layer['nonzero_fraction']:.2f}%"
        )
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    return lines


def main(argv=None):
    """Run the experiment; ``argv`` defaults to the command line.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments (see ``python -m skdeconv --help``).

    Returns
    -------
    status : int
        0 on success.
    """
    args = _parse_args(argv)
    start = time.perf_counter()
    config = QUICK if args.quick else PAPER
    dtype = np.float64 if args.float64 else np.float32
    X, image_shape = _load(args.dataset, config, dtype)
    loaded = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    net = _network(config, image_shape, args)
    if not args.quiet:
        print(f"Learning {net.n_filters} maps on {len(X)} {args.dataset} images "
              f"of {image_shape} ({np.dtype(dtype).name})", flush=True)
    with warnings.catch_warnings():
        # Inference stops at max_iter by design (a time budget): no warnings.
        warnings.simplefilter("ignore", ConvergenceWarning)
        net.fit(X)
        fitted = time.perf_counter()
        maps, reconstructions, layers = _evaluate(net, X)
    evaluated = time.perf_counter()
    paths = _write_figures(net, X, image_shape, maps, reconstructions, args.image, args.out)
    summary = {
        "dataset": args.dataset, "n_images": len(X), "image_shape": list(image_shape),
        "dtype": np.dtype(dtype).name, "settings": net.get_params(),
        "fit_seconds": fitted - loaded, "evaluate_seconds": evaluated - fitted,
        "total_seconds": time.perf_counter() - start, "layers": layers,
        "figures": [path.name for path in paths],
    }
    lines = _write_summary(summary, args.out)
    if not args.quiet:
        print("\n".join(lines + [f"Wrote {len(paths)} figures to {args.out}"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
