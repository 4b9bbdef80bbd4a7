import hashlib
import subprocess
import sys

import numpy as np
import pytest

from skdeconv.datasets import load_zeiler2010

# sha256 of the uint8 pixels decoded from the toolbox JPEGs 1.jpg .. 10.jpg
# (printed by tools/make_zeiler2010_npz.py).
PIXEL_SHA256 = {
    "fruit": "ef006cc4d86def2a5be5f9909fbea02c9a985b236907d6e507f0d65e02855f20",
    "city": "18a820530d64d264785a59424099b0221571d022f983179ef438f63c7048e13f",
}


def _sha256(pixels):
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


@pytest.mark.parametrize("subset", ["fruit", "city"])
def test_pixels_are_the_toolbox_images_in_file_order(subset):
    images = load_zeiler2010(subset)
    assert images.shape == (10, 100, 100, 3)
    assert images.dtype == np.float64
    pixels = np.rint(images * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels / 255.0, images)
    assert _sha256(pixels) == PIXEL_SHA256[subset]


def test_all_is_fruit_then_city():
    np.testing.assert_array_equal(
        load_zeiler2010("all"),
        np.concatenate([load_zeiler2010("fruit"), load_zeiler2010("city")]),
    )


@pytest.mark.parametrize("subset", ["fruit", "all"])
def test_as_gray_uses_skimage_weights(subset):
    rgb = load_zeiler2010(subset)
    gray = load_zeiler2010(subset, as_gray=True)
    expected = 0.2125 * rgb[..., 0] + 0.7154 * rgb[..., 1] + 0.0721 * rgb[..., 2]
    assert gray.shape == rgb.shape[:-1]
    np.testing.assert_allclose(gray, expected, rtol=0, atol=1e-15)
    assert gray.min() >= 0 and gray.max() <= 1


@pytest.mark.parametrize("dtype", [np.float32, "float32", np.float64])
def test_dtype(dtype):
    images = load_zeiler2010("city", dtype=dtype)
    assert images.dtype == np.dtype(dtype)
    np.testing.assert_allclose(images, load_zeiler2010("city"), rtol=1e-7)


def test_returns_a_fresh_array():
    images = load_zeiler2010()
    images[:] = -1
    assert load_zeiler2010().min() == 0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"subset": "cities"}, ValueError, "subset must be one of .*'cities'"),
        ({"subset": None}, ValueError, "subset must be one of"),
        ({"as_gray": "yes"}, TypeError, "as_gray must be a bool"),
        ({"dtype": np.uint8}, ValueError, "must be a floating point type, got uint8"),
        ({"dtype": "nonsense"}, TypeError, "dtype must be a floating point type"),
    ],
)
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_zeiler2010(**kwargs)


def test_no_optional_dependency_is_imported():
    code = (
        "import sys, skdeconv.datasets, skdeconv.preprocessing; "
        "skdeconv.datasets.load_zeiler2010(); "
        "print(sorted({'PIL', 'matplotlib', 'skimage'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
