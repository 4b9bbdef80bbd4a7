"""Warnings that reach the user once per public call, at the user's line.

A public call (``fit``, ``transform``, ``conv_sparse_encode``, a network's
``fit`` over its layers...) may run map inference many times; the
``ConvergenceWarning`` of every run is collected and one summary is issued
when the outermost public call returns, named after it
(``ConvSparseCoder.transform: ...``).  Warnings point at the first frame
outside skdeconv, scikit-learn, joblib and the standard library (Pipeline,
GridSearchCV and joblib sit in between); in a joblib worker process, where
no frame is the user's, at the definition of the public method that ran.
"""

import functools
import inspect
import os
import sys
import sysconfig
import threading
import warnings

import joblib
import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning

# Frames of these packages are skipped when attributing a warning.
# (The standard library, threading and concurrent.futures included, is
# recognised by its directory: see _LIBRARY_DIRECTORIES.)
_LIBRARY_PACKAGES = ("skdeconv", "sklearn", "joblib", "loky")


class DeadLayerWarning(UserWarning):
    """Warning that a fitted layer explains (almost) nothing.

    Issued by ``fit`` when a layer's maps are (nearly) all zero, or its
    filters barely moved from their initialisation; the message names the
    parameter to change (usually ``lmbda``).

    See Also
    --------
    skdeconv.ConvSparseCoder : The single-layer coder that checks its fit.
    skdeconv.DeconvNetworkTransformer : Checks every layer of the network.

    Examples
    --------
    >>> import warnings
    >>> from skdeconv import DeadLayerWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", DeadLayerWarning)  # a dead layer raises
    ...     issubclass(DeadLayerWarning, UserWarning)
    True
    """


_calls = threading.local()


def user_stacklevel():
    """``stacklevel`` for ``warnings.warn`` called from the caller of this
    function: the first frame outside the library packages (and the
    standard library); None where there is none (in a joblib worker
    process, whose stack starts in ``multiprocessing``)."""
    frame, stacklevel = sys._getframe(2), 2
    while _is_library(frame):
        if frame.f_back is None:
            return None
        frame, stacklevel = frame.f_back, stacklevel + 1
    return stacklevel


def _package(frame):
    return frame.f_globals.get("__name__", "").split(".")[0]


def _is_library(frame):
    """A frame of the library packages (by module, or by file: loky's
    worker runs a joblib file as ``__main__``) or of the standard library
    (frozen modules included)."""
    return _package(frame) in _LIBRARY_PACKAGES or frame.f_code.co_filename.startswith(
        _LIBRARY_DIRECTORIES
    )


_LIBRARY_DIRECTORIES = (
    sysconfig.get_paths()["stdlib"], "<frozen ",
    *(os.path.dirname(module.__file__) for module in (joblib, sklearn)),
)


def warn_user(message, category, entry=None):
    """``warnings.warn`` attributed to the user's code.

    Where no frame is the user's (a joblib worker process of GridSearchCV,
    say), the warning points at ``entry``, the public method that ran, if
    given, else at the outermost frame.
    """
    stacklevel = user_stacklevel()
    if stacklevel is not None:
        warnings.warn(message, category, stacklevel=stacklevel)
    elif entry is not None:
        code = inspect.unwrap(entry).__code__
        warnings.warn_explicit(message, category, code.co_filename, code.co_firstlineno,
                               module=entry.__module__)
    else:
        warnings.warn(message, category, stacklevel=len(inspect.stack(0)))


def single_convergence_warning(method):
    """Decorate a public entry point: at most one ConvergenceWarning per call,
    which names the method (``ConvSparseCoder.transform: ...``)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        outermost = not getattr(_calls, "depth", 0)
        if outermost:
            _calls.depth, _calls.pending = 0, []
        _calls.depth += 1
        try:
            return method(*args, **kwargs)
        finally:
            _calls.depth -= 1
            if outermost:
                pending, _calls.pending = _calls.pending, []
                if pending:
                    warn_user(f"{_caller_name(method, args)}: {_summary(pending)}",
                              ConvergenceWarning, entry=method)

    return wrapper


def _caller_name(method, args):
    """``Class.method`` of a bound call (the instance's class), else the function's name."""
    if args and "." in method.__qualname__:
        return f"{type(args[0]).__name__}.{method.__name__}"
    return method.__name__


def report_not_converged(n_failed, n_samples, tol, max_iter, where=""):
    """Record (inside a public call) or issue one not-converged warning."""
    record = (n_failed, n_samples, tol, max_iter, where)
    if getattr(_calls, "depth", 0):
        _calls.pending.append(record)
    else:
        warn_user(_summary([record]), ConvergenceWarning)


def _summary(records):
    failed = sum(r[0] for r in records)
    total = sum(r[1] for r in records)
    settings = sorted({(r[2], r[3]) for r in records})
    tols = ", ".join(f"tol={tol} within max_iter={max_iter}" for tol, max_iter in settings)
    where = records[0][4] if len(records) == 1 else f" (over {len(records)} inferences)"
    return (
        f"Map inference did not reach {tols} for {failed} of {total} samples"
        f"{where}; increase max_iter."
    )


# A fitted layer is dead (DeadLayerWarning) when its maps explain less than
# this fraction of the cost of all-zero maps, when fewer than this fraction of
# them are non-zero, or when its filters moved less than this (relative).
DEAD_EXPLAINED = 0.01
DEAD_DENSITY = 1e-3
DEAD_MOVEMENT = 0.01


def warn_if_dead_layer(coder, Y, initial_filters, maps):
    """DeadLayerWarning when a fitted coder explains (almost) nothing.

    Dead: the final cost is within 1% of the cost of all-zero maps
    (``lmbda/2 ||y||^2``), or fewer than 0.1% of the maps are non-zero,
    or the filters moved less than 1% from their initialisation.
    """
    rows = Y.reshape(len(Y), -1).astype(np.float64)
    zero_cost = 0.5 * coder.lmbda_ * float(np.mean(np.einsum("ij,ij->i", rows, rows)))
    density = None if maps is None else np.count_nonzero(maps) / maps.size
    moved = np.linalg.norm(coder.filters_ - initial_filters) / np.linalg.norm(initial_filters)
    hint = (
        f"increase lmbda (lmbda_={coder.lmbda_:.4g}; every map is zero for "
        f"lmbda <= lmbda_min_={coder.lmbda_min_:.4g}; lmbda='auto' picks a "
        "live value)"
    )
    if coder.cost_history_[-1] > (1 - DEAD_EXPLAINED) * zero_cost or (
        density is not None and density < DEAD_DENSITY
    ):
        shown = "" if density is None else f" ({density:.3%} of the maps are non-zero)"
        warn_user(
            f"{type(coder).__name__}: the maps explain almost none of the input{shown}; "
            f"{hint}.", DeadLayerWarning,
        )
    elif moved < DEAD_MOVEMENT:
        warn_user(
            f"{type(coder).__name__}: the filters moved by {moved:.2%} from their "
            f"initialisation in {coder.n_iter_} epochs; increase n_epochs, or {hint}.",
            DeadLayerWarning,
        )
