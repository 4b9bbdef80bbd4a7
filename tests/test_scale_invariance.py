"""What multiplying the data by a scalar does, as the documentation says.

* ``LocalContrastNormalizer`` / ``local_contrast_normalize``: the output is
  invariant to the scale of every plane; a numeric ``std_floor`` is in the
  units of the images, so ``(a X, a floor)`` gives the output of
  ``(X, floor)`` - tested where the floor BINDS (0..1 data and 0..255 data).
* ``conv_sparse_encode`` (user guide, "The weight lambda"): for p = 1,
  multiplying the input by ``s`` has the minimiser of multiplying lambda by
  ``s``, up to the factor ``s`` on the maps; every solver.
* ``ConvSparseCoder``: with ``scale_input=True`` it divides its inputs by
  the largest absolute training value, so fitting and transforming ``a X``
  gives the filters and maps of ``X``, ``input_scale_`` and the
  reconstructions times ``a``; without it, ``(a X, lambda / a)`` gives the
  filters of ``(X, lambda)``, maps, costs and score times ``a``.
* ``DeconvNetworkTransformer`` (every layer has ``scale_input``): the maps
  of ``a X`` are those of ``X``; projections and projected filters scale by
  ``a``.

``a`` is 255 (the range of 8-bit images, not a power of two: results agree
to rounding) and, where the code promises bit-exact results, a power of two.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage

from conftest import _spike_signals
from skdeconv import (
    ConvSparseCoder,
    DeconvNetworkTransformer,
    conv_sparse_encode,
)
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import LocalContrastNormalizer, local_contrast_normalize

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------------- LCN
def _gray(n=3, size=24):
    return load_zeiler2010("fruit", as_gray=True)[:n, 40:40 + size, 40:40 + size]


def _local_std(plane, kernel_size=25, sigma=4.0):
    offsets = np.arange(kernel_size) - kernel_size // 2
    w = np.exp(-offsets**2 / (2 * sigma**2))
    w /= w.sum()

    def smooth(a):
        return ndimage.correlate1d(ndimage.correlate1d(a, w, axis=0, mode="reflect"), w,
                                   axis=1, mode="reflect")

    mean = smooth(plane)
    return mean, np.sqrt(np.maximum(smooth(plane**2) - mean**2, 0))


def _blurred(plane):
    """The normaliser's low-pass (default ``low_pass_sigma=1.0``)."""
    return ndimage.gaussian_filter(plane, 1.0, mode="reflect")


def _lcn_by_hand(plane, floor):
    plane = _blurred(plane)
    mean, std = _local_std(plane)
    out = (plane - mean) / np.maximum(std, floor)
    return out - out.mean()


@pytest.mark.parametrize("a", [255.0, 2.0**-9])
def test_lcn_numeric_floor_scales_with_the_data(a):
    """The floor binds on a third or more of the pixels; (a X, a floor) gives
    the output of (X, floor), which is the documented formula."""
    images = _gray()
    stds = np.concatenate([_local_std(_blurred(im))[1].ravel() for im in images])
    floor = float(np.percentile(stds, 40))
    assert np.mean(stds < floor) > 0.3  # the floor binds
    out = local_contrast_normalize(images, std_floor=floor)
    scaled = local_contrast_normalize(images * a, std_floor=floor * a)
    assert_allclose(scaled, out, rtol=1e-9, atol=1e-11)
    expected = np.array([_lcn_by_hand(im, floor) for im in images])
    assert_allclose(out, expected, rtol=1e-9, atol=1e-11)
    assert_allclose(scaled, expected, rtol=1e-9, atol=1e-11)
    # the transformer, on rows of 8-bit-range images
    lcn = LocalContrastNormalizer(image_shape=(24, 24), std_floor=floor * a)
    assert_allclose(lcn.fit_transform((images * a).reshape(len(images), -1)),
                    expected.reshape(len(images), -1), rtol=1e-9, atol=1e-11)


def test_lcn_relative_floors_are_scale_invariant():
    images = _gray()
    for floor in ("mean", "median"):
        assert_allclose(local_contrast_normalize(images * 255, std_floor=floor),
                        local_contrast_normalize(images, std_floor=floor),
                        rtol=1e-9, atol=1e-11)


# ------------------------------------------------------------ map inference
def _problem():
    X = _spike_signals(n_samples=4, length=40, seed=21)[0]
    filters = np.random.RandomState(2).standard_normal((3, 1, 7))
    filters /= np.linalg.norm(filters, axis=2, keepdims=True)
    return X, filters


def _cost(X, maps, filters, lmbda):
    """Mean of lambda/2 ||sum_k conv_valid(z_k, f_k) - x||^2 + |z|_1 (1-D)."""
    Z = maps.reshape(len(X), len(filters), -1)
    costs = [
        0.5 * lmbda * np.sum((sum(np.convolve(z[k], filters[k, 0], mode="valid")
                                  for k in range(len(filters))) - x) ** 2) + np.abs(z).sum()
        for x, z in zip(X, Z)
    ]
    return float(np.mean(costs))


@pytest.mark.parametrize("solver, tol, rtol", [("fista", 1e-9, 1e-12), ("admm", 1e-8, 1e-10)])
@pytest.mark.parametrize("s", [255.0, 0.125])
def test_encode_of_scaled_input_is_scaled_encode_with_scaled_lambda(solver, tol, rtol, s):
    """encode(s X, lambda / s) = s encode(X, lambda) (p = 1): the maps of
    s X divided by s reach the optimal cost of X, and are its maps.
    (Not for 'continuation': it approximates the optimum with a beta
    schedule in absolute units, so its result moves with the scale, by
    1e-4 in cost and 5% on some map entries at s = 255, tol 1e-5.)"""
    X, filters = _problem()
    params = dict(p=1.0, solver=solver, max_iter=50000, tol=tol)
    scaled = conv_sparse_encode(s * X, filters, lmbda=3.0 / s, **params)
    reference = conv_sparse_encode(X, filters, lmbda=3.0, **params)
    assert np.all(np.mean(reference != 0, axis=1) > 0.005)  # no sample is all zeros
    assert _cost(X, scaled / s, filters, 3.0) == pytest.approx(
        _cost(X, reference, filters, 3.0), rel=rtol
    )
    assert_allclose(scaled / s, reference, rtol=0, atol=1e-3 * np.abs(reference).max())


# ------------------------------------------------------------ ConvSparseCoder
def _rows_2d():
    return local_contrast_normalize(_gray(4, 16)).reshape(4, -1)


CODER = dict(n_filters=3, filter_shape=4, image_shape=(16, 16), p=1.0, random_state=0)


@pytest.mark.parametrize("fit_algorithm, solver, a", [("interleaved", "fista", 2.0**7),
                                                       ("interleaved", "admm", 255.0),
                                                       ("alternating", "fista", 255.0)])
def test_coder_with_scale_input_ignores_the_scale(fit_algorithm, solver, a):
    X = _rows_2d()
    n_epochs = 3 if fit_algorithm == "alternating" else 10
    params = dict(CODER, lmbda=5.0, solver=solver, fit_algorithm=fit_algorithm,
                  n_epochs=n_epochs, max_iter=100, tol=1e-4, scale_input=True)
    coder = ConvSparseCoder(**params).fit(X)
    scaled = ConvSparseCoder(**params).fit(a * X)
    assert scaled.input_scale_ == pytest.approx(a * coder.input_scale_, rel=1e-15)
    if a == 2.0**7:  # exact: dividing by a power of two times the scale
        assert_array_equal(scaled.filters_, coder.filters_)
        assert_array_equal(scaled.transform(a * X), coder.transform(X))
    assert_allclose(scaled.filters_, coder.filters_, rtol=0, atol=1e-9)
    assert_allclose(scaled.cost_history_, coder.cost_history_, rtol=1e-9)
    maps = coder.transform(X)
    assert_allclose(scaled.transform(a * X), maps, rtol=0, atol=1e-8 * np.abs(maps).max())
    # The filters agree to ~1e-11 (rounding through FISTA's backtracking decisions).
    assert_allclose(scaled.inverse_transform(maps), a * coder.inverse_transform(maps),
                    rtol=1e-10, atol=1e-10 * a)
    assert scaled.score(a * X) == pytest.approx(coder.score(X), rel=1e-8)


@pytest.mark.parametrize("fit_algorithm, solver, a", [("interleaved", "fista", 255.0),
                                                       ("interleaved", "admm", 2.0**8),
                                                       ("alternating", "fista", 255.0)])
def test_coder_scale_and_lambda_trade(fit_algorithm, solver, a):
    """fit(a X, lambda / a) learns the filters of fit(X, lambda); maps,
    costs and score are times a.  Interleaved fits work at unit scale by a
    power of two, so FISTA's agree to rounding for any a; ADMM's initial
    rho (50 / lambda + 1) is in absolute units, so its path is the same
    only for a power of two.  Alternating fits stop their map steps at tol:
    agreement to the tolerance."""
    X = _rows_2d()[:2] if fit_algorithm == "alternating" else _rows_2d()
    tight = dict(max_iter=3000, tol=1e-7) if fit_algorithm == "alternating" else {}
    n_epochs = 2 if fit_algorithm == "alternating" else 6
    params = dict(CODER, solver=solver, fit_algorithm=fit_algorithm, n_epochs=n_epochs, **tight)
    coder = ConvSparseCoder(lmbda=5.0, **params).fit(X)
    scaled = ConvSparseCoder(lmbda=5.0 / a, **params).fit(a * X)
    rtol = 1e-6 if fit_algorithm == "alternating" else 1e-9
    assert_allclose(scaled.filters_, coder.filters_, rtol=0, atol=rtol)
    assert_allclose(scaled.cost_history_, a * coder.cost_history_, rtol=rtol)
    coder.set_params(solver="fista", max_iter=20000, tol=1e-8)
    scaled.set_params(solver="fista", max_iter=20000, tol=1e-8)
    maps = coder.transform(X)
    assert_allclose(scaled.transform(a * X), a * maps, rtol=0,
                    atol=1e-5 * a * np.abs(maps).max())
    assert scaled.score(a * X) == pytest.approx(a * coder.score(X), rel=1e-6)


# ------------------------------------------------------------ network
def test_network_ignores_the_scale_of_its_input():
    images = local_contrast_normalize(_gray(3, 16))
    X = images.reshape(3, -1)
    params = dict(n_filters=(3, 4), filter_shape=3, connectivity=("full", "random_pairs"),
                  image_shape=(16, 16), lmbda=(5.0, 20.0), p=1.0, solver="fista",
                  fit_algorithm="interleaved", n_epochs=5, max_iter=300, tol=1e-5,
                  random_state=0)
    a = 255.0
    net = DeconvNetworkTransformer(**params).fit(X)
    scaled = DeconvNetworkTransformer(**params).fit(a * X)
    Z = net.transform(X)
    assert np.mean(Z != 0) > 0.005
    assert_allclose(scaled.transform(a * X), Z, rtol=0, atol=1e-6 * np.abs(Z).max())
    # Layer 2 learns from layer 1's maps inferred to tol (warm started from
    # the training maps), as close as the maps Z of the two fits are.
    for got, want in [(scaled.inverse_transform(Z), a * net.inverse_transform(Z))] + [
        (scaled.project_filters(layer), a * net.project_filters(layer)) for layer in (1, 2)
    ]:
        assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())
    assert scaled.pipeline_[0].input_scale_ == pytest.approx(a * net.pipeline_[0].input_scale_)
    assert scaled.pipeline_[1].input_scale_ == pytest.approx(net.pipeline_[1].input_scale_,
                                                             rel=1e-8)
