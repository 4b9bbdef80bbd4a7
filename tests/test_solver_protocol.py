"""The solver protocol, the driver and the operator interface (docs/architecture.rst)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skdeconv import conv_sparse_encode
from skdeconv._fft_ops import ConvOperator
from skdeconv._operators import LinearOperator, MaskedOperator
from skdeconv._shrinkage import shrink
from skdeconv._solvers import (
    SOLVERS,
    MapSolver,
    interleaved_solvers,
    make_solver,
    objective,
    register_solver,
    solve,
)
from skdeconv._solvers._base import _REGISTRY


def _problem(seed=0, n=3):
    rng = np.random.RandomState(seed)
    filters = rng.standard_normal((3, 1, 5))
    filters /= np.linalg.norm(filters, axis=-1, keepdims=True)
    Y = rng.standard_normal((n, 1, 30))
    return ConvOperator(filters, np.ones((3, 1), bool), (30,)), filters, Y


def test_registry_names_and_interleaved_solvers():
    assert set(SOLVERS) == {"fista", "admm", "continuation"}
    assert interleaved_solvers() == ("fista", "admm")
    for name, cls in SOLVERS.items():
        assert issubclass(cls, MapSolver) and cls.name == name


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_driver_is_what_conv_sparse_encode_runs(name):
    """The public function and the driver give the same maps; the callback
    sees every step, and its last maps are the returned ones."""
    op, filters, Y = _problem()
    seen = []
    maps, n_iter, _ = solve(op, Y, solver=name, lmbda=5.0, max_iter=40, tol=0.0,
                            callback=lambda it, index, m: seen.append((it, index.copy(), m.copy())))
    public = conv_sparse_encode(Y.reshape(3, -1), filters, lmbda=5.0, solver=name,
                                max_iter=40, tol=0.0)
    assert_array_equal(maps.reshape(3, -1), public)
    assert seen[-1][0] == n_iter.max() == 40
    assert_array_equal(seen[-1][2], maps[seen[-1][1]])


@pytest.mark.parametrize("name", ["fista", "continuation"])
def test_masked_operator_ignores_hidden_pixels(name):
    op, filters, Y = _problem()
    mask = (np.random.RandomState(1).random_sample(Y.shape) > 0.3).astype(float)
    changed = np.where(mask == 1, Y, 100.0)
    results = [
        conv_sparse_encode(target.reshape(3, -1), filters, lmbda=5.0, solver=name,
                           max_iter=300, tol=1e-8, mask=mask.reshape(3, -1))
        for target in (Y, changed)
    ]
    assert_array_equal(results[0], results[1])
    masked = MaskedOperator(op, mask)
    assert masked.lipschitz == op.lipschitz
    assert_array_equal(masked.take([2]).mask, mask[[2]])


def test_admm_declines_a_masked_operator_and_auto_picks_fista():
    op, filters, Y = _problem()
    X, mask = Y.reshape(3, -1), np.ones((3, 30))
    with pytest.raises(ValueError, match="admm.*MaskedOperator"):
        conv_sparse_encode(X, filters, lmbda=50.0, solver="admm", mask=mask)
    assert_array_equal(
        conv_sparse_encode(X, filters, lmbda=50.0, mask=mask),
        conv_sparse_encode(X, filters, lmbda=50.0, solver="fista", mask=mask),
    )
    with pytest.raises(ValueError, match="binary"):
        conv_sparse_encode(X, filters, mask=np.full((3, 30), 0.5))


class _DenseOperator(LinearOperator):
    """A generic operator without spectra: an explicit matrix per sample."""

    def __init__(self, op):
        self.n_filters, self.n_channels = op.n_filters, op.n_channels
        self.map_shape, self.image_shape, self.dtype = op.map_shape, op.image_shape, op.dtype
        self.precomputed = {}
        size = op.n_filters * int(np.prod(op.map_shape))
        eye = np.eye(size).reshape((size, op.n_filters) + op.map_shape)
        self.matrix = op.forward(eye).reshape(size, -1).T  # (pixels, map entries)

    def forward(self, maps):
        out = maps.reshape(len(maps), -1) @ self.matrix.T
        return out.reshape((len(maps), self.n_channels) + self.image_shape)

    def adjoint(self, residual):
        out = residual.reshape(len(residual), -1) @ self.matrix
        return out.reshape((len(residual), self.n_filters) + self.map_shape)

    @property
    def lipschitz(self):
        return float(np.linalg.norm(self.matrix, 2) ** 2)


def test_a_new_operator_and_a_new_solver_plug_in():
    """A registered ISTA runs on a generic operator through the driver, and
    FISTA gives the same optimum on it as on the FFT operator."""

    @register_solver
    class Ista(MapSolver):
        name = "test_ista"

        def start(self, op, Y, init):
            return {"x": init.copy(), "target": Y}

        def step(self, op, state, iteration, workspace=None):
            step = self.lmbda * op.lipschitz
            x = state["x"]
            point = x - (self.lmbda / step) * op.adjoint(op.forward(x) - state["target"])
            new = shrink(point, step, self.p)
            change = np.linalg.norm((new - x).reshape(len(x), -1), axis=1)
            state["x"] = new
            return 1, change <= self.tol * np.linalg.norm(new.reshape(len(x), -1), axis=1)

        def converged(self, progress):
            return progress

        def maps(self, op, state):
            return state["x"]

    try:
        op, _, Y = _problem()
        dense = _DenseOperator(op)
        assert not make_solver("admm", lmbda=1.0).supports(dense)
        params = dict(lmbda=5.0, max_iter=20000, tol=1e-8)
        reference = objective(op, solve(op, Y, solver="fista", **params)[0], Y, 5.0, 1.0)
        for name in ("fista", "continuation", "test_ista"):  # generic paths
            maps, _, _ = solve(dense, Y, solver=name, **params)
            np.testing.assert_allclose(objective(op, maps, Y, 5.0, 1.0), reference, rtol=1e-6)
    finally:
        _REGISTRY.pop("test_ista", None)


@pytest.mark.parametrize("name", interleaved_solvers())
def test_map_spectra_are_the_spectra_of_the_maps_and_spare_no_accuracy(name):
    """Interleaved learning asks for the maps' spectra after every step.  They
    are ``op.rfft`` of the maps; FISTA also keeps its next extrapolated
    point's spectrum from them (x_t + w (x_t - x_{t-1}), w = 0 after a
    restart), which must be the FFT of that point, restarted samples included,
    and then steps as if it had transformed the point itself."""
    op, _, Y = _problem(n=4)
    method = make_solver(name, lmbda=20.0)
    method.precompute(op)
    state = method.start(op, Y, np.zeros((4, 3, 34)))
    reference = method.start(op, Y, np.zeros((4, 3, 34)))
    restarts = 0
    for epoch in range(60):  # FISTA restarts from step 42 on
        method.step(op, state, epoch)
        method.step(op, reference, epoch)
        spectra = method.map_spectra(op, state)
        np.testing.assert_allclose(spectra, op.rfft(method.maps(op, state)), atol=1e-12)
        if "y_spectra" in state:
            np.testing.assert_allclose(state["y_spectra"], op.rfft(state["y"]), atol=1e-12)
            restarts += np.count_nonzero(state["weight"] == 0)
        np.testing.assert_allclose(method.maps(op, state), method.maps(op, reference),
                                   rtol=0, atol=1e-10)
    if name == "fista":
        assert restarts > 0  # the test saw restarted samples


def test_fista_steps_without_map_spectra_do_not_use_stale_spectra():
    """Two steps between calls of map_spectra: the step transforms y itself."""
    op, _, Y = _problem(n=2)
    method = make_solver("fista", lmbda=20.0)
    state = method.start(op, Y, np.zeros((2, 3, 34)))
    reference = method.start(op, Y, np.zeros((2, 3, 34)))
    for epoch in range(12):
        method.step(op, state, epoch)
        method.step(op, reference, epoch)
        if epoch % 3 == 0:
            method.map_spectra(op, state)
    assert_array_equal(method.maps(op, state) != 0, method.maps(op, reference) != 0)
    np.testing.assert_allclose(method.maps(op, state), method.maps(op, reference), atol=1e-10)
