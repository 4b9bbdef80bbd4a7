"""Filter update with the maps fixed, and the unit-norm projection."""

from math import prod

import numpy as np

from ._fft_ops import ConvOperator, window_irfft
from ._momentum import momentum


def power_of_two_scale(largest, dtype):
    """2**-e for largest = m 2**e with 0.5 <= m < 1 (1 for 0), finite in dtype.

    Multiplying by it is exact and brings ``largest`` into [0.5, 1).
    """
    exponent = min(-int(np.frexp(largest)[1]), np.finfo(dtype).maxexp - 1)
    return dtype.type(np.ldexp(1.0, exponent))


def random_filters(n_filters, n_channels, filter_shape, connectivity, rng, dtype):
    """Random normal planes, masked by the connectivity, projected to unit norm."""
    filters = rng.standard_normal((n_filters, n_channels) + tuple(filter_shape))
    return normalize_filters(filters.astype(dtype, copy=False), connectivity)


def normalize_filters(filters, connectivity, fallback=None):
    """Project every plane to unit L2 norm; planes with g[k, c] = 0 are zeros.

    A plane of zero norm takes the plane of ``fallback`` (the previous filters)
    instead, so the projection is always defined.
    """
    spatial = tuple(range(2, filters.ndim))
    mask = np.asarray(connectivity, dtype=bool).reshape(connectivity.shape + (1,) * len(spatial))
    filters = np.where(mask, filters, 0)
    norms = np.sqrt(np.sum(filters**2, axis=spatial, keepdims=True))
    safe = np.where(norms > 0, norms, 1)
    normalized = filters / safe
    if fallback is not None:
        normalized = np.where(norms > 0, normalized, fallback)
    return normalized.astype(filters.dtype, copy=False)


def _channel_lipschitz(map_spectra, connectivity):
    """Per channel c: max_w largest eigenvalue of sum_n Z_n(w)^H Z_n(w).

    Z_n(w) is the row of map spectra of sample n over the maps k with
    g[k, c] = 1; this bounds the squared norm of f_{., c} -> F z.
    """
    n_samples, n_filters = map_spectra.shape[:2]
    flat = map_spectra.reshape(n_samples, n_filters, -1)
    bounds = np.empty(connectivity.shape[1])
    cache = {}
    for channel, column in enumerate(np.asarray(connectivity, bool).T):
        key = column.tobytes()
        if not column.any():
            cache[key] = 0.0
        if key not in cache:
            selected = flat[:, column]
            gram = np.einsum("nkf,nlf->fkl", np.conj(selected), selected)
            cache[key] = float(np.linalg.eigvalsh(gram)[:, -1].max())
        bounds[channel] = cache[key]
    return bounds


def filter_gradient_terms(op, map_spectra, Y):
    """Filter-gradient pieces of a batch, at the filters of ``op``.

    Returns ``sum_n conj(Z_nk) R_nc`` for every pair (k, c) (the spectra of
    the gradient of 1/2 sum_n ||F z_n - y_n||^2, summed over the batch, so
    that batches add up) and that data term per channel, shape (C,).
    """
    residual = op.forward_spectra(map_spectra) - Y
    residual_spectra = op.rfft(residual) * op.shift_phase
    correlations = op.mixer.pair_correlations(map_spectra, residual_spectra)
    return correlations, _channel_data_terms(residual)


def channel_data_terms(op, map_spectra, Y):
    """1/2 sum_n ||(F z_n)_c - y_nc||^2 for every channel c, shape (C,)."""
    return _channel_data_terms(op.forward_spectra(map_spectra) - Y)


def _channel_data_terms(residual):
    axes = (0,) + tuple(range(2, residual.ndim))
    return 0.5 * np.sum(np.square(residual, dtype=np.float64), axis=axes)


def correlations_to_gradient(op, correlations):
    """Gradient planes (n_pairs, *filter_shape) from summed correlations."""
    return window_irfft(correlations, op.fft_shape, op.filter_shape)


def _filter_gradient(op, map_spectra, Y):
    """Gradient of 1/2 sum_n ||F z_n - y_n||^2 w.r.t. the planes of ``op``.

    Returns the gradient (n_pairs, *filter_shape) in the pair order of
    ``op.mixer`` and the cost.
    """
    correlations, data_terms = filter_gradient_terms(op, map_spectra, Y)
    return correlations_to_gradient(op, correlations), float(data_terms.sum())


class MomentumFilterSteps:
    """Accelerated projected gradient on unit-norm planes, one step per epoch.

    The filter step of interleaved learning, where the maps change between
    steps (Garcia-Cardona & Wohlberg, 2018).  Each step moves the
    extrapolated filters ``point`` along minus the gradient of
    1/2 sum_n ||F z_n - y_n||^2 by 1 / L_c on the planes of channel c,
    projects every plane on the unit sphere and backtracks (L_c doubles)
    until the quadratic model with L_c bounds the new cost of the channel.
    L_c starts from the upper bound max_w sum_n sum_k g[k, c] |Z_nk(w)|^2
    and shrinks by ``decrease`` after every step, so it follows the maps.

    Parameters
    ----------
    filters : ndarray of shape (n_filters, n_channels, *filter_shape)
        Unit-norm initial filters.
    connectivity : ndarray of bool, shape (n_filters, n_channels)
    decrease : float, default=0.8
    """

    def __init__(self, filters, connectivity, decrease=0.8):
        self.filters = self.point = filters
        self.connectivity = np.asarray(connectivity, dtype=bool)
        self.rows, self.cols = np.nonzero(self.connectivity)
        self.decrease = decrease
        self.lipschitz = None
        self._t = 1.0

    def start_lipschitz(self, map_power):
        """Initial L_c from sum_n |Z_nk(w)|^2, shape (n_filters, *freq)."""
        flat = map_power.reshape(len(map_power), -1)
        self.lipschitz = (self.connectivity.T.astype(flat.dtype) @ flat).max(axis=1)

    def propose(self, gradient):
        """Projected step from ``point`` with the current L_c; new array."""
        inverse = np.divide(
            1.0, self.lipschitz, out=np.zeros_like(self.lipschitz), where=self.lipschitz > 0
        )
        steps = inverse[self.cols].reshape((-1,) + (1,) * (gradient.ndim - 1))
        moved = self.point.copy()
        moved[self.rows, self.cols] -= (steps * gradient).astype(moved.dtype)
        return normalize_filters(moved, self.connectivity, fallback=self.point)

    def sufficient_decrease(self, candidate, gradient, data_point, data_candidate):
        """Per channel: data(candidate) <= data(point) + <g, d> + L_c/2 ||d||^2."""
        move = (candidate - self.point)[self.rows, self.cols].reshape(len(self.rows), -1)
        n_channels = self.connectivity.shape[1]
        linear = np.bincount(
            self.cols, np.sum(gradient.reshape(len(move), -1) * move, axis=1), n_channels
        )
        quadratic = np.bincount(self.cols, np.sum(move * move, axis=1), n_channels)
        bound = data_point + linear + 0.5 * self.lipschitz * quadratic
        return data_candidate <= bound + 1e-12 * np.abs(data_point)

    def backtrack(self, failed):
        self.lipschitz = np.where(failed, 2 * self.lipschitz, self.lipschitz)

    def restart(self, rows, planes):
        """New planes for the filters ``rows``, at the filters and the point."""
        self.filters, self.point = self.filters.copy(), self.point.copy()
        self.filters[rows] = self.point[rows] = planes

    def accept(self, candidate):
        """Take the step: new filters, extrapolated point, smaller L_c."""
        t_new, weight = momentum(np.float64(self._t), False)
        weight = float(weight)  # a Python float keeps float32
        self.point = candidate + weight * (candidate - self.filters)
        self.filters, self._t = candidate, float(t_new)
        self.lipschitz = self.decrease * self.lipschitz


def update_filters(filters, connectivity, maps, Y, n_steps, workers=1, rtol=1e-6):
    """Projected gradient steps on the filters, maps fixed.

    Minimises 1/2 sum_n ||F(f) z_n - y_n||^2 (lambda only scales it) over
    unit-norm planes, with a step of 1 / L_c per input channel c.  Each step
    is monotone: the projection onto the sphere minimises the quadratic
    upper model of the cost.  Stops early once a step lowers the cost by
    less than ``rtol`` relatively (``rtol=0``: never).  (The paper's
    conjugate gradient on the unconstrained least squares followed by
    normalisation reached higher costs: see docs/performance.rst.)

    Parameters
    ----------
    filters : ndarray of shape (n_filters, n_channels, *filter_shape)
    connectivity : ndarray of bool, shape (n_filters, n_channels)
    maps : ndarray of shape (n_samples, n_filters, *map_shape)
    Y : ndarray of shape (n_samples, n_channels, *image_shape)
    n_steps : int
    workers : int, default=1
    rtol : float, default=1e-6

    Returns
    -------
    filters : ndarray, new array of the same shape
    """
    image_shape = Y.shape[2:]
    # The minimiser does not change when maps and images are scaled alike:
    # work near unit scale (exactly, by a power of two) so that products of
    # float32 spectra cannot overflow.
    scale = power_of_two_scale(np.max(np.abs(Y)), Y.dtype)
    maps, Y = maps * scale, Y * scale
    op = ConvOperator(filters, connectivity, image_shape, workers)
    map_spectra = op.rfft(maps)
    lipschitz = _channel_lipschitz(map_spectra, connectivity)
    if not np.any(lipschitz > 0):
        return filters.copy()
    inverse = np.divide(1, lipschitz, out=np.zeros_like(lipschitz), where=lipschitz > 0)
    rows, cols = op.mixer.map_of_pair, op.mixer.channel_of_pair
    steps = inverse[cols].reshape((-1,) + (1,) * len(image_shape))
    previous_cost = np.inf
    for _ in range(n_steps):
        gradient, cost = _filter_gradient(op, map_spectra, Y)
        if rtol and previous_cost - cost <= rtol * cost:
            break
        previous_cost = cost
        moved = filters.copy()
        moved[rows, cols] -= (steps * gradient).astype(filters.dtype)
        filters = normalize_filters(moved, connectivity, fallback=filters)
        op = ConvOperator(filters, connectivity, image_shape, workers)
    return filters


def _map_patches(maps, filter_shape):
    """Patches P[n, i, k, j] = z_nk[i + h - 1 - j] over valid positions i.

    ``sum_{k, j} P[n, i, k, j] f_k[j]`` is the valid convolution of the maps
    with the filters at output position ``i``.
    """
    n_axes = len(filter_shape)
    spatial = tuple(range(2, 2 + n_axes))
    windows = np.lib.stride_tricks.sliding_window_view(maps, filter_shape, axis=spatial)
    flipped = windows[(Ellipsis,) + (slice(None, None, -1),) * n_axes]
    # (n, K, *N, *h) -> (n, *N, K, *h)
    return np.moveaxis(flipped, 1, 1 + n_axes)


def patch_statistics(maps, Y, connectivity, filter_shape):
    """Exact sufficient statistics of the filter problem for one batch.

    For each channel c, with ``P_c`` the patches of the maps connected to c,
    ``A_c = sum_n P_c' P_c`` and ``b_c = sum_n P_c' y_c``, so that
    1/2 sum_n ||F z_n - y_n||^2 = sum_c 1/2 f_c' A_c f_c - b_c' f_c + const
    for the stacked planes ``f_c = (f_kc)_{k: g[k, c] = 1}``.

    Returns a list of (A_c, b_c) pairs, one per input channel.
    """
    statistics = []
    for channel, column in enumerate(np.asarray(connectivity, bool).T):
        size = int(column.sum()) * prod(filter_shape)
        gram, moment = np.zeros((size, size)), np.zeros(size)
        for sample_maps, sample in zip(maps, Y) if size else ():
            patches = _map_patches(sample_maps[None, column], filter_shape)
            patches = patches.reshape(-1, size)
            gram += patches.T @ patches
            moment += patches.T @ sample[channel].ravel()
        statistics.append((gram, moment))
    return statistics


def solve_filters_from_statistics(filters, connectivity, statistics, n_steps):
    """Projected gradient on sum_c 1/2 f_c' A_c f_c - b_c' f_c, unit-norm planes.

    Each channel is an independent problem with step 1 / ||A_c||_2; the
    steps are monotone (see :func:`update_filters`).
    """
    filters = filters.copy()
    filter_shape = filters.shape[2:]
    for channel, (column, (gram, moment)) in enumerate(
        zip(np.asarray(connectivity, bool).T, statistics)
    ):
        largest = float(np.linalg.eigvalsh(gram)[-1]) if gram.size else 0.0
        if largest <= 0:
            continue
        planes = filters[column, channel].reshape(-1).astype(np.float64)
        for _ in range(n_steps):
            moved = planes - (gram @ planes - moment) / largest
            moved = moved.reshape((-1,) + filter_shape)
            norms = np.sqrt(np.sum(moved**2, axis=tuple(range(1, moved.ndim)), keepdims=True))
            previous = planes.reshape(moved.shape)
            planes = np.where(norms > 0, moved / np.where(norms > 0, norms, 1), previous)
            planes = planes.reshape(-1)
        filters[column, channel] = planes.reshape((-1,) + filter_shape)
    return filters
