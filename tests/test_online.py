"""Online filter learning (partial_fit): cost against batch fit, bounded memory.

The data are 1-D signals synthesised from two known filters and sparse spike
trains, so that learning matters: random filters cost about twice as much as
learned ones.
"""

import copy
import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skdeconv import ConvSparseCoder

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_SAMPLES, N_FILTERS, FILTER_LENGTH = 40, 2, 9  # as the spike_signals fixture
BATCH_SIZE = 10


def _coder(random_state, **params):
    defaults = dict(
        n_filters=N_FILTERS, filter_shape=FILTER_LENGTH, lmbda=20.0, max_iter=200, tol=1e-4,
        random_state=random_state,
    )
    return ConvSparseCoder(**{**defaults, **params})


def _online(coder, X, n_passes, batch_size=BATCH_SIZE, seed=1):
    """partial_fit over shuffled mini-batches, n_passes times over X."""
    rng = np.random.RandomState(seed)
    for _ in range(n_passes):
        for batch in np.array_split(rng.permutation(len(X)), len(X) // batch_size):
            coder.partial_fit(X[batch])
    return coder


def _cost(coder, X):
    """Mean per-sample cost of X (the model's objective), lower is better."""
    return -coder.score(X)


def _initial_filters(seed):
    filters = np.random.RandomState(seed).standard_normal((N_FILTERS, 1, FILTER_LENGTH))
    return filters / np.linalg.norm(filters, axis=-1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_online_reaches_batch_cost_within_a_few_percent(seed, spike_signals):
    """A few passes of mini-batches reach the cost of the paper's batch fit
    (alternating, 10 epochs) on the same data within 3%; both learn (their
    cost is well below that of the initial filters).  (Interleaved batch fit,
    the default, goes further: 10.6 vs 12.9 for seed 0.)"""
    X = spike_signals()[0]
    initial = _initial_filters(seed)
    batch = _coder(0, filters_init=initial, fit_algorithm="alternating", n_epochs=10).fit(X)
    online = _online(_coder(0, filters_init=initial), X, n_passes=5)
    assert online.n_steps_ == 5 * N_SAMPLES // BATCH_SIZE
    untrained = copy.deepcopy(batch)
    untrained.filters_ = initial
    batch_cost, online_cost, initial_cost = _cost(batch, X), _cost(online, X), _cost(untrained, X)
    assert batch_cost < 0.9 * initial_cost
    assert online_cost < 0.9 * initial_cost
    assert online_cost <= 1.03 * batch_cost, (online_cost, batch_cost)


def test_online_cost_decreases_over_passes(spike_signals):
    X = spike_signals()[0]
    coder = _coder(0)
    costs = [_cost(_online(coder, X, n_passes=1, seed=seed), X) for seed in range(3)]
    assert costs[0] > costs[1] > costs[2]


def test_running_statistics_do_not_grow_with_samples_seen(spike_signals):
    """Memory is independent of how many samples were seen: the sufficient
    statistics have a fixed size, and nothing else grows except the cost
    history (one float per call)."""
    X = spike_signals(60)[0]

    def arrays(coder):
        return {
            name: value.shape for name, value in vars(coder).items()
            if isinstance(value, np.ndarray) and name != "cost_history_"
        }

    def statistics(coder):
        return [(a.shape, b.shape, a.dtype, b.dtype) for a, b in coder._statistics]

    coder = _coder(0, max_iter=20).partial_fit(X[:2])
    first_arrays, first_statistics = arrays(coder), statistics(coder)
    first_size = len(pickle.dumps(coder))
    size = FILTER_LENGTH * N_FILTERS
    assert first_statistics == [((size, size), (size,), np.float64, np.float64)]
    for start in range(2, 60, 2):
        coder.partial_fit(X[start : start + 2])
    assert coder.n_steps_ == 30 and len(coder.cost_history_) == 30
    assert arrays(coder) == first_arrays
    assert statistics(coder) == first_statistics
    assert len(pickle.dumps(coder)) - first_size <= 29 * 8 + 64  # the cost history only
    # nor on the size of the mini-batches
    assert statistics(_coder(0, max_iter=20).partial_fit(X[:30])) == first_statistics


def test_statistics_are_per_channel_and_respect_connectivity():
    """One (A_c, b_c) per input channel, sized by the maps connected to it."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((4, 3 * 8))
    g = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=bool)
    coder = ConvSparseCoder(
        n_filters=4, filter_shape=3, image_shape=(8,), connectivity=g, max_iter=20,
        random_state=0,
    ).partial_fit(X).partial_fit(X)
    sizes = [a.shape[0] for a, _ in coder._statistics]
    assert sizes == [3 * int(n) for n in g.sum(axis=0)]
    assert_array_equal(coder.filters_[~g], 0)


@pytest.mark.parametrize(
    "n_filters, connectivity",
    [(2, np.array([[1, 0], [1, 0]], dtype=bool)), (1, "random_1")],
    ids=["array", "random_1"],
)
def test_channel_explained_by_no_map(n_filters, connectivity):
    """A connectivity column of zeros (a channel no map explains) is accepted
    by make_connectivity and fit; partial_fit must accept it too."""
    X = np.random.RandomState(0).standard_normal((3, 2 * 6))
    params = dict(n_filters=n_filters, filter_shape=3, image_shape=(6,), max_iter=10,
                  connectivity=connectivity, random_state=0)
    fitted = ConvSparseCoder(n_epochs=1, **params).fit(X)
    assert not fitted.connectivity_.all(axis=0).all()
    online = ConvSparseCoder(**params).partial_fit(X).partial_fit(X)
    assert np.all(np.isfinite(online.filters_))
    assert_array_equal(online.filters_[~online.connectivity_], 0)


def test_fit_after_partial_fit_starts_afresh(spike_signals):
    X = spike_signals(20)[0]
    coder = _online(_coder(0, max_iter=30), X, n_passes=1)
    refit = coder.fit(X)
    expected = _coder(0, max_iter=30).fit(X)
    assert_array_equal(refit.filters_, expected.filters_)
    assert refit.n_steps_ == 0
    # and partial_fit after fit continues from the fitted filters
    assert _cost(refit.partial_fit(X), X) <= 1.01 * _cost(expected, X)
