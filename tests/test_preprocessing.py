import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdeconv.preprocessing import (
    LocalContrastNormalizer,
    images_to_rows,
    local_contrast_normalize,
    rows_to_images,
)

# --------------------------------------------------------------------------
# images_to_rows / rows_to_images


@pytest.mark.parametrize(
    "shape, channel_axis, image_shape",
    [
        ((4, 9), None, (9,)),
        ((4, 5, 6), None, (5, 6)),
        ((4, 5, 6, 3), -1, (5, 6)),
        ((4, 5, 6, 3), 3, (5, 6)),
        ((4, 3, 5, 6), 1, (5, 6)),
        ((4, 5, 3, 6), 2, (5, 6)),
        ((4, 7, 2), -1, (7,)),
        ((4, 5, 6, 1), -1, (5, 6)),
    ],
)
def test_images_rows_round_trip(shape, channel_axis, image_shape):
    images = np.random.default_rng(0).random(shape)
    X = images_to_rows(images, channel_axis=channel_axis)
    assert X.shape == (shape[0], int(np.prod(shape[1:])))
    back = rows_to_images(X, image_shape, channel_axis=channel_axis)
    np.testing.assert_array_equal(back, images)


def test_rows_are_channels_first():
    images = np.arange(2 * 4 * 5 * 3).reshape(2, 4, 5, 3)
    X = images_to_rows(images, channel_axis=-1)
    for i in range(2):
        expected = np.concatenate([images[i, :, :, c].ravel() for c in range(3)])
        np.testing.assert_array_equal(X[i], expected)
    assert X.dtype == images.dtype


def test_rows_to_images_accepts_int_image_shape():
    X = np.arange(12.0).reshape(2, 6)
    np.testing.assert_array_equal(rows_to_images(X, 6), X)
    assert rows_to_images(X, 3, channel_axis=1).shape == (2, 2, 3)


def test_rows_to_images_names_both_numbers_when_shape_does_not_divide():
    with pytest.raises(ValueError, match=r"n_features=10 .* pixels 3 "):
        rows_to_images(np.zeros((2, 10)), (3,))
    with pytest.raises(ValueError, match=r"n_features=4 .* pixels 9 "):
        rows_to_images(np.zeros((2, 4)), (3, 3))


def test_rows_to_images_several_channels_need_channel_axis():
    with pytest.raises(ValueError, match="X has 3 channels .* pass channel_axis"):
        rows_to_images(np.zeros((2, 12)), (2, 2))


@pytest.mark.parametrize("image_shape", [(), (0, 3), (2.0, 3), "ab", None, (True, 2)])
def test_rows_to_images_rejects_bad_image_shape(image_shape):
    with pytest.raises(ValueError, match="image_shape must be"):
        rows_to_images(np.zeros((2, 6)), image_shape)


def test_rows_to_images_rejects_non_2d_X():
    with pytest.raises(ValueError, match=r"X must be 2-D .* shape \(6,\)"):
        rows_to_images(np.zeros(6), (6,))


@pytest.mark.parametrize("channel_axis", [0, -4, 4, 1.0, True])
def test_images_to_rows_rejects_bad_channel_axis(channel_axis):
    with pytest.raises(ValueError, match="channel_axis must be None or an axis"):
        images_to_rows(np.zeros((2, 3, 4, 5)), channel_axis=channel_axis)


def test_images_to_rows_rejects_too_few_dimensions():
    with pytest.raises(ValueError, match=r"at least one spatial axis.*\(5,\)"):
        images_to_rows(np.zeros(5))
    with pytest.raises(ValueError, match="need at least 3 dimensions"):
        images_to_rows(np.zeros((5, 4)), channel_axis=-1)


# --------------------------------------------------------------------------
# Local contrast normalisation against a brute-force reference


def _gaussian_window(radius, sigma, ndim):
    offsets = np.arange(-radius, radius + 1)
    grids = np.meshgrid(*([offsets] * ndim), indexing="ij")
    weights = np.exp(-sum(g**2 for g in grids) / (2 * sigma**2))
    return weights / weights.sum()


def _window_moments(plane, weights):
    """Weighted means of x and x**2 over the window around every pixel."""
    r = weights.shape[0] // 2
    padded = np.pad(plane, r, mode="symmetric")  # == scipy.ndimage "reflect"
    m1, m2 = np.zeros_like(plane), np.zeros_like(plane)
    for index in np.ndindex(plane.shape):
        window = padded[tuple(slice(i, i + 2 * r + 1) for i in index)]
        for offset in np.ndindex(weights.shape):
            m1[index] += weights[offset] * window[offset]
            m2[index] += weights[offset] * window[offset] ** 2
    return m1, m2


def _reference_lcn_plane(plane, kernel_size, sigma, std_floor, low_pass_sigma=1.0):
    """Explicit loops over pixels and window offsets, numpy 'symmetric' padding.

    The low-pass is a Gaussian truncated at 4 standard deviations, as
    ``scipy.ndimage.gaussian_filter``'s default.
    """
    if low_pass_sigma > 0:
        radius = int(4 * low_pass_sigma + 0.5)
        plane = _window_moments(plane, _gaussian_window(radius, low_pass_sigma, plane.ndim))[0]
    mean, m2 = _window_moments(plane, _gaussian_window(kernel_size // 2, sigma, plane.ndim))
    std = np.sqrt(np.maximum(m2 - mean**2, 0.0))
    if std_floor == "mean":
        floor = std.mean()
    elif std_floor == "median":
        floor = np.median(std)
    else:
        floor = std_floor
    divisor = np.maximum(std, floor)
    divisor[divisor == 0] = 1  # a flat plane is only centred
    out = (plane - mean) / divisor
    return out - out.mean()


@pytest.mark.parametrize("low_pass_sigma", [1.0, 0.6, 0.0])
@pytest.mark.parametrize("std_floor", ["mean", "median", 0.05, 0.0])
@pytest.mark.parametrize("kernel_size, sigma", [(5, 1.591), (3, 0.8)])
def test_lcn_matches_brute_force_2d(std_floor, kernel_size, sigma, low_pass_sigma):
    image = np.random.default_rng(1).random((6, 7)) * 2 + 3
    expected = _reference_lcn_plane(image, kernel_size, sigma, std_floor, low_pass_sigma)
    lcn = LocalContrastNormalizer(
        image_shape=(6, 7), kernel_size=kernel_size, sigma=sigma, std_floor=std_floor,
        low_pass_sigma=low_pass_sigma,
    )
    Xt = lcn.fit_transform(image.reshape(1, -1))
    np.testing.assert_allclose(Xt.reshape(6, 7), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("length", [1, 2, 3, 11])
def test_lcn_matches_brute_force_1d_signals(length):
    X = np.random.default_rng(2).normal(size=(3, length))
    expected = np.stack([_reference_lcn_plane(x, 25, 4.0, "mean") for x in X])
    Xt = LocalContrastNormalizer().fit_transform(X)
    np.testing.assert_allclose(Xt, expected, rtol=1e-12, atol=1e-12)


def test_lcn_normalises_each_channel_plane_separately():
    rng = np.random.default_rng(3)
    images = rng.random((2, 5, 6, 3)) * np.array([1.0, 10.0, 100.0])
    X = images_to_rows(images, channel_axis=-1)
    Xt = LocalContrastNormalizer(image_shape=(5, 6)).fit_transform(X)
    out = rows_to_images(Xt, (5, 6), channel_axis=-1)
    for n in range(2):
        for c in range(3):
            expected = _reference_lcn_plane(images[n, :, :, c], 25, 4.0, "mean")
            np.testing.assert_allclose(
                out[n, :, :, c], expected, rtol=1e-12, atol=1e-12
            )


@pytest.mark.parametrize("channel_axis", [None, 1, -1])
def test_function_matches_transformer(channel_axis):
    shape = {None: (3, 8, 9), 1: (3, 2, 8, 9), -1: (3, 8, 9, 2)}[channel_axis]
    images = np.random.default_rng(4).random(shape)
    out = local_contrast_normalize(
        images, channel_axis=channel_axis, std_floor="median"
    )
    assert out.shape == images.shape
    X = images_to_rows(images, channel_axis=channel_axis)
    lcn = LocalContrastNormalizer(image_shape=(8, 9), std_floor="median")
    Xt = lcn.fit_transform(X)
    np.testing.assert_array_equal(images_to_rows(out, channel_axis=channel_axis), Xt)


def test_lcn_is_invariant_to_offset_and_scale_with_relative_floor():
    images = np.random.default_rng(5).random((2, 10, 10))
    out = local_contrast_normalize(images)
    shifted = local_contrast_normalize(3 * images - 7)
    np.testing.assert_allclose(shifted, out, atol=1e-12)


def test_lcn_float32_is_preserved_and_accurate():
    images = np.random.default_rng(6).random((2, 20, 20)) * 255
    out64 = local_contrast_normalize(images)
    out32 = local_contrast_normalize(images.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, atol=1e-4)
    Xt = LocalContrastNormalizer(image_shape=(20, 20)).fit_transform(
        images.reshape(2, -1).astype(np.float32)
    )
    assert Xt.dtype == np.float32


def test_lcn_integer_input_becomes_float64():
    images = np.arange(2 * 6 * 6).reshape(2, 6, 6)
    out = local_contrast_normalize(images)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, local_contrast_normalize(images.astype(float)))


def test_lcn_flat_plane_gives_zeros_without_warnings():
    images = np.full((2, 6, 6), 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = local_contrast_normalize(images, std_floor=0.0)
    np.testing.assert_allclose(out, 0, atol=1e-12)


def test_lcn_does_not_modify_input():
    X = np.random.default_rng(7).random((2, 30))
    X_copy = X.copy()
    LocalContrastNormalizer(image_shape=(5, 6)).fit_transform(X)
    np.testing.assert_array_equal(X, X_copy)


def test_transform_works_without_fit():
    X = np.random.default_rng(8).random((2, 12))
    lcn = LocalContrastNormalizer(image_shape=(3, 4))
    np.testing.assert_array_equal(lcn.transform(X), lcn.fit(X).transform(X))


def test_lcn_image_shape_must_divide_n_features():
    with pytest.raises(ValueError, match=r"n_features=30 .* pixels 7 "):
        LocalContrastNormalizer(image_shape=(7,)).fit_transform(np.zeros((2, 30)))


def test_lcn_even_kernel_size_is_rejected():
    with pytest.raises(ValueError, match="kernel_size must be odd, got 4"):
        LocalContrastNormalizer(kernel_size=4).fit_transform(np.zeros((2, 30)))


def test_lcn_function_validates_parameters():
    with pytest.raises(ValueError, match="sigma"):
        local_contrast_normalize(np.zeros((2, 5, 5)), sigma=0)
    with pytest.raises(ValueError, match="std_floor"):
        local_contrast_normalize(np.zeros((2, 5, 5)), std_floor="max")
    with pytest.raises(ValueError, match="'low_pass_sigma' .* range .* Got -1"):
        LocalContrastNormalizer(low_pass_sigma=-1).fit_transform(np.zeros((2, 30)))


def test_get_feature_names_out_is_one_to_one():
    lcn = LocalContrastNormalizer().fit(np.zeros((2, 3)))
    assert list(lcn.get_feature_names_out()) == ["x0", "x1", "x2"]


@parametrize_with_checks(
    [
        LocalContrastNormalizer(),
        LocalContrastNormalizer(kernel_size=3, std_floor="median"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
