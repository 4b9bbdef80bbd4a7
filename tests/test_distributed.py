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
from numpy.testing import assert_array_equal

REASON = "the 'dist' extra is not installed (pip install 'skdeconv[dist]': dask, distributed)"
pytest.importorskip("dask", reason=REASON)
distributed = pytest.importorskip("distributed", reason=REASON)

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
    assert_array_equal(coder.filters_, expected.filters_)
    assert_array_equal(coder.cost_history_, expected.cost_history_)
    assert_array_equal(maps, expected_maps)
    assert score == expected.score(X)


def test_functions_on_the_cluster_equal_n_jobs_1(client):
    X = _images(6, seed=1)
    params = dict(image_shape=IMAGE_SHAPE, lmbda=5.0, max_iter=30, random_state=0, n_epochs=2)
    expected = conv_dict_learning(X, 3, 3, n_jobs=1, **params)
    with joblib.parallel_config(backend="dask", wait_for_workers_timeout=TIMEOUT):
        learned = conv_dict_learning(X, 3, 3, n_jobs=-1, **params)
        maps = conv_sparse_encode(X, learned[1], image_shape=IMAGE_SHAPE, n_jobs=2)
    for got, want in zip(learned, expected):
        assert_array_equal(got, want)
    assert_array_equal(maps, conv_sparse_encode(X, expected[1], image_shape=IMAGE_SHAPE))


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
    assert_array_equal(maps, expected.transform(X))


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
