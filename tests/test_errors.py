"""Every bad input gets a typed error whose message says what was expected and what arrived.

One ``pytest.raises(<type>, match=<regex>)`` per bad input (docs/conventions.md, Errors).  Inputs that
the library does not yet reject cleanly are written as the test they should pass and marked
``xfail(strict=True, reason="BUG: ...")``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import tensortrain as tt
from tensortrain.io import FORMAT_VERSION

# ---------------------------------------------------------------------------------------------
# small, seeded objects shared by the tests (cheap to build, never mutated)
# ---------------------------------------------------------------------------------------------
_RNG = np.random.default_rng(20240601)
A = tt.random_tensor((2, 3, 4), 2, rng=_RNG)              # TTTensor, shape (2, 3, 4)
B = tt.random_tensor((2, 3, 5), 2, rng=_RNG)              # TTTensor, last mode differs
W = tt.random_matrix((2, 3), (4, 5), 2, rng=_RNG)         # TTMatrix (6, 20)
W_OTHER_MODES = tt.random_matrix((3, 2), (4, 5), 2, rng=_RNG)   # also (6, 20), modes differ
P = tt.TTMatrix.from_dense(_RNG.standard_normal((997, 10)))      # padded rows: 997 -> 1000
P_FULL = tt.TTMatrix(list(P.cores))                      # same modes, logical (1000, 10)


def esc(text):
    """Regex for a literal piece of a message."""
    return re.escape(text)


FLOAT_DTYPE_MSG = r"must have a floating-point dtype \(float32, float64, complex64 or complex128\)"


# ---------------------------------------------------------------------------------------------
# cores: ndim, ranks, boundary ranks, container
# ---------------------------------------------------------------------------------------------
def test_tttensor_core_with_2_dims():
    with pytest.raises(tt.ShapeError, match=esc("cores[0] must be 3-D (r_prev, n, r_next), "
                                                "got 2-D with shape (1, 2)")):
        tt.TTTensor([np.ones((1, 2))])


def test_tttensor_second_core_with_4_dims():
    with pytest.raises(tt.ShapeError, match=esc("cores[1] must be 3-D") + ".*" +
                       esc("got 4-D with shape (2, 3, 3, 1)")):
        tt.TTTensor([np.ones((1, 2, 2)), np.ones((2, 3, 3, 1))])


def test_ttmatrix_core_with_3_dims():
    with pytest.raises(tt.ShapeError, match=esc("cores[0] must be 4-D (r_prev, m, n, r_next), "
                                                "got 3-D with shape (1, 2, 1)")):
        tt.TTMatrix([np.ones((1, 2, 1))])


def test_tttensor_neighbouring_ranks_do_not_match():
    with pytest.raises(tt.RankError,
                       match=esc("cores[1] has left rank 4, but cores[0] has right rank 3")):
        tt.TTTensor([np.ones((1, 2, 3)), np.ones((4, 2, 1))])


def test_tttensor_inner_ranks_do_not_match():
    cores = [np.ones((1, 2, 2)), np.ones((2, 2, 3)), np.ones((5, 2, 1))]
    with pytest.raises(tt.RankError,
                       match=esc("cores[2] has left rank 5, but cores[1] has right rank 3")):
        tt.TTTensor(cores)


def test_ttmatrix_neighbouring_ranks_do_not_match():
    with pytest.raises(tt.RankError,
                       match=esc("cores[1] has left rank 4, but cores[0] has right rank 3")):
        tt.TTMatrix([np.ones((1, 2, 2, 3)), np.ones((4, 2, 2, 1))])


def test_tttensor_first_core_left_rank_not_1():
    with pytest.raises(tt.RankError, match=esc("the first core must have left rank 1, got "
                                               "cores[0].shape=(2, 2, 3)")):
        tt.TTTensor([np.ones((2, 2, 3)), np.ones((3, 2, 1))])


def test_tttensor_last_core_right_rank_not_1():
    with pytest.raises(tt.RankError, match=esc("the last core must have right rank 1, got "
                                               "cores[1].shape=(2, 2, 2)")):
        tt.TTTensor([np.ones((1, 2, 2)), np.ones((2, 2, 2))])


def test_ttmatrix_first_core_left_rank_not_1():
    with pytest.raises(tt.RankError, match=esc("the first core must have left rank 1, got "
                                               "cores[0].shape=(3, 2, 2, 1)")):
        tt.TTMatrix([np.ones((3, 2, 2, 1))])


def test_ttmatrix_last_core_right_rank_not_1():
    with pytest.raises(tt.RankError, match=esc("the last core must have right rank 1, got "
                                               "cores[1].shape=(2, 2, 2, 4)")):
        tt.TTMatrix([np.ones((1, 2, 2, 2)), np.ones((2, 2, 2, 4))])


def test_tttensor_from_a_bare_array_instead_of_a_list():
    with pytest.raises(TypeError,
                       match="TTTensor expects a list or tuple of 3-D cores, got ndarray"):
        tt.TTTensor(np.ones((1, 2, 1)))


def test_tttensor_with_no_cores():
    with pytest.raises(tt.ShapeError, match="TTTensor needs at least one core, got an empty list"):
        tt.TTTensor([])


def test_tttensor_core_with_an_empty_mode():
    with pytest.raises(tt.ShapeError,
                       match=esc("cores[0] has an empty dimension: shape (1, 0, 1)")):
        tt.TTTensor([np.ones((1, 0, 1))])


# ---------------------------------------------------------------------------------------------
# eps and max_rank
# ---------------------------------------------------------------------------------------------
EPS_CALLS = {
    "TTTensor.from_dense": lambda eps: tt.TTTensor.from_dense(np.ones((2, 3, 4)), eps=eps),
    "TTMatrix.from_dense": lambda eps: tt.TTMatrix.from_dense(np.ones((4, 6)), eps=eps),
    "TTTensor.round": lambda eps: A.round(eps=eps),
    "TTMatrix.round": lambda eps: W.round(eps=eps),
    "tt.round": lambda eps: tt.round(A, eps=eps),
}


@pytest.mark.parametrize("where", list(EPS_CALLS))
def test_eps_negative(where):
    with pytest.raises(tt.TTError, match=r"eps must be a number >= 0 .*got -0\.1"):
        EPS_CALLS[where](-0.1)


@pytest.mark.parametrize("where", list(EPS_CALLS))
def test_eps_nan(where):
    with pytest.raises(tt.TTError, match=r"eps must be a number >= 0 .*got nan"):
        EPS_CALLS[where](float("nan"))


@pytest.mark.parametrize("where", list(EPS_CALLS))
def test_eps_string(where):
    with pytest.raises(TypeError, match=r"eps must be a real number >= 0, got str '0\.1'"):
        EPS_CALLS[where]("0.1")


def test_eps_none():
    with pytest.raises(TypeError, match=r"eps must be a real number >= 0, got NoneType None"):
        A.round(eps=None)


def test_eps_numpy_nan_scalar():
    with pytest.raises(tt.TTError, match=r"eps must be a number >= 0 .*got nan"):
        A.round(eps=np.float32("nan"))


@pytest.mark.parametrize("bad", [0, -3])
def test_max_rank_below_1(bad):
    with pytest.raises(tt.RankError, match=f"max_rank must be >= 1, got {bad}"):
        A.round(max_rank=bad)


def test_max_rank_below_1_in_from_dense():
    with pytest.raises(tt.RankError, match="max_rank must be >= 1, got 0"):
        tt.TTTensor.from_dense(np.ones((2, 3, 4)), max_rank=0)


def test_max_rank_list_with_an_entry_below_1():
    with pytest.raises(tt.RankError, match="max_rank must be >= 1, got 0 for bond 2"):
        A.round(max_rank=[2, 0])


def test_max_rank_list_of_wrong_length():
    with pytest.raises(tt.RankError, match=r"max_rank must be an int, 2 values \(one per bond\) "
                                           r"or 4 values .* for d=3, got 3 values"):
        A.round(max_rank=[2, 2, 2])


def test_max_rank_list_of_wrong_length_in_ttmatrix_from_dense():
    with pytest.raises(tt.RankError, match=r"2 values .* or 4 values .* for d=3, got 5 values"):
        tt.TTMatrix.from_dense(np.ones((8, 8)), row_modes=(2, 2, 2), col_modes=(2, 2, 2),
                               max_rank=[1, 2, 2, 2, 1])


def test_max_rank_full_list_with_boundary_not_1():
    with pytest.raises(tt.RankError, match=esc("a full max_rank list must start and end with 1, "
                                               "got [2, 2, 2, 2]")):
        tt.TTTensor.from_dense(np.ones((2, 3, 4)), max_rank=[2, 2, 2, 2])


def test_max_rank_non_integer():
    with pytest.raises(TypeError, match=r"max_rank must be an integer, got float 2\.5"):
        A.round(max_rank=2.5)


def test_max_rank_bool():
    with pytest.raises(TypeError, match=r"max_rank.*True"):
        A.round(max_rank=True)


# ---------------------------------------------------------------------------------------------
# ranks in the random constructors
# ---------------------------------------------------------------------------------------------
def test_random_tensor_ranks_first_boundary_not_1():
    with pytest.raises(tt.RankError, match=esc("boundary ranks must be 1, got ranks [2, 2, 2, 1]")):
        tt.random_tensor((2, 3, 4), [2, 2, 2, 1])


def test_random_tensor_ranks_last_boundary_not_1():
    with pytest.raises(tt.RankError, match=esc("boundary ranks must be 1, got ranks [1, 2, 2, 3]")):
        tt.random_tensor((2, 3, 4), [1, 2, 2, 3])


def test_random_matrix_ranks_boundary_not_1():
    with pytest.raises(tt.RankError, match=esc("boundary ranks must be 1, got ranks [1, 2, 5]")):
        tt.random_matrix((2, 2), (3, 3), [1, 2, 5])


def test_random_tensor_ranks_of_wrong_length():
    with pytest.raises(tt.RankError, match=r"list of 4 values \[1, r_1, \.\.\., r_2, 1\] for d=3, "
                                           r"got 5 values"):
        tt.random_tensor((2, 3, 4), [1, 2, 2, 2, 1])


def test_random_tensor_rank_zero():
    with pytest.raises(tt.RankError, match="ranks must be >= 1, got 0"):
        tt.random_tensor((2, 3, 4), 0)


def test_random_tensor_inner_rank_zero():
    with pytest.raises(tt.RankError, match="ranks must be >= 1, got 0 at position 1"):
        tt.random_tensor((2, 3, 4), [1, 0, 2, 1])


# ---------------------------------------------------------------------------------------------
# modes: cover, sign, integrality
# ---------------------------------------------------------------------------------------------
def test_ttmatrix_from_dense_row_modes_do_not_cover_rows():
    with pytest.raises(tt.ModeError, match=esc("row_modes (2, 3) multiply to 6, which does not "
                                               "cover the 10 rows")):
        tt.TTMatrix.from_dense(np.ones((10, 6)), row_modes=(2, 3), col_modes=(2, 3))


def test_ttmatrix_from_dense_col_modes_do_not_cover_columns():
    with pytest.raises(tt.ModeError, match=esc("col_modes (2, 2) multiply to 4, which does not "
                                               "cover the 6 columns")):
        tt.TTMatrix.from_dense(np.ones((4, 6)), row_modes=(2, 2), col_modes=(2, 2))


def test_ttmatrix_from_dense_row_and_col_modes_of_different_length():
    with pytest.raises(tt.ModeError, match=esc("row_modes and col_modes must have the same length, "
                                               "got 2 ((2, 2)) and 3 ((2, 2, 2))")):
        tt.TTMatrix.from_dense(np.ones((4, 8)), row_modes=(2, 2), col_modes=(2, 2, 2))


def test_ttmatrix_shape_rows_larger_than_modes_cover():
    with pytest.raises(tt.ModeError, match=esc("row modes (2, 3) multiply to 6, which does not "
                                               "cover the 7 rows")):
        tt.TTMatrix(list(W.cores), shape=(7, 20))


def test_ttmatrix_shape_columns_larger_than_modes_cover():
    with pytest.raises(tt.ModeError, match=esc("column modes (4, 5) multiply to 20, which does not "
                                               "cover the 21 columns")):
        tt.TTMatrix(list(W.cores), shape=(6, 21))


def test_ttmatrix_shape_not_positive():
    with pytest.raises(tt.ShapeError, match=esc("shape must be positive, got (0, 5)")):
        tt.TTMatrix(list(W.cores), shape=(0, 5))


def test_ttmatrix_shape_not_a_pair():
    with pytest.raises(tt.ShapeError,
                       match=esc("shape must be a pair (rows, columns), got (6, 20, 1)")):
        tt.TTMatrix(list(W.cores), shape=(6, 20, 1))


def test_ttmatrix_shape_a_bare_int():
    with pytest.raises((TypeError, tt.ShapeError), match=r"shape must be a pair.*got 5"):
        tt.TTMatrix(list(W.cores), shape=5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: tt.random_tensor((2, -3), 2), esc("modes[1] must be a positive integer, got -3")),
        (lambda: tt.random_tensor((2, 0), 2), esc("modes[1] must be a positive integer, got 0")),
        (lambda: tt.random_tensor((2, 2.5), 2),
         esc("modes[1] must be a positive integer, got 2.5")),
        (lambda: tt.random_tensor((), 2), esc("modes must contain at least one mode, got ()")),
        (lambda: tt.random_matrix((2, -2), (2, 2), 2),
         esc("row_modes[1] must be a positive integer, got -2")),
        (lambda: tt.random_matrix((2, 2), (0, 2), 2),
         esc("col_modes[0] must be a positive integer, got 0")),
        (lambda: tt.random_matrix((2, 2), (2,), 2),
         esc("row_modes and col_modes must have the same length, got (2, 2) and (2,)")),
        (lambda: tt.zeros((2, -3)), esc("shape[1] must be a positive integer, got -3")),
        (lambda: tt.zeros((0,)), esc("shape[0] must be a positive integer, got 0")),
        (lambda: tt.zeros((2.5,)), esc("shape[0] must be a positive integer, got 2.5")),
        (lambda: tt.zeros(()), esc("shape must contain at least one mode, got []")),
        (lambda: tt.ones(((2, 2), (2, 0))), esc("col_modes[1] must be a positive integer, got 0")),
        (lambda: tt.eye(0), esc("eye needs n >= 1, got 0")),
        (lambda: tt.eye((3, -1)), esc("modes[1] must be a positive integer, got -1")),
        (lambda: tt.factorize(0, 2), esc("factorize needs n >= 1 and d >= 1, got n=0, d=2")),
        (lambda: tt.factorize(-4, 2), esc("factorize needs n >= 1 and d >= 1, got n=-4, d=2")),
        (lambda: tt.factorize(12, 0), esc("factorize needs n >= 1 and d >= 1, got n=12, d=0")),
        (lambda: tt.balanced_modes(0), esc("a size must be >= 1, got 0")),
        (lambda: tt.balanced_modes(-5), esc("a size must be >= 1, got -5")),
        (lambda: tt.balanced_modes(10, 0), esc("the number of modes must be >= 1, got 0")),
        (lambda: tt.balanced_modes(10, 2, max_pad=-0.5), esc("max_pad must be >= 0, got -0.5")),
        (lambda: tt.balanced_modes(10, 2, max_pad=float("nan")),
         esc("max_pad must be >= 0, got nan")),
        (lambda: tt.TTMatrix.from_dense(np.ones((4, 4)), row_modes=(2, 0, 2), col_modes=(2, 2, 1)),
         esc("row_modes[1] must be a positive integer, got 0")),
        (lambda: tt.TTMatrix.from_dense(np.ones((4, 8)), d=0),
         esc("the number of modes must be >= 1, got 0")),
    ],
    ids=[
        "random_tensor-negative", "random_tensor-zero", "random_tensor-non-integer",
        "random_tensor-empty", "random_matrix-negative-row", "random_matrix-zero-col",
        "random_matrix-length-mismatch", "zeros-negative", "zeros-zero", "zeros-non-integer",
        "zeros-empty", "ones-matrix-zero-col", "eye-zero", "eye-negative-mode",
        "factorize-n-zero", "factorize-n-negative", "factorize-d-zero",
        "balanced_modes-zero", "balanced_modes-negative", "balanced_modes-d-zero",
        "balanced_modes-max_pad-negative", "balanced_modes-max_pad-nan",
        "from_dense-zero-row-mode", "from_dense-d-zero",
    ],
)
def test_bad_modes(call, match):
    with pytest.raises(tt.ModeError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: tt.factorize(2.5, 2), r"n must be an integer, got float 2\.5"),
        (lambda: tt.factorize(12, 1.5), r"d must be an integer, got float 1\.5"),
        (lambda: tt.balanced_modes(7.5), r"n must be an integer, got float 7\.5"),
        (lambda: tt.balanced_modes("12"), r"n must be an integer, got str '12'"),
        (lambda: tt.eye(2.5), r"modes must be a sequence of positive integers, got 2\.5"),
    ],
    ids=["factorize-n-float", "factorize-d-float", "balanced_modes-float", "balanced_modes-str",
         "eye-float"],
)
def test_non_integer_sizes_are_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# dense input to the decompositions: NaN/Inf, dtype, shape
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_tttensor_from_dense_non_finite(bad):
    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    a[1, 2, 3] = bad
    with pytest.raises(tt.TTError, match="from_dense input contains NaN or Inf; the decomposition "
                                         "needs finite values"):
        tt.TTTensor.from_dense(a)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_ttmatrix_from_dense_non_finite(bad):
    a = np.random.default_rng(1).standard_normal((12, 10))
    a[11, 0] = bad
    with pytest.raises(tt.TTError, match="from_dense input contains NaN or Inf"):
        tt.TTMatrix.from_dense(a)


def test_ttmatrix_from_dense_complex_nan():
    a = np.ones((4, 4), dtype=np.complex128)
    a[0, 1] = complex(0.0, np.nan)
    with pytest.raises(tt.TTError, match="from_dense input contains NaN or Inf"):
        tt.TTMatrix.from_dense(a)


def test_ttmatrix_from_dense_float32_inf_in_padded_size():
    a = np.ones((997, 10), dtype=np.float32)
    a[-1, -1] = np.inf
    with pytest.raises(tt.TTError, match="from_dense input contains NaN or Inf"):
        tt.TTMatrix.from_dense(a)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.object_],
                         ids=["int64", "int32", "bool", "object"])
def test_tttensor_from_dense_non_float_dtype(dtype):
    a = np.ones((2, 3), dtype=dtype)
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=f"from_dense input {FLOAT_DTYPE_MSG}, got {name}; "
                                        r"convert it first"):
        tt.TTTensor.from_dense(a)


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.object_], ids=["int64", "bool", "object"])
def test_ttmatrix_from_dense_non_float_dtype(dtype):
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=f"from_dense input {FLOAT_DTYPE_MSG}, got {name}"):
        tt.TTMatrix.from_dense(np.ones((4, 6), dtype=dtype))


def test_tttensor_from_dense_of_a_nested_int_list():
    with pytest.raises(TypeError, match=f"from_dense input {FLOAT_DTYPE_MSG}, got int"):
        tt.TTTensor.from_dense([[1, 2], [3, 4]])


def test_tttensor_from_dense_of_a_string():
    with pytest.raises(TypeError, match="from_dense input must be a NumPy or CuPy array, got str"):
        tt.TTTensor.from_dense("not an array")


def test_tttensor_from_dense_of_a_0d_array():
    with pytest.raises(tt.ShapeError, match=esc("from_dense input must have at least 1 "
                                                "dimension(s), got shape ()")):
        tt.TTTensor.from_dense(np.array(1.0))


def test_tttensor_from_dense_of_an_empty_array():
    with pytest.raises(tt.ShapeError, match=esc("from_dense input is empty: shape (2, 0)")):
        tt.TTTensor.from_dense(np.ones((2, 0)))


def test_ttmatrix_from_dense_of_a_1d_array():
    with pytest.raises(tt.ShapeError, match=esc("from_dense input must have at least 2 "
                                                "dimension(s), got shape (4,)")):
        tt.TTMatrix.from_dense(np.ones(4))


def test_ttmatrix_from_dense_of_a_3d_array():
    with pytest.raises(tt.ShapeError, match=esc("TTMatrix.from_dense needs a 2-D array, got "
                                                "shape (2, 2, 2)")):
        tt.TTMatrix.from_dense(np.ones((2, 2, 2)))


# ---------------------------------------------------------------------------------------------
# non-float dtypes elsewhere
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.object_], ids=["int64", "bool", "object"])
def test_tttensor_core_of_non_float_dtype(dtype):
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=esc("cores[1] ") + FLOAT_DTYPE_MSG + f", got {name}"):
        tt.TTTensor([np.ones((1, 2, 2)), np.ones((2, 2, 1), dtype=dtype)])


def test_ttmatrix_core_of_int_dtype():
    with pytest.raises(TypeError, match=esc("cores[0] ") + FLOAT_DTYPE_MSG + ", got int64"):
        tt.TTMatrix([np.ones((1, 2, 2, 1), dtype=np.int64)])


def test_tttensor_core_given_as_nested_int_lists():
    with pytest.raises(TypeError, match=esc("cores[0] ") + FLOAT_DTYPE_MSG + ", got int"):
        tt.TTTensor([[[[1], [2]]]])


def test_matvec_with_int_vector():
    with pytest.raises(TypeError, match="W @ x " + FLOAT_DTYPE_MSG + ", got int64"):
        W @ np.ones(20, dtype=np.int64)


def test_matvec_with_int_matrix():
    with pytest.raises(TypeError, match="W @ x " + FLOAT_DTYPE_MSG + ", got int32"):
        W @ np.ones((20, 3), dtype=np.int32)


def test_rmatvec_with_int_vector():
    with pytest.raises(TypeError, match="x @ W " + FLOAT_DTYPE_MSG + ", got int64"):
        np.ones(6, dtype=np.int64) @ W


def test_matvec_with_bool_vector():
    with pytest.raises(TypeError, match="W @ x " + FLOAT_DTYPE_MSG + ", got bool"):
        W @ np.ones(20, dtype=bool)


def test_matvec_with_object_vector():
    with pytest.raises(TypeError, match="W @ x " + FLOAT_DTYPE_MSG + ", got object"):
        W @ np.ones(20, dtype=object)


@pytest.mark.parametrize("dtype", [int, np.int32, bool, "int64"],
                         ids=["int", "int32", "bool", "str-int64"])
def test_astype_to_non_float(dtype):
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=esc("astype(dtype) ") + FLOAT_DTYPE_MSG + f", got {name}"):
        A.astype(dtype)


def test_ttmatrix_astype_int():
    with pytest.raises(TypeError, match=esc("astype(dtype) ") + FLOAT_DTYPE_MSG + ", got int64"):
        W.astype(np.int64)


def test_random_tensor_with_int_dtype():
    with pytest.raises(TypeError, match="dtype " + FLOAT_DTYPE_MSG + ", got int64"):
        tt.random_tensor((2, 2), 2, dtype=np.int64)


def test_zeros_with_int_dtype():
    with pytest.raises(TypeError, match="dtype " + FLOAT_DTYPE_MSG + ", got int32"):
        tt.zeros((2, 2), dtype=np.int32)


# ---------------------------------------------------------------------------------------------
# NumPy mixed with CuPy (only meaningful where CuPy runs; skipped cleanly elsewhere)
# ---------------------------------------------------------------------------------------------
_MIXED_MATCH = r"different backends \(numpy and cupy\).*\.to\('cupy'\) / \.to\('numpy'\)"

MIXED_CASES = {
    "TTTensor-cores": lambda a_np, a_cp, w_np, w_cp, xp: tt.TTTensor(
        [a_np.cores[0], a_cp.cores[1], a_np.cores[2]]),
    "TTMatrix-cores": lambda a_np, a_cp, w_np, w_cp, xp: tt.TTMatrix(
        [w_np.cores[0], w_cp.cores[1]]),
    "tensor+tensor": lambda a_np, a_cp, w_np, w_cp, xp: a_np + a_cp,
    "tensor-tensor": lambda a_np, a_cp, w_np, w_cp, xp: a_cp - a_np,
    "tensor*tensor": lambda a_np, a_cp, w_np, w_cp, xp: a_np * a_cp,
    "tensor*cupy-scalar": lambda a_np, a_cp, w_np, w_cp, xp: a_np * xp.asarray(2.0),
    "matrix+matrix": lambda a_np, a_cp, w_np, w_cp, xp: w_np + w_cp,
    "dot": lambda a_np, a_cp, w_np, w_cp, xp: tt.dot(a_np, a_cp),
    "kron": lambda a_np, a_cp, w_np, w_cp, xp: tt.kron(a_np, a_cp),
    "matrix@matrix": lambda a_np, a_cp, w_np, w_cp, xp: w_np @ w_cp.T,
    "numpy-W@cupy-x": lambda a_np, a_cp, w_np, w_cp, xp: w_np @ xp.ones(20),
    "cupy-W@numpy-x": lambda a_np, a_cp, w_np, w_cp, xp: w_cp @ np.ones(20),
    "numpy-x@cupy-W": lambda a_np, a_cp, w_np, w_cp, xp: np.ones(6) @ w_cp,
}


@pytest.mark.parametrize("case", list(MIXED_CASES))
def test_mixing_numpy_and_cupy_raises_backend_error(xp, case):
    if xp is np:
        pytest.skip("mixing backends needs CuPy on a CUDA device")
    rng = np.random.default_rng(7)
    a_np = tt.random_tensor((2, 3, 4), 2, rng=rng)
    w_np = tt.random_matrix((2, 3), (4, 5), 2, rng=rng)
    a_cp, w_cp = a_np.to(xp), w_np.to(xp)
    with pytest.raises(tt.BackendError, match=_MIXED_MATCH) as info:
        MIXED_CASES[case](a_np, a_cp, w_np, w_cp, xp)
    assert isinstance(info.value, TypeError)


# ---------------------------------------------------------------------------------------------
# binary operations on operands that do not fit
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_tensor_op_with_mismatched_shapes(op):
    with pytest.raises(tt.ShapeError,
                       match=esc(f"'{op}' needs equal shapes, got (2, 3, 4) and (2, 3, 5)")):
        {"+": lambda: A + B, "-": lambda: A - B, "*": lambda: A * B}[op]()


@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_matrix_op_with_mismatched_modes(op):
    with pytest.raises(tt.ShapeError, match=esc(
            f"'{op}' needs equal shapes and modes, got shape (6, 20) with modes (2, 3)x(4, 5) and "
            f"shape (6, 20) with modes (3, 2)x(4, 5)")):
        {"+": lambda: W + W_OTHER_MODES, "-": lambda: W - W_OTHER_MODES,
         "*": lambda: W * W_OTHER_MODES}[op]()


@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_matrix_op_with_same_modes_but_different_logical_shape(op):
    with pytest.raises(tt.ShapeError, match=esc(f"'{op}' needs equal shapes and modes, got shape "
                                                f"(997, 10)") + ".*" + esc("shape (1000, 10)")):
        {"+": lambda: P + P_FULL, "-": lambda: P - P_FULL, "*": lambda: P * P_FULL}[op]()


@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_tensor_op_with_matrix(op):
    with pytest.raises(TypeError, match=f"'{re.escape(op)}' needs two TTTensors, got TTTensor and "
                                        "TTMatrix"):
        {"+": lambda: A + W, "-": lambda: A - W, "*": lambda: A * W}[op]()


@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_matrix_op_with_tensor(op):
    with pytest.raises(TypeError, match=f"'{re.escape(op)}' needs two TTMatrix operands, got "
                                        "TTMatrix and TTTensor"):
        {"+": lambda: W + A, "-": lambda: W - A, "*": lambda: W * A}[op]()


def test_tensor_plus_a_number_is_unsupported():
    with pytest.raises(TypeError,
                       match=r"unsupported operand type\(s\) for \+: 'TTTensor' and 'int'"):
        A + 1


def test_ttmatrix_matmul_ttmatrix_with_mismatched_inner_modes():
    with pytest.raises(tt.ShapeError, match=esc(
            "W @ V needs V's rows to match W's columns: W has 20 columns with modes (4, 5), "
            "V has 6 rows with modes (3, 2)")):
        W @ W_OTHER_MODES


def test_ttmatrix_matmul_ttmatrix_with_same_modes_but_different_logical_size():
    # P.T is (10, 997) over column modes (5, 5, 8, 5); P_FULL has 1000 rows over the same modes
    with pytest.raises(tt.ShapeError, match=esc("W has 997 columns with modes (5, 5, 8, 5), "
                                                "V has 1000 rows with modes (5, 5, 8, 5)")):
        P.T @ P_FULL


def test_ttmatrix_matmul_tttensor_with_mismatched_modes():
    with pytest.raises(tt.ShapeError, match=esc("W @ v needs v.shape == W.col_modes (4, 5), got "
                                                "(2, 3, 5)")):
        W @ B


def test_dot_of_tensors_with_mismatched_shapes():
    with pytest.raises(tt.ShapeError, match=esc("'dot' needs equal shapes, got (2, 3, 4) and "
                                                "(2, 3, 5)")):
        tt.dot(A, B)


def test_log_dot_of_tensors_with_mismatched_shapes():
    with pytest.raises(tt.ShapeError, match=esc("'dot' needs equal shapes, got (2, 3, 4) and "
                                                "(2, 3, 5)")):
        tt.log_dot(A, B)


def test_dot_of_matrices_with_mismatched_modes():
    with pytest.raises(tt.ShapeError, match=esc("'dot' needs equal shapes and modes, got shape "
                                                "(6, 20) with modes (2, 3)x(4, 5)")):
        tt.dot(W, W_OTHER_MODES)


def test_dot_of_tensor_and_matrix():
    with pytest.raises(TypeError, match="'dot' needs two TTTensors, got TTTensor and TTMatrix"):
        tt.dot(A, W)


def test_dot_with_an_ndarray():
    with pytest.raises(TypeError, match="b must be a TTTensor or TTMatrix, got ndarray"):
        tt.dot(A, np.ones((2, 3, 4)))


# ---------------------------------------------------------------------------------------------
# dense matvec / matmat of the wrong size
# ---------------------------------------------------------------------------------------------
def test_matvec_1d_wrong_length():
    with pytest.raises(tt.ShapeError, match="W @ x: W has 20 columns, but x has length 19"):
        W @ np.ones(19)


def test_matvec_2d_wrong_rows():
    with pytest.raises(tt.ShapeError, match=esc("W @ x: W has 20 columns, but x has 19 rows "
                                                "(shape (19, 3))")):
        W @ np.ones((19, 3))


def test_matvec_3d_batch_wrong_rows():
    with pytest.raises(tt.ShapeError, match=esc("W @ x: W has 20 columns, but x has 21 rows "
                                                "(shape (2, 21, 3))")):
        W @ np.ones((2, 21, 3))


def test_matvec_with_a_0d_array():
    with pytest.raises(tt.ShapeError,
                       match="W @ x: matmul needs at least a 1-D array, got a scalar"):
        W @ np.array(1.0)


def test_rmatvec_1d_wrong_length():
    with pytest.raises(tt.ShapeError, match=esc("x @ W: W has 6 rows, but x has 5 columns "
                                                "(shape (5,))")):
        np.ones(5) @ W


def test_rmatvec_2d_wrong_columns():
    with pytest.raises(tt.ShapeError, match=esc("x @ W: W has 6 rows, but x has 5 columns "
                                                "(shape (3, 5))")):
        np.ones((3, 5)) @ W


def test_rmatvec_with_a_0d_array():
    with pytest.raises(tt.ShapeError,
                       match="x @ W: matmul needs at least a 1-D array, got a scalar"):
        np.array(1.0) @ W


def test_padded_matrix_rejects_a_vector_of_the_padded_length():
    # P is (997, 10) stored over 1000 rows: the padding must not leak into the accepted sizes
    with pytest.raises(tt.ShapeError, match=esc("x @ W: W has 997 rows, but x has 1000 columns")):
        np.ones(1000) @ P


def test_padded_transpose_rejects_a_vector_of_the_padded_length():
    with pytest.raises(tt.ShapeError, match="W @ x: W has 997 columns, but x has length 1000"):
        P.T @ np.ones(1000)


def test_matvec_with_a_list_of_wrong_length():
    with pytest.raises(tt.ShapeError, match="W @ x: W has 20 columns, but x has length 3"):
        W @ [1.0, 2.0, 3.0]


# ---------------------------------------------------------------------------------------------
# indexing and sum(axis)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, match",
    [
        (2, "index 2 is out of range for mode 0 of size 2"),
        (-3, "index -3 is out of range for mode 0 of size 2"),
        ((0, 3), "index 3 is out of range for mode 1 of size 3"),
        ((0, 0, -5), "index -5 is out of range for mode 2 of size 4"),
        ((np.int64(7),), "index 7 is out of range for mode 0 of size 2"),
    ],
    ids=["positive", "negative", "second-mode", "last-mode-negative", "numpy-int"],
)
def test_index_out_of_range(key, match):
    with pytest.raises(tt.TTIndexError, match=match) as info:
        A[key]
    assert isinstance(info.value, IndexError)


def test_array_index_out_of_range():
    with pytest.raises(tt.TTIndexError, match=esc("array index for mode 0 of size 2 is out of "
                                                  "range (min 0, max 5)")):
        A[[0, 5]]


def test_array_index_negative_out_of_range():
    with pytest.raises(tt.TTIndexError, match=esc("array index for mode 1 of size 3 is out of "
                                                  "range (min -4, max 0)")):
        A[:, np.array([0, -4])]


def test_slice_selecting_nothing():
    with pytest.raises(tt.TTIndexError, match=esc("slice slice(5, None, None) selects nothing from "
                                                  "mode 0 of size 2")):
        A[5:]


def test_too_many_indices():
    with pytest.raises(tt.TTIndexError, match="too many indices: the tensor has 3 modes, got 4"):
        A[0, 0, 0, 0]


def test_two_ellipses():
    with pytest.raises(tt.TTIndexError,
                       match=esc("an index can only have a single ellipsis ('...')")):
        A[..., 0, ...]


@pytest.mark.parametrize(
    "key, shown",
    [("x", "'x'"), (1.5, "1.5"), (True, "True"), (None, "None")],
    ids=["str", "float", "bool", "None"],
)
def test_bad_index_type(key, shown):
    with pytest.raises(tt.TTIndexError, match=esc(f"unsupported index {shown} for mode 0: use an "
                                                  "int, a slice or a 1-D integer array")):
        A[key]


def test_float_array_index():
    with pytest.raises(tt.TTIndexError, match="an array index must be a non-empty 1-D integer "
                                              "array, got dtype float64 with 1 entries for mode 0"):
        A[[0.5]]


def test_empty_array_index():
    with pytest.raises(tt.TTIndexError, match="non-empty 1-D integer array, got dtype int64 with 0 "
                                              "entries for mode 1"):
        A[:, np.array([], dtype=np.int64)]


@pytest.mark.parametrize("axis", [3, -4, (0, 5)], ids=["positive", "negative", "in-tuple"])
def test_sum_axis_out_of_range(axis):
    bad = axis[1] if isinstance(axis, tuple) else axis
    with pytest.raises(tt.TTIndexError,
                       match=f"axis {bad} is out of range for a tensor with 3 modes"):
        A.sum(axis=axis)


@pytest.mark.parametrize("axis, shown", [("0", "'0'"), (1.0, "1.0"), (True, "True")],
                         ids=["str", "float", "bool"])
def test_sum_axis_of_wrong_type(axis, shown):
    with pytest.raises(TypeError,
                       match=esc(f"axis must be an int or a tuple of ints, got {shown}")):
        A.sum(axis=axis)


# ---------------------------------------------------------------------------------------------
# options, kron, truth value, backends
# ---------------------------------------------------------------------------------------------
def test_orthogonalize_unknown_direction():
    with pytest.raises(tt.TTError,
                       match=esc("direction must be one of ('left', 'right'), got 'up'")):
        A.orthogonalize("up")


def test_orthogonalize_function_unknown_direction():
    with pytest.raises(tt.TTError, match=esc("direction must be one of ('left', 'right'), got "
                                             "'LEFT'")):
        tt.orthogonalize(W, "LEFT")


def test_orthogonalize_of_a_non_tt():
    with pytest.raises(TypeError, match="a must be a TTTensor or TTMatrix, got ndarray"):
        tt.orthogonalize(np.ones((2, 2)))


def test_kron_with_padded_right_operand():
    with pytest.raises(NotImplementedError, match=esc(
            "kron(a, b) with a padded right operand b is not supported") + ".*" +
            esc("(b.shape=(997, 10), padded_shape=(1000, 10))")):
        tt.kron(W, P)


def test_kron_of_tensor_and_matrix():
    with pytest.raises(TypeError, match="kron needs two TTTensors or two TTMatrix objects, got "
                                            "TTTensor and TTMatrix"):
        tt.kron(A, W)


@pytest.mark.parametrize("obj", [A, W, P], ids=["TTTensor", "TTMatrix", "padded-TTMatrix"])
def test_truth_value_is_ambiguous(obj):
    with pytest.raises(TypeError, match=f"the truth value of a {type(obj).__name__} is ambiguous"):
        bool(obj)


def test_truth_value_in_an_if():
    with pytest.raises(TypeError, match="the truth value of a TTTensor is ambiguous"):
        if A:
            pass


@pytest.mark.parametrize("obj", [A, W], ids=["TTTensor", "TTMatrix"])
def test_to_unknown_backend_string(obj):
    with pytest.raises(ValueError, match=esc("unknown backend 'tpu'; expected 'numpy', 'cupy' or "
                                             "a module")):
        obj.to("tpu")


def test_to_backend_of_wrong_type():
    with pytest.raises(TypeError, match="xp must be None, 'numpy', 'cupy' or the numpy/cupy "
                                        "module, got 3"):
        A.to(3)


@pytest.mark.parametrize("std", [0, -1.0, float("nan"), float("inf")])
def test_random_tensor_with_bad_std(std):
    with pytest.raises(tt.TTError, match=r"std must be a finite number > 0 .*got "):
        tt.random_tensor((2, 2), 2, std=std)
    with pytest.raises(tt.TTError, match=r"std must be a finite number > 0"):
        tt.random_matrix((2, 2), (2, 2), 2, std=std)


@pytest.mark.parametrize("std", ["1", True, None, 1j])
def test_random_tensor_with_std_of_wrong_type(std):
    with pytest.raises(TypeError, match=r"std must be a real number > 0, got "):
        tt.random_tensor((2, 2), 2, std=std)


def test_random_tensor_with_bad_rng():
    with pytest.raises(TypeError, match=r"rng must be None, a non-negative int seed, .*got str 'abc'"):
        tt.random_tensor((2, 2), 2, rng="abc")


def test_matmul_cost_batch_zero():
    with pytest.raises(tt.ShapeError, match="batch must be >= 1, got 0"):
        W.matmul_cost(batch=0)


# ---------------------------------------------------------------------------------------------
# load: missing, truncated, foreign, wrong version
# ---------------------------------------------------------------------------------------------
def _base_entries():
    """The entries tt.save writes for a one-core TTTensor (see io.py)."""
    return {
        "format": np.array("tensortrain"),
        "version": np.array(FORMAT_VERSION),
        "kind": np.array("TTTensor"),
        "d": np.array(1),
        "core_0": np.ones((1, 2, 1)),
    }


def _forge(path, **entries):
    with open(path, "wb") as f:
        np.savez(f, **entries)
    return path


def test_forged_reference_file_loads(tmp_path):
    """The forging helper writes what save writes: unchanged, the file loads."""
    x = tt.load(_forge(tmp_path / "ok.npz", **_base_entries()))
    assert isinstance(x, tt.TTTensor) and x.shape == (2,)


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=r"no such file: .*nope\.npz"):
        tt.load(path)


@pytest.mark.parametrize("keep", [0, 1, 30, 0.25, 0.5, 0.9, -22, -1],
                         ids=["0B", "1B", "30B", "quarter", "half", "90pct", "minus22B", "minus1B"])
def test_load_truncated_file(tmp_path, keep):
    path = tmp_path / "t.npz"
    tt.save(path, tt.random_tensor((3, 4, 5), 3, rng=np.random.default_rng(3)))
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data) if keep < 0 else keep
    assert n < len(data)
    path.write_bytes(data[:n])
    with pytest.raises(tt.TTFileError, match=r"t\.npz.*(not a readable tensortrain \.npz file "
                                             r"\(truncated or foreign\)|could not be read)"):
        tt.load(path)


def test_load_file_with_a_corrupted_byte_in_a_core(tmp_path):
    path = tmp_path / "c.npz"
    x = tt.random_tensor((3, 4, 5), 3, rng=np.random.default_rng(4))
    tt.save(path, x)
    data = bytearray(path.read_bytes())
    start = data.find(x.cores[1].tobytes())       # the archive is uncompressed
    assert start > 0
    data[start + 5] ^= 0xFF                         # one byte inside core_1's numbers
    path.write_bytes(bytes(data))
    with pytest.raises(tt.TTFileError, match=r"c\.npz"):
        tt.load(path)


def test_load_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones((3, 3)), bias=np.zeros(3))
    with pytest.raises(tt.TTFileError, match=r"foreign\.npz' is not a tensortrain file \(no "
                                             r"'format=tensortrain' entry\)"):
        tt.load(path)


def test_load_npz_with_another_format_name(tmp_path):
    entries = {**_base_entries(), "format": np.array("someotherlib")}
    path = _forge(tmp_path / "other.npz", **entries)
    with pytest.raises(tt.TTFileError, match="is not a tensortrain file"):
        tt.load(path)


def test_load_plain_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not the cores you are looking for\n1 2 3\n")
    with pytest.raises(tt.TTFileError, match=r"notes\.txt' is not a readable tensortrain \.npz "
                                             r"file \(truncated or foreign\)"):
        tt.load(path)


def test_load_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(tt.TTFileError, match=r"empty\.npz' is not a readable tensortrain"):
        tt.load(path)


def test_load_single_npy_array(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.ones(3))
    with pytest.raises(tt.TTFileError, match=r"array\.npy"):
        tt.load(path)


def test_load_pickle_file_is_refused_without_unpickling(tmp_path):
    import pickle  # noqa: PLC0415

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"format": "tensortrain"}))
    with pytest.raises(tt.TTFileError, match=r"evil\.pkl' is not a readable tensortrain"):
        tt.load(path)


def test_load_npz_holding_an_object_array(tmp_path):
    entries = {**_base_entries(), "core_0": np.array([None, 1.0], dtype=object)}
    path = _forge(tmp_path / "obj.npz", **entries)
    with pytest.raises(tt.TTFileError, match=r"obj\.npz.*allow_pickle=False"):
        tt.load(path)


def test_load_a_directory(tmp_path):
    with pytest.raises(tt.TTFileError, match="is not a readable tensortrain"):
        tt.load(tmp_path)


@pytest.mark.parametrize("version", [0, 2, 99, -1])
def test_load_wrong_version(tmp_path, version):
    entries = {**_base_entries(), "version": np.array(version)}
    path = _forge(tmp_path / "v.npz", **entries)
    with pytest.raises(tt.TTFileError, match=f"v\\.npz' has format version {version}; this "
                                             f"tensortrain reads version {FORMAT_VERSION}"):
        tt.load(path)


def test_load_file_without_a_version(tmp_path):
    entries = {k: v for k, v in _base_entries().items() if k != "version"}
    path = _forge(tmp_path / "nov.npz", **entries)
    with pytest.raises(tt.TTFileError, match=r"nov\.npz' is missing the entry 'version'"):
        tt.load(path)


@pytest.mark.parametrize(
    "version",
    [
        pytest.param(np.array("one"), id="string"),
        pytest.param(np.array([1, 2]), id="array"),
        pytest.param(np.array(1.5), id="fractional"),
    ],
)
def test_load_malformed_version(tmp_path, version):
    entries = {**_base_entries(), "version": version}
    path = _forge(tmp_path / "mv.npz", **entries)
    with pytest.raises(tt.TTFileError, match=r"mv\.npz.*version"):
        tt.load(path)


def test_load_malformed_number_of_cores(tmp_path):
    entries = {**_base_entries(), "d": np.array("x")}
    path = _forge(tmp_path / "md.npz", **entries)
    with pytest.raises(tt.TTFileError, match=r"md\.npz.*'d'"):
        tt.load(path)


def test_load_unknown_kind(tmp_path):
    entries = {**_base_entries(), "kind": np.array("TTTrain")}
    path = _forge(tmp_path / "k.npz", **entries)
    with pytest.raises(tt.TTFileError, match="holds an unknown kind 'TTTrain'; expected TTTensor "
                                             "or TTMatrix"):
        tt.load(path)


def test_load_file_missing_a_core(tmp_path):
    entries = {**_base_entries(), "d": np.array(2)}
    path = _forge(tmp_path / "mc.npz", **entries)
    with pytest.raises(tt.TTFileError, match="is missing the entry 'core_1'"):
        tt.load(path)


def test_load_file_missing_d(tmp_path):
    entries = {k: v for k, v in _base_entries().items() if k != "d"}
    path = _forge(tmp_path / "nod.npz", **entries)
    with pytest.raises(tt.TTFileError, match="is missing the entry 'd'"):
        tt.load(path)


def test_load_ttmatrix_file_missing_shape(tmp_path):
    entries = {**_base_entries(), "kind": np.array("TTMatrix"), "core_0": np.ones((1, 2, 3, 1))}
    path = _forge(tmp_path / "ms.npz", **entries)
    with pytest.raises(tt.TTFileError, match="is missing the entry 'shape'"):
        tt.load(path)


def test_load_with_unknown_backend(tmp_path):
    path = tmp_path / "a.npz"
    tt.save(path, A)
    with pytest.raises(ValueError, match=esc("unknown backend 'tpu'; expected 'numpy', 'cupy'")):
        tt.load(path, xp="tpu")


def test_round_of_nonfinite_tt_raises():
    c0 = np.ones((1, 2, 2))
    c1 = np.ones((2, 2, 1))
    c1[1, 0, 0] = np.nan
    with pytest.raises(tt.TTError, match="cannot round a TT whose cores contain NaN or Inf"):
        tt.TTTensor([c0, c1]).round(1e-3)
