"""The linear-operator interface every map solver accepts.

A map solver minimises ``lambda/2 ||A z - y||^2 + sum |z|^p`` per sample.
It needs from ``A``:

- the geometry: ``n_filters``, ``n_channels``, ``map_shape`` (spatial),
  ``image_shape`` (spatial), ``dtype``;
- ``forward(maps)`` (``A z``: (n, K, *map_shape) -> (n, C, *image_shape)),
  ``adjoint(residual)`` (``A' r``; ``adjoint_into`` with buffers) and
  ``lipschitz``, an upper bound of ``||A||^2`` (the step size of gradient
  methods; ``cheap_lipschitz`` a looser one that costs no eigenvalue);
- ``precomputed``: a dict where solvers cache what they derive from the
  operator (e.g. ADMM's per-frequency inverses);
- ``take(index)``: the operator of a subset of the samples (operators with
  per-sample data, such as a mask, slice it; others return themselves);
- optionally a representation of the maps in which forward and adjoint are
  cheap (their spectra for a convolution): ``represent``,
  ``forward_represented``, ``representation_buffer``.
  The defaults below use the maps themselves.

Operators with circular spectra (``circular = True``:
:class:`~skdeconv._fft_ops.ConvOperator`) also expose the FFT grid and the
filter spectra that Fourier-domain solvers (ADMM) need.

Implementations: :class:`~skdeconv._fft_ops.ConvOperator` (one layer's
valid synthesis ``F``), :class:`MaskedOperator` (``W F``: a data term on
some pixels only) and, for the adaptive network,
:class:`~skdeconv._topdown.TopDownOperator` (``R_l`` through pooling
layers).
"""


class LinearOperator:
    """Base class and documentation of the operator interface (see module)."""

    #: Whether the operator exposes circular spectra on an FFT grid.
    circular = False

    def forward(self, maps):
        """``A z`` for maps (n, K, *map_shape) -> (n, C, *image_shape)."""
        raise NotImplementedError

    def adjoint(self, residual):
        """``A' r`` for residuals (n, C, *image_shape) -> (n, K, *map_shape)."""
        raise NotImplementedError

    @property
    def lipschitz(self):
        """An upper bound of ``||A||^2``."""
        raise NotImplementedError

    @property
    def cheap_lipschitz(self):
        """An upper bound of ``||A||^2`` that is cheap to compute (maybe looser)."""
        return self.lipschitz

    def adjoint_into(self, residual, out=None, buffer=None):
        """``A' r``, into ``out`` (and the scratch ``buffer`` from
        :meth:`representation_buffer`) when possible: use the returned array."""
        return self.adjoint(residual)

    def take(self, index):
        """The operator of the samples ``index`` (this one: no per-sample data)."""
        return self

    def represent(self, maps, out=None):
        """The maps in the representation of :meth:`forward_represented`."""
        return maps

    def forward_represented(self, represented):
        """``A z`` from the representation of the maps."""
        return self.forward(represented)

    def representation_buffer(self, maps):
        """A buffer that :meth:`represent` can write the representation of ``maps`` to."""
        return None


class MaskedOperator(LinearOperator):
    """``W A``: the operator ``base`` restricted to the pixels where ``mask`` is 1.

    The masked data term ``lambda/2 ||W (A z - y)||^2`` is the data term of
    this operator with the data ``W y`` (used to predict held-out pixels).
    ``||W A|| <= ||A||``, so the base operator's step bound holds.

    Parameters
    ----------
    base : LinearOperator
        The operator ``A``.
    mask : ndarray of shape (n_samples, n_channels, *image_shape)
        Binary weights ``W``, one row per sample.
    """

    def __init__(self, base, mask):
        self.base = base
        self.mask = mask
        self.precomputed = base.precomputed
        for name in ("n_filters", "n_channels", "map_shape", "image_shape", "dtype"):
            setattr(self, name, getattr(base, name))

    def forward(self, maps):
        return self.base.forward(maps) * self.mask

    def adjoint(self, residual):
        return self.base.adjoint(residual * self.mask)

    @property
    def lipschitz(self):
        return self.base.lipschitz

    @property
    def cheap_lipschitz(self):
        return self.base.cheap_lipschitz

    def adjoint_into(self, residual, out=None, buffer=None):
        return self.base.adjoint_into(residual * self.mask, out=out, buffer=buffer)

    def take(self, index):
        return MaskedOperator(self.base, self.mask[index])

    def represent(self, maps, out=None):
        return self.base.represent(maps, out=out)

    def forward_represented(self, represented):
        return self.base.forward_represented(represented) * self.mask

    def representation_buffer(self, maps):
        return self.base.representation_buffer(maps)
