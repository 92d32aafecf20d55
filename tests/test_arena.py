"""ParameterArena: one flat buffer, views that stay views."""
import numpy as np
import pytest

from fastbp.arena import ParameterArena


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
