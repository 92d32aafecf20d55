"""fastbp.kernels.dropout: the mask bit for bit against the NumPy / Python-int transcriptions
of its hash (tests/reference/dropout.py), plus mask statistics, gradients and threading."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from fastbp.kernels import dropout as K
from tests.reference import dropout as ref


@pytest.fixture(autouse=True, scope="module")
def _linked():
    """The dropout kernels run their work through callbacks compiled by ``link`` (a model
    links them when its program is laid out; these tests call the kernels directly)."""
    for dtype in (np.float32, np.float64):
        K.link(dtype)

DTYPES = [np.float64, np.float32]
IDS = ["f64", "f32"]
GRID = [(B, n) for B in (2, 7, 129) for n in (1, 3, 17, 257)]
LARGE = [(300, 300)]                      # above PARALLEL_MIN_ELEMENTS: rows under prange
assert 129 * 257 >= K.PARALLEL_MIN_ELEMENTS
SEED = 0x5EED_1234_ABCD
STREAM = 17 * 1024 + 3                     # e.g. step * 1024 + layer


def _ids(shape):
    return "x".join(map(str, shape))


def _x(B, n, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal((B, n)).astype(dtype)


def _forward(X, p, seed=SEED, stream=STREAM, out=None):
    Y = np.full_like(X, np.nan) if out is None else out
    K.dropout_forward(X, X.dtype.type(p), seed, stream, Y)
    return Y


def _backward(G, p, seed=SEED, stream=STREAM, out=None):
    out = np.full_like(G, np.nan) if out is None else out
    K.dropout_backward(G, G.dtype.type(p), seed, stream, out)
    return out


# ----------------------------------------------------------------- the hash

def test_mix64_is_splitmix64():
    # splitmix64 seeded with 1234567: its first outputs (the published test vector)
    state = 1234567
    want = [6457827717110365317, 3203168211198807973, 9817491932198370423,
            4593380528125082431, 16408922859458223821]
    for w in want:
        state = (state + ref.G) & ref.MASK64
        assert int(K.mix64(np.uint64(state))) == w == ref.mix64_int(state)


@pytest.mark.parametrize("seed, stream, index", [
    (0, 0, 0), (1, 2, 3), (SEED, STREAM, 12345), (-1, -5, 7), (2**62, 2**40 + 3, 2**33 + 1),
    (42, 0, 0), (42, 1, 0),
])
def test_uniform_matches_python_int_transcription(seed, stream, index):
    assert int(K.stream_key(seed, stream)) == ref.stream_key_int(seed, stream)
    u = K.uniform(seed, stream, index)
    assert u == ref.uniform_int(seed, stream, index)
    assert 0.0 <= u < 1.0


def test_keep_threshold_is_exact():
    for p in (0.0, 0.1, 0.5, np.float32(0.3), 0.999999):
        t = int(K.keep_threshold(p))
        # u >= p  <=>  (x >> 11) >= t, for every 53-bit integer around the boundary
        for m in (t - 2, t - 1, t, t + 1):
            if 0 <= m < 2**53:
                assert (m / 2.0**53 >= np.float64(p)) == (m >= t)


# ------------------------------------------------------------ forward values

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", GRID + LARGE, ids=_ids)
def test_forward_matches_reference_bitwise(shape, dtype):
    B, n = shape
    X = _x(B, n, dtype)
    Y = _forward(X, 0.3)
    assert Y.dtype == dtype
    want = ref.dropout(X, 0.3, SEED, STREAM)
    assert Y.tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 0.999])
def test_forward_scale_in_dtype(p, dtype):
    X = _x(64, 33, dtype, seed=1)
    Y = _forward(X, p)
    t = dtype
    scale = t(1) / (t(1) - t(p))
    kept = ref.keep_mask(X.shape, t(p), SEED, STREAM)
    assert np.array_equal(Y[kept], X[kept] * scale)
    assert (Y[~kept] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_p_zero_is_identity(dtype):
    X = _x(129, 257, dtype, seed=2)
    assert _forward(X, 0.0).tobytes() == X.tobytes()
    assert _backward(X, 0.0).tobytes() == X.tobytes()
    Xc = X.copy()
    _forward(Xc, 0.0, out=Xc)
    assert Xc.tobytes() == X.tobytes()


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_mask_fraction_within_statistical_bounds(p):
    B, n = 1000, 1000
    N = B * n
    X = np.ones((B, n), np.float32)
    for stream in (0, 1):
        Y = _forward(X, p, stream=stream)
        dropped = np.count_nonzero(Y == 0) / N
        sigma = np.sqrt(p * (1 - p) / N)
        assert abs(dropped - p) < 5 * sigma, (dropped, p, sigma)
        # per-column and per-row fractions are unbiased too (a coarse check on the index mixing)
        assert abs((Y == 0).mean(axis=0).mean() - p) < 5 * sigma
    u = ref.uniforms((200, 500), SEED, STREAM).ravel()
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    expected = u.size / 10
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 40.0        # 9 degrees of freedom: p-value far below 1e-5


# ------------------------------------------------------ streams and determinism

def test_same_stream_same_mask_different_stream_different_mask():
    X = _x(256, 512, np.float64, seed=3)
    p = 0.5
    a = _forward(X, p) != 0
    b = _forward(X, p) != 0
    assert np.array_equal(a, b)
    N = a.size
    sigma = np.sqrt(0.25 / N)
    for kw in ({"stream": STREAM + 1}, {"stream": STREAM + 1024}, {"seed": SEED + 1}):
        c = _forward(X, p, **kw) != 0
        agree = np.mean(a == c)           # independent masks agree on p^2 + (1-p)^2 = 1/2
        assert abs(agree - 0.5) < 5 * sigma, (kw, agree)


def test_row_mask_does_not_depend_on_batch_size():
    """Element (i, j) draws index i * n + j: the first rows of a larger batch see the same mask."""
    X = _x(300, 40, np.float32, seed=4)
    full = _forward(X, 0.4)
    part = _forward(np.ascontiguousarray(X[:7]), 0.4)
    assert full[:7].tobytes() == part.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", [(7, 17), (300, 300)], ids=_ids)
def test_aliasing(shape, dtype):
    B, n = shape
    X = _x(B, n, dtype, seed=5)
    Y = _forward(X, 0.25)
    Xc = X.copy()
    _forward(Xc, 0.25, out=Xc)
    assert Xc.tobytes() == Y.tobytes()
    G = _x(B, n, dtype, seed=6)
    dX = _backward(G, 0.25)
    Gc = G.copy()
    _backward(Gc, 0.25, out=Gc)
    assert Gc.tobytes() == dX.tobytes()


def test_bitwise_identical_across_thread_counts():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 threads")
    X = _x(513, 300, np.float32, seed=7)
    before = numba.get_num_threads()
    results = []
    try:
        for nthreads in (1, 2, 1):
            numba.set_num_threads(nthreads)
            results.append(_forward(X, 0.3).tobytes() + _backward(X, 0.3, stream=5).tobytes())
    finally:
        numba.set_num_threads(before)
    assert results[0] == results[1] == results[2]


# -------------------------------------------------------------- backward

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", [(2, 3), (129, 257), (300, 300)], ids=_ids)
def test_backward_uses_the_forward_mask(shape, dtype):
    B, n = shape
    X = _x(B, n, dtype, seed=8)
    G = _x(B, n, dtype, seed=9)
    Y = _forward(X, 0.35)
    dX = _backward(G, 0.35)
    assert dX.tobytes() == ref.dropout(G, 0.35, SEED, STREAM).tobytes()
    assert np.array_equal(Y == 0, dX == 0)


@pytest.mark.parametrize("shape", [(2, 3), (7, 17)], ids=_ids)
def test_backward_central_differences(shape):
    """float64: L = sum(dropout(X) * R) with the mask fixed by (seed, stream); dL/dX = backward(R)."""
    B, n = shape
    X = _x(B, n, np.float64, seed=10)
    R = _x(B, n, np.float64, seed=11)
    p = 0.4
    grad = _backward(R, p)
    assert np.array_equal(grad, np.where(ref.keep_mask(X.shape, p, SEED, STREAM), R / (1 - p), 0.0))
    h = 1e-6
    for i in range(B):
        for j in range(n):
            Xp, Xm = X.copy(), X.copy()
            Xp[i, j] += h
            Xm[i, j] -= h
            fd = (np.sum(_forward(Xp, p) * R) - np.sum(_forward(Xm, p) * R)) / (2 * h)
            assert abs(fd - grad[i, j]) <= 1e-7 * max(1.0, abs(fd)), (i, j, fd, grad[i, j])


def test_callable_from_njit():
    @numba.njit
    def layer(X, p, seed, step, layer_index, Y, G):
        stream = step * 1024 + layer_index
        K.dropout_forward(X, p, seed, stream, Y)
        K.dropout_backward(G, p, seed, stream, G)

    X = _x(9, 20, np.float64, seed=12)
    G = _x(9, 20, np.float64, seed=13)
    G0 = G.copy()
    Y = np.empty_like(X)
    layer(X, 0.2, SEED, 17, 3, Y, G)
    assert Y.tobytes() == ref.dropout(X, 0.2, SEED, STREAM).tobytes()
    assert G.tobytes() == ref.dropout(G0, 0.2, SEED, STREAM).tobytes()


def test_no_allocations_in_steady_state():
    """Run in a subprocess: NRT statistics need NUMBA_NRT_STATS=1 before Numba is imported."""
    code = textwrap.dedent("""
        import numba
        import numpy as np
        from numba.core.runtime import rtsys
        from fastbp.kernels import dropout as K
        for dtype in (np.float32, np.float64):
            K.link(dtype)

        @numba.njit
        def steps(X, p, Y, reps):
            for r in range(reps):
                K.dropout_forward(X, p, 1, r, Y)
                K.dropout_backward(Y, p, 1, r, Y)

        for dt in (np.float32, np.float64):
            for (B, n) in [(7, 17), (300, 300)]:
                X = np.random.rand(B, n).astype(dt); Y = np.empty_like(X)
                steps(X, dt(0.5), Y, 1)
                s0 = rtsys.get_allocation_stats()
                steps(X, dt(0.5), Y, 1)   # the call itself (unboxing) may allocate meminfos ...
                s1 = rtsys.get_allocation_stats()
                steps(X, dt(0.5), Y, 5)   # ... but the kernels must not
                s2 = rtsys.get_allocation_stats()
                assert s2.alloc - s1.alloc == s1.alloc - s0.alloc, (dt, B, n, s0, s1, s2)
        print("OK")
    """)
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]
