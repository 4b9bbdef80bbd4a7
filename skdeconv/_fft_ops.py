"""Synthesis operator F of one layer and its adjoint, by batched real FFTs.

The layer explains an input ``y`` of ``C`` channels and spatial shape ``N`` by
``K`` maps ``z_k`` of spatial shape ``M = N + h - 1``:

    (F z)_c = sum_k g[k, c] conv_valid(z_k, f_kc)

Everything is computed on an FFT grid ``L >= M`` per axis (a fast length), on
which the circular convolution of a map with a filter equals the linear one
over the valid window: no padding beyond ``M`` is needed.  The mixing over
``(k, c)`` runs only over the non-zero entries of ``g`` as element-wise
products followed by a segmented sum (``np.add.reduceat``), so each sample's
result is computed by exactly the same operations whatever else is in the
batch (transform is invariant to batch composition, bit for bit).
"""

from functools import cached_property, lru_cache

import numpy as np
from scipy import fft as sp_fft
from scipy import sparse

from ._operators import LinearOperator


# Frequencies whose exact eigenvalue the first round of ConvOperator.lipschitz
# computes (then four times as many per round).
_LIPSCHITZ_FIRST_BLOCK = 64


def _segment_sums(values, keys, n_keys):
    """Sums of the rows of ``values`` (n, ...) sharing a key in [0, n_keys).

    A sparse indicator matrix times the rows: several times faster than
    ``np.add.reduceat`` along the first axis.
    """
    rows = values.reshape(len(values), -1)
    indicator = sparse.csr_array(
        (np.ones(len(keys), rows.dtype), (keys, np.arange(len(keys)))),
        shape=(n_keys, len(keys)),
    )
    return (indicator @ rows).reshape((n_keys,) + values.shape[1:])


@lru_cache(maxsize=64)
def _inverse_dft_rows(length, n_out, half, dtype):
    """Rows 0..n_out-1 of the inverse DFT of length ``length``, (n_freq, n_out).

    ``half``: the frequencies are those of a real FFT (0..length//2), each
    counted with its conjugate (weight 2 except DC and Nyquist); the real part
    of the product is then the inverse real FFT.
    """
    n_freq = length // 2 + 1 if half else length
    freqs = np.arange(n_freq)[:, None]
    rows = np.exp(2j * np.pi * freqs * np.arange(n_out) / length) / length
    if half:
        rows[1:(length + 1) // 2] *= 2
    rows = rows.astype(dtype)
    rows.flags.writeable = False
    return rows


@lru_cache(maxsize=64)
def _forward_dft_rows(length, n_in, half, dtype):
    """Columns 0..n_in-1 of the DFT of length ``length``, as (n_in, n_freq).

    ``half``: only the frequencies of a real FFT (0..length//2).
    """
    n_freq = length // 2 + 1 if half else length
    rows = np.exp(-2j * np.pi * np.arange(n_in)[:, None] * np.arange(n_freq) / length)
    rows = rows.astype(dtype)
    rows.flags.writeable = False
    return rows


def window_rfft(planes, fft_shape):
    """``rfftn(planes, s=fft_shape)`` of small planes (a filter on a map's grid).

    DFTs of the planes' support only, by matrix products axis by axis (the
    zero padding is never transformed): 3-10x faster than the padded FFT
    while the planes span at most half the grid on every axis, where it is
    used; the padded FFT otherwise.
    """
    ndim = len(fft_shape)
    window_shape = planes.shape[-ndim:]
    if any(2 * h > length for h, length in zip(window_shape, fft_shape)):
        return sp_fft.rfftn(planes, s=fft_shape, axes=tuple(range(-ndim, 0)))
    dtype = complex_dtype(planes.dtype)
    out = planes @ _forward_dft_rows(fft_shape[-1], window_shape[-1], True, dtype)
    for index in range(ndim - 2, -1, -1):
        axis = out.ndim - ndim + index
        columns = _forward_dft_rows(fft_shape[index], window_shape[index], False, dtype).T
        out = np.moveaxis(columns @ np.moveaxis(out, axis, -2), -2, axis)
    return np.ascontiguousarray(out)


def window_irfft(spectra, fft_shape, window_shape):
    """``irfftn(spectra, fft_shape)[..., :h1, :h2, ...]`` without the full inverse.

    Partial inverse DFTs by matrix products, axis by axis: for a window
    much smaller than the grid (a filter on a map's grid) several times
    cheaper than the inverse FFT of the whole grid.
    """
    out = spectra
    ndim = len(fft_shape)
    for index, (length, n_out) in enumerate(zip(fft_shape, window_shape)):
        axis = out.ndim - ndim + index
        rows = _inverse_dft_rows(length, n_out, index == ndim - 1, out.dtype)
        out = np.moveaxis(np.moveaxis(out, axis, -1) @ rows, -1, axis)
    return np.ascontiguousarray(out.real)


def _certify_below(grams, threshold):
    """Which Hermitian PSD ``grams`` (n, m, m) have all eigenvalues <= threshold.

    By a Cholesky factorisation of ``threshold I - G`` (positive definite
    exactly then; cheaper than ``eigvalsh``); numpy's batched
    factorisation marks the failures with NaN.  False where unsure.
    """
    shifted = np.eye(grams.shape[-1], dtype=grams.dtype) * grams.dtype.type(threshold) - grams
    try:
        from numpy.linalg import _umath_linalg
    except ImportError:  # pragma: no cover - a numpy without it: no certificates
        return np.zeros(len(grams), dtype=bool)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        factor = _umath_linalg.cholesky_lo(shifted)
    return np.isfinite(factor[:, -1, -1])


def fft_shape_for(map_shape):
    """Fast real-FFT lengths, per axis, of at least ``map_shape``."""
    return tuple(sp_fft.next_fast_len(int(m), real=True) for m in map_shape)


def complex_dtype(dtype):
    return np.result_type(dtype, np.complex64)


class _PairMixer:
    """Sums over the non-zero pairs (k, c) of a connectivity matrix.

    Each output plane accumulates its products in a fixed pair order, so a
    sample's result never depends on the other samples of the batch, and no
    array larger than the output is allocated.
    """

    def __init__(self, connectivity):
        g = np.asarray(connectivity, dtype=bool)
        self.n_filters, self.n_channels = g.shape
        self.map_of_pair, self.channel_of_pair = np.nonzero(g)  # sorted by map
        pairs = np.arange(self.map_of_pair.size)
        self._pairs_of_channel = [pairs[self.channel_of_pair == c] for c in range(g.shape[1])]
        self._pairs_of_map = [pairs[self.map_of_pair == k] for k in range(g.shape[0])]

    @staticmethod
    def _accumulate(inputs, input_of_pair, pair_spectra, pairs_of_output, out=None, add=True):
        """The sums, added to ``out`` (written over it unless ``add``) when given."""
        if out is None:
            n_out = len(pairs_of_output)
            out = np.zeros((len(inputs), n_out) + inputs.shape[2:], inputs.dtype)
            add = True
        buffer = np.empty_like(out[:, 0])
        for plane, pairs in zip(out.swapaxes(0, 1), pairs_of_output):
            if not add:  # the first product is written, not added
                if not len(pairs):
                    plane[...] = 0
                    continue
                np.multiply(inputs[:, input_of_pair[pairs[0]]], pair_spectra[pairs[0]],
                            out=plane)
                pairs = pairs[1:]
            for pair in pairs:
                np.multiply(inputs[:, input_of_pair[pair]], pair_spectra[pair], out=buffer)
                plane += buffer
        return out

    def gram_size(self, on_channels):
        """Number of products in the Gram of :meth:`gram_terms`."""
        shared = self.map_of_pair if on_channels else self.channel_of_pair
        return int(np.sum(np.bincount(shared) ** 2))

    def gram_terms(self, on_channels):
        """The products that make up the Gram of the (C x K) matrix D of pairs.

        Returns ``(left, right, target)``, sorted by target: entry ``target``
        (flat, row-major) of D D^H (``on_channels``) or D^H D is the sum of
        ``D_left * conj(D_right)`` over its terms, where pairs ``left`` and
        ``right`` share a map (D D^H) or a channel (D^H D).
        """
        shared = self.map_of_pair if on_channels else self.channel_of_pair
        index = self.channel_of_pair if on_channels else self.map_of_pair
        size = self.n_channels if on_channels else self.n_filters
        groups = [np.flatnonzero(shared == key) for key in np.unique(shared)]
        first = np.concatenate([np.repeat(group, len(group)) for group in groups])
        second = np.concatenate([np.tile(group, len(group)) for group in groups])
        target = index[first] * size + index[second]
        if not on_channels:  # (D^H D)[k1, k2] = sum_c D[c, k2] conj(D[c, k1])
            first, second = second, first
        order = np.argsort(target, kind="stable")
        return first[order], second[order], target[order]

    def pair_correlations(self, map_spectra, channel_spectra):
        """sum_n conj(A_nk) B_nc for every pair (k, c): (n_pairs, ...).

        Computed as conj(sum_n A_nk conj(B_nc)), the same numbers bit for
        bit, so that only the (usually fewer) channel planes are conjugated.
        """
        out = np.empty((len(self.map_of_pair),) + map_spectra.shape[2:], map_spectra.dtype)
        conj = np.conj(channel_spectra)
        pairs = enumerate(zip(self.map_of_pair, self.channel_of_pair))
        if len(conj) == 1:  # the sum over one sample is that sample's product
            for pair, (k, c) in pairs:
                np.multiply(map_spectra[0, k], conj[0, c], out=out[pair])
        else:
            product = np.empty_like(conj[:, 0])
            for pair, (k, c) in pairs:
                np.multiply(map_spectra[:, k], conj[:, c], out=product)
                np.sum(product, axis=0, out=out[pair])
        return np.conj(out, out=out)

    def to_channels(self, map_spectra, pair_spectra):
        """sum_k g[k,c] A_k B_kc for A (n, K, ...) and B (n_pairs, ...)."""
        return self._accumulate(
            map_spectra, self.map_of_pair, pair_spectra, self._pairs_of_channel
        )

    def to_maps(self, channel_spectra, pair_spectra, out=None, add=True):
        """sum_c g[k,c] A_c B_kc for A (n, C, ...) and B (n_pairs, ...).

        Added to ``out`` (n, K, ...) in place when given (written over it
        unless ``add``).
        """
        return self._accumulate(
            channel_spectra, self.channel_of_pair, pair_spectra, self._pairs_of_map, out, add
        )


class ConvOperator(LinearOperator):
    """Valid synthesis ``F`` of fixed filters and its exact adjoint ``F'``.

    Implements the operator interface of :mod:`skdeconv._operators` with
    circular spectra: the maps' representation is their spectrum on the FFT
    grid, and the filter spectra and per-frequency Grams
    (:meth:`filter_grams`) are there for Fourier-domain solvers.

    Parameters
    ----------
    filters : ndarray of shape (n_filters, n_channels, *filter_shape)
    connectivity : ndarray of bool, shape (n_filters, n_channels)
    image_shape : tuple of int
        Spatial shape ``N`` of the input.
    workers : int, default=1
        Threads given to ``scipy.fft`` (1 inside joblib tasks).
    """

    def __init__(self, filters, connectivity, image_shape, workers=1):
        self.dtype = filters.dtype
        self.image_shape = tuple(image_shape)
        self.filter_shape = filters.shape[2:]
        self.map_shape = tuple(
            n + h - 1 for n, h in zip(self.image_shape, self.filter_shape)
        )
        self.fft_shape = fft_shape_for(self.map_shape)
        self.axes = tuple(range(-len(self.image_shape), 0))
        self.freq_shape = self.fft_shape[:-1] + (self.fft_shape[-1] // 2 + 1,)
        self.workers = workers
        self.mixer = _PairMixer(connectivity)
        self.n_filters, self.n_channels = connectivity.shape
        planes = filters[self.mixer.map_of_pair, self.mixer.channel_of_pair]
        self.pair_spectra = window_rfft(planes, self.fft_shape)
        self.shift_phase = self._shift_phase()
        # Where the valid output lies on the FFT grid, and where the maps lie.
        self.valid_window = (Ellipsis,) + tuple(
            slice(h - 1, h - 1 + n) for n, h in zip(self.image_shape, self.filter_shape)
        )
        self.map_window = (Ellipsis,) + tuple(slice(0, m) for m in self.map_shape)
        self.precomputed = {}  # what solvers derive from the filters (see _operators)

    circular = True

    def _shift_phase(self):
        """Spectrum of a delay by h - 1 along every axis (valid-window offset)."""
        phase = np.ones((), dtype=complex_dtype(self.dtype))
        for axis, (length, h) in enumerate(zip(self.fft_shape, self.filter_shape)):
            n_freq = length // 2 + 1 if axis == len(self.fft_shape) - 1 else length
            freqs = np.arange(n_freq)
            delay = np.exp(-2j * np.pi * freqs * (h - 1) / length)
            shape = [1] * len(self.fft_shape)
            shape[axis] = n_freq
            phase = phase * delay.reshape(shape).astype(phase.dtype)
        return phase

    def rfft(self, x, out=None):
        """Real FFT of the spatial axes on the operator's grid.

        ``out`` (complex128, the spectra's shape) is a buffer the result is
        written to when possible: use the returned array.  Reusing it saves
        allocating (and page-faulting) the spectra at every call.  numpy's
        forward FFT runs float32 through its float64 loop (its scale factor
        is a Python scalar), so float32 spectra come from ``scipy.fft``.
        """
        if out is None or out.dtype != np.complex128 or self.workers != 1:
            return sp_fft.rfftn(x, s=self.fft_shape, axes=self.axes, workers=self.workers)
        rows = tuple(slice(0, m) for m in x.shape[2:-1])
        np.fft.rfft(x, n=self.fft_shape[-1], axis=-1, out=out[(Ellipsis,) + rows + (slice(None),)])
        for axis, m in zip(self.axes[:-1], x.shape[2:-1]):
            padding = [slice(None)] * out.ndim
            padding[axis] = slice(m, None)
            out[tuple(padding)] = 0
            np.fft.fft(out, axis=axis, out=out)
        return out

    def irfft(self, x, overwrite_x=False, out=None):
        """Inverse of :meth:`rfft`; ``overwrite_x`` lets it use ``x`` as scratch.

        ``out``: a real buffer for the result (one thread only): use the
        returned array.

        On one thread the complex passes run in place and the last axis is
        inverted by numpy's pocketfft: scipy's ``irfftn`` allocates two
        fresh arrays per call, whose page faults nearly double its time.
        """
        if self.workers != 1:
            return sp_fft.irfftn(x, s=self.fft_shape, axes=self.axes, workers=self.workers)
        if not overwrite_x:
            x = x.copy()
        for axis in self.axes[:-1]:
            np.fft.ifft(x, axis=axis, out=x)
        return np.fft.irfft(x, n=self.fft_shape[-1], axis=self.axes[-1], out=out)

    def forward_spectra(self, map_spectra):
        """F z from the maps' spectra (n, K, *freq) -> (n, C, *image_shape)."""
        mixed = self.mixer.to_channels(map_spectra, self.pair_spectra)
        return self.irfft(mixed, overwrite_x=True)[self.valid_window]

    def forward(self, maps):
        """F z for maps (n, K, *map_shape) -> (n, C, *image_shape)."""
        return self.forward_spectra(self.rfft(maps))

    # The operator interface's representation of the maps: their spectra.
    def represent(self, maps, out=None):
        """The maps' spectra (:meth:`rfft`, into the buffer ``out`` when possible)."""
        return self.rfft(maps, out=out)

    def forward_represented(self, represented):
        return self.forward_spectra(represented)

    def representation_buffer(self, maps):
        """A buffer for the spectra of ``maps`` (n, K, *map_shape)."""
        return np.empty(maps.shape[:2] + self.freq_shape, complex_dtype(maps.dtype))

    def adjoint(self, residual):
        """F' r for residual (n, C, *image_shape) -> (n, K, *map_shape)."""
        return self.adjoint_into(residual)

    def adjoint_into(self, residual, out=None, buffer=None):
        """F' r, into the buffers when possible: use the returned array.

        ``out`` (n, K, *map_shape) receives the result when the maps fill
        the FFT grid; ``buffer`` (:meth:`representation_buffer`) holds the
        mixed spectra.
        """
        mixed = self.mixer.to_maps(self.rfft(residual), self.adjoint_spectra, out=buffer,
                                   add=False)
        if self.map_shape != self.fft_shape:
            out = None
        return np.ascontiguousarray(self.irfft(mixed, overwrite_x=True, out=out)[self.map_window])

    @cached_property
    def cheap_lipschitz(self):
        """An upper bound of ||F||^2 without eigenvalues (>= :attr:`lipschitz`).

        The largest of the per-frequency bounds of
        :meth:`_cheap_norm_bounds`: exact for one channel or one map, a few
        percent above the exact bound for the paper's wide layers.
        """
        return float(self._cheap_norm_bounds(self.pair_spectra).max())

    def synthesis_spectra(self, map_spectra):
        """Spectrum of the circular synthesis D x on the FFT grid: (n, C, *freq)."""
        return self.mixer.to_channels(map_spectra, self.pair_spectra)

    def circular_adjoint_spectra(self, channel_spectra, out=None):
        """Spectrum of D^H r for r on the FFT grid: (n, K, *freq).

        Added to ``out`` in place when given.
        """
        return self.mixer.to_maps(channel_spectra, self.conj_spectra, out=out)

    @cached_property
    def conj_spectra(self):
        return np.conj(self.pair_spectra)

    @cached_property
    def adjoint_spectra(self):
        """Spectra of the flipped planes delayed by h - 1: the valid adjoint.

        Built on first use: the operators of the filter steps only synthesise.
        """
        return np.conj(self.pair_spectra) * self.shift_phase

    @cached_property
    def valid_mask(self):
        """Boolean mask of the valid window on the FFT grid."""
        mask = np.zeros(self.fft_shape, dtype=bool)
        mask[self.valid_window] = True
        return mask

    @cached_property
    def lipschitz(self):
        """An upper bound of ||F||^2: max over frequencies of ||F_hat(w)||_2^2.

        Exact (the same number as the largest eigenvalue of every frequency's
        Gram), but found by branch and bound: a cheap upper bound of each
        frequency's eigenvalue (:meth:`_cheap_norm_bounds`) is computed for
        all of them, and the exact eigenvalue only for the frequencies, in
        decreasing order of their bound, whose bound exceeds the largest
        eigenvalue found so far.  The others cannot hold the maximum.  (The
        solvers need no exact bound: FISTA backtracks from
        :attr:`cheap_lipschitz`.)
        """
        if min(self.n_channels, self.n_filters) == 1:  # 1 x 1 Grams: scan them all
            return max(
                float(np.linalg.eigvalsh(gram)[:, -1].max()) for _, gram in self.filter_grams()
            )
        bounds = self._cheap_norm_bounds(self.pair_spectra)
        # Rounding: a computed bound may undercut a computed eigenvalue by a
        # few ulps of the spectra's precision: compare with a margin.
        margin = 1 + 1e3 * np.finfo(bounds.dtype).eps
        order = np.argsort(-bounds, kind="stable")
        largest, start, block = -np.inf, 0, _LIPSCHITZ_FIRST_BLOCK
        while start < order.size and bounds[order[start]] * margin >= largest:
            chosen = np.sort(order[start : start + block])
            for part, gram in self.filter_grams(freqs=chosen):
                part = chosen[part]
                if largest > 0:  # certify lambda <= largest where possible
                    below = _certify_below(gram, largest * margin)
                    part, gram = part[~below], gram[~below]
                if part.size:
                    largest = max(largest, float(np.linalg.eigvalsh(gram)[:, -1].max()))
            start, block = start + block, 4 * block
        return largest

    def _cheap_norm_bounds(self, pair_spectra):
        """Upper bounds of ||D(w)||_2^2 per frequency, shape (n_freq,), cheap.

        The smallest of ||D||_F^2 and the two Schur tests max_c sum_k |D_ck|
        s_k and max_k sum_c |D_ck| r_c (row sums r, column sums s of |D|):
        O(n_pairs) per frequency, no Gram.
        """
        magnitude = np.abs(pair_spectra.reshape(len(pair_spectra), -1))
        maps, channels = self.mixer.map_of_pair, self.mixer.channel_of_pair
        map_sums = _segment_sums(magnitude, maps, self.n_filters)
        channel_sums = _segment_sums(magnitude, channels, self.n_channels)
        by_channel = _segment_sums(magnitude * map_sums[maps], channels, self.n_channels)
        by_map = _segment_sums(magnitude * channel_sums[channels], maps, self.n_filters)
        frobenius = np.einsum("pf,pf->f", magnitude, magnitude)
        return np.minimum(np.minimum(by_channel.max(axis=0), by_map.max(axis=0)), frobenius)

    def filter_grams(self, channel_side=False, block_size=2**21, sparse=None, freqs=None):
        """Yield (frequency slice, Gram) of the (C x K) filter matrices D(w).

        The Gram is D D^H (C x C) when ``channel_side`` or C <= K, else D^H D,
        in blocks of frequencies to bound memory.  ``sparse`` (None: chosen
        by cost) sums, entry by entry, the products of the pairs that share
        a map (or a channel), rather than multiplying dense matrices: for the
        presets that give each map one or two channels, a small fraction of
        the work.  ``freqs`` (flat indices): only those frequencies, whose
        Grams are the same numbers as in the full run (the slices then index
        ``freqs``).
        """
        on_channels = channel_side or self.n_channels <= self.n_filters
        size = self.n_channels if on_channels else self.n_filters
        planes = self.pair_spectra.reshape(len(self.pair_spectra), -1)
        if freqs is not None:
            planes = planes[:, freqs]
        if sparse is None:  # a term costs a few times a multiply-add of BLAS
            dense_cost = self.n_channels * self.n_filters * size
            sparse = 8 * self.mixer.gram_size(on_channels) < dense_cost
        if sparse:
            yield from self._sparse_grams(planes, on_channels, size, block_size)
            return
        rows, cols = self.mixer.channel_of_pair, self.mixer.map_of_pair
        step = max(1, block_size // (self.n_channels * self.n_filters))
        for first in range(0, planes.shape[1], step):
            block = planes[:, first : first + step].T
            dense = np.zeros((len(block), self.n_channels, self.n_filters), planes.dtype)
            dense[:, rows, cols] = block
            adjoint = np.conj(np.swapaxes(dense, 1, 2))
            yield slice(first, first + step), dense @ adjoint if on_channels else adjoint @ dense

    def _sparse_grams(self, planes, on_channels, size, block_size):
        """:meth:`filter_grams` as sums over the terms of each entry."""
        left, right, targets = self.mixer.gram_terms(on_channels)
        starts = np.flatnonzero(np.r_[True, targets[1:] != targets[:-1]])
        step = max(1, block_size // max(len(targets), size * size))
        for first in range(0, planes.shape[1], step):
            block = slice(first, first + step)
            products = planes[left, block] * np.conj(planes[right, block])
            gram = np.zeros((size * size, products.shape[1]), planes.dtype)
            gram[targets[starts]] = np.add.reduceat(products, starts, axis=0)
            yield block, np.moveaxis(gram, -1, 0).reshape(-1, size, size)
