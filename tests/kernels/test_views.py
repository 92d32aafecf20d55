"""fastbp.kernels.views: ``c_view`` (numpy's reshape, as a view, for C-contiguous arrays) and
``borrow`` (an argument without its reference count, for views inside one call)."""
import numpy as np
import pytest
from numba import njit, prange
from numba.core.errors import TypingError

from fastbp.kernels.views import borrow, c_view


@njit(cache=False)
def view_1d_to_2d(a, start, rows, cols):
    return c_view(a[start:start + rows * cols], (rows, cols))


@njit(cache=False)
def view_2d_to_1d(a):
    return c_view(a, (a.size,))


@njit(cache=False)
def view_3d(a, d0, d1, d2):
    return c_view(a, (d0, d1, d2))


@njit(cache=False)
def view_of_strided(a, rows, cols):
    # a[::1] is typed with layout 'A' (contiguity unknown at compile time)
    return c_view(a[::1], (rows, cols))


@njit(cache=False)
def view_of_local(n, cols):
    # the view must keep the array it views alive after the function returns
    return c_view(np.arange(n * cols).astype(np.float64), (n, cols))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("start,rows,cols", [(0, 1, 1), (0, 1, 784), (3, 7, 17), (5, 129, 257), (2, 0, 5)])
def test_view_is_numpy_reshape_and_shares_memory(dtype, start, rows, cols):
    a = np.arange(start + rows * cols + 3).astype(dtype)
    got = view_1d_to_2d(a, start, rows, cols)
    want = a[start:start + rows * cols].reshape(rows, cols)
    assert got.shape == want.shape and got.strides == want.strides and got.dtype == a.dtype
    assert got.flags.c_contiguous and np.array_equal(got, want)
    if got.size:
        got[-1, -1] = -1
        assert a[start + rows * cols - 1] == -1       # a view, not a copy
    back = view_2d_to_1d(want)
    assert back.shape == (rows * cols,) and np.array_equal(back, want.reshape(-1))
    assert np.shares_memory(back, a) or back.size == 0


def test_three_dimensions():
    a = np.arange(2 * 3 * 5, dtype=np.float32)
    got = view_3d(a, 2, 3, 5)
    assert got.strides == (60, 20, 4) and np.array_equal(got, a.reshape(2, 3, 5))


def test_size_mismatch_raises():
    with pytest.raises(ValueError, match="sizes differ"):
        view_1d_to_2d(np.zeros(10), 0, 3, 4)       # 12 elements from a 10-element slice
    with pytest.raises(ValueError, match="sizes differ"):
        view_3d(np.zeros(30, np.float32), 2, 3, 4)


def test_other_layouts_are_a_typing_error():
    """As with Numba's reshape: only arrays typed C-contiguous compile."""
    with pytest.raises(TypingError, match="C-contiguous"):
        view_of_strided(np.arange(12, dtype=np.float64), 3, 4)


def test_view_keeps_its_array_alive():
    views = [view_of_local(50, 7) for _ in range(20)]
    junk = [np.full(350, -5.0) for _ in range(20)]      # reuse freed memory, were it freed
    for v in views:
        assert np.array_equal(v, np.arange(350, dtype=np.float64).reshape(50, 7))
    del junk


@njit(cache=False)
def write_through_borrowed(a, start, rows, cols):
    v = c_view(borrow(a)[start:start + rows * cols], (rows, cols))
    for i in range(rows):
        for j in range(cols):
            v[i, j] = 10 * i + j
    return v.sum()


@njit(cache=False, parallel=True)
def row_sums_borrowed(a, rows, cols, out):
    b = borrow(a)
    for i in prange(rows):
        out[i] = c_view(b, (rows, cols))[i].sum()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: d.__name__)
def test_borrowed_views_read_and_write_the_argument(dtype):
    a = np.zeros(3 + 7 * 17, dtype)
    total = write_through_borrowed(a, 3, 7, 17)
    want = (10 * np.arange(7)[:, None] + np.arange(17)).astype(dtype)
    assert np.array_equal(a[3:].reshape(7, 17), want) and a[:3].sum() == 0 and total == want.sum()


def test_borrowed_views_in_a_parallel_loop():
    a = np.random.default_rng(0).standard_normal(129 * 33)
    out = np.zeros(129)
    row_sums_borrowed(a, 129, 33, out)
    assert np.allclose(out, a.reshape(129, 33).sum(axis=1), rtol=1e-12, atol=1e-12)
