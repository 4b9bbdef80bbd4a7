"""Joblib plumbing shared by the dispatchers and learners: BLAS threads, chunks."""

from functools import cache

from sklearn.utils import gen_even_slices
from threadpoolctl import ThreadpoolController

# Bytes of working memory one chunk of samples may use.
CHUNK_BYTES = 2**25


@cache
def _threadpool_controller():
    return ThreadpoolController()


def one_blas_thread():
    """Context manager limiting BLAS to one thread inside a joblib task.

    The controller lists the loaded libraries once per process; building one
    per call (``threadpool_limits``) would read /proc/self/maps every time.
    """
    return _threadpool_controller().limit(limits=1, user_api="blas")


def chunk_slices(n_samples, min_chunks, bytes_per_sample):
    """Even slices: at least ``min_chunks``, each within the memory budget."""
    per_chunk = max(1, CHUNK_BYTES // max(1, bytes_per_sample))
    n_chunks = max(min_chunks, -(-n_samples // per_chunk))
    return list(gen_even_slices(n_samples, min(n_samples, n_chunks)))
