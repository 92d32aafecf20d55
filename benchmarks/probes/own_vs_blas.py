"""Own GEMM vs Numba's BLAS path (np.dot inside @njit -> SciPy's OpenBLAS) on the layer shapes."""

import time
import numpy as np
import sys
import fastbp as fb
from fastbp.kernels import gemm as G
from numba import njit

import scipy.linalg  # noqa: E402,F401  SciPy's OpenBLAS (the one np.dot in @njit calls) must be
# loaded before set_num_threads limits BLAS pools through threadpoolctl (NOTES section 15)

nthreads = int(sys.argv[1])
fb.set_num_threads(nthreads)
from threadpoolctl import threadpool_info  # noqa: E402  (after the thread limit, on purpose)

print([(d["filepath"].split("/")[-1], d["num_threads"]) for d in threadpool_info()])


@njit
def own(kind, X, Y, w, o, n):
    for _ in range(n):
        if kind == 0:
            G.matmul_nt(X, Y, w, o)
        elif kind == 1:
            G.matmul_tn(X, Y, w, o)
        else:
            G.matmul_nn(X, Y, w, o)


@njit
def blas(kind, X, Y, w, o, n):
    for _ in range(n):
        if kind == 0:
            np.dot(X, Y.T, o)
        elif kind == 1:
            np.dot(X.T, Y, o)
        else:
            np.dot(X, Y, o)


rng = np.random.default_rng(0)


def tm(f, n):
    time.sleep(0.3)     # OpenBLAS's threads spin for a while after a call and slow what runs next (NOTES 37, 52)
    ts = []
    for _r in range(7):
        t = time.perf_counter()
        f(n)
        ts.append((time.perf_counter() - t) / n)
    return np.median(ts)


print(f"{nthreads} thread(s); GF/s own / blas (np.dot in njit)")
for M, N, K in [(32, 64, 64), (64, 256, 256), (128, 256, 784), (128, 256, 256), (256, 1024, 784), (256, 1024, 1024)]:
    A = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((N, K)).astype(np.float32)
    D = rng.standard_normal((M, N)).astype(np.float32)
    w = np.empty(G.work_size(M, N, K), np.float32)
    row = []
    for kind, (X, Y, shape) in enumerate([(A, W, (M, N)), (D, A, (N, K)), (D, W, (M, K))]):
        o = np.empty(shape, np.float32)
        own(kind, X, Y, w, o, 1)
        r1 = o.copy()
        blas(kind, X, Y, w, o, 1)
        assert np.allclose(r1, o, rtol=1e-3, atol=1e-2)
        n = max(3, int(2e8 / (2 * M * N * K)))
        a = tm(lambda n: own(kind, X, Y, w, o, n), n)
        b = tm(lambda n: blas(kind, X, Y, w, o, n), n)
        row.append(f"{'nt tn nn'.split()[kind]} {2 * M * N * K / a / 1e9:5.0f} / {2 * M * N * K / b / 1e9:5.0f}")
    print(f"{M}x{N}x{K}: " + "   ".join(row), flush=True)
