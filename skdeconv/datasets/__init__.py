"""Sample data bundled with skdeconv."""

from ._zeiler2010 import load_zeiler2010

__all__ = ["load_zeiler2010"]
