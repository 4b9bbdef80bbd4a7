"""Fixed-length features from feature maps, for classifiers.

Two ways to turn the variable-geometry feature maps of a
:class:`~skdeconv.ConvSparseCoder` or a :class:`~skdeconv.DeconvNetworkTransformer`
into features for a classifier:

- **Spatial pyramid pooling** of the maps themselves:
  :func:`spatial_pyramid_pool` (arrays), :class:`SpatialPyramidPooling` (a
  transformer with an explicit ``map_shape``) and :class:`PyramidPooledMaps`
  (a transformer wrapping the coder, which reads the map geometry from the
  fitted coder, so that a grid search over ``filter_shape`` works).
- **The Caltech-101 descriptor pipeline of Zeiler et al. (CVPR 2010)**: dense
  descriptors from the layer-1 and layer-2 maps (:class:`DenseMapDescriptors`),
  a k-means codebook with spatial pyramid histograms (:class:`BagOfWordsPyramid`)
  and a histogram intersection kernel (:func:`intersection_kernel`) for
  :class:`~sklearn.svm.SVC`. ``examples/caltech101_protocol.py`` runs the whole
  protocol; :func:`skdeconv.datasets.load_image_folder` reads its folder-per-class
  image tree (``skdeconv.pooling.load_image_folder`` is the same function, kept
  importable from here, its former place).

Why a wrapper rather than a pooling step that guesses its geometry: a
:class:`~sklearn.pipeline.Pipeline` step cannot see the step before it, so a
separate pooling step would need ``map_shape`` by hand, and that shape changes
with the coder's ``filter_shape`` (maps are ``image_shape + filter_shape - 1``).
:class:`PyramidPooledMaps` fits (a clone of) the coder and reads its
``feature_map_shape_``, so every parameter of the coder can be searched, as
``<step>__estimator__<param>``.

The module is a package split by concern (``_pyramid``: pyramid pooling;
``_descriptors``: the Caltech descriptors and bag of words; ``_kernels``: the
intersection kernel); import every name from ``skdeconv.pooling``.
"""

from ..datasets import load_image_folder
from ._descriptors import BagOfWordsPyramid, DenseMapDescriptors
from ._kernels import intersection_kernel
from ._pyramid import PyramidPooledMaps, SpatialPyramidPooling, spatial_pyramid_pool

__all__ = [
    "BagOfWordsPyramid",
    "DenseMapDescriptors",
    "PyramidPooledMaps",
    "SpatialPyramidPooling",
    "intersection_kernel",
    "load_image_folder",
    "spatial_pyramid_pool",
]
