"""The forward pass of a few rows in one parallel region (``program._forward_region``, which
``program.forward`` runs where it fits): the same bits as layer by layer, and used only where
it fits."""
import numba
import numpy as np
import pytest

import fastbp as fb
from fastbp.kernels import gemm
from fastbp.kernels import program as P

TWO = min(2, numba.config.NUMBA_NUM_THREADS)


@pytest.fixture
def two_threads():
    before = fb.get_num_threads()
    fb.set_num_threads(TWO)
    yield
    fb.set_num_threads(before)


def _dense(widths, act, dtype, bias=True, seed=0):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(fb.Linear(n_in, n_out, bias=bias))
        if i < len(widths) - 2 and act is not None:
            layers.append(act)
    return fb.Sequential(*layers, dtype=dtype, seed=seed).eval()


def _outputs(model, x, region):
    """The program's output for x, by ``_forward_region`` or layer by layer (``forward`` at one
    thread, where the region does not run: the dots give the same bits at any thread count)."""
    rows = x.shape[0]
    model.predict(x, batch_size=rows)        # sizes the workspace for rows
    m = model
    staged = P.slab(m._ws, m._layout[P.L_INPUT], m.capacity, rows, x.shape[1])
    P._copy_rows(x, staged)
    if region:
        P._forward_region(m._program, m._consts, m.arena.params, m._ws, m.capacity, rows,
                          P._counters(m._work, m._program, np.int64(rows)), staged)
    else:
        threads = fb.get_num_threads()
        fb.set_num_threads(1)
        assert not _fits(model, rows)
        P.forward(m._program, m._consts, m.arena.params, m.state.params, m._ws, m.capacity, rows, m._work,
                  False, np.int64(0), np.int64(0), m._segments, fb.get_flush_denormal())
        fb.set_num_threads(threads)
    return P.slab(m._ws, m._layout[P.L_OUTPUT], m.capacity, rows, m.out_features).copy()


# widths that are not multiples of 4 or of the chunk (37, 1001), one output, a layer split into
# the most chunks (1000 outputs), and W1
CASES = [([784, 256, 256, 10], fb.ReLU()), ([300, 1001, 37, 5], fb.Tanh()), ([161, 1000, 1], fb.Sigmoid()),
         ([513, 515, 6], fb.LeakyReLU(0.1)), ([600, 300, 301, 7], None)]
NUMPY_ACT = {"ReLU": lambda z: np.maximum(z, 0), "Tanh": np.tanh, "Sigmoid": lambda z: 1 / (1 + np.exp(-z)),
             "LeakyReLU": lambda z: np.where(z > 0, z, 0.1 * z)}


def _numpy_forward(model, x):
    """The model's outputs in float64 numpy, layer by layer."""
    a = x.astype(np.float64)
    for layer in model.layers:
        if isinstance(layer, fb.Linear):
            a = a @ layer.weight.astype(np.float64).T
            if layer.has_bias:
                a = a + layer.bias
        else:
            a = NUMPY_ACT[type(layer).__name__](a)
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("widths,act", CASES)
def test_region_gives_the_bits_of_forward(two_threads, widths, act, dtype):
    for rows in (1, 2, 3, 5, 8, gemm.DOTS_MAX_ROWS):
        for bias in (True, False):
            model = _dense(widths, act, dtype, bias=bias, seed=rows)
            x = np.random.default_rng(rows).standard_normal((rows, widths[0])).astype(dtype)
            if TWO == 2 and rows < gemm.BLAS_MIN_ROWS:
                assert _fits(model, rows)
            if rows >= gemm.BLAS_MIN_ROWS and not _fits(model, rows):
                continue        # a layer BLAS takes at this many rows: layer by layer only
            want = _outputs(model, x, region=False)
            got = _outputs(model, x, region=True)
            assert got.tobytes() == want.tobytes(), (rows, bias)
            tol = 1e-4 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, _numpy_forward(model, x), rtol=tol, atol=tol)


def test_predict_at_few_rows_is_the_same_at_one_and_two_threads(two_threads):
    model = _dense([784, 256, 256, 10], fb.ReLU(), np.float32)
    top = gemm.DOTS_MAX_ROWS + 1            # the dot path's rows, with and without BLAS, and one more
    x = np.random.default_rng(0).standard_normal((top, 784)).astype(np.float32)
    at_two = [model.predict(x[:rows], batch_size=rows) for rows in range(1, top + 1)]
    model.predict(np.ones((64, 784), np.float32))        # a workspace of 64 rows a slot now
    at_two_wide = [model.predict(x[:rows]) for rows in range(1, top + 1)]
    fb.set_num_threads(1)
    at_one = [model.predict(x[:rows], batch_size=rows) for rows in range(1, top + 1)]
    for rows, (a, b, c) in enumerate(zip(at_one, at_two, at_two_wide), 1):
        assert a.tobytes() == b.tobytes() == c.tobytes(), rows


def _fits(model, rows):
    return P._region_fits(model._program, np.int64(rows), model._work)


@pytest.mark.skipif(TWO < 2, reason="needs two Numba threads")
def test_region_runs_only_where_it_fits(two_threads):
    w1 = _dense([784, 256, 256, 10], fb.ReLU(), np.float32)
    w1.predict(np.zeros((8, 784), np.float32), batch_size=8)
    assert _fits(w1, 1) and _fits(w1, 8)
    # from BLAS_MIN_ROWS rows BLAS takes the 256 -> 10 layer (with SciPy): layer by layer then
    assert _fits(w1, gemm.DOTS_MAX_ROWS) == (not gemm.BLAS_SMALL)
    assert not _fits(w1, gemm.DOTS_MAX_ROWS + 1)     # more rows than the dot path takes
    tiny = _dense([64, 64, 64, 10], fb.ReLU(), np.float32)
    assert not _fits(tiny, 1)                    # no layer that forward would split either
    # ops other than dense layers: BatchNorm, dropout, an activation after another (not fused)
    for extra in ([fb.BatchNorm1d(256)], [fb.Dropout(0.5)], [fb.Tanh(), fb.ReLU()]):
        model = fb.Sequential(fb.Linear(784, 256), *extra, fb.Linear(256, 10), dtype=np.float32).eval()
        assert len(model._program) > 2 and not _fits(model, 1), extra
    fb.set_num_threads(1)
    assert not _fits(w1, 1)


def test_region_blocks_start_groups_of_four_and_cover_the_outputs():
    for n_out in (1, 3, 4, 10, 37, 64, 255, 256, 1000, 1001, 4096, 100000):
        for threads in (1, 2, 3, 16, 64):
            blocks = P._region_blocks(np.int64(1), np.int64(n_out), np.int64(1000), np.int64(threads))
            assert 1 <= blocks <= min(threads, P.MAX_BLOCKS)
            starts = [P._block_start(np.int64(b), blocks, np.int64(n_out)) for b in range(blocks + 1)]
            assert starts[0] == 0 and starts[-1] == n_out
            assert all(a < b for a, b in zip(starts, starts[1:])), starts        # none empty
            assert all(j % 4 == 0 for j in starts[:-1]), starts
    assert P._region_blocks(np.int64(1), np.int64(10), np.int64(256), np.int64(2)) == 1   # a small layer: one block


def test_training_and_forward_at_few_rows_are_the_same_at_one_and_two_threads(two_threads):
    """train_step's and model.forward's forward pass takes the region too (dense layers only)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 784)).astype(np.float32)
    y = rng.integers(0, 10, 12)
    results = []
    for threads in (TWO, 1):
        fb.set_num_threads(threads)
        model = _dense([784, 256, 256, 10], fb.ReLU(), np.float32, seed=3).train()
        opt = fb.optim.Adam(model.parameters(), lr=1e-2)
        for start, rows in ((0, 1), (1, 4), (5, 7)):
            model.train_step(x[start:start + rows], y[start:start + rows], "cross_entropy", opt)
        out = model.forward(x[:3])
        model.backward(np.ones_like(out))
        results.append(np.concatenate([model.parameters().params, model.parameters().grads, out.ravel()]))
    assert results[0].tobytes() == results[1].tobytes()


def test_atomics_count_and_wait():
    from numba import njit
    from fastbp.kernels import atomics

    @njit
    def add_twice(counters):
        first = atomics.fetch_add(counters, 3, 1)
        second = atomics.fetch_add(counters, 3, 5)
        return first, second, atomics.load_acquire(counters, 3)

    counters = np.zeros(8, np.int32)
    counters[3] = 7
    assert add_twice(counters) == (7, 8, 13) and counters[3] == 13 and counters.sum() == 13
    P._wait_for(counters, np.int64(3), np.int64(13))      # reached: returns at once
    atomics.yield_cpu()                                    # sched_yield resolves where it exists
