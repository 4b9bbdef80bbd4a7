"""Running on a dask.distributed cluster through joblib's "dask" backend.

The clusters are started by the tests, on 127.0.0.1 only, with two
single-threaded workers. Everything is bounded by timeouts. Needs the ``dist``
extra (dask and distributed); skipped without it.
"""

import os
import signal
import threading
import time

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

REASON = "the 'dist' extra is not installed (pip install 'skdeconv[dist]': dask, distributed)"
dask = pytest.importorskip("dask", reason=REASON)
distributed = pytest.importorskip("distributed", reason=REASON)

from conftest import _smooth_images_and_an_unused_filter  # noqa: E402
from skdeconv import (  # noqa: E402
    ConvSparseCoder,
    DeconvNetworkTransformer,
    conv_dict_learning,
    conv_sparse_encode,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # dask's own chatter when a worker goes away or a cluster shuts down
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

TIMEOUT = 60  # seconds, for any single wait on the cluster
IMAGE_SHAPE = (10, 10)


def _images(n_samples=8, seed=0):
    rng = np.random.RandomState(seed)
    noise = rng.standard_normal((n_samples,) + IMAGE_SHAPE)
    return (noise + np.roll(noise, 1, axis=-1)).reshape(n_samples, -1)


def _coder(**params):
    defaults = dict(
        n_filters=4, filter_shape=3, image_shape=IMAGE_SHAPE, lmbda=5.0, max_iter=50,
        tol=1e-6, n_epochs=2, random_state=0,
    )
    return ConvSparseCoder(**{**defaults, **params})


def _local_cluster(processes):
    """Scheduler, workers and their HTTP endpoints on 127.0.0.1, random ports,
    no dashboard."""
    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=processes, protocol="tcp",
        host="127.0.0.1", scheduler_port=0, dashboard_address=None,
        worker_dashboard_address=None, silence_logs=50,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )


def _connect(cluster):
    client = distributed.Client(cluster, timeout=TIMEOUT)
    client.wait_for_workers(2, timeout=TIMEOUT)
    return client


@pytest.fixture(scope="module")
def client():
    """Two single-threaded in-process workers talking TCP on 127.0.0.1."""
    with _local_cluster(processes=False) as cluster, _connect(cluster) as client:
        yield client


def _keys_run_on_cluster(task_stream):
    return {task["key"].split("-")[0] for task in task_stream.data}


# ---------------------------------------------------------------- equality
def test_fit_and_transform_on_the_cluster_equal_n_jobs_1(client):
    X = _images()
    expected = _coder(n_jobs=1).fit(X)
    expected_maps = expected.transform(X)
    with distributed.get_task_stream(client) as tasks:
        with joblib.parallel_config(backend="dask", wait_for_workers_timeout=TIMEOUT):
            coder = _coder(n_jobs=2).fit(X)
            maps = coder.transform(X)
            score = coder.score(X)
    ran = _keys_run_on_cluster(tasks)
    assert any("_encode_chunk" in key for key in ran), ran
    assert any("_cost_chunk" in key for key in ran), ran
    # fit ran as chains of futures (state on the workers), not joblib tasks
    ran_full = {task["key"] for task in tasks.data}
    assert any(key.startswith("skdeconv-advance") for key in ran_full), ran_full
    # the same filters up to the order of a sum (chunk gradients summed
    # after their inverse FFT)
    assert_allclose(coder.filters_, expected.filters_, rtol=0, atol=1e-12)
    assert_allclose(coder.cost_history_, expected.cost_history_, rtol=1e-12)
    assert_allclose(maps, expected_maps, rtol=0, atol=1e-10)
    assert score == pytest.approx(expected.score(X), rel=1e-10)


def test_unused_filter_restarts_the_same_on_the_cluster(client):
    X, filters = _smooth_images_and_an_unused_filter()
    params = dict(image_shape=(32, 32), filters_init=filters, n_epochs=20)
    expected = _coder(n_filters=3, filter_shape=5, n_jobs=1, **params).fit(X)
    with joblib.parallel_config(backend="dask", wait_for_workers_timeout=TIMEOUT):
        coder = _coder(n_filters=3, filter_shape=5, n_jobs=2, **params).fit(X)
    assert float(np.sum(expected.filters_[2] * filters[2])) < 0.5  # restarted
    assert_allclose(coder.filters_, expected.filters_, rtol=0, atol=1e-12)
    assert_allclose(coder.cost_history_, expected.cost_history_, rtol=1e-12)


def test_functions_on_the_cluster_equal_n_jobs_1(client):
    X = _images(6, seed=1)
    params = dict(image_shape=IMAGE_SHAPE, lmbda=5.0, max_iter=30, random_state=0, n_epochs=2)
    expected = conv_dict_learning(X, 3, 3, n_jobs=1, **params)
    with joblib.parallel_config(backend="dask", wait_for_workers_timeout=TIMEOUT):
        learned = conv_dict_learning(X, 3, 3, n_jobs=-1, **params)
        maps = conv_sparse_encode(X, learned[1], image_shape=IMAGE_SHAPE, n_jobs=2)
    for got, want in zip(learned, expected):
        assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert_allclose(
        maps, conv_sparse_encode(X, learned[1], image_shape=IMAGE_SHAPE), rtol=0, atol=0
    )


def test_network_on_the_cluster_equals_n_jobs_1(client):
    X = _images(6, seed=2)
    params = dict(
        n_filters=(3, 4), filter_shape=3, connectivity=("full", "random_pairs"),
        image_shape=IMAGE_SHAPE, max_iter=30, n_epochs=1, random_state=0,
    )
    expected = DeconvNetworkTransformer(n_jobs=1, **params).fit(X)
    with joblib.parallel_config(backend="dask", wait_for_workers_timeout=TIMEOUT):
        net = DeconvNetworkTransformer(n_jobs=2, **params).fit(X)
        maps = net.transform(X)
    assert_allclose(maps, expected.transform(X), rtol=0, atol=1e-10)


# ---------------------------------------------------------------- worker loss
def _transform_in_thread(coder, X):
    """Start coder.transform(X) on the dask backend; returns (thread, result dict)."""
    result = {}

    def run():
        try:
            with joblib.parallel_config(backend="dask", wait_for_workers_timeout=TIMEOUT):
                result["maps"] = coder.transform(X)
        except BaseException as error:  # reported by the test
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _worker_to_lose(client, thread):
    """Wait until every worker runs one of the transform's tasks; return the
    one that holds the most data (the worst one to lose)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and thread.is_alive():
        executing = client.run(lambda dask_worker: len(dask_worker.state.executing))
        if len(executing) == 2 and all(executing.values()):
            held = client.has_what()
            return max(sorted(executing), key=lambda address: len(held.get(address, ())))
        time.sleep(0.01)
    pytest.fail("the transform's tasks never ran on both workers")


def _long_transform_problem():
    """A coder whose transform takes about a second per chunk (fixed work)."""
    X = _images(8, seed=3)
    coder = _coder(n_epochs=1, max_iter=5).fit(X)
    return coder.set_params(max_iter=400, tol=0.0), X  # tol=0: always max_iter steps


def _check_survives_losing_a_worker(client, kill):
    coder, X = _long_transform_problem()
    expected = coder.transform(X)
    thread, result = _transform_in_thread(coder.set_params(n_jobs=2), X)
    victim = _worker_to_lose(client, thread)
    assert not result, "the transform ended before a worker was lost"
    kill(victim)
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"transform still running after {TIMEOUT} s"
    assert "error" not in result, repr(result.get("error"))
    assert_array_equal(result["maps"], expected)
    assert victim not in client.scheduler_info()["workers"]


def test_worker_closed_during_transform_thread_cluster():
    """An in-process worker is closed while it runs a chunk: dask reruns the
    chunk on the other worker and transform still returns the right maps."""
    with _local_cluster(processes=False) as cluster, _connect(cluster) as client:

        def close(address):
            worker = next(w for w in cluster.workers.values() if w.address == address)
            cluster.sync(worker.close, timeout=TIMEOUT)

        _check_survives_losing_a_worker(client, close)


@pytest.mark.slow
def test_worker_process_killed_during_transform():
    """SIGKILL of a worker process (its nanny restarts it) during transform."""
    with _local_cluster(processes=True) as cluster, _connect(cluster) as client:

        def kill(address):
            pid = client.run(os.getpid, workers=[address])[address]
            os.kill(pid, signal.SIGKILL)

        _check_survives_losing_a_worker(client, kill)


# ---------------------------------------------------------------- fit with state on the workers
def _fit_problem(n_samples=8, seed=4, n_epochs=12):
    X = _images(n_samples, seed=seed)
    params = dict(n_filters=4, filter_shape=3, image_shape=IMAGE_SHAPE, lmbda=5.0,
                  solver="fista", n_epochs=n_epochs, random_state=0)
    return X, params


@pytest.mark.parametrize("solver", ["fista", "admm"])
def test_fit_keeps_chunk_state_on_the_workers(client, solver):
    """Per epoch only filter-sized arrays travel: the filters sent with every
    task and each chunk's gradient, data terms and penalty gathered (plus the
    maps' power spectrum, once); the images travel once; one task per worker
    thread and step."""
    from skdeconv._cluster import learn_interleaved_on_cluster
    from skdeconv._interleaved import learn_interleaved

    X, params = _fit_problem(16)
    Y = X.reshape((16, 1) + IMAGE_SHAPE)
    filters = ConvSparseCoder(**params).fit(X[:1]).filters_  # any unit filters
    connectivity = np.ones((4, 1), bool)
    kwargs = dict(lmbda=5.0, p=1.0, solver=solver, max_iter=10, tol=0.0, n_epochs=10,
                  n_jobs=None, verbose=0)
    stats = {}
    maps, learned, history, _ = learn_interleaved_on_cluster(
        client, Y, filters, connectivity, stats=stats, **kwargs)
    expected = learn_interleaved(Y, filters, connectivity, **kwargs)
    assert_allclose(learned, expected[1], rtol=0, atol=1e-12)
    assert_allclose(history, expected[2], rtol=1e-12)
    assert_allclose(maps, expected[0], rtol=0, atol=1e-10)
    filter_bytes = filters.nbytes
    n_chunks = stats["n_chunks"]
    # one task per worker thread and step, not one per chunk
    assert stats["n_groups"] == sum(client.nthreads().values()) < n_chunks, stats
    assert Y.nbytes <= stats["data_bytes"] <= Y.nbytes + 2 * n_chunks * filter_bytes
    # each epoch: filters and extrapolated point per advance, candidates per
    # backtracking trial: a few filter arrays per chunk
    assert stats["sent_per_epoch"] <= 8 * n_chunks * filter_bytes, stats
    # gathered: gradient (filter-sized) and per-channel terms per chunk, and
    # the power spectrum (K x frequencies) in the first epoch only
    power = 4 * 12 * 7 * 8  # 4 maps on the 12 x 12 grid's 12 x 7 frequencies, float64
    assert stats["gathered_per_epoch"] <= 2 * n_chunks * filter_bytes + n_chunks * power, stats


def _fit_in_thread(params, X):
    result = {}

    def run():
        try:
            with joblib.parallel_config(backend="dask", wait_for_workers_timeout=TIMEOUT):
                result["coder"] = ConvSparseCoder(n_jobs=2, **params).fit(X)
        except BaseException as error:  # reported by the test
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _advance_tasks(dask_scheduler):
    return sum(str(key).startswith("skdeconv-advance") for key in dask_scheduler.tasks)


def test_worker_lost_mid_fit_recomputed_from_lineage():
    """A worker process is killed while the fit runs: the chunks' states it
    held are recomputed from their lineage (the start task and every epoch's
    task) and the fit ends with the serial filters."""
    X, params = _fit_problem(8, n_epochs=100)
    params["n_filters"], params["filter_shape"] = 8, 5
    expected = ConvSparseCoder(n_jobs=1, **params).fit(X)
    with _local_cluster(processes=True) as cluster, _connect(cluster) as client:
        thread, result = _fit_in_thread(params, X)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and thread.is_alive():
            # one advance task per group (one group per worker thread) and epoch
            if client.run_on_scheduler(_advance_tasks) >= 2 * 20:  # 20 epochs done
                break
            time.sleep(0.05)
        assert thread.is_alive(), "the fit ended before a worker was lost"
        held = client.has_what()
        victim = max(sorted(held), key=lambda address: len(held[address]))
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        thread.join(5 * TIMEOUT)
        assert not thread.is_alive(), "fit still running"
        assert "error" not in result, repr(result.get("error"))
    coder = result["coder"]
    assert_allclose(coder.filters_, expected.filters_, rtol=0, atol=1e-10)
    assert_allclose(coder.cost_history_, expected.cost_history_, rtol=1e-10)


@pytest.mark.slow
def test_fit_on_two_workers_faster_than_n_jobs_1():
    """16 images 256x256, 16 filters 8x8, 30 epochs: the 2-worker cluster is
    at least 1.5x faster than n_jobs=1, with the same filters."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((16, 256 * 256))
    X = X + np.roll(X, 1, axis=1)
    params = dict(n_filters=16, filter_shape=8, image_shape=(256, 256), lmbda=5.0,
                  solver="fista", n_epochs=30, random_state=0)
    start = time.perf_counter()
    expected = ConvSparseCoder(n_jobs=1, **params).fit(X)
    serial = time.perf_counter() - start
    unset_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(unset_trim), _local_cluster(processes=True) as cluster, \
            _connect(cluster) as client:
        with joblib.parallel_config(backend="dask", wait_for_workers_timeout=TIMEOUT):
            ConvSparseCoder(n_jobs=2, **{**params, "n_epochs": 2}).fit(X)  # warm up
            start = time.perf_counter()
            coder = ConvSparseCoder(n_jobs=2, **params).fit(X)
            on_cluster = time.perf_counter() - start
    assert_allclose(coder.filters_, expected.filters_, rtol=0, atol=1e-10)
    assert serial / on_cluster >= 1.5, (serial, on_cluster)


# ---------------------------------------------------------------- the documented recipe
def cluster_recipe(scheduler_address, X, image_shape):
    """The recipe of docs/distributed.rst: fit and transform on a cluster."""
    import joblib
    from dask.distributed import Client

    from skdeconv import ConvSparseCoder

    with Client(scheduler_address) as client:
        client.wait_for_workers(1)
        coder = ConvSparseCoder(n_filters=4, filter_shape=3, image_shape=image_shape,
                                lmbda=5.0, solver="fista", n_epochs=20, n_jobs=-1,
                                random_state=0)
        with joblib.parallel_config(backend="dask"):
            coder.fit(X)  # each chunk's solver state stays on its worker
            maps = coder.transform(X)  # one task per chunk of samples
    return coder, maps


def test_documented_recipe_on_loopback():
    """docs/distributed.rst includes cluster_recipe; it runs on a 2-process
    LocalCluster bound to 127.0.0.1 and gives the n_jobs=1 results."""
    X = _images(8, seed=5)
    expected = ConvSparseCoder(n_filters=4, filter_shape=3, image_shape=IMAGE_SHAPE, lmbda=5.0,
                               solver="fista", n_epochs=20, random_state=0).fit(X)
    with _local_cluster(processes=True) as cluster:
        coder, maps = cluster_recipe(cluster.scheduler_address, X, IMAGE_SHAPE)
    assert_allclose(coder.filters_, expected.filters_, rtol=0, atol=1e-10)
    assert_allclose(maps, expected.transform(X), rtol=0, atol=1e-8)


def test_cluster_fit_leaves_no_operator_on_the_workers(client):
    """The operators the chunks of a worker share are dropped when the fit ends."""
    from skdeconv import _cluster

    def cached():
        return len(_cluster._WORKER_OPERATORS)

    X, params = _fit_problem(n_epochs=3)
    with joblib.parallel_config(backend="dask"):
        ConvSparseCoder(n_jobs=2, **params).fit(X)
    assert set(client.run(cached).values()) == {0}
