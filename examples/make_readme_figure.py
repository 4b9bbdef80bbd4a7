"""
The README figure: layer-1 filters
==================================

Makes ``docs/_static/readme_filters.png``, the figure at the top of the README:
the 9 layer-1 filters (7x7) of the paper's network, learned on the 10 bundled
fruit images (gray levels, contrast normalised) in 300 interleaved epochs (the
default ``fit_algorithm``) and drawn in one row. Run it once from the repository
root (about 10 seconds on 2 cores)::

    python examples/make_readme_figure.py

The documentation build shows this script but does not run it (its name does
not start with ``plot_``).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from skdeconv import ConvSparseCoder  # noqa: E402
from skdeconv.datasets import load_zeiler2010  # noqa: E402
from skdeconv.plotting import plot_filters  # noqa: E402
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "_static" / "readme_filters.png"


def main():
    images = load_zeiler2010("fruit", as_gray=True, dtype=np.float32)
    X = LocalContrastNormalizer(image_shape=(100, 100)).fit_transform(
        images_to_rows(images)
    )
    coder = ConvSparseCoder(
        n_filters=9, filter_shape=7, image_shape=(100, 100), lmbda=3.0,
        n_epochs=300, scale_input=True, random_state=0,
    )
    coder.fit(X)
    fig = plot_filters(
        coder, ncols=9, title="layer-1 filters learned on the fruit images"
    )
    for ax in fig.axes:
        ax.set_title("")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=100)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
