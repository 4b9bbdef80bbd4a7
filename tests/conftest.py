"""Shared test data."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.signal import fftconvolve


def _smooth_images_and_an_unused_filter(n_samples=6, size=32, seed=0):
    """Smooth images (rows, ``size`` x ``size``) and 3 unit filters of 5x5:
    two smooth ones and a checkerboard, which correlates with nothing in
    the images, so that no map uses it."""
    rng = np.random.RandomState(seed)
    X = ndimage.gaussian_filter(rng.standard_normal((n_samples, size, size)), (0, 2, 2))
    filters = ndimage.gaussian_filter(rng.standard_normal((3, 1, 5, 5)), (0, 0, 1, 1))
    filters[2, 0] = (-1.0) ** np.add.outer(np.arange(5), np.arange(5))
    filters /= np.sqrt(np.sum(filters**2, axis=(2, 3), keepdims=True))
    return X.reshape(n_samples, -1), filters


def _spike_signals(n_samples=40, length=48, n_filters=2, filter_length=9, seed=42):
    """1-D rows ``y = sum_k z_k * f_k + noise`` from known unit filters ``f_k``
    and sparse spike trains ``z_k`` (3% non-zero); returns the rows and the
    filters, shape (n_filters, filter_length)."""
    rng = np.random.RandomState(seed)
    filters = rng.standard_normal((n_filters, filter_length))
    filters /= np.linalg.norm(filters, axis=1, keepdims=True)
    spikes = rng.rand(n_samples, n_filters, length + filter_length - 1) < 0.03
    maps = 3 * rng.standard_normal(spikes.shape) * spikes
    X = sum(
        fftconvolve(maps[:, k], filters[k][None], mode="valid", axes=1) for k in range(n_filters)
    )
    return X + 0.02 * rng.standard_normal(X.shape), filters


@pytest.fixture
def spike_signals():
    """Factory of :func:`_spike_signals` data: ``spike_signals(n_samples=40, ...)``."""
    return _spike_signals
