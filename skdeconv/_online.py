"""Online filter learning: memory that does not grow with the number of images.

``fit_algorithm='online'`` and ``partial_fit`` learn the filters from
mini-batches (Mairal, Bach, Ponce & Sapiro, 2010, for dictionaries; Liu,
Garcia-Cardona, Wohlberg & Yin, 2018, for convolutional dictionaries).  For
every mini-batch the maps are inferred for the current filters, the
sufficient statistics of the filter problem are blended into running
averages with a forgetting factor, and the filters minimise that running
surrogate over unit-norm planes.  Nothing is kept per image between batches:
the state is the filters and the statistics, whose size depends only on the
number of maps and the filter shape.

The statistics.  With ``P_c`` the map patches seen by channel ``c`` at the
valid output positions, the filter problem of a batch is::

    1/2 sum_n ||F z_n - y_n||^2 = sum_c 1/2 f_c' A_c f_c - b_c' f_c + const

``b_c[k, j] = sum_n sum_i z_nk[i + h - 1 - j] y_nc[i]`` is computed exactly
(a correlation, by FFTs).  The exact Gram ``A_c[(k, j), (l, j')]`` sums
``z_k[m] z_l[m + j - j']`` over a window that moves with ``j``; building it
exactly costs ``prod(h)`` times more than one correlation, so the window is
fixed at the centre of the maps (the valid window shifted by ``(h - 1) // 2``)
and ``A_c`` is the block-Toeplitz matrix of the maps' windowed
cross-correlations ``R_kl(d)``, ``|d| < h``, symmetrised.  Only the borders of
the maps (``(h - 1) / 2`` rows and columns) are counted differently, so the
surrogate is close to the exact one for crops a few filter widths wide.  The
statistics kept are ``R`` (``K x K x (2h - 1)^d``) and ``b`` (``K x C x h^d``):
filter-sized, whatever the number or the size of the images.

``fit_algorithm='online'`` draws, for every mini-batch, ``batch_size`` random
crops (one per image, images taken in a random order each epoch, so an epoch
is one crop of every image) of at most ``ONLINE_CROP`` pixels per axis.
"""

import os
import time
from math import prod

import numpy as np
from scipy import fft as sp_fft
from sklearn.utils import check_random_state

from ._encode import _encode
from ._fft_ops import ConvOperator, fft_shape_for
from ._filters import correlations_to_gradient, normalize_filters
from ._interleaved import report_epoch
from ._parallel import one_blas_thread
from ._solvers import interleaved_solvers, objective, solver_class

# Side of the random crops of fit_algorithm='online' (per axis, at most the
# image; DESIGN.md section 9: a few filter widths, 64-128 px).  The surrogate
# counts the maps' borders ((h - 1) / 2 rows and columns, see above)
# differently from the exact filter problem, a share that halves when the
# side doubles: crops of 128 learn filters that explain unseen images better
# than crops of 64, in about twice the time (measurements: "Large data sets
# and clusters" in the documentation, docs/distributed.rst).
ONLINE_CROP = 128
# Map-inference iterations per mini-batch at most (the estimator's max_iter
# applies if smaller): the maps are inferred from zero for every batch.
# Measured (forgetting rho 32, accelerated steps) on the 100-image problem of
# benchmarks/run.py section 10, held-out cost of 10 crops 128x128 of its
# unseen images (other crops than the section's): 1486, 1426, 1433, 1441, 1453
# for 10, 15, 20, 30, 50 iterations (batch fit on 10 images: 1423); on the
# section's own crops 1286.4, 1292.5, 1313.8 for 15, 20, 25 (batch fit:
# 1289.1); partial_fit on the fruit images 1.022-1.031 times batch fit's cost
# (15: 1.022).
ONLINE_MAX_ITER = 15
# ADMM (picked by 'auto' for dense crops) starts its penalty at SPORCO's
# generic 50 / lambda + 1 in this bounded inference, not at RHO_INIT = 1 (which
# takes fewer iterations to 1e-4 of the optimum): within 15 iterations from
# zero, rho = 1 (balanced once) left 10 crops 64x64 of section 10's images
# 81% above their optimal cost (median) at filters learned on them and 6.4%
# at random filters; 50 / lambda + 1 (3.5 there) 12% and 2.4%.  Held-out
# cost of benchmarks/run.py section 10: 1354.7 with rho = 1, 1287.1 with it
# (batch fit on 10 images: 1279.7).
ONLINE_SOLVER_OPTIONS = {"admm": {"rho_init": "lambda"}}
# Accelerated projected-gradient steps on the running surrogate per
# mini-batch (30 take ~90% of the way to its minimum on image statistics;
# plain projected gradient took ~70%).
ONLINE_FILTER_STEPS = 30
# rho of the forgetting factor (1 - 1/t)^rho ~ exp(-rho / t) of the running
# statistics: the last ~t / rho mini-batches count.  Measured with the
# accelerated steps and 50 map iterations, the held-out cost above: 1462,
# 1456, 1453 for rho 8, 16, 32 (batch fit on 10 images: 1423); partial_fit
# on the fruit images (tests/test_online.py) 1.055, 1.036, 1.029 times batch
# fit's cost.
ONLINE_FORGETTING = 32
# Bytes of complex cross-spectra computed at once for the statistics.
_STATISTICS_BYTES = 2**26


# ------------------------------------------------------------ statistics
def _lag_indices(fft_length, filter_length):
    """Grid indices of the lags -(h - 1) .. h - 1 of a circular correlation."""
    return np.arange(-(filter_length - 1), filter_length) % fft_length


def map_correlations(maps, filter_shape):
    """Windowed cross-correlations of the maps, summed over the batch.

    ``R[k, l, d] = sum_n sum_{m in W} z_nk[m] z_nl[m + d]`` for the lags
    ``-(h - 1) <= d <= h - 1`` (index ``d + h - 1``), with ``W`` the valid
    window shifted by ``(h - 1) // 2`` (the centre of the maps).  float64,
    shape (K, K, *(2h - 1)).
    """
    n_samples, n_filters = maps.shape[:2]
    map_shape = maps.shape[2:]
    n_axes = len(map_shape)
    axes = tuple(range(2, 2 + n_axes))
    grid = fft_shape_for(tuple(m + h - 1 for m, h in zip(map_shape, filter_shape)))
    window = (Ellipsis,) + tuple(
        slice((h - 1) // 2, (h - 1) // 2 + m - h + 1) for m, h in zip(map_shape, filter_shape)
    )
    windowed = np.zeros_like(maps)
    windowed[window] = maps[window]
    spectra = sp_fft.rfftn(maps, s=grid, axes=axes, workers=1)
    windowed = sp_fft.rfftn(windowed, s=grid, axes=axes, workers=1)
    freq_shape = spectra.shape[2:]
    n_freq = prod(freq_shape)
    # (F, n, K) so that one matmul per frequency sums over the batch.
    right = np.ascontiguousarray(spectra.reshape(n_samples, n_filters, n_freq).transpose(2, 0, 1))
    left = np.conj(windowed.reshape(n_samples, n_filters, n_freq).transpose(2, 1, 0))
    del spectra, windowed
    lags = np.ix_(*(_lag_indices(g, h) for g, h in zip(grid, filter_shape)))
    out = np.empty((n_filters, n_filters) + tuple(2 * h - 1 for h in filter_shape))
    rows = max(1, _STATISTICS_BYTES // max(1, 16 * n_freq * n_filters))
    for start in range(0, n_filters, rows):
        block = slice(start, start + rows)
        cross = np.matmul(left[:, block], right)  # (F, rows, K)
        cross = np.moveaxis(cross, 0, -1).reshape(cross.shape[1:] + freq_shape)
        full = sp_fft.irfftn(cross, s=grid, axes=tuple(range(2, 2 + n_axes)), workers=1)
        out[block] = full[(Ellipsis,) + lags]
    return out


def map_moments(maps, Y, connectivity, filter_shape):
    """``b[k, c, j] = sum_n sum_i z_nk[i + h - 1 - j] y_nc[i]``, exact.

    float64, shape (K, C, *filter_shape); zeros where ``g[k, c] = 0``.
    """
    n_filters, n_channels = connectivity.shape
    dummy = np.zeros((n_filters, n_channels) + tuple(filter_shape), dtype=maps.dtype)
    op = ConvOperator(dummy, connectivity, Y.shape[2:])
    spectra = op.rfft(maps)
    data_spectra = op.rfft(Y) * op.shift_phase
    correlations = op.mixer.pair_correlations(spectra, data_spectra)
    pairs = correlations_to_gradient(op, correlations)
    moments = np.zeros((n_filters, n_channels) + tuple(filter_shape))
    moments[op.mixer.map_of_pair, op.mixer.channel_of_pair] = pairs
    return moments


def _toeplitz_index(filter_shape):
    """Flat lag index of j - j' for every pair of flat filter positions."""
    grids = np.indices(filter_shape).reshape(len(filter_shape), -1)  # (d, h^d)
    lag_shape = tuple(2 * h - 1 for h in filter_shape)
    differences = grids[:, :, None] - grids[:, None, :] + (np.array(filter_shape) - 1)[:, None, None]
    return np.ravel_multi_index(tuple(differences), lag_shape)


class OnlineStatistics:
    """Running surrogate of the filter problem, and its minimisation.

    Holds the forgetting averages of :func:`map_correlations` and
    :func:`map_moments` over the mini-batches seen (Mairal et al., 2010,
    sec. 3.4): ``S_t = beta_t S_{t-1} + S_batch / n_batch`` with
    ``beta_t = (1 - 1/t)^rho``.

    Parameters
    ----------
    connectivity : ndarray of bool, shape (n_filters, n_channels)
    filter_shape : tuple of int
    forgetting : float, default=ONLINE_FORGETTING
    """

    def __init__(self, connectivity, filter_shape, forgetting=ONLINE_FORGETTING):
        self.connectivity = np.asarray(connectivity, dtype=bool)
        self.filter_shape = tuple(filter_shape)
        self.forgetting = forgetting
        n_filters, n_channels = self.connectivity.shape
        self.correlations = np.zeros(
            (n_filters, n_filters) + tuple(2 * h - 1 for h in self.filter_shape)
        )
        self.moments = np.zeros((n_filters, n_channels) + self.filter_shape)
        self.n_updates = 0
        self.lipschitz = np.zeros(n_channels)

    def __eq__(self, other):
        """Equal statistics (compared value by value, as fitted attributes are)."""
        if type(other) is not type(self) or vars(self).keys() != vars(other).keys():
            return NotImplemented
        return all(np.array_equal(value, vars(other)[key]) for key, value in vars(self).items())

    __hash__ = None

    def update(self, maps, Y):
        """Blend in the statistics of a batch: maps (n, K, *M), images (n, C, *N)."""
        with one_blas_thread():
            correlations = map_correlations(maps, self.filter_shape)
            moments = map_moments(maps, Y, self.connectivity, self.filter_shape)
        self.n_updates += 1
        forget = (1 - 1 / self.n_updates) ** self.forgetting  # 0 at first
        self.correlations = forget * self.correlations + correlations / len(Y)
        self.moments = forget * self.moments + moments / len(Y)

    def gram(self, column):
        """Dense symmetric A_c for the maps selected by ``column`` (bool, K)."""
        index = _toeplitz_index(self.filter_shape)
        size = prod(self.filter_shape)
        lags = self.correlations[np.ix_(column, column)]
        lags = lags.reshape(lags.shape[:2] + (-1,))
        blocks = lags[:, :, index]  # (Kc, Kc, h^d, h^d): R_kl(j - j')
        blocks = 0.5 * (blocks + blocks.transpose(1, 0, 3, 2))
        n = int(column.sum())
        return blocks.transpose(0, 2, 1, 3).reshape(n * size, n * size)

    def solve(self, filters, n_steps=ONLINE_FILTER_STEPS):
        """Accelerated projected-gradient steps on the surrogate from ``filters``.

        Per channel, steps of 1 / L_c onto unit-norm planes from a point
        extrapolated with FISTA's momentum; a step that would raise the
        surrogate restarts the momentum, so the accepted iterates are
        monotone.  L_c starts from the last value (a power-iteration
        estimate at first) and doubles if even a step without momentum
        fails to lower the surrogate.  Returns new filters (same dtype).
        """
        new = filters.copy()
        shape = self.filter_shape
        grams = {}
        with one_blas_thread():
            for channel, column in enumerate(self.connectivity.T):
                if not column.any():
                    continue
                key = column.tobytes()
                if key not in grams:
                    grams[key] = self.gram(column)
                gram = grams[key]
                moment = self.moments[column, channel].reshape(-1)
                planes = filters[column, channel].reshape(-1).astype(np.float64)
                new[column, channel] = self._solve_channel(
                    gram, moment, planes, channel, n_steps
                ).reshape((-1,) + shape)
        return new

    def _solve_channel(self, gram, moment, planes, channel, n_steps):
        """Accelerated projected gradient (FISTA's momentum) on one channel's
        planes; the momentum restarts whenever a step would raise the
        surrogate, so the accepted iterates are monotone."""
        lipschitz = self.lipschitz[channel]
        if lipschitz <= 0:
            lipschitz = _largest_eigenvalue(gram)
        if lipschitz <= 0:
            return planes
        n_planes = len(planes) // prod(self.filter_shape)
        product = gram @ planes
        value = 0.5 * planes @ product - moment @ planes
        # The point the gradient step starts from and its Gram product (a
        # combination of the iterates' products: one product per step).
        point, point_product, momentum = planes, product, 1.0
        for _ in range(n_steps):
            moved = _unit_planes(point - (point_product - moment) / lipschitz, planes, n_planes)
            moved_product = gram @ moved
            moved_value = 0.5 * moved @ moved_product - moment @ moved
            if moved_value > value + 1e-12 * abs(value):
                if point is planes:  # no momentum and still no decrease
                    lipschitz *= 2
                point, point_product, momentum = planes, product, 1.0
                continue
            converged = value - moved_value <= 1e-9 * abs(value)
            next_momentum = (1 + np.sqrt(1 + 4 * momentum**2)) / 2
            weight = (momentum - 1) / next_momentum
            point = moved + weight * (moved - planes)
            point_product = moved_product + weight * (moved_product - product)
            planes, product, value, momentum = moved, moved_product, moved_value, next_momentum
            if converged:
                break
        self.lipschitz[channel] = lipschitz
        return planes


def _unit_planes(planes, previous, n_planes):
    """:func:`normalize_filters` of flat planes (a zero plane keeps ``previous``)."""
    shape, every = (n_planes, 1, -1), np.ones((n_planes, 1), dtype=bool)
    return normalize_filters(planes.reshape(shape), every, previous.reshape(shape)).reshape(-1)


def _largest_eigenvalue(gram, n_iter=30):
    """Power-iteration estimate of ||A||_2 (deterministic start)."""
    vector = np.ones(len(gram)) / np.sqrt(len(gram))
    value = 0.0
    for _ in range(n_iter):
        product = gram @ vector
        value = float(np.linalg.norm(product))
        if value == 0:
            return 0.0
        vector = product / value
    return value


# ------------------------------------------------------------ one step
def online_step(statistics, Y, filters, connectivity, *, lmbda, p, solver, max_iter, tol,
                n_jobs):
    """Infer the maps of a batch, update the statistics and the filters.

    Returns the new filters, the batch's per-sample costs at its maps and
    the NEW filters (what the model now is), and whether each sample's map
    inference reached ``tol`` within ``min(max_iter, ONLINE_MAX_ITER)``.
    """
    maps, _, converged = _encode(
        Y, filters, connectivity, lmbda=lmbda, p=p, solver=solver,
        max_iter=min(max_iter, ONLINE_MAX_ITER), tol=tol, n_jobs=n_jobs,
        solver_options=ONLINE_SOLVER_OPTIONS,
    )
    statistics.update(maps, Y)
    filters = statistics.solve(filters).astype(filters.dtype, copy=False)
    with one_blas_thread():
        costs = objective(ConvOperator(filters, connectivity, Y.shape[2:]), maps, Y, lmbda, p)
    return filters, costs, converged


def crop_shape_for(image_shape, filter_shape):
    """Crops of ONLINE_CROP per axis (at least 4 filter widths), at most the image."""
    return tuple(min(n, max(ONLINE_CROP, 4 * h)) for n, h in zip(image_shape, filter_shape))


def random_crops(Y, which, crop_shape, rng):
    """One random crop (a copy) of every image ``Y[i]`` for i in ``which``."""
    starts = [rng.randint(n - c + 1, size=len(which)) for n, c in zip(Y.shape[2:], crop_shape)]
    crops = np.empty((len(which), Y.shape[1]) + tuple(crop_shape), dtype=Y.dtype)
    for row, (index, *corner) in enumerate(zip(which, *starts)):
        window = tuple(slice(s, s + c) for s, c in zip(corner, crop_shape))
        crops[row] = Y[(index, slice(None)) + window]
    return crops


def learn_online(
    Y, filters, connectivity, *, lmbda, p, solver, max_iter, tol, n_epochs, n_jobs, verbose,
    batch_size, random_state, return_maps=True,
):
    """fit_algorithm='online': mini-batches of random crops, running statistics.

    ``n_epochs`` mini-batches (steps), each of ``batch_size`` random crops
    of different images (the images are visited in random order, pass after
    pass), so the work is ``n_epochs * batch_size`` crops whatever the number
    and the size of the images.  Returns the maps of every sample (only if
    ``return_maps``, else None), the filters, the mean per-crop cost of every
    mini-batch (its maps at the filters updated from them) and convergence
    flags (all True: map inference is bounded on purpose).
    """
    rng = check_random_state(random_state)
    n_samples = len(Y)
    crop_shape = crop_shape_for(Y.shape[2:], filters.shape[2:])
    statistics = OnlineStatistics(connectivity, filters.shape[2:])
    history = []
    order = np.empty(0, dtype=int)
    start = time.perf_counter()
    for step in range(n_epochs):
        while len(order) < min(batch_size, n_samples):
            order = np.concatenate([order, rng.permutation(n_samples)])
        which, order = order[:batch_size], order[batch_size:]
        crops = random_crops(Y, which, crop_shape, rng)
        filters, costs, _ = online_step(
            statistics, crops, filters, connectivity, lmbda=lmbda, p=p, solver=solver,
            max_iter=max_iter, tol=tol, n_jobs=n_jobs,
        )
        history.append(float(costs.mean()))
        report_epoch(verbose, step, n_epochs, history[-1], start,
                     what="online mini-batch", cost_name="cost per crop")
    maps = None
    if return_maps:
        maps, _, _ = _encode(
            Y, filters, connectivity, lmbda=lmbda, p=p, solver=solver, max_iter=max_iter,
            tol=tol, n_jobs=n_jobs,
        )
    return maps, filters, np.asarray(history), np.ones(n_samples, dtype=bool)


# ------------------------------------------------------------ memory
def available_memory():
    """Bytes of memory available to this process (MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# Peak memory of the batch algorithms, in spectra of all the maps of one
# sample, measured with /usr/bin/time -v (peak RSS) on 480x720 float32 images,
# 32 filters 8x8, 2-6 images: per sample (the state kept between epochs) and
# fixed (a chunk's working arrays); 'alternating' also builds the (K x K)
# Gram of the maps at every frequency (complex128) in its filter update.
# 'interleaved' keeps each solver's state: MapSolver.interleaved_arrays.
_ALTERNATING_ARRAYS_PER_SAMPLE = 4.9
_BATCH_ARRAYS_FIXED = 8
_BASE_BYTES = 200 * 2**20


def batch_fit_bytes(fit_algorithm, solver, Y, filters):
    """Estimated peak bytes of a batch fit ('interleaved' or 'alternating')."""
    n_samples, n_channels = Y.shape[:2]
    n_filters = len(filters)
    map_shape = tuple(n + h - 1 for n, h in zip(Y.shape[2:], filters.shape[2:]))
    grid = fft_shape_for(map_shape)
    n_freq = prod(grid[:-1]) * (grid[-1] // 2 + 1)
    spectrum = n_filters * n_freq * 2 * Y.itemsize
    if fit_algorithm == "alternating":
        per_sample = _ALTERNATING_ARRAYS_PER_SAMPLE
    else:  # 'auto' resolves later: the most any solver it may pick needs
        names = interleaved_solvers() if solver == "auto" else (solver,)
        per_sample = max(solver_class(name).interleaved_arrays for name in names)
    fixed = _BASE_BYTES + _BATCH_ARRAYS_FIXED * spectrum
    if fit_algorithm == "alternating":
        fixed += int(1.5 * n_freq * n_filters**2 * 16)
    image = n_channels * prod(Y.shape[2:]) * Y.itemsize
    return int(fixed + n_samples * (per_sample * spectrum + image))


def check_fit_memory(fit_algorithm, solver, Y, filters, available=None):
    """MemoryError before any work if a batch fit cannot fit in memory.

    The batch algorithms keep solver state for every sample between epochs;
    when their estimated peak exceeds the memory available (MemAvailable),
    say so, with the size and the option that fits: 'online', whose memory
    does not depend on the number of images.
    """
    if fit_algorithm == "online":
        return
    available = available_memory() if available is None else available
    if available is None:
        return
    needed = batch_fit_bytes(fit_algorithm, solver, Y, filters)
    if needed > available:
        gib = 2.0**30
        raise MemoryError(
            f"fit_algorithm={fit_algorithm!r} keeps solver state for every sample: "
            f"{len(Y)} samples of {Y.shape[1:]} with {len(filters)} filters "
            f"{filters.shape[2:]} ({Y.dtype}) need about {needed / gib:.1f} GiB, but only "
            f"{available / gib:.1f} GiB of memory is available. Use "
            "fit_algorithm='online' (mini-batches of random crops; memory independent "
            "of the number of samples) or partial_fit on batches, or fit on fewer samples."
        )
