"""Loader of folder-per-class image trees, such as Caltech-101."""

from pathlib import Path

import numpy as np

from .._geometry import positive_int_tuple

_IMAGE_SUFFIXES = {".bmp", ".gif", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".ppm",
                   ".tif", ".tiff", ".webp"}


def load_image_folder(path, *, image_size=(150, 150), as_gray=True):
    """Load a folder-per-class image tree, such as Caltech-101.

    Every sub-folder of ``path`` (hidden ones excepted) is a class, named after
    the folder; its image files (png, jpg, ...: Pillow reads them) are resized
    to ``image_size``, ignoring the aspect ratio, as in the Caltech-101
    protocol. Needs Pillow (``pip install "skdeconv[images]"``).

    Parameters
    ----------
    path : str or path-like
        Root folder.
    image_size : tuple of int, default=(150, 150)
        ``(height, width)`` of the returned images.
    as_gray : bool, default=True
        Convert to gray levels; otherwise to RGB.

    Returns
    -------
    images : ndarray of shape (n_images, height, width) or (n_images, height, width, 3)
        Pixel values in [0, 1], float64, channels last for RGB.
    y : ndarray of shape (n_images,)
        Class index of every image into ``class_names``.
    class_names : list of str
        Sorted names of the folders holding at least one image.

    See Also
    --------
    load_zeiler2010 : The images bundled with skdeconv.
    skdeconv.preprocessing.images_to_rows : Images as the rows estimators take.

    Examples
    --------
    >>> from skdeconv.datasets import load_image_folder
    >>> images, y, class_names = load_image_folder("101_ObjectCategories")  # doctest: +SKIP
    """
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_image_folder needs Pillow; install the 'images' extra: "
            "pip install 'skdeconv[images]'."
        ) from exc
    size = positive_int_tuple(image_size, "image_size")
    if len(size) != 2:
        raise ValueError(
            f"image_size must be (height, width) with positive ints, got {image_size!r}."
        )
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"path {str(root)!r} is not a directory.")
    mode = "L" if as_gray else "RGB"
    images, labels, class_names = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
        if not files:
            continue
        for file in files:
            with Image.open(file) as image:
                image = image.convert(mode).resize(size[::-1], Image.Resampling.BILINEAR)
                images.append(np.asarray(image, dtype=np.float64) / 255.0)
        labels += [len(class_names)] * len(files)
        class_names.append(folder.name)
    if not images:
        raise ValueError(f"no image files in the sub-folders of {str(root)!r}.")
    return np.stack(images), np.asarray(labels, dtype=np.intp), class_names
