"""Map solvers: one protocol, one driver, one module per solver.

Every solver minimises, per sample, ``lambda/2 ||A z - y||^2 + sum |z|^p``
for a linear operator ``A`` (:mod:`skdeconv._operators`).  To add a solver,
write a :class:`MapSolver` subclass in a module of this package, decorate it
with :func:`register_solver` and import the module below: ``solver=<name>``
then works in every estimator, function and learner.
"""

from ._base import MapSolver, interleaved_solvers, register_solver, solver_class
from ._driver import check_supported, make_solver, precompute_for, solve
from ._numerics import objective

# The registrations (one import per solver module).
from . import fista, admm, continuation  # noqa: E402, F401  isort: skip

from .auto import auto_solver_for_learning, auto_solvers  # noqa: E402

#: The registered solvers, name -> class.
from ._base import _REGISTRY as SOLVERS  # noqa: E402

__all__ = [
    "SOLVERS",
    "MapSolver",
    "auto_solver_for_learning",
    "auto_solvers",
    "check_supported",
    "interleaved_solvers",
    "make_solver",
    "objective",
    "precompute_for",
    "register_solver",
    "solve",
    "solver_class",
]
