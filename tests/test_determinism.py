"""Determinism: seeds, n_jobs, joblib backends, pickling and memory-mapped input.

Every comparison is exact (bit for bit): each sample is solved on its own
and the filter update does not depend on how samples were split into chunks.
"""

import pickle

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skdeconv import (
    ConvSparseCoder,
    DeconvNetworkTransformer,
    conv_dict_learning,
    conv_sparse_encode,
)
from skdeconv._solvers import interleaved_solvers
from skdeconv._solvers import SOLVERS

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

IMAGE_SHAPE = (9, 8)


def _images(n_samples=7, seed=0, dtype=np.float64):
    """Smooth 2-channel images as rows: (n_samples, 2 * 9 * 8)."""
    rng = np.random.RandomState(seed)
    noise = rng.standard_normal((n_samples, 2) + IMAGE_SHAPE)
    smooth = noise + np.roll(noise, 1, axis=-1) + np.roll(noise, 1, axis=-2)
    return smooth.reshape(n_samples, -1).astype(dtype)


def _coder(**params):
    defaults = dict(
        n_filters=4, filter_shape=3, image_shape=IMAGE_SHAPE, lmbda=5.0, max_iter=40,
        tol=1e-6, n_epochs=3, random_state=0,
    )
    return ConvSparseCoder(**{**defaults, **params})


def _network(**params):
    defaults = dict(
        n_filters=(3, 4), filter_shape=3, connectivity=("full", "random_pairs"),
        image_shape=IMAGE_SHAPE, lmbda=5.0, max_iter=30, n_epochs=2, random_state=0,
    )
    return DeconvNetworkTransformer(**{**defaults, **params})


def _assert_same_coder(a, b):
    assert_array_equal(a.filters_, b.filters_)
    assert_array_equal(a.cost_history_, b.cost_history_)
    assert_array_equal(a.connectivity_, b.connectivity_)
    assert a.input_scale_ == b.input_scale_


@pytest.fixture(scope="module")
def fitted():
    return _coder().fit(_images())


# ---------------------------------------------------------------- seeds
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("connectivity", [None, "random_pairs"])
def test_same_random_state_gives_bit_identical_filters(dtype, connectivity):
    X = _images(dtype=dtype)
    first = _coder(connectivity=connectivity, n_filters=4).fit(X)
    second = _coder(connectivity=connectivity, n_filters=4).fit(X)
    _assert_same_coder(first, second)
    assert first.filters_.dtype == dtype
    # a RandomState instance seeded alike gives the same result too
    third = _coder(connectivity=connectivity, random_state=np.random.RandomState(0)).fit(X)
    _assert_same_coder(first, third)
    # ... and refitting the same estimator as well
    _assert_same_coder(first, first.fit(X).fit(X))


def test_different_random_states_differ():
    X = _images()
    assert not np.array_equal(_coder(random_state=0).fit(X).filters_,
                              _coder(random_state=1).fit(X).filters_)


def test_conv_dict_learning_matches_fit_bit_for_bit():
    X = _images()
    maps, filters, costs = conv_dict_learning(
        X, 4, 3, image_shape=IMAGE_SHAPE, lmbda=5.0, max_iter=40, tol=1e-6, n_epochs=3,
        random_state=0,
    )
    coder = _coder().fit(X)
    assert_array_equal(filters, coder.filters_)
    assert_array_equal(costs, coder.cost_history_)


def test_partial_fit_sequence_is_deterministic():
    X = _images(12)
    runs = []
    for _ in range(2):
        coder = _coder()
        for batch in np.array_split(X, 3):
            coder.partial_fit(batch)
        runs.append(coder)
    _assert_same_coder(*runs)


def test_network_same_random_state_bit_identical():
    X = _images()
    first, second = _network().fit(X), _network().fit(X)
    for (_, a), (_, b) in zip(first.pipeline_.steps, second.pipeline_.steps):
        _assert_same_coder(a, b)
    assert_array_equal(first.transform(X), second.transform(X))


# ---------------------------------------------------------------- n_jobs
@pytest.mark.parametrize("n_jobs", [2, -1])
def test_transform_independent_of_n_jobs(fitted, n_jobs):
    X = _images(9, seed=3)
    serial = fitted.transform(X)
    fitted_parallel = pickle.loads(pickle.dumps(fitted)).set_params(n_jobs=n_jobs)
    assert_array_equal(fitted_parallel.transform(X), serial)
    assert fitted_parallel.score(X) == fitted.score(X)


@pytest.mark.parametrize(
    "solver, fit_algorithm",
    [(solver, "alternating") for solver in sorted(SOLVERS)]
    + [(solver, "interleaved") for solver in interleaved_solvers()],
)
def test_fit_independent_of_n_jobs(solver, fit_algorithm):
    X = _images(9, seed=4)
    params = dict(solver=solver, fit_algorithm=fit_algorithm)
    serial = _coder(n_jobs=1, **params).fit(X)
    parallel = _coder(n_jobs=2, **params).fit(X)
    _assert_same_coder(serial, parallel)
    assert_array_equal(parallel.transform(X), serial.transform(X))


@pytest.mark.parametrize("backend", ["threading", "loky", "sequential"])
def test_results_independent_of_joblib_backend(fitted, backend):
    X = _images(6, seed=5)
    expected_maps = fitted.transform(X)
    expected_fit = _coder(n_epochs=2).fit(X)
    with joblib.parallel_config(backend=backend, n_jobs=2):
        assert_array_equal(fitted.transform(X), expected_maps)
        _assert_same_coder(_coder(n_epochs=2, n_jobs=2).fit(X), expected_fit)


def test_conv_sparse_encode_independent_of_n_jobs(fitted):
    X = _images(5, seed=6)
    params = dict(image_shape=IMAGE_SHAPE, lmbda=5.0, max_iter=40)
    serial = conv_sparse_encode(X, fitted.filters_, **params)
    assert_array_equal(conv_sparse_encode(X, fitted.filters_, n_jobs=2, **params), serial)


def test_network_independent_of_n_jobs():
    X = _images(6, seed=7)
    serial, parallel = _network(n_jobs=1).fit(X), _network(n_jobs=2).fit(X)
    for (_, a), (_, b) in zip(serial.pipeline_.steps, parallel.pipeline_.steps):
        _assert_same_coder(a, b)
    assert_array_equal(parallel.transform(X), serial.transform(X))


# ---------------------------------------------------------------- persistence
def _round_trips(estimator, tmp_path):
    yield pickle.loads(pickle.dumps(estimator))
    path = tmp_path / "estimator.joblib"
    joblib.dump(estimator, path)
    yield joblib.load(path)
    joblib.dump(estimator, path, compress=3)
    yield joblib.load(path)
    joblib.dump(estimator, path)
    yield joblib.load(path, mmap_mode="r")  # read-only memory-mapped attributes


def test_coder_round_trips_give_identical_outputs(fitted, tmp_path):
    X = _images(5, seed=8)
    maps = fitted.transform(X)
    for restored in _round_trips(fitted, tmp_path):
        _assert_same_coder(restored, fitted)
        assert_array_equal(restored.transform(X), maps)
        assert_array_equal(restored.inverse_transform(maps), fitted.inverse_transform(maps))
        assert restored.score(X) == fitted.score(X)
        # a restored model keeps learning exactly like the original
        assert_array_equal(
            pickle.loads(pickle.dumps(restored)).partial_fit(X).filters_,
            pickle.loads(pickle.dumps(fitted)).partial_fit(X).filters_,
        )


def test_partial_fit_state_survives_pickling():
    X = _images(12, seed=9)
    batches = np.array_split(X, 4)
    straight = _coder()
    for batch in batches:
        straight.partial_fit(batch)
    resumed = _coder()
    for batch in batches[:2]:
        resumed.partial_fit(batch)
    resumed = pickle.loads(pickle.dumps(resumed))
    for batch in batches[2:]:
        resumed.partial_fit(batch)
    _assert_same_coder(resumed, straight)


def test_network_round_trips_give_identical_outputs(tmp_path):
    X = _images(5, seed=10)
    net = _network().fit(X)
    maps = net.transform(X)
    for restored in _round_trips(net, tmp_path):
        assert_array_equal(restored.transform(X), maps)
        assert_array_equal(restored.inverse_transform(maps), net.inverse_transform(maps))
        assert_array_equal(restored.project_filters(2), net.project_filters(2))


# ---------------------------------------------------------------- memory maps
@pytest.fixture
def memmapped(tmp_path):
    X = _images(8, seed=11)
    joblib.dump(X, tmp_path / "X.joblib")
    X_map = joblib.load(tmp_path / "X.joblib", mmap_mode="r")
    assert isinstance(X_map, np.memmap) and not X_map.flags.writeable
    return X, X_map


def test_memory_mapped_input_gives_identical_outputs(memmapped):
    X, X_map = memmapped
    expected = _coder().fit(X)
    coder = _coder().fit(X_map)
    _assert_same_coder(coder, expected)
    assert_array_equal(coder.transform(X_map), expected.transform(X))
    assert coder.score(X_map) == expected.score(X)
    assert_array_equal(
        conv_sparse_encode(X_map, expected.filters_, image_shape=IMAGE_SHAPE),
        conv_sparse_encode(X, expected.filters_, image_shape=IMAGE_SHAPE),
    )
    assert_array_equal(coder.partial_fit(X_map).filters_, expected.partial_fit(X).filters_)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_memory_mapped_input_with_workers(memmapped, n_jobs):
    X, X_map = memmapped
    expected = _coder().fit(X)
    coder = _coder(n_jobs=n_jobs).fit(X_map)
    _assert_same_coder(coder, expected)
    assert_array_equal(coder.transform(X_map), expected.transform(X))


def test_memory_mapped_input_network(memmapped, tmp_path):
    X, X_map = memmapped
    expected = _network().fit(X)
    net = _network().fit(X_map)
    maps = expected.transform(X)
    assert_array_equal(net.transform(X_map), maps)
    joblib.dump(maps, tmp_path / "maps.joblib")
    maps_map = joblib.load(tmp_path / "maps.joblib", mmap_mode="r")
    assert_array_equal(net.inverse_transform(maps_map), expected.inverse_transform(maps))
    assert_array_equal(net.project(maps_map, 2), expected.project(maps, 2))
