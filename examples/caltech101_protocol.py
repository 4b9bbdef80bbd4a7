"""
Caltech-101 with Deconvolutional Network features
=================================================

The object recognition protocol of Zeiler et al. (CVPR 2010) on your own copy
of Caltech-101 (``101_ObjectCategories``: one folder per class):

1. images resized to 150x150 gray levels, locally contrast normalised;
2. a 2-layer Deconvolutional Network (9 maps 7x7 "full", 45 maps 7x7 "singles
   and pairs") learnt on a few training images, by default in 300 and 50
   interleaved epochs as ``python -m skdeconv`` (``--n-epochs``,
   ``--fit-algorithm``: one value or one per layer);
3. dense descriptors from the layer-1 and layer-2 maps: 16x16 patches every
   8 pixels, ``|maps|`` averaged on a 4x4 grid
   (:class:`~skdeconv.pooling.DenseMapDescriptors`);
4. a k-means codebook and spatial pyramid histograms over 1x1, 2x2 and 4x4 cells
   (:class:`~skdeconv.pooling.BagOfWordsPyramid`);
5. an SVM with the histogram intersection kernel
   (:func:`~skdeconv.pooling.intersection_kernel`), trained on ``--n-train``
   images per class and tested on up to ``--n-test`` others per class.

``--model adaptive`` uses an :class:`~skdeconv.AdaptiveDeconvNetwork` (ICCV 2011)
with the same 9 and 45 maps instead, its layer-2 maps inferred in pixel space
through 3-D max pooling (3, 3, 2) of layer 1.

It prints the mean per-class recall (the accuracy the paper reports: 58.6%
with 15 training images per class, 66.9% with 30). Run it as::

    python examples/caltech101_protocol.py --data-dir path/to/101_ObjectCategories \\
        --n-train 30 --n-test 50 --seed 0

It needs Pillow (``pip install "skdeconv[images]"``) and takes hours on the full
set (map inference of ~8000 images of 150x150 through two layers); try
``--max-classes 5 --image-size 64`` first. The documentation build does not run it.
"""

import argparse
import time
from types import SimpleNamespace

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from skdeconv import AdaptiveDeconvNetwork, DeconvNetworkTransformer
from skdeconv.datasets import load_image_folder
from skdeconv.pooling import BagOfWordsPyramid, DenseMapDescriptors, intersection_kernel
from skdeconv.preprocessing import images_to_rows, local_contrast_normalize


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Caltech-101 protocol of Zeiler et al. (CVPR 2010) with skdeconv."
    )
    parser.add_argument("--data-dir", required=True,
                        help="folder with one sub-folder of images per class")
    parser.add_argument("--n-train", type=int, default=30,
                        help="training images per class (the paper: 15 or 30)")
    parser.add_argument("--n-test", type=int, default=50,
                        help="at most this many test images per class")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the split")
    parser.add_argument("--image-size", type=int, default=150, help="side of the images")
    parser.add_argument("--max-classes", type=int, default=None,
                        help="use only the first classes (quick runs)")
    parser.add_argument("--n-network-images", type=int, default=50,
                        help="training images the network learns its filters from")
    parser.add_argument("--model", choices=["deconv", "adaptive"], default="deconv",
                        help="deconv: the CVPR 2010 network; adaptive: the Adaptive "
                             "Deconvolutional Network (ICCV 2011, 3-D pooling (3, 3, 2))")
    parser.add_argument("--n-epochs", type=int, nargs="+", default=None,
                        help="filter learning epochs: one value, or one per layer "
                             "(default: 300 50 for deconv, 5 for adaptive)")
    parser.add_argument("--fit-algorithm", nargs="+", default=["interleaved"],
                        choices=["interleaved", "alternating"],
                        help="filter learning scheme: one value, or one per layer")
    parser.add_argument("--max-iter", type=int, default=200,
                        help="map inference iterations (transform; and every epoch "
                             "of 'alternating' learning)")
    parser.add_argument("--n-words", type=int, default=200, help="codebook size")
    parser.add_argument("--C", type=float, default=1.0, help="SVM regularisation")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel jobs")
    return parser.parse_args(argv)


class _AdaptiveLayers(AdaptiveDeconvNetwork):
    """The adaptive network in the geometry DenseMapDescriptors reads.

    DenseMapDescriptors centre-crops every layer's maps to the image and takes
    their shapes from ``network.pipeline_[l].feature_map_shape_``. Layer 2 of
    the adaptive network works on the pooled layer-1 maps, so its maps are
    upsampled (each value repeated over its pool block) by the spatial pool
    sizes of the layers below, which puts them on layer 1's grid, centred as
    the 2010 network's maps are; the shapes are exposed as ``pipeline_``.
    """

    def _strides(self, number):
        strides = np.ones(len(self.image_shape_), int)
        for pool in self.pool_shape_[: number - 1]:
            strides *= np.array(pool[:-1])
        return strides

    @property
    def pipeline_(self):
        return [
            SimpleNamespace(feature_map_shape_=(shape[0],) + tuple(
                np.array(shape[1:]) * self._strides(number)))
            for number, shape in enumerate(self.layer_map_shapes_, start=1)
        ]

    def transform(self, X, layers=None):
        if layers is None:
            return super().transform(X)
        upsampled = []
        for layer, Z in zip(layers, super().transform(X, layers=layers)):
            number = layer if layer > 0 else len(self.filters_) + 1 + layer
            Z = Z.reshape((len(Z),) + self.layer_map_shapes_[number - 1])
            for axis, stride in enumerate(self._strides(number), start=2):
                Z = np.repeat(Z, stride, axis=axis)
            upsampled.append(Z.reshape(len(Z), -1))
        return upsampled


def per_layer(values):
    """A command-line list of one value, or of one value per layer."""
    return values[0] if len(values) == 1 else tuple(values)


def split_per_class(y, n_train, n_test, rng):
    """Indices of ``n_train`` random training and up to ``n_test`` test images per class."""
    train, test = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        if len(members) <= n_train:
            raise ValueError(
                f"class {label} has {len(members)} images, not more than n_train={n_train}."
            )
        train.extend(members[:n_train])
        test.extend(members[n_train:n_train + n_test])
    return np.array(train), np.array(test)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.RandomState(args.seed)
    start = time.perf_counter()

    images, y, class_names = load_image_folder(
        args.data_dir, image_size=(args.image_size, args.image_size)
    )
    if args.max_classes is not None:
        keep = y < args.max_classes
        images, y, class_names = images[keep], y[keep], class_names[:args.max_classes]
    X = images_to_rows(local_contrast_normalize(images))
    train, test = split_per_class(y, args.n_train, args.n_test, rng)
    print(f"{len(class_names)} classes, {len(train)} training and {len(test)} test images")

    if args.model == "adaptive":
        network = _AdaptiveLayers(
            n_filters=(9, 45), filter_shape=7, connectivity="full", pool_shape=(3, 3, 2),
            image_shape=(args.image_size, args.image_size), max_iter=args.max_iter,
            n_epochs=per_layer(args.n_epochs or [5]), n_jobs=args.n_jobs,
            random_state=args.seed,
        )
    else:
        network = DeconvNetworkTransformer(
            n_filters=(9, 45), filter_shape=7, connectivity=("full", "singles_and_pairs"),
            image_shape=(args.image_size, args.image_size), max_iter=args.max_iter,
            n_epochs=per_layer(args.n_epochs or [300, 50]),
            fit_algorithm=per_layer(args.fit_algorithm), n_jobs=args.n_jobs,
            random_state=args.seed,
        )
    subset = rng.choice(train, min(args.n_network_images, len(train)), replace=False)
    network.fit(X[subset])
    print(f"network learnt from {len(subset)} images ({time.perf_counter() - start:.0f} s)")

    model = make_pipeline(
        BagOfWordsPyramid(DenseMapDescriptors(FrozenEstimator(network), layers=(1, 2)),
                          n_words=args.n_words, levels=(1, 2, 4), random_state=args.seed),
        SVC(kernel=intersection_kernel, C=args.C),
    )
    model.fit(X[train], y[train])
    accuracy = balanced_accuracy_score(y[test], model.predict(X[test]))
    print(f"mean per-class recall: {100 * accuracy:.1f}% "
          f"({args.n_train} training images per class, {time.perf_counter() - start:.0f} s)")
    return accuracy


if __name__ == "__main__":
    main()
