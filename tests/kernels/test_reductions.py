"""fastbp.kernels.reductions: values, summation order, and independence of the thread count."""
import numba
import numpy as np
import pytest

from fastbp.kernels import reductions as K

DTYPES = [np.float64, np.float32]
SHAPES = [(1, 1), (1, 257), (7, 3), (7, 17), (129, 129), (129, 257), (2048, 17)]
LARGE_SHAPE = (129, 257)
SSQ_LARGE = K.SSQ_PARALLEL_MIN + 1234                       # takes sum_of_squares' prange path
SSQ_SIZES = [0, 1, 7, 4095, 4096, 4097, 100_003, K.SSQ_PARALLEL_MIN - 1, SSQ_LARGE]

needs_two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")


def with_threads(n, fn, *args):
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return fn(*args)
    finally:
        numba.set_num_threads(old)


def column_sums(D):
    out = np.full(D.shape[1], np.nan, dtype=D.dtype)
    K.column_sums(D, out)
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_column_sums_are_row_order_sums(dtype, shape):
    """Bit for bit the row-by-row accumulation in D's dtype (the documented order), and within the
    recursive-summation error bound of the exact sum."""
    D = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    got = column_sums(D)
    acc = np.zeros(shape[1], dtype=dtype)
    for row in D:
        acc += row
    np.testing.assert_array_equal(got, acc)
    exact = D.astype(np.float64).sum(axis=0)
    bound = max(shape[0] - 1, 1) * np.finfo(dtype).eps * np.abs(D.astype(np.float64)).sum(axis=0)
    assert (np.abs(got - exact) <= bound).all()


@needs_two_threads
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_column_sums_do_not_depend_on_thread_count(dtype):
    """Serial today (see the module docstring); this guards any threaded version."""
    D = np.random.default_rng(1).standard_normal(LARGE_SHAPE).astype(dtype)
    one = with_threads(1, column_sums, D)
    two = with_threads(2, column_sums, D)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("n", SSQ_SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_sum_of_squares(dtype, n):
    """float64 accumulation: float32 squares are exact in float64, so only the adds round."""
    x = np.random.default_rng(2).standard_normal(n).astype(dtype)
    got = K.sum_of_squares(x)
    assert isinstance(got, float)
    x64 = x.astype(np.float64)
    want = float(np.sum(x64 * x64))
    assert got == pytest.approx(want, rel=max(n, 1) * np.finfo(np.float64).eps, abs=0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_sum_of_squares_is_a_sum_of_fixed_chunk_sums(dtype):
    """The chunk structure is part of the definition: the large (prange) path adds the sums of
    SSQ_CHUNK-element chunks in order, exactly as the small path does chunk by chunk."""
    n = SSQ_LARGE
    x = np.random.default_rng(3).standard_normal(n).astype(dtype)
    total = 0.0
    for c in range(0, n, K.SSQ_CHUNK):
        total += K.sum_of_squares(x[c:c + K.SSQ_CHUNK])     # one chunk: the serial path
    assert K.sum_of_squares(x) == total


@needs_two_threads
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_sum_of_squares_does_not_depend_on_thread_count(dtype):
    x = np.random.default_rng(4).standard_normal(SSQ_LARGE).astype(dtype)
    assert with_threads(1, K.sum_of_squares, x) == with_threads(2, K.sum_of_squares, x)


def test_sum_of_squares_propagates_nan_and_inf():
    x = np.ones(10)
    x[3] = np.nan
    assert np.isnan(K.sum_of_squares(x))
    x[3] = np.inf
    assert K.sum_of_squares(x) == np.inf


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (129, 17), (3, 257)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_row_argmax(dtype, shape):
    rng = np.random.default_rng(5)
    P = rng.integers(-3, 3, shape).astype(dtype)       # many ties: the first maximum wins
    out = np.full(shape[0], -1, dtype=np.int64)
    K.row_argmax(P, out)
    np.testing.assert_array_equal(out, np.argmax(P, axis=1))


def test_row_argmax_treats_nan_as_maximum():
    P = np.array([[1.0, np.nan, 5.0], [np.nan, 9.0, np.nan], [0.0, 2.0, np.nan], [3.0, 3.0, 1.0]])
    out = np.empty(4, dtype=np.int64)
    K.row_argmax(P, out)
    np.testing.assert_array_equal(out, np.argmax(P, axis=1))
    np.testing.assert_array_equal(out, [1, 0, 2, 0])


@numba.njit   # not cached: Numba's cache would not notice edits to the kernels it calls
def norm_and_bias_grad(D, out, flat):
    K.column_sums(D, out)
    return K.sum_of_squares(flat)


def test_kernels_are_callable_from_njit():
    D = np.arange(12.0).reshape(4, 3)
    out = np.empty(3)
    assert norm_and_bias_grad(D, out, D.reshape(-1)) == float(np.sum(D * D))
    np.testing.assert_array_equal(out, D.sum(axis=0))


@pytest.mark.parametrize("n", [1, 2, 7, 129])
def test_int_range_matches_numpy_min_max(n):
    x = np.random.default_rng(n).integers(-50, 50, n).astype(np.int64)
    assert K.int_range(x) == (x.min(), x.max())


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("n", [1, 7, 33, 1000])
def test_copy_finite_copies_and_reports_non_finite(n, dtype):
    src = np.random.default_rng(n).standard_normal(n).astype(dtype)
    dst = np.full(n, 7, dtype)
    assert K.copy_finite(src, dst) is True
    assert dst.tobytes() == src.tobytes()
    for bad in (np.nan, np.inf, -np.inf):
        for pos in sorted({0, n // 2, n - 1}):
            x = src.copy()
            x[pos] = bad
            dst = np.zeros(n, dtype)
            assert K.copy_finite(x, dst) is False, (bad, pos)
            np.testing.assert_array_equal(dst, x)   # copied anyway: the caller discards it
