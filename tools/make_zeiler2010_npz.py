"""Build ``skdeconv/datasets/data/zeiler2010.npz`` from the toolbox JPEGs.

The Deconvolutional Networks toolbox of Zeiler et al. (CVPR 2010) ships two
sets of ten 100x100 RGB JPEG images, ``fruit/1.jpg .. 10.jpg`` and
``city/1.jpg .. 10.jpg``. This script decodes them once with Pillow (a
development-only dependency) and stores the raw pixels as ``uint8`` arrays
``fruit`` and ``city`` of shape ``(10, 100, 100, 3)``, in numeric file order,
in one compressed ``.npz`` file, so that skdeconv needs neither the JPEGs nor
Pillow at run time.

Usage::

    python tools/make_zeiler2010_npz.py SOURCE_DIR [--check]

``SOURCE_DIR`` holds the ``fruit`` and ``city`` folders. With ``--check`` the
existing ``.npz`` is compared with a fresh decode instead of being written.
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

SUBSETS = ("fruit", "city")
N_IMAGES = 10
SHAPE = (100, 100, 3)
OUTPUT = (
    Path(__file__).resolve().parents[1]
    / "skdeconv"
    / "datasets"
    / "data"
    / "zeiler2010.npz"
)


def decode_subset(folder):
    """Decode ``folder/1.jpg .. folder/10.jpg`` into a uint8 array."""
    images = []
    for i in range(1, N_IMAGES + 1):
        with Image.open(folder / f"{i}.jpg") as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        if pixels.shape != SHAPE:
            raise ValueError(f"{folder / f'{i}.jpg'} has shape {pixels.shape}")
        images.append(pixels)
    return np.stack(images)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_dir", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    arrays = {name: decode_subset(args.source_dir / name) for name in SUBSETS}
    if args.check:
        with np.load(OUTPUT) as stored:
            for name, pixels in arrays.items():
                if not np.array_equal(stored[name], pixels):
                    raise SystemExit(f"{OUTPUT}: {name!r} differs from the JPEGs")
        print(f"{OUTPUT} matches {args.source_dir}")
    else:
        np.savez_compressed(OUTPUT, **arrays)
        print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")
    for name, pixels in arrays.items():
        digest = hashlib.sha256(pixels.tobytes()).hexdigest()
        print(f"  {name}: sha256 of pixels {digest}")


if __name__ == "__main__":
    main()
