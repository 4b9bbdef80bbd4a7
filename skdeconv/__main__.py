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
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._jobs import (
    job_data, job_n_jobs, layer_figures, pyplot, relative_error, save_figures, write_summary,
)
from ._network import DeconvNetworkTransformer
from .datasets import load_zeiler2010
from .preprocessing import LocalContrastNormalizer, images_to_rows

# The paper's network (9/45/150 maps, 7x7 filters, connectivities full /
# singles and pairs / random pairs) with the library's defaults otherwise:
# lmbda='auto' on every layer (a weight relative to the layer's input, see the
# user guide), solver='auto', interleaved learning on every layer, the number
# of epochs chosen so that every layer's cost curve is flat (its last 10% of
# epochs change the cost by less than 1%; summary.json records it).
PAPER = {
    "n_images": 10,
    "crop": None,
    "n_jobs": 2,
    "network": {
        "n_filters": (9, 45, 150),
        "filter_shape": 7,
        "n_epochs": (100, 40, 80),
    },
}
# --quick: a smoke test of the whole job in a few seconds (2 cropped images).
QUICK = {
    "n_images": 2,
    "crop": 24,
    "n_jobs": 1,
    "network": {
        "n_filters": (3, 6, 12),
        "filter_shape": 5,
        "max_iter": 10,
        "tol": 1e-2,
        "n_epochs": (3, 3, 1),
    },
}


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m skdeconv",
        description="Learn the 3-layer Deconvolutional Network of Zeiler et al. "
        "(CVPR 2010) on the bundled images and write its figures as PNG files.",
    )
    parser.add_argument("--dataset", choices=("fruit", "city"), default="fruit")
    parser.add_argument("--model", choices=("deconv", "adaptive"), default="deconv",
                        help="deconv: the CVPR 2010 network (default); adaptive: the "
                        "Adaptive Deconvolutional Network of ICCV 2011 (3-D pooling with "
                        "switches, every layer inferred in pixel space)")
    parser.add_argument("--out", type=Path, default=Path("figures"),
                        help="output directory (default: ./figures)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny images and iterations: a smoke test")
    parser.add_argument("--image", type=int, default=0,
                        help="index of the image shown in the figures")
    parser.add_argument("--float64", action="store_true",
                        help="compute in float64 (default float32, ~2x faster)")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="joblib workers over images (default: 2; 1 with --quick)")
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
    return DeconvNetworkTransformer(
        **config["network"], image_shape=image_shape,
        n_jobs=job_n_jobs(args, config),
        random_state=args.seed, verbose=int(not args.quiet),
    )


def _progress(args, message):
    if not args.quiet:
        print(message, flush=True)


def _last_tenth_change(history):
    """Relative change of the cost over the last 10% of the epochs (flat: < 1%)."""
    start = history[-min(len(history), max(2, len(history) // 10))]
    return float((start - history[-1]) / abs(start)) if start else 0.0


def _evaluate(net, X, maps):
    """Reconstructions from every layer's maps, their errors and densities."""
    layers = tuple(range(1, len(net.pipeline_) + 1))
    reconstructions = [net.project(Z, layer) for layer, Z in zip(layers, maps)]
    return reconstructions, {
        f"layer{layer}": {
            "relative_error": relative_error(X, R),
            "nonzero_fraction": float(np.mean(Z != 0)),
            "input_scale": float(net.pipeline_[layer - 1].input_scale_),
            "cost_history": net.pipeline_[layer - 1].cost_history_.tolist(),
            "last_tenth_cost_change": _last_tenth_change(net.pipeline_[layer - 1].cost_history_),
            "lmbda": float(net.pipeline_[layer - 1].lmbda_),
        }
        for layer, Z, R in zip(layers, maps, reconstructions)
    }


def _write_figures(plt, net, X, image_shape, maps, reconstructions, index, out):
    from .plotting import plot_cost_history, plot_filters

    n_layers = len(net.pipeline_)
    figures = {
        f"filters_layer{layer}": plot_filters(
            net, layer=layer, title=f"layer {layer} filters in pixel space"
        )
        for layer in range(1, n_layers + 1)
    }
    map_shapes = [layer.feature_map_shape_[1:] for layer in net.pipeline_]
    figures.update(layer_figures(
        X, image_shape, maps, reconstructions, index, map_shapes, "feature maps"
    ))
    figures["cost_history"] = plot_cost_history(net, yscale="log")
    return save_figures(plt, figures, out)


def _write_summary(summary, out):
    lines = [
        f"{summary['dataset']}: {summary['n_images']} images of "
        f"{summary['image_shape']}, "
        f"{summary['dtype']}; fit with every layer's maps {summary['fit_seconds']:.1f} s, "
        f"reconstructions {summary['evaluate_seconds']:.1f} s, "
        f"total {summary['total_seconds']:.1f} s",
    ]
    for name, layer in summary["layers"].items():
        lines.append(
            f"{name}: relative reconstruction error {layer['relative_error']:.3f}, "
            f"non-zero maps {100 * layer['nonzero_fraction']:.2f}%, lmbda_ "
            f"{layer['lmbda']:.3g}, cost change over the last 10% of epochs "
            f"{100 * layer['last_tenth_cost_change']:.2f}%"
        )
    write_summary(summary, lines, out)
    return lines


def _learn(net, X, args):
    """Fit the network with every layer's maps of X (``fit_transform``: the
    maps that train the next layer are not inferred again), then evaluate
    every layer; returns the timings too."""
    start = time.perf_counter()
    layers = tuple(range(1, len(net.n_filters) + 1))
    with warnings.catch_warnings():
        if args.quick:
            # --quick stops inference at max_iter by design: no warnings.
            warnings.simplefilter("ignore", ConvergenceWarning)
        maps = net.fit_transform(X, layers=layers)
    fitted = time.perf_counter()
    _progress(args, f"Fitted, with every layer's maps, in {fitted - start:.1f} s; "
                    "reconstructing from every layer")
    reconstructions, summary = _evaluate(net, X, maps)
    evaluated = time.perf_counter()
    _progress(args, f"Reconstructed in {evaluated - fitted:.1f} s; drawing figures")
    timings = {"fit_seconds": fitted - start, "evaluate_seconds": evaluated - fitted}
    return maps, reconstructions, summary, timings


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
    start = time.perf_counter()
    args = _parse_args(argv)
    plt = pyplot()
    if args.model == "adaptive":
        from ._adaptive_job import run_adaptive

        return run_adaptive(args, plt, _load)
    config = QUICK if args.quick else PAPER
    X, image_shape, dtype = job_data(args, config, _load)
    net = _network(config, image_shape, args)
    _progress(args, f"Learning {net.n_filters} maps on {len(X)} {args.dataset} "
                    f"images of {image_shape} ({np.dtype(dtype).name})")
    maps, reconstructions, layers, timings = _learn(net, X, args)
    paths = _write_figures(
        plt, net, X, image_shape, maps, reconstructions, args.image, args.out
    )
    summary = {
        "dataset": args.dataset, "n_images": len(X), "image_shape": list(image_shape),
        "dtype": np.dtype(dtype).name, "settings": net.get_params(), **timings,
        "total_seconds": time.perf_counter() - start, "layers": layers,
        "figures": [path.name for path in paths],
    }
    lines = _write_summary(summary, args.out)
    _progress(args, "\n".join(lines + [f"Wrote {len(paths)} figures to {args.out}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
