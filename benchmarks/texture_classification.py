"""Are the default fit's filters as useful to a classifier as the paper's scheme's?

    OMP_NUM_THREADS=1 python benchmarks/texture_classification.py [--seeds 0 1 2]

A labelled task of our own (issue #12): scikit-image's three 512x512 texture
photographs (brick, grass, gravel) cut into 32x32 patches, the left half of
every image for training and the right half for testing (no patch overlaps
between the two), each patch contrast-normalised.  Features: the maps of a
:class:`~skdeconv.ConvSparseCoder` (16 filters of 7x7) learned on the
training patches, pooled by :class:`~skdeconv.pooling.PyramidPooledMaps`
(levels 1 and 2, max of |maps|), then standardised and classified by a
linear SVM.  Compared filter learnings, everything else equal:

- ``default``: ``ConvSparseCoder`` defaults (interleaved learning,
  ``lmbda='auto'``, ``solver='auto'``, 100 epochs);
- ``alternating``: the paper's block scheme, 5 epochs of inference to
  ``tol`` then filter steps;
- ``random``: random unit-norm filters, not learned (``lmbda`` from the
  'auto' rule at those filters);
- ``pixels``: the same classifier on the raw patch pixels.

Prints the test accuracy of each per seed, and their means.  Needs
scikit-image (``pip install -e ".[bench]"``).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skdeconv import ConvSparseCoder
from skdeconv.pooling import PyramidPooledMaps
from skdeconv.preprocessing import LocalContrastNormalizer

TEXTURES = ("brick", "grass", "gravel")
PATCH = 32


def _patches(image, columns):
    """Non-overlapping PATCH x PATCH patches of ``image[:, columns]`` as rows."""
    part = image[:, columns].astype(np.float32) / 255
    rows, cols = part.shape[0] // PATCH, part.shape[1] // PATCH
    blocks = part[: rows * PATCH, : cols * PATCH].reshape(rows, PATCH, cols, PATCH)
    return blocks.transpose(0, 2, 1, 3).reshape(-1, PATCH * PATCH)


def texture_patches():
    """(X_train, y_train, X_test, y_test): left halves train, right halves test."""
    import skimage.data

    splits = {"train": slice(0, 256), "test": slice(256, 512)}
    data = {}
    for name, columns in splits.items():
        X = [_patches(getattr(skimage.data, texture)(), columns) for texture in TEXTURES]
        y = np.repeat(np.arange(len(TEXTURES)), [len(x) for x in X])
        lcn = LocalContrastNormalizer(image_shape=(PATCH, PATCH))
        data[name] = (lcn.fit_transform(np.concatenate(X)), y)
    return data["train"] + data["test"]


def _classifier(coder):
    return make_pipeline(
        PyramidPooledMaps(coder, levels=(1, 2)), StandardScaler(), LinearSVC(C=0.1)
    )


def _random_filters_coder(coder, X, seed):
    """``coder`` with random unit-norm filters, frozen (never learned)."""
    fitted = clone(coder).set_params(n_epochs=1).fit(X)
    rng = np.random.RandomState(seed)
    filters = rng.standard_normal(fitted.filters_.shape).astype(fitted.filters_.dtype)
    filters /= np.linalg.norm(filters, axis=(-2, -1), keepdims=True)
    fitted.filters_ = filters
    return FrozenEstimator(fitted)


def compare(seed):
    """Test accuracy of every filter learning for one random_state."""
    X_train, y_train, X_test, y_test = texture_patches()
    coder = ConvSparseCoder(16, 7, image_shape=(PATCH, PATCH), random_state=seed)
    coders = {
        "default": coder,
        "alternating": clone(coder).set_params(fit_algorithm="alternating", n_epochs=5),
        "random": _random_filters_coder(coder, X_train, seed),
    }
    results = {}
    for name, candidate in coders.items():
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = _classifier(candidate).fit(X_train, y_train)
            results[name] = (model.score(X_test, y_test), time.perf_counter() - start,
                             len(caught))
    pixels = make_pipeline(StandardScaler(), LinearSVC(C=0.1)).fit(X_train, y_train)
    results["pixels"] = (pixels.score(X_test, y_test), 0.0, 0)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    print("| seed | filters | test accuracy | fit + transform (s) | warnings |")
    print("|---|---|---|---|---|")
    accuracies = {}
    for seed in args.seeds:
        for name, (accuracy, seconds, n_warnings) in compare(seed).items():
            accuracies.setdefault(name, []).append(accuracy)
            print(f"| {seed} | {name} | {accuracy:.3f} | {seconds:.1f} | {n_warnings} |",
                  flush=True)
    for name, values in accuracies.items():
        print(f"| mean | {name} | {np.mean(values):.3f} |   |   |")


if __name__ == "__main__":
    main()
