"""The map-solver protocol and the registry of solvers.

A map solver minimises, for every sample independently,

    lambda/2 ||A z - y||^2 + sum |z|^p

for a linear operator ``A`` (see :mod:`skdeconv._operators`): a
:class:`MapSolver` subclass in its own module, registered with
:func:`register_solver`.  The driver (:func:`skdeconv._solvers.solve`) and
every learner use only the methods below, never a solver's name.
"""

import numpy as np

_REGISTRY = {}


def register_solver(cls):
    """Class decorator: make ``cls`` available as ``solver=cls.name``."""
    if not (isinstance(cls.name, str) and cls.name and cls.name != "auto"):
        raise ValueError(f"a solver needs a name other than 'auto', got {cls.name!r}.")
    _REGISTRY[cls.name] = cls
    return cls


def solver_class(name):
    """The registered solver class called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown solver {name!r}; registered: {sorted(_REGISTRY)}."
        ) from None


def interleaved_solvers():
    """Names of the solvers whose state can be carried between epochs."""
    return tuple(name for name, cls in _REGISTRY.items() if cls.carries_state)


class MapSolver:
    """Protocol of a map solver; subclasses override the methods below.

    An instance holds the problem's constants (no arrays): it is cheap,
    picklable and shared by threads.  Per-sample state lives in a dict of
    arrays whose first axis is the sample (the driver drops the rows of
    finished samples from it); scratch buffers in the object returned by
    :meth:`workspace`.

    Parameters
    ----------
    lmbda : float
        Weight of the data term.
    p : float, default=1.0
        Exponent of the sparsity penalty.
    max_iter : int, default=1000
        Budget of iterations per sample, in the solver's own unit.
    tol : float, default=1e-3
        Stopping tolerance of :meth:`converged`.
    """

    #: The name under which the solver is registered (``solver=name``).
    name = None
    #: Whether :meth:`step` can be called once per epoch on a state kept
    #: between epochs while the operator changes (interleaved learning).
    carries_state = False
    #: Peak memory per sample of interleaved learning with this solver, in
    #: spectra of all the maps of one sample (its kept state and the
    #: learner's arrays; measured with peak RSS, see ``_online.py``).
    interleaved_arrays = 5.9

    def __init__(self, *, lmbda, p=1.0, max_iter=1000, tol=1e-3):
        self.lmbda, self.p, self.max_iter, self.tol = lmbda, p, max_iter, tol

    @classmethod
    def supports(cls, op):
        """Whether the solver can run on operator ``op``."""
        return True

    @classmethod
    def precompute(cls, op):
        """Compute (and cache on ``op``) the filter-only quantities the steps need.

        Called once per operator, before it is shared by joblib tasks.
        Returns ``op``.
        """
        return op

    def start(self, op, Y, init):
        """Per-sample state from the data ``Y`` and the initial maps ``init``."""
        raise NotImplementedError

    def workspace(self, op, state):
        """Scratch buffers reused across the steps of one run (or None)."""
        return None

    def step(self, op, state, iteration, workspace=None):
        """Advance every sample of ``state`` (updated in place).

        ``iteration`` counts the solver's steps taken so far.  Returns
        ``(n_steps, progress)``: the steps taken (in the unit of
        ``max_iter``) and what :meth:`converged` reads.
        """
        raise NotImplementedError

    def converged(self, progress):
        """Bool per sample: the stopping test on a step's ``progress``."""
        raise NotImplementedError

    def maps(self, op, state):
        """The current maps (n, K, *map_shape) of the state (may be a view)."""
        raise NotImplementedError

    def map_spectra(self, op, state):
        """Spectra of the current maps on ``op``'s grid (``op.rfft``).

        Interleaved learning needs them after every step (for the filter
        gradient); a solver may keep them in ``state`` to spare an FFT of
        its next step.  They do not depend on the filters.
        """
        return op.rfft(self.maps(op, state))


class ActiveSet:
    """Samples still iterating, with their per-sample state compacted."""

    def __init__(self, n_samples, output, state):
        self.index = np.arange(n_samples)
        self.output = output
        self.state = state
        self.converged = np.zeros(n_samples, dtype=bool)
        self.n_iter = np.zeros(n_samples, dtype=int)

    def retire(self, done, converged, maps):
        """Write the ``maps`` of finished samples out and drop their state."""
        if not done.any():
            return False
        finished = self.index[done]
        self.output[finished] = maps[done]
        self.converged[finished] = converged[done]
        keep = ~done
        self.index = self.index[keep]
        self.state = {k: v[keep] for k, v in self.state.items()}
        return True

    def finish(self, maps):
        """Retire every sample still iterating, as not converged."""
        remaining = np.ones(self.index.size, dtype=bool)
        self.retire(remaining, ~remaining, maps)

    def count(self, iterations):
        self.n_iter[self.index] += iterations
