"""t3f on TensorFlow (CPU build), eager mode.

API used (t3f 1.2 docs): ``t3f.TensorTrain(cores)``, ``t3f.to_tt_tensor(tens, max_tt_rank,
epsilon)``, ``t3f.to_tt_matrix(mat, shape, max_tt_rank)``, ``t3f.add``, ``t3f.round(tt,
max_tt_rank, epsilon)``, ``t3f.frobenius_norm`` (QR sweep by default; ``epsilon=0`` so that
nothing is added under the square root), ``t3f.flat_inner`` and ``t3f.matmul(W, dense)``
(``W @ dense``, so ``X @ W.T`` is computed as ``(W @ X.T).T``, both transposes timed).

In t3f 1.2.0 ``to_tt_tensor`` and ``round`` accept ``epsilon`` but do not implement it (a TODO
in its source): they truncate to ``max_tt_rank`` only, so the cases with an ``eps`` pass the
rank that the other libraries find (8 for the noisy rank-8 tensor, 40 for x + y, 2 for the
tiny sum).  ``t3f.nn.KerasDense`` and the random initializers call ``np.int``, which NumPy
removed in 1.24, so the layer rows build the TT-matrix from ``tf.Variable`` cores and take
gradients with ``tf.GradientTape`` through ``t3f.matmul``.

Threads: TensorFlow's intra-op and inter-op pools are set to ``--threads``; it does not use
the system BLAS.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import t3f  # noqa: E402
import tensorflow as tf  # noqa: E402

NOT_AVAILABLE = {}


def setup(threads):
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return {"tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "tf_executing_eagerly": tf.executing_eagerly()}


def versions():
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    out = {"tensorflow": tf.__version__, "numpy": np.__version__}
    for dist in ("t3f", "keras"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _tt(cores):
    return t3f.TensorTrain([tf.constant(c) for c in cores])


def _tensor_out(x):
    return {"cores": x.tt_cores}


def case_svd_tensor(inp):
    A = tf.constant(inp["svd_tensor__A"])
    return (lambda: t3f.to_tt_tensor(A, max_tt_rank=8, epsilon=1e-8)), _tensor_out, \
        ("to_tt_tensor(A, max_tt_rank=8, epsilon=1e-8): epsilon is not implemented, "
         "the true rank 8 is given")


def case_svd_matrix(inp):
    M = tf.constant(inp["svd_matrix__M"])
    shape = ((4, 8, 8, 4), (4, 8, 8, 4))
    return (lambda: t3f.to_tt_matrix(M, shape=shape, max_tt_rank=16)), _tensor_out, \
        "to_tt_matrix(M, shape, max_tt_rank=16)"


def case_round_sum(inp):
    x, y = _tt(inp.cores("round_sum__x")), _tt(inp.cores("round_sum__y"))
    return (lambda: t3f.round(t3f.add(x, y), max_tt_rank=40, epsilon=1e-8)), _tensor_out, \
        ("round(add(x, y), max_tt_rank=40, epsilon=1e-8): epsilon not implemented, "
         "rank 40 given")


def case_norm(inp):
    a = _tt(inp.cores("norm__a"))
    return (lambda: t3f.frobenius_norm(a, epsilon=0.0)), (lambda v: {"value": v}), \
        "frobenius_norm(a, epsilon=0) (QR sweep)"


def matvec(inp, w, x):
    W = _tt(inp.cores(w))
    X = tf.constant(inp[x])
    return (lambda: tf.transpose(t3f.matmul(W, tf.transpose(X)))), (lambda y: {"y": y}), \
        "tf.transpose(t3f.matmul(W, tf.transpose(X)))"


def layer(inp, w, x, g):
    cores = [tf.Variable(c) for c in inp.cores(w)]
    X = tf.Variable(inp[x])
    G = tf.constant(inp[g])

    def fn():
        with tf.GradientTape() as tape:
            W = t3f.TensorTrain(cores)
            y = tf.transpose(t3f.matmul(W, tf.transpose(X)))
            loss = tf.reduce_sum(y * G)
        grads = tape.gradient(loss, cores + [X])
        return y, grads[-1], grads[:-1]

    return fn, (lambda o: {"y": o[0], "dx": o[1], "dcores": o[2]}), \
        "tf.GradientTape through t3f.matmul with tf.Variable cores (KerasDense needs np.int)"


def case_tiny_dot(inp):
    a, b = _tt(inp.cores("tiny__a")), _tt(inp.cores("tiny__b"))
    return (lambda: t3f.flat_inner(a, b)), (lambda v: {"value": v}), "flat_inner(a, b)"


def case_tiny_norm(inp):
    a = _tt(inp.cores("tiny__a"))
    return (lambda: t3f.frobenius_norm(a, epsilon=0.0)), (lambda v: {"value": v}), \
        "frobenius_norm(a, epsilon=0)"


def case_tiny_round(inp):
    a = _tt(inp.cores("tiny__a"))
    return (lambda: t3f.round(t3f.add(a, a), max_tt_rank=2, epsilon=1e-10)), _tensor_out, \
        "round(add(a, a), max_tt_rank=2): epsilon not implemented, rank 2 given"


def case_tiny_from_dense(inp):
    A = tf.constant(inp["tiny__T"])
    return (lambda: t3f.to_tt_tensor(A, max_tt_rank=2)), _tensor_out, \
        "to_tt_tensor(T, max_tt_rank=2)"
