"""fastbp.kernels.norm (BatchNorm1d) against the float64 textbook references in tests/reference/norm.py."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from fastbp.kernels import norm as K
from tests.reference import norm as ref


@pytest.fixture(autouse=True, scope="module")
def _linked():
    """The BatchNorm kernels run their work through callbacks compiled by ``link`` (a model
    links them when its program is laid out; these tests call the kernels directly)."""
    for dtype in (np.float32, np.float64):
        K.link(dtype)

DTYPES = [np.float64, np.float32]
IDS = ["f64", "f32"]
EPS = 1e-5
MOMENTUM = 0.1

# batch sizes 2, 7, 129 x widths 1, 3, 17, 257; (129, 257) already takes the prange path
# (B * n >= 2**15, three feature groups); (300, 300) has a ragged last group and chunk;
# (2100, 17) is above the element threshold with a single group (serial).
GRID = [(B, n) for B in (2, 7, 129) for n in (1, 3, 17, 257)]
LARGE = [(300, 300), (2100, 17)]
SHAPES = GRID + LARGE
assert 129 * 257 >= K.PARALLEL_MIN_ELEMENTS and 257 > K.FEATURE_GROUP


def _ids(shape):
    return "x".join(map(str, shape))


def _tol(dtype):
    return 1e-12 if dtype == np.float64 else 3e-6


def _close(got, want, dtype, scale=None, factor=1.0):
    want = np.asarray(want, np.float64)
    if scale is None:
        scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    tol = _tol(dtype) * factor
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol * scale)


def _inputs(B, n, dtype, seed=0, offset=2.0):
    rng = np.random.default_rng(seed)
    t = dtype
    X = (rng.standard_normal((B, n)) * rng.uniform(0.5, 3.0, n) + offset).astype(t)
    gamma = rng.uniform(0.5, 1.5, n).astype(t)
    beta = rng.standard_normal(n).astype(t)
    rm = rng.standard_normal(n).astype(t)
    rv = rng.uniform(0.5, 2.0, n).astype(t)
    return X, gamma, beta, rm, rv


def _train(X, gamma, beta, rm, rv, update=True, eps=EPS, momentum=MOMENTUM):
    t = X.dtype.type
    n = X.shape[1]
    mean = np.full(n, np.nan, X.dtype)
    invstd = np.full(n, np.nan, X.dtype)
    Xhat = np.full_like(X, np.nan)
    Y = np.full_like(X, np.nan)
    K.batchnorm_forward_train(X, gamma, beta, t(eps), t(momentum), rm, rv, update, mean, invstd, Xhat, Y)
    return mean, invstd, Xhat, Y


def _backward(G, Xhat, gamma, invstd, affine=True, out=None):
    n = G.shape[1]
    dgamma = np.full(n if affine else 0, np.nan, G.dtype)
    dbeta = np.full(n if affine else 0, np.nan, G.dtype)
    if out is None:
        out = np.full_like(G, np.nan)
    K.batchnorm_backward(G, Xhat, gamma, invstd, dgamma, dbeta, out)
    return out, dgamma, dbeta


EMPTY = {dt: np.empty(0, dt) for dt in DTYPES}


# ------------------------------------------------------------------ forward

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_forward_train_matches_reference(shape, dtype):
    B, n = shape
    X, gamma, beta, rm, rv = _inputs(B, n, dtype)
    rm0, rv0 = rm.copy(), rv.copy()
    mean, invstd, Xhat, Y = _train(X, gamma, beta, rm, rv)
    r = ref.batchnorm_train(X, gamma, beta, EPS)
    for a in (mean, invstd, Xhat, Y, rm, rv):
        assert a.dtype == dtype
    _close(mean, r["mean"], dtype)
    _close(invstd, r["invstd"], dtype)
    _close(Xhat, r["xhat"], dtype, factor=4)
    _close(Y, r["y"], dtype, factor=4)
    want_rm, want_rv = ref.running_update(rm0, rv0, r["mean"], r["var"], np.float64(dtype(MOMENTUM)), B)
    _close(rm, want_rm, dtype)
    _close(rv, want_rv, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", [(2, 3), (7, 17), (129, 257), (300, 300)], ids=_ids)
def test_forward_train_affine_false_and_running_paths(shape, dtype):
    B, n = shape
    X, gamma, beta, rm, rv = _inputs(B, n, dtype, seed=1)
    e = EMPTY[dtype]
    # affine=False: Y is Xhat, bit for bit, and equals the affine output with gamma=1, beta=0
    mean, invstd, Xhat, Y = _train(X, e, e, rm.copy(), rv.copy())
    assert Y.tobytes() == Xhat.tobytes()
    r = ref.batchnorm_train(X, None, None, EPS)
    _close(Y, r["y"], dtype, factor=4)
    ones, zeros = np.ones(n, dtype), np.zeros(n, dtype)
    m1, s1, h1, y1 = _train(X, ones, zeros, rm.copy(), rv.copy())
    assert h1.tobytes() == Xhat.tobytes()
    assert m1.tobytes() == mean.tobytes() and s1.tobytes() == invstd.tobytes()
    np.testing.assert_array_equal(y1, Y)
    # update_running=False leaves the running statistics untouched
    rm1, rv1 = rm.copy(), rv.copy()
    m2, s2, h2, y2 = _train(X, gamma, beta, rm1, rv1, update=False)
    assert rm1.tobytes() == rm.tobytes() and rv1.tobytes() == rv.tobytes()
    # track_running_stats=False: (0,) running arrays, update requested, nothing else changes
    m3, s3, h3, y3 = _train(X, gamma, beta, e, e, update=True)
    assert e.shape == (0,)
    for a, b in ((m2, m3), (s2, s3), (h2, h3), (y2, y3)):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_forward_train_is_numerically_careful(dtype):
    """A large common offset: two-pass float64 statistics keep the variance exact."""
    rng = np.random.default_rng(5)
    offset = 1e8 if dtype == np.float64 else 1e4
    X = (offset + rng.standard_normal((1000, 5))).astype(dtype)
    n = X.shape[1]
    _, invstd, Xhat, _ = _train(X, np.ones(n, dtype), np.zeros(n, dtype), EMPTY[dtype], EMPTY[dtype])
    r = ref.batchnorm_train(X, None, None, EPS)
    np.testing.assert_allclose(invstd, r["invstd"], rtol=1e-9 if dtype == np.float64 else 1e-6)
    # Xhat = X - mean with mean rounded to the dtype: error <= ulp(offset) * invstd
    ulp = float(np.spacing(dtype(offset)))
    np.testing.assert_allclose(Xhat, r["xhat"], rtol=0, atol=2 * ulp * float(r["invstd"].max()) + 1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", GRID + LARGE, ids=_ids)
def test_forward_eval_matches_reference(shape, dtype):
    B, n = shape
    X, gamma, beta, rm, rv = _inputs(B, n, dtype, seed=2)
    t = dtype
    Y = np.full_like(X, np.nan)
    K.batchnorm_forward_eval(X, gamma, beta, t(EPS), rm, rv, Y)
    _close(Y, ref.batchnorm_eval(X, gamma, beta, EPS, rm, rv), dtype, factor=4)
    e = EMPTY[dtype]
    Y0 = np.full_like(X, np.nan)
    K.batchnorm_forward_eval(X, e, e, t(EPS), rm, rv, Y0)
    _close(Y0, ref.batchnorm_eval(X, None, None, EPS, rm, rv), dtype, factor=4)
    # in place
    Xc = X.copy()
    K.batchnorm_forward_eval(Xc, gamma, beta, t(EPS), rm, rv, Xc)
    assert Xc.tobytes() == Y.tobytes()


# ----------------------------------------------------------------- backward

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_backward_matches_reference(shape, dtype):
    B, n = shape
    X, gamma, beta, rm, rv = _inputs(B, n, dtype, seed=3)
    _, invstd, Xhat, _ = _train(X, gamma, beta, rm, rv)
    G = np.random.default_rng(4).standard_normal((B, n)).astype(dtype)
    dX, dgamma, dbeta = _backward(G, Xhat, gamma, invstd)
    want_dX, want_dgamma, want_dbeta = ref.batchnorm_backward(G, X, gamma, EPS)
    # dX's natural scale: gamma * invstd * |G|
    scale = float(np.abs(gamma.astype(np.float64) * invstd).max() * np.abs(G).max())
    _close(dX, want_dX, dtype, scale=scale, factor=30)
    _close(dbeta, want_dbeta, dtype, scale=float(np.abs(G).sum(0).max()))
    _close(dgamma, want_dgamma, dtype, scale=float(np.abs(G).sum(0).max()) * 4, factor=10)
    # out aliasing G: the same bytes
    G2 = G.copy()
    out2, dgamma2, dbeta2 = _backward(G2, Xhat, gamma, invstd, out=G2)
    assert out2 is G2
    assert G2.tobytes() == dX.tobytes()
    assert dgamma2.tobytes() == dgamma.tobytes() and dbeta2.tobytes() == dbeta.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", [(2, 3), (7, 17), (129, 257), (300, 300)], ids=_ids)
def test_backward_affine_false(shape, dtype):
    B, n = shape
    X, *_ = _inputs(B, n, dtype, seed=6)
    e = EMPTY[dtype]
    _, invstd, Xhat, _ = _train(X, e, e, e, e)
    G = np.random.default_rng(7).standard_normal((B, n)).astype(dtype)
    dX, dg, db = _backward(G, Xhat, e, invstd, affine=False)
    assert dg.shape == (0,) and db.shape == (0,)
    dX1, _, _ = _backward(G, Xhat, np.ones(n, dtype), invstd)
    assert dX.tobytes() == dX1.tobytes()
    want, _, _ = ref.batchnorm_backward(G, X, None, EPS)
    _close(dX, want, dtype, scale=float(invstd.max() * np.abs(G).max()), factor=30)
    Gc = G.copy()
    _backward(Gc, Xhat, e, invstd, affine=False, out=Gc)
    assert Gc.tobytes() == dX.tobytes()


def _loss(X, gamma, beta, R):
    e = EMPTY[np.float64]
    _, _, _, Y = _train(X, gamma, beta, e, e)
    return float(np.sum(Y * R))


@pytest.mark.parametrize("shape", [(2, 3), (5, 4), (7, 17), (129, 257)], ids=_ids)
def test_backward_central_differences(shape):
    """float64: dL/dX, dL/dgamma, dL/dbeta of L = sum(Y * R) by central differences."""
    B, n = shape
    X, gamma, beta, _, _ = _inputs(B, n, np.float64, seed=8, offset=0.5)
    R = np.random.default_rng(9).standard_normal((B, n))
    e = EMPTY[np.float64]
    _, invstd, Xhat, _ = _train(X, gamma, beta, e, e)
    dX, dgamma, dbeta = _backward(R.copy(), Xhat, gamma, invstd)
    h = 1e-6
    rng = np.random.default_rng(10)
    n_checks = min(B * n, 40)
    picks = rng.choice(B * n, size=n_checks, replace=False)
    for flat in picks:
        i, j = divmod(int(flat), n)
        Xp, Xm = X.copy(), X.copy()
        Xp[i, j] += h
        Xm[i, j] -= h
        fd = (_loss(Xp, gamma, beta, R) - _loss(Xm, gamma, beta, R)) / (2 * h)
        assert abs(fd - dX[i, j]) <= 1e-6 * max(1.0, abs(fd)), (i, j, fd, dX[i, j])
    for j in rng.choice(n, size=min(n, 10), replace=False):
        for param, grad in ((gamma, dgamma), (beta, dbeta)):
            p_plus, p_minus = param.copy(), param.copy()
            p_plus[j] += h
            p_minus[j] -= h
            if param is gamma:
                fd = (_loss(X, p_plus, beta, R) - _loss(X, p_minus, beta, R)) / (2 * h)
            else:
                fd = (_loss(X, gamma, p_plus, R) - _loss(X, gamma, p_minus, R)) / (2 * h)
            assert abs(fd - grad[j]) <= 1e-6 * max(1.0, abs(fd)), (j, fd, grad[j])


# ------------------------------------------------------- threads, njit, torch

@pytest.mark.parametrize("shape", [(129, 257), (300, 300), (64, 1024)], ids=_ids)
def test_bitwise_identical_across_thread_counts(shape):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 threads")
    B, n = shape
    dtype = np.float32
    X, gamma, beta, rm, rv = _inputs(B, n, dtype, seed=11)
    G = np.random.default_rng(12).standard_normal((B, n)).astype(dtype)
    before = numba.get_num_threads()
    results = []
    try:
        for nthreads in (1, 2, 1):
            numba.set_num_threads(nthreads)
            rm1, rv1 = rm.copy(), rv.copy()
            mean, invstd, Xhat, Y = _train(X, gamma, beta, rm1, rv1)
            dX, dg, db = _backward(G, Xhat, gamma, invstd)
            Ye = np.empty_like(X)
            K.batchnorm_forward_eval(X, gamma, beta, dtype(EPS), rm, rv, Ye)
            results.append(b"".join(a.tobytes() for a in (mean, invstd, Xhat, Y, rm1, rv1, dX, dg, db, Ye)))
    finally:
        numba.set_num_threads(before)
    assert results[0] == results[1] == results[2]


def test_callable_from_njit():
    @numba.njit
    def layer(X, gamma, beta, eps, momentum, rm, rv, mean, invstd, H, Y, G, dg, db, Ye):
        K.batchnorm_forward_train(X, gamma, beta, eps, momentum, rm, rv, True, mean, invstd, H, Y)
        K.batchnorm_backward(G, H, gamma, invstd, dg, db, G)
        K.batchnorm_forward_eval(X, gamma, beta, eps, rm, rv, Ye)

    B, n = 9, 20
    X, gamma, beta, rm, rv = _inputs(B, n, np.float64, seed=13)
    rm0, rv0 = rm.copy(), rv.copy()
    mean, invstd, H, Y, Ye = np.empty(n), np.empty(n), np.empty((B, n)), np.empty((B, n)), np.empty((B, n))
    G = np.random.default_rng(14).standard_normal((B, n))
    G0 = G.copy()
    dg, db = np.empty(n), np.empty(n)
    layer(X, gamma, beta, EPS, MOMENTUM, rm, rv, mean, invstd, H, Y, G, dg, db, Ye)
    r = ref.batchnorm_train(X, gamma, beta, EPS)
    _close(Y, r["y"], np.float64, factor=4)
    want_dX, want_dg, _ = ref.batchnorm_backward(G0, X, gamma, EPS)
    _close(G, want_dX, np.float64, factor=30)
    _close(dg, want_dg, np.float64, factor=10)
    want_rm, want_rv = ref.running_update(rm0, rv0, r["mean"], r["var"], MOMENTUM, B)
    _close(Ye, ref.batchnorm_eval(X, gamma, beta, EPS, want_rm, want_rv), np.float64, factor=4)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    B, n = 33, 19
    X, gamma, beta, rm, rv = _inputs(B, n, dtype, seed=15)
    tx = torch.tensor(X, requires_grad=True)
    tg = torch.tensor(gamma, requires_grad=True)
    tb = torch.tensor(beta, requires_grad=True)
    trm, trv = torch.tensor(rm.copy()), torch.tensor(rv.copy())
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=MOMENTUM, eps=EPS)
    R = np.random.default_rng(16).standard_normal((B, n)).astype(dtype)
    (ty * torch.tensor(R)).sum().backward()
    rm1, rv1 = rm.copy(), rv.copy()
    _, invstd, Xhat, Y = _train(X, gamma, beta, rm1, rv1)
    dX, dg, db = _backward(R, Xhat, gamma, invstd)
    for got, want in ((Y, ty), (rm1, trm), (rv1, trv), (dX, tx.grad), (dg, tg.grad), (db, tb.grad)):
        _close(got, want.detach().numpy(), dtype, factor=30)
    ye = torch.nn.functional.batch_norm(torch.tensor(X), trm, trv, torch.tensor(gamma), torch.tensor(beta),
                                        training=False, eps=EPS)
    Ye = np.empty_like(X)
    K.batchnorm_forward_eval(X, gamma, beta, dtype(EPS), rm1, rv1, Ye)
    _close(Ye, ye.numpy(), dtype, factor=30)


def test_no_allocations_in_steady_state():
    """Run in a subprocess: NRT statistics need NUMBA_NRT_STATS=1 before Numba is imported."""
    code = textwrap.dedent("""
        import numba
        import numpy as np
        from numba.core.runtime import rtsys
        from fastbp.kernels import norm as K
        for dtype in (np.float32, np.float64):
            K.link(dtype)

        @numba.njit
        def steps(X, g, b, eps, mom, rm, rv, m, s, H, Y, G, dg, db, e, reps):
            for _ in range(reps):
                K.batchnorm_forward_train(X, g, b, eps, mom, rm, rv, True, m, s, H, Y)
                K.batchnorm_forward_train(X, e, e, eps, mom, e, e, True, m, s, H, Y)
                K.batchnorm_backward(G, H, g, s, dg, db, G)
                K.batchnorm_backward(G, H, e, s, e, e, G)
                K.batchnorm_forward_eval(X, g, b, eps, rm, rv, Y)

        for dt in (np.float32, np.float64):
            for (B, n) in [(7, 17), (300, 300)]:
                X = np.random.rand(B, n).astype(dt); g = np.ones(n, dt); b = np.zeros(n, dt)
                rm = np.zeros(n, dt); rv = np.ones(n, dt); m = np.empty(n, dt); s = np.empty(n, dt)
                H = np.empty_like(X); Y = np.empty_like(X); G = np.ones_like(X)
                dg = np.empty(n, dt); db = np.empty(n, dt); e = np.empty(0, dt)
                args = (X, g, b, dt(1e-5), dt(0.1), rm, rv, m, s, H, Y, G, dg, db, e)
                steps(*args, 1)
                s0 = rtsys.get_allocation_stats()
                steps(*args, 1)   # the call itself (unboxing) may allocate meminfos ...
                s1 = rtsys.get_allocation_stats()
                steps(*args, 5)   # ... but the kernels must not: 5 steps cost what 1 does
                s2 = rtsys.get_allocation_stats()
                assert s2.alloc - s1.alloc == s1.alloc - s0.alloc, (dt, B, n, s0, s1, s2)
        print("OK")
    """)
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 3), (7, 17), (129, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_backward_eval_matches_reference(dtype, shape, affine):
    from fastbp.kernels.norm import batchnorm_backward_eval
    rng = np.random.default_rng(11)
    B, n = shape
    X = rng.standard_normal(shape).astype(dtype)
    G = rng.standard_normal(shape).astype(dtype)
    rm = rng.standard_normal(n).astype(dtype)
    rv = rng.uniform(0.5, 2.0, n).astype(dtype)
    gamma = rng.standard_normal(n).astype(dtype) if affine else np.zeros(0, dtype)
    dgamma = np.full(n if affine else 0, np.nan, dtype)
    dbeta = np.full(n if affine else 0, np.nan, dtype)
    out = np.full(shape, np.nan, dtype)
    eps = dtype(1e-5)
    batchnorm_backward_eval(G, X, gamma, eps, rm, rv, dgamma, dbeta, out)
    invstd = 1 / np.sqrt(rv.astype(np.float64) + 1e-5)
    g = gamma.astype(np.float64) if affine else np.ones(n)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(out, G * g * invstd, **tol)
    if affine:
        np.testing.assert_allclose(dgamma, np.sum(G * (X - rm.astype(np.float64)) * invstd, axis=0), **tol)
        np.testing.assert_allclose(dbeta, G.astype(np.float64).sum(axis=0), **tol)
    # out may alias G
    G2 = G.copy()
    batchnorm_backward_eval(G2, X, gamma, eps, rm, rv, dgamma, dbeta, G2)
    np.testing.assert_array_equal(G2, out)
