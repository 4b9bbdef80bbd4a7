"""What the two jobs of ``python -m skdeconv`` share.

The main job (``__main__.py``, the CVPR 2010 network) and the adaptive job
(``_adaptive_job.py``, the ICCV 2011 network) read their data, draw the
reconstruction and feature-map figures and write their figures and summaries
the same way.
"""

import json

import numpy as np


def pyplot():
    """matplotlib.pyplot with a file backend, or exit before any learning."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "python -m skdeconv needs matplotlib: pip install 'skdeconv[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def relative_error(X, reconstruction):
    """||reconstruction - X|| / ||X||, over all samples."""
    return float(np.linalg.norm(reconstruction - X) / np.linalg.norm(X))


def job_n_jobs(args, config):
    """``--n-jobs``, or the job's default (``config["n_jobs"]``) when not given."""
    return config["n_jobs"] if args.n_jobs is None else args.n_jobs


def job_data(args, config, load):
    """Rows of the job's images, their spatial shape and dtype; creates ``--out``.

    ``load(dataset, config, dtype)`` returns the rows and the spatial shape.
    """
    dtype = np.float64 if args.float64 else np.float32
    X, image_shape = load(args.dataset, config, dtype)
    if not 0 <= args.image < len(X):
        raise SystemExit(f"--image must be in 0..{len(X) - 1}, got {args.image}.")
    args.out.mkdir(parents=True, exist_ok=True)
    return X, image_shape, dtype


def layer_figures(X, image_shape, maps, reconstructions, index, map_shapes, maps_name):
    """The reconstructions of sample ``index`` from every layer and its maps.

    ``maps[l]`` and ``reconstructions[l]`` hold the rows of layer ``l + 1``;
    ``map_shapes[l]`` is the spatial shape of one of its maps.  Returns
    ``{"reconstructions": ..., "feature_maps_layer1": ..., "feature_maps_layer2": ...}``
    (the maps of the first two layers only).
    """
    from .plotting import plot_feature_maps, plot_reconstructions

    n_layers = len(reconstructions)
    figures = {
        "reconstructions": plot_reconstructions(
            X[index], [R[index] for R in reconstructions], image_shape=image_shape,
            labels=[f"from layer {layer}" for layer in range(1, n_layers + 1)],
            metric="relative_error",
        )
    }
    for layer in (1, 2)[:n_layers]:
        figures[f"feature_maps_layer{layer}"] = plot_feature_maps(
            np.ravel(maps[layer - 1][index]), map_shape=map_shapes[layer - 1],
            title=f"layer {layer} {maps_name} of image {index}",
        )
    return figures


def save_figures(plt, figures, out):
    """Write every figure to ``out/<name>.png``, close it; return the paths."""
    paths = []
    for name, figure in figures.items():
        paths.append(out / f"{name}.png")
        figure.savefig(paths[-1], dpi=100)
        plt.close(figure)
    return paths


def write_summary(summary, lines, out):
    """Write ``summary.json`` and the human-readable ``summary.txt`` to ``out``."""
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
