"""
Fruit or city? Pooled features of the 2010 and the adaptive network
====================================================================

A small labelled task built from the bundled images: 32x32 crops of the 10 fruit
and 10 city photographs (contrast normalised), labelled by their source set.
Crops of images 0-6 of each set train, crops of images 7-9 test (no image is
seen in both). Each network (the same numbers of maps: 9 and 45, 7x7 filters)
learns its filters without labels on training crops; every crop's maps of
layers 1 and 2 are max-pooled (absolute values) on a 1x1 + 2x2 + 4x4 spatial pyramid
(:func:`skdeconv.pooling.spatial_pyramid_pool`), and the same classifier
(standardisation + logistic regression, C chosen by 5-fold cross-validation on
the training crops) is trained on each. Pixels alone are the baseline.

Not part of the gallery (a few minutes). Run::

    OMP_NUM_THREADS=1 python examples/adaptive_fruit_city_classification.py --seed 0
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdeconv import AdaptiveDeconvNetwork, DeconvNetworkTransformer
from skdeconv.datasets import load_zeiler2010
from skdeconv.pooling import spatial_pyramid_pool
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows

SIZE = 32


def crops(images, n_per_image, rng):
    rows = []
    for image in images:
        for _ in range(n_per_image):
            r, c = rng.randint(0, image.shape[0] - SIZE + 1, size=2)
            rows.append(image[r:r + SIZE, c:c + SIZE])
    return np.array(rows)


def data(n_per_image, rng):
    parts = {}
    for label, name in enumerate(("fruit", "city")):
        images = load_zeiler2010(name, as_gray=True, dtype=np.float32)
        for split, index in (("train", slice(0, 7)), ("test", slice(7, 10))):
            X = crops(images[index], n_per_image, rng)
            parts.setdefault(split, []).append((X, np.full(len(X), label)))
    lcn = LocalContrastNormalizer(image_shape=(SIZE, SIZE))
    return {
        split: (lcn.fit_transform(images_to_rows(np.concatenate([x for x, _ in p]))),
                np.concatenate([y for _, y in p]))
        for split, p in parts.items()
    }


def pooled(maps_per_layer, shapes):
    return np.concatenate([
        spatial_pyramid_pool(np.asarray(Z).reshape((len(Z),) + shape), levels=(1, 2, 4))
        for Z, shape in zip(maps_per_layer, shapes)
    ], axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-per-image", type=int, default=30)
    parser.add_argument("--n-unsupervised", type=int, default=40,
                        help="training crops the networks learn their filters from")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.simplefilter("ignore", FutureWarning)  # LogisticRegressionCV's coming defaults
    rng = np.random.RandomState(args.seed)
    sets = data(args.n_per_image, rng)
    (X_train, y_train), (X_test, y_test) = sets["train"], sets["test"]
    print(f"{len(X_train)} training and {len(X_test)} test crops of {SIZE}x{SIZE}")
    subset = rng.choice(len(X_train), args.n_unsupervised, replace=False)
    networks = {
        "2010": DeconvNetworkTransformer(
            n_filters=(9, 45), filter_shape=7, connectivity=("full", "singles_and_pairs"),
            image_shape=(SIZE, SIZE), lmbda=(5.0, 20.0), max_iter=50, n_epochs=(100, 30),
            random_state=args.seed,
        ),
        "adaptive": AdaptiveDeconvNetwork(
            n_filters=(9, 45), filter_shape=7, connectivity="full", pool_shape=(3, 3, 2),
            image_shape=(SIZE, SIZE), max_iter=30, n_epochs=5, random_state=args.seed,
        ),
    }

    def classify(F_train, F_test):
        model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=8, cv=5, max_iter=2000))
        return model.fit(F_train, y_train).score(F_test, y_test)

    print(f"pixels: test accuracy {classify(X_train, X_test):.3f}")
    for name, net in networks.items():
        start = time.perf_counter()
        net.fit(X_train[subset])
        fitted = time.perf_counter() - start
        if name == "2010":
            shapes = [layer.feature_map_shape_ for _, layer in net.pipeline_.steps]
        else:
            shapes = net.layer_map_shapes_
        features = [pooled(net.transform(X, layers=(1, 2)), shapes) for X in (X_train, X_test)]
        layer2 = [pooled(net.transform(X, layers=(2,)), shapes[1:]) for X in (X_train, X_test)]
        print(f"{name}: layers 1+2 test accuracy {classify(*features):.3f}, layer 2 alone "
              f"{classify(*layer2):.3f} (fit {fitted:.0f} s, total "
              f"{time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
