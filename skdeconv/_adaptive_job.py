"""``python -m skdeconv --model adaptive``: the Adaptive Deconvolutional Network job.

Learns a 3-layer :class:`~skdeconv.AdaptiveDeconvNetwork` (Zeiler, Taylor &
Fergus, ICCV 2011) on the bundled gray, contrast-normalised images and writes
to ``--out``:

- ``features_layer<l>.png``: the strongest activation of each of the most
  active maps of layer l in the shown image, projected alone to pixel space
  with that image's switches (cropped around its support);
- ``reconstructions.png``: the image and its top-down reconstructions from
  every layer (``R_l z_l``, in pixel space);
- ``feature_maps_layer1.png``, ``feature_maps_layer2.png``: unpooled maps;
- ``cost_history.png``: every layer's training cost per epoch;
- ``summary.json`` and ``summary.txt``: settings, timings, map densities,
  non-zeros per image and the relative reconstruction error from every layer.
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._adaptive import AdaptiveDeconvNetwork
from ._adaptive_projection import project_maps
from ._jobs import (
    job_data, job_n_jobs, layer_figures, relative_error, save_figures, write_summary,
)

# The paper's 9/45/150 maps with 7x7 filters, 3x3 spatial pooling over pairs
# of maps, lmbda='auto' (10 x lambda_min per layer), 5 epochs of 30 inference
# iterations per layer: docs/performance.rst ("The jobs of python -m
# skdeconv") gives the measurement behind the number of epochs.  Map
# inference runs on n_jobs joblib workers over chunks of images (docs/adaptive.rst).
ADAPTIVE = {
    "n_images": 10,
    "crop": None,
    "n_jobs": 2,
    "network": {
        "n_filters": (9, 45, 150),
        "filter_shape": 7,
        "connectivity": ("full", "full", "random_pairs"),
        "pool_shape": (3, 3, 2),
        "lmbda": "auto",
        "max_iter": 30,
        "tol": 1e-3,
        "n_epochs": 5,
    },
}
# --quick: the same network, smaller and shorter.
QUICK = {
    "n_images": 2,
    "crop": 24,
    "n_jobs": 1,
    "network": {
        **ADAPTIVE["network"],
        "n_filters": (3, 6, 12),
        "filter_shape": 5,
        "pool_shape": (2, 2, 2),
        "max_iter": 10,
        "tol": 1e-2,
        "n_epochs": 2,
    },
}
# Tiles of the features figures: the most active maps of every layer.
MAX_FEATURE_TILES = 36


def evaluate(net, X):
    """Maps of every layer (one inference pass), reconstructions and statistics."""
    check = net._check_input(X)
    maps, switches, operators = net._infer(check, len(net.filters_))
    reconstructions, layers = [], {}
    for number, Z in enumerate(maps, start=1):
        reconstruction = project_maps(Z, operators[:number], switches, net.pool_shape_)
        reconstructions.append(reconstruction)
        layers[f"layer{number}"] = {
            "relative_error": relative_error(X, reconstruction),
            "nonzero_fraction": float(np.mean(Z != 0)),
            "nonzeros_per_image": float(np.count_nonzero(Z) / len(X)),
            "lmbda": float(net.lmbda_[number - 1]),
            "lmbda_over_lmbda_min": float(net.lmbda_[number - 1] / net.lmbda_min_[number - 1]),
            "fit_seconds": float(net.fit_seconds_[number - 1]),
            "cost_history": net.cost_history_[number - 1].tolist(),
        }
    return maps, reconstructions, layers


def crop_tiles(projections, image_shape, max_size=None):
    """Projections (n, n_features) cropped to a common window around their support."""
    images = projections.reshape((len(projections),) + tuple(image_shape))
    boxes = []
    for image in images:
        live = np.argwhere(np.abs(image) > 1e-6 * max(np.abs(image).max(), 1e-30))
        if not live.size:
            live = np.zeros((1, len(image_shape)), int)
        boxes.append((live.min(axis=0), live.max(axis=0) + 1))
    size = np.max([high - low for low, high in boxes], axis=0)
    if max_size is not None:
        size = np.minimum(size, max_size)
    tiles = []
    for image, (low, high) in zip(images, boxes):
        centre = (low + high) // 2
        start = np.clip(centre - size // 2, 0, np.array(image_shape) - size)
        window = tuple(slice(int(s), int(s + n)) for s, n in zip(start, size))
        tiles.append(image[window])
    return np.stack(tiles)[:, None]


def _feature_figures(plt, net, X, index, image_shape):
    from .plotting import plot_filters

    figures = {}
    for number, shape in enumerate(net.layer_map_shapes_, start=1):
        projections, locations = net.project_activations(X[index:index + 1], layer=number)
        strength = np.abs(projections[0]).sum(axis=1)
        order = np.argsort(-strength, kind="stable")[:MAX_FEATURE_TILES]
        order = order[strength[order] > 0]
        if not order.size:
            continue
        tiles = crop_tiles(projections[0, order], image_shape)
        figure = plot_filters(
            tiles, title=f"layer {number}: single activations in pixel space",
        )
        for ax, k in zip(figure.axes, locations[0, order, 0]):
            ax.set_title(f"map {k}", fontsize=7)
        figures[f"features_layer{number}"] = figure
    return figures


def _write_figures(plt, net, X, image_shape, maps, reconstructions, index, out):
    from .plotting import plot_cost_history

    figures = _feature_figures(plt, net, X, index, image_shape)
    map_shapes = [shape[1:] for shape in net.layer_map_shapes_]
    figures.update(layer_figures(
        X, image_shape, maps, reconstructions, index, map_shapes, "unpooled maps"
    ))
    ax = plt.figure(figsize=(5, 3.5), layout="constrained").add_subplot()
    for layer, history in enumerate(net.cost_history_, start=1):
        plot_cost_history(history, yscale="log", ax=ax)
        ax.lines[-1].set_label(f"layer {layer}")
    ax.legend()
    figures["cost_history"] = ax.figure
    return save_figures(plt, figures, out)


def run_adaptive(args, plt, load):
    """The job behind ``python -m skdeconv --model adaptive``; returns 0."""
    start = time.perf_counter()
    config = QUICK if args.quick else ADAPTIVE
    X, image_shape, dtype = job_data(args, config, load)
    net = AdaptiveDeconvNetwork(
        **config["network"], image_shape=image_shape, n_jobs=job_n_jobs(args, config),
        random_state=args.seed, verbose=int(not args.quiet),
    )
    if not args.quiet:
        print(f"Learning an adaptive network of {net.n_filters} maps on {len(X)} "
              f"{args.dataset} images of {image_shape}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net.fit(X)
        fitted = time.perf_counter()
        maps, reconstructions, layers = evaluate(net, X)
    evaluated = time.perf_counter()
    paths = _write_figures(plt, net, X, image_shape, maps, reconstructions, args.image,
                           args.out)
    summary = {
        "model": "adaptive", "dataset": args.dataset, "n_images": len(X),
        "image_shape": list(image_shape), "dtype": np.dtype(dtype).name,
        "settings": {k: v for k, v in net.get_params().items()},
        "fit_seconds": fitted - start, "evaluate_seconds": evaluated - fitted,
        "total_seconds": time.perf_counter() - start, "layers": layers,
        "figures": [path.name for path in paths],
    }
    lines = [
        f"adaptive network, {args.dataset}: {len(X)} images of {tuple(image_shape)}, "
        f"{summary['dtype']}; fit {summary['fit_seconds']:.1f} s, evaluation "
        f"{summary['evaluate_seconds']:.1f} s, total {summary['total_seconds']:.1f} s"
    ] + [
        f"{name}: relative reconstruction error {layer['relative_error']:.3f}, non-zero maps "
        f"{100 * layer['nonzero_fraction']:.2f}% ({layer['nonzeros_per_image']:.0f} per "
        f"image), lmbda {layer['lmbda']:.4g}, fit {layer['fit_seconds']:.1f} s"
        for name, layer in layers.items()
    ]
    write_summary(summary, lines, args.out)
    if not args.quiet:
        print("\n".join(lines + [f"Wrote {len(paths)} figures to {args.out}"]), flush=True)
    return 0
