import os
import numpy as np

os.environ["NUMBA_SLP_VECTORIZE"] = "1"
import numba
from numba import njit, prange
from fastbp.kernels.microkernels import _wide_vectors
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

FR = {"contract", "nsz", "reassoc", "arcp"}


@njit(fastmath=FR)
def dot4(x, W, out, j0, j1):
    k = W.shape[1]
    j = j0
    while j + 4 <= j1:
        s0 = np.float32(0)
        s1 = np.float32(0)
        s2 = np.float32(0)
        s3 = np.float32(0)
        w0 = W[j]
        w1 = W[j + 1]
        w2 = W[j + 2]
        w3 = W[j + 3]
        for p in range(k):
            xp = x[p]
            s0 += xp * w0[p]
            s1 += xp * w1[p]
            s2 += xp * w2[p]
            s3 += xp * w3[p]
        out[j] = s0
        out[j + 1] = s1
        out[j + 2] = s2
        out[j + 3] = s3
        j += 4
    while j < j1:
        s = np.float32(0)
        for p in range(k):
            s += x[p] * W[j, p]
        out[j] = s
        j += 1


@njit(fastmath=FR)
def dot4w(x, W, out, j0, j1):
    _wide_vectors()
    k = W.shape[1]
    j = j0
    while j + 4 <= j1:
        s0 = np.float32(0)
        s1 = np.float32(0)
        s2 = np.float32(0)
        s3 = np.float32(0)
        w0 = W[j]
        w1 = W[j + 1]
        w2 = W[j + 2]
        w3 = W[j + 3]
        for p in range(k):
            xp = x[p]
            s0 += xp * w0[p]
            s1 += xp * w1[p]
            s2 += xp * w2[p]
            s3 += xp * w3[p]
        out[j] = s0
        out[j + 1] = s1
        out[j + 2] = s2
        out[j + 3] = s3
        j += 4
    while j < j1:
        s = np.float32(0)
        for p in range(k):
            s += x[p] * W[j, p]
        out[j] = s
        j += 1


@njit(fastmath=FR)
def dot8(x, W, out, j0, j1):
    k = W.shape[1]
    j = j0
    while j + 8 <= j1:
        s0 = np.float32(0)
        s1 = np.float32(0)
        s2 = np.float32(0)
        s3 = np.float32(0)
        s4 = np.float32(0)
        s5 = np.float32(0)
        s6 = np.float32(0)
        s7 = np.float32(0)
        w0 = W[j]
        w1 = W[j + 1]
        w2 = W[j + 2]
        w3 = W[j + 3]
        w4 = W[j + 4]
        w5 = W[j + 5]
        w6 = W[j + 6]
        w7 = W[j + 7]
        for p in range(k):
            xp = x[p]
            s0 += xp * w0[p]
            s1 += xp * w1[p]
            s2 += xp * w2[p]
            s3 += xp * w3[p]
            s4 += xp * w4[p]
            s5 += xp * w5[p]
            s6 += xp * w6[p]
            s7 += xp * w7[p]
        out[j] = s0
        out[j + 1] = s1
        out[j + 2] = s2
        out[j + 3] = s3
        out[j + 4] = s4
        out[j + 5] = s5
        out[j + 6] = s6
        out[j + 7] = s7
        j += 8
    dot4(x, W, out, j, j1)


@njit
def s4(x, W, out):
    dot4(x, W, out, 0, W.shape[0])


@njit
def s4w(x, W, out):
    dot4w(x, W, out, 0, W.shape[0])


@njit
def s8(x, W, out):
    dot8(x, W, out, 0, W.shape[0])


@njit(parallel=True)
def p4(x, W, out):
    n = W.shape[0]
    for t in prange(4):
        dot4(x, W, out, t * n // 4, (t + 1) * n // 4)


@njit(parallel=True)
def p2(x, W, out):
    n = W.shape[0]
    for t in prange(2):
        dot4(x, W, out, t * n // 2, (t + 1) * n // 2)


def tm(f, n=2000):
    return median_us(f, n)


rng = np.random.default_rng(0)
numba.set_num_threads(2)
for N, K in [(256, 784), (256, 256), (10, 256)]:
    W = rng.standard_normal((N, K)).astype(np.float32)
    x = rng.standard_normal(K).astype(np.float32)
    out = np.empty(N, np.float32)
    ref = W.astype(np.float64) @ x
    res = []
    for f in (s4, s4w, s8, p2, p4):
        f(x, W, out)
        assert np.allclose(out, ref, rtol=1e-4, atol=1e-3)
        res.append(f"{f.__name__} {tm(lambda: f(x, W, out)):.2f}")
    res.append(f"numpy {tm(lambda: np.dot(W, x, out=out)):.2f}")
    print(N, K, *res, flush=True)
