"""TT cross with executors: a thread pool and a Dask LocalCluster give the serial result."""

import importlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

# tt.cross is the function; the module is reached through importlib (as with opt_einsum.contract)
cr = importlib.import_module("tensortrain.cross")



def hilbert(idx):
    """Module-level, so that it pickles for worker processes."""
    return 1.0 / (1.0 + np.asarray(idx).sum(axis=1))


def kernel(i, j):
    return np.exp(-(((i - j) / 200.0) ** 2))


class _MapOnly:
    """An executor with ``map`` only."""

    def __init__(self):
        self.calls = 0

    def map(self, fn, args):
        self.calls += 1
        return [fn(a) for a in args]


def _same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.cores, b.cores, strict=True))


def test_thread_pool_matches_serial():
    serial, info_s = cr.cross(hilbert, (9, 10, 11, 12), eps=1e-10, rng=3, return_info=True)
    with ThreadPoolExecutor(max_workers=3) as ex:
        par, info_p = cr.cross(hilbert, (9, 10, 11, 12), eps=1e-10, rng=3, executor=ex,
                               chunks=5, return_info=True)
    assert _same(serial, par)
    assert info_s.evaluations == info_p.evaluations


def test_map_only_executor_and_errors_through_chunks():
    ex = _MapOnly()
    par = cr.cross(hilbert, (6, 7, 8), eps=1e-10, rng=1, executor=ex, chunks=3)
    assert ex.calls > 0 and _same(par, cr.cross(hilbert, (6, 7, 8), eps=1e-10, rng=1))

    def bad(idx):
        v = hilbert(idx)
        v[np.all(idx == 2, axis=1)] = np.inf
        return v

    with ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(ValueError,
                                                                   match=r"\[\[2, 2, 2\]\]"):
        cr.cross(bad, (3, 3, 3), rng=0, validation=0, executor=pool,
                 x0=np.array([[2, 2, 2]]))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_cluster_matches_serial(dask_client):
    serial = cr.cross(hilbert, (8, 9, 10, 11), eps=1e-10, rng=7)
    par, info = cr.cross(hilbert, (8, 9, 10, 11), eps=1e-10, rng=7, executor=dask_client,
                         chunks=4, return_info=True)
    assert _same(serial, par)
    assert info.converged
    # the matrix front end ships its index decoding to the workers too
    W = cr.matrix_from_function(kernel, (500, 400), rng=0, eps=1e-9, executor=dask_client)
    Ws = cr.matrix_from_function(kernel, (500, 400), rng=0, eps=1e-9)
    assert all(np.array_equal(p, q) for p, q in zip(W.cores, Ws.cores, strict=True))


def test_dask_array_is_read_through_vindex():
    da = pytest.importorskip("dask.array")
    a = 1.0 / (1.0 + np.indices((10, 11, 12)).sum(axis=0))
    reads = []

    x = da.from_array(a, chunks=(5, 6, 6))
    orig = x.vindex

    class Spy:
        def __getitem__(self, key):
            reads.append(len(key[0]))
            return orig[key]

    class Wrapped:
        shape = x.shape
        vindex = Spy()

    t, info = cr.tensor_from_array(Wrapped(), eps=1e-10, rng=0, validation=100,
                                   return_info=True)
    assert np.linalg.norm(t.full() - a) < 1e-9 * np.linalg.norm(a)
    assert sum(reads) == info.evaluations < a.size
    # and the dask array itself (no wrapper) gives the same TT
    t2 = cr.tensor_from_array(x, eps=1e-10, rng=0, validation=100)
    assert all(np.array_equal(p, q) for p, q in zip(t.cores, t2.cores, strict=True))
