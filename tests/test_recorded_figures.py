"""Recorded figures equal what they claim to be.

``cost_history_`` / the history of ``conv_dict_learning`` claim to be the
mean per-sample objective of the maps and filters after each epoch;
``score`` claims to be minus the mean objective of the inferred maps;
``heldout_pixel_score`` claims to be minus the relative squared error on a
random ``fraction`` of hidden pixels.  Each is recomputed here from the
returned arrays with a brute-force objective (``scipy.signal`` valid
convolutions, the connectivity applied by hand) or a by-hand masked solver,
for every fit algorithm and solver and for ``partial_fit``.  Only public
API is used; every call passes ``solver``, ``lmbda`` and ``fit_algorithm``.
"""

import numpy as np
import pytest
from conftest import _spike_signals
from numpy.testing import assert_allclose
from scipy import signal

from skdeconv import (
    ConvSparseCoder,
    conv_dict_learning,
    heldout_pixel_score,
    make_connectivity,
)
from skdeconv._encode import _encode
from skdeconv._online import ONLINE_MAX_ITER, ONLINE_SOLVER_OPTIONS
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import images_to_rows, local_contrast_normalize

LMBDA = 5.0
# short map inferences in the alternating fits are on purpose
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _objective(X, maps, filters, g, lmbda, p, image_shape):
    """Per-sample lambda/2 sum_c ||sum_k g[k,c] conv_valid(z_k, f_kc) - y_c||^2
    + sum |z|^p, by scipy.signal; X rows, maps rows."""
    n_filters, n_channels = g.shape
    Y = X.reshape((len(X), n_channels) + tuple(image_shape))
    map_shape = tuple(n + h - 1 for n, h in zip(image_shape, filters.shape[2:]))
    Z = maps.reshape((len(X), n_filters) + map_shape)
    costs = []
    for y, z in zip(Y, Z):
        data = 0.0
        for c in range(n_channels):
            synthesis = sum(
                signal.convolve(z[k], filters[k, c], mode="valid")
                for k in range(n_filters) if g[k, c]
            )
            data += np.sum((synthesis - y[c]) ** 2)
        costs.append(0.5 * lmbda * data + np.sum(np.abs(z) ** p))
    return np.array(costs)


def _color_rows():
    images = load_zeiler2010("fruit")[:3, 40:56, 40:56]
    return images_to_rows(local_contrast_normalize(images, channel_axis=-1), channel_axis=-1)


PROBLEMS = {
    # 3 colour channels, 3 singles + 3 pairs: a sparse connectivity
    "2d": dict(X=_color_rows, n_filters=6, filter_shape=4, image_shape=(16, 16),
               connectivity="singles_and_pairs"),
    "1d": dict(X=lambda: _spike_signals(n_samples=5, length=40, seed=11)[0], n_filters=3,
               filter_shape=7, image_shape=(40,), connectivity=None),
}
FITS = [
    ("interleaved", "fista"),
    ("interleaved", "admm"),
    ("alternating", "fista"),
    ("alternating", "admm"),
    ("alternating", "continuation"),
]


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("fit_algorithm, solver", FITS)
def test_history_is_the_objective_of_the_returned_maps_and_filters(problem, fit_algorithm,
                                                                   solver):
    """history[-1] = mean objective(maps, filters) returned by
    conv_dict_learning, after 1 and 3 epochs (the 1-epoch run is a prefix
    of the 3-epoch one)."""
    spec = dict(PROBLEMS[problem])
    X = spec.pop("X")()
    extra = dict(max_iter=30, tol=1e-3) if fit_algorithm == "alternating" else {}
    histories = {}
    for n_epochs in (1, 3):
        maps, filters, history = conv_dict_learning(
            X, lmbda=LMBDA, p=1.0, solver=solver, fit_algorithm=fit_algorithm,
            n_epochs=n_epochs, random_state=0, **spec, **extra,
        )
        g = (np.ones(filters.shape[:2], bool) if spec["connectivity"] is None
             else _singles_and_pairs(filters.shape[1]))
        costs = _objective(X, maps, filters, g, LMBDA, 1.0, spec["image_shape"])
        assert history.shape == (n_epochs,)
        assert history[-1] == pytest.approx(costs.mean(), rel=1e-9), n_epochs
        histories[n_epochs] = history
    assert_allclose(histories[3][:1], histories[1], rtol=1e-12)


def _singles_and_pairs(n_channels):
    return make_connectivity("singles_and_pairs", n_channels * (n_channels + 1) // 2, n_channels)


@pytest.mark.parametrize("fit_algorithm, solver", FITS)
def test_estimator_history_is_the_functions(fit_algorithm, solver):
    """ConvSparseCoder.fit records the history of conv_dict_learning (which
    the test above ties to the objective) and returns its filters."""
    spec = dict(PROBLEMS["1d"])
    X = spec.pop("X")()
    extra = dict(max_iter=60, tol=1e-3) if fit_algorithm == "alternating" else {}
    _, filters, history = conv_dict_learning(
        X, lmbda=LMBDA, p=1.0, solver=solver, fit_algorithm=fit_algorithm, n_epochs=3,
        random_state=0, **spec, **extra,
    )
    coder = ConvSparseCoder(
        lmbda=LMBDA, p=1.0, solver=solver, fit_algorithm=fit_algorithm, n_epochs=3,
        random_state=0, **spec, **extra,
    ).fit(X)
    assert_allclose(coder.cost_history_, history, rtol=1e-12)
    assert_allclose(coder.filters_, filters, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("solver", ["fista", "admm"])
def test_partial_fit_history_is_the_objective_of_its_maps_and_new_filters(solver):
    """Each partial_fit records the mean objective of the batch's maps
    (inferred for the filters before the call) with the filters after it,
    as fit records the objective of its maps with its returned filters;
    batches of unequal sizes."""
    spec = dict(PROBLEMS["2d"])
    X = spec.pop("X")()
    images = load_zeiler2010("fruit")[3:5, 40:56, 40:56]
    X2 = images_to_rows(local_contrast_normalize(images, channel_axis=-1), channel_axis=-1)
    g = _singles_and_pairs(3)
    init = np.random.RandomState(1).standard_normal((6, 3, 4, 4)) * g[:, :, None, None]
    init /= np.maximum(np.sqrt(np.sum(init**2, axis=(2, 3), keepdims=True)), 1e-300)
    # partial_fit caps its map inference at ONLINE_MAX_ITER iterations
    max_iter = ONLINE_MAX_ITER
    coder = ConvSparseCoder(lmbda=LMBDA, p=1.0, solver=solver, max_iter=max_iter, tol=1e-4,
                            fit_algorithm="interleaved", filters_init=init, random_state=0,
                            **spec)
    for batch in (X, X2[:1], X2):
        before = coder.filters_.copy() if hasattr(coder, "filters_") else init
        coder.partial_fit(batch)
        maps = _encode(  # with the options of partial_fit's bounded inference
            coder._images(batch), before, g, lmbda=LMBDA, p=1.0, solver=solver,
            max_iter=max_iter, tol=1e-4, solver_options=ONLINE_SOLVER_OPTIONS,
        )[0].reshape(len(batch), -1)
        costs = _objective(batch, maps, coder.filters_, g, LMBDA, 1.0, spec["image_shape"])
        assert coder.cost_history_[-1] == pytest.approx(costs.mean(), rel=1e-9)
    assert coder.cost_history_.shape == (3,)


@pytest.mark.parametrize("solver", ["fista", "admm", "continuation"])
def test_score_is_minus_the_mean_objective_of_transform(solver):
    spec = dict(PROBLEMS["2d"])
    X = spec.pop("X")()
    coder = ConvSparseCoder(lmbda=LMBDA, p=1.0, solver="fista", fit_algorithm="interleaved",
                            n_epochs=5, random_state=0, **spec).fit(X)
    coder.set_params(solver=solver, max_iter=400, tol=1e-4)
    maps = coder.transform(X)
    costs = _objective(X, maps, coder.filters_, coder.connectivity_, LMBDA, 1.0,
                       spec["image_shape"])
    assert coder.score(X) == pytest.approx(-costs.mean(), rel=1e-10)


# ---------------------------------------------------------------- held-out pixels
def _masked_fista_by_hand(X, filters, lmbda, visible, n_iter=20000):
    """Minimise lambda/2 ||W (F z - y)||^2 + |z|_1 per sample (1-D, one
    channel) with dense matrices: F the valid synthesis, W the visible pixels.
    (1500 iterations left the score 2e-4 from its optimum on one problem.)"""
    n_filters, _, h = filters.shape
    length = X.shape[1]
    map_length = length + h - 1
    F = np.hstack([
        np.array([signal.convolve(np.eye(map_length)[j], filters[k, 0], mode="valid")
                  for j in range(map_length)]).T
        for k in range(n_filters)
    ])
    all_maps = []
    for y, w in zip(X, visible):
        A = F * w[:, None]
        step = 1 / (lmbda * np.linalg.norm(A, 2) ** 2)
        z = point = np.zeros(F.shape[1])
        t = 1.0
        for _ in range(n_iter):
            v = point - step * lmbda * A.T @ (A @ point - w * y)
            z_new = np.sign(v) * np.maximum(np.abs(v) - step, 0)
            t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
            point = z_new + (t - 1) / t_new * (z_new - z)
            z, t = z_new, t_new
        all_maps.append(z)
    return np.array(all_maps), F


@pytest.mark.parametrize("fraction, random_state", [(0.2, 0), (0.3, 5)])
def test_heldout_pixel_score_equals_a_by_hand_computation(fraction, random_state):
    """Hide the pixels drawn by RandomState(random_state).random_sample <
    fraction, solve the masked problem to optimality by hand, score
    -sum_hidden (F z - y)^2 / sum_hidden y^2."""
    X = _spike_signals(n_samples=4, length=30, seed=13)[0]
    coder = ConvSparseCoder(3, 7, lmbda=LMBDA, p=1.0, solver="fista",
                            fit_algorithm="interleaved", n_epochs=30, random_state=0).fit(X)
    coder.set_params(max_iter=20000, tol=1e-12)
    hidden = np.random.RandomState(random_state).random_sample(X.shape) < fraction
    assert 0.5 * fraction < hidden.mean() < 1.5 * fraction
    maps, F = _masked_fista_by_hand(X, coder.filters_, LMBDA, (~hidden).astype(float))
    error = maps @ F.T - X
    expected = -np.sum(error[hidden] ** 2) / np.sum(X[hidden] ** 2)
    score = heldout_pixel_score(coder, X, fraction=fraction, random_state=random_state)
    assert score == pytest.approx(expected, rel=1e-6)
