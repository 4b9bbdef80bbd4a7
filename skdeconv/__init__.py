"""skdeconv: Deconvolutional Networks as scikit-learn estimators.

Zeiler, Krishnan, Taylor & Fergus, "Deconvolutional Networks", CVPR 2010.
"""

from ._adaptive import AdaptiveDeconvNetwork
from ._coder import ConvSparseCoder
from ._connectivity import make_connectivity
from ._encode import conv_sparse_encode
from ._dict_learning import conv_dict_learning
from ._model_selection import heldout_pixel_score
from ._network import DeconvNetworkTransformer
from ._warnings import DeadLayerWarning
from .preprocessing import LocalContrastNormalizer, images_to_rows, rows_to_images

__version__ = "0.1.0.dev0"

__all__ = [
    "AdaptiveDeconvNetwork",
    "ConvSparseCoder",
    "DeadLayerWarning",
    "DeconvNetworkTransformer",
    "conv_dict_learning",
    "conv_sparse_encode",
    "heldout_pixel_score",
    "make_connectivity",
    "LocalContrastNormalizer",
    "images_to_rows",
    "rows_to_images",
]
