"""ParameterArena: one flat buffer, views that stay views."""
import numpy as np
import pytest

from fastbp.arena import ParameterArena, aligned_zeros


def test_slots_are_views_of_one_buffer():
    arena = ParameterArena(np.float32)
    w = arena.reserve("w", (3, 4))
    b = arena.reserve("b", (3,))
    assert (w, b) == (0, 12) and arena.size == 15
    arena.allocate()
    W, B = arena.view(w, (3, 4)), arena.view(b, (3,))
    W[...] = 1.0
    B[...] = 2.0
    np.testing.assert_array_equal(arena.params, [1.0] * 12 + [2.0] * 3)
    G = arena.view(w, (3, 4), "grads")
    assert np.shares_memory(G, arena.grads) and not np.shares_memory(G, arena.params)
    state = arena.zeros_like_params(2)
    assert state.shape == (2, 15) and state.dtype == np.float32 and state.flags.c_contiguous
    arena.grads[...] = 5
    arena.zero_grad()
    assert not arena.grads.any()


def test_no_reserve_after_allocate():
    arena = ParameterArena(np.float64)
    arena.reserve("w", (2,))
    arena.allocate()
    with pytest.raises(RuntimeError, match="already allocated"):
        arena.reserve("v", (1,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (1,), (100003,), (2, 300001), (3, 0)])
def test_aligned_zeros(dtype, shape):
    a = aligned_zeros(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    assert (a.size == 0 or a.ctypes.data % 64 == 0) and not a.any()     # an empty view's address is numpy's


def test_model_buffers_start_on_cache_lines():
    """numpy puts large arrays 16 bytes past a page; the GEMM's 512-bit loads then split
    across cache lines (NOTES section 41).  Every buffer a compiled step reads is aligned."""
    import fastbp as fb
    model = fb.MLP([300, 257, 10], seed=0)
    opt = fb.optim.Adam(model.parameters())
    model.train_step(np.ones((128, 300), np.float32), np.zeros(128, np.int64), fb.CrossEntropyLoss(), opt)
    for name, buf in [("params", model.arena.params), ("grads", model.arena.grads), ("optimizer state", opt.state),
                      ("workspace", model._ws), ("packing scratch", model._work)]:
        assert buf.ctypes.data % 64 == 0, name
        assert np.isfinite(buf).all(), name
