"""Sample data bundled with skdeconv, and loaders of image collections."""

from ._image_folder import load_image_folder
from ._zeiler2010 import load_zeiler2010

__all__ = ["load_image_folder", "load_zeiler2010"]
