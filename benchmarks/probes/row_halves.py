"""Row halves against column halves at two threads, hot, µs (NOTES section 67):
the first layer's weight gradient (``gemm.weight_grad`` against ``matmul_tn``'s column
halves), forward products (``_gemm_row_halves`` against ``own_nt`` on ``PATH_HALVES``),
and, on one thread, the direct path in column chunks against the whole serial call.
Every pair is checked bit for bit first.

    PYTHONPATH=. python benchmarks/probes/row_halves.py
"""
import time

import numpy as np

import fastbp as fb
from fastbp.kernels import gemm as g

fb.set_num_threads(2)
one = np.int64(1)


def compare(label, fs, flops):
    n = max(3, int(2e4 / (flops / 1e6)))
    res = {k: [] for k in fs}
    for _ in range(15):
        for k, f in fs.items():
            t = time.perf_counter()
            for _ in range(n):
                f()
            res[k].append((time.perf_counter() - t) / n * 1e6)
    (ka, a), (kb, b) = ((k, np.median(v)) for k, v in res.items())
    print(f"{label}: {ka} {a:8.1f}  {kb} {b:8.1f}  ratio {a / b:.3f}")


rng = np.random.default_rng(0)
for M, N, K in [(256, 1024, 784), (128, 256, 784), (64, 256, 256)]:
    D = rng.standard_normal((M, N)).astype(np.float32)
    A = rng.standard_normal((M, K)).astype(np.float32)
    work = np.empty(g.work_size(M, N, K), np.float32)
    o1, o2 = np.empty((N, K), np.float32), np.empty((N, K), np.float32)
    g.matmul_tn(D, A, work, o1)
    g.weight_grad(D, A, work, o2)
    assert o1.tobytes() == o2.tobytes()
    compare(f"dW {M}x{N}x{K}", {"column halves": lambda: g.matmul_tn(D, A, work, o1),
                                "row halves": lambda: g.weight_grad(D, A, work, o2)}, 2.0 * M * N * K)

for M, N, K in [(64, 256, 256), (128, 256, 784), (128, 256, 256), (256, 1024, 1024)]:
    X = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((N, K)).astype(np.float32)
    work = np.empty(g.work_size(M, N, K), np.float32)
    Z1, Z2 = np.empty((M, N), np.float32), np.empty((M, N), np.float32)
    ep1, ep2 = g._no_epilogue(Z1), g._no_epilogue(Z2)

    def cols():
        g.own_nt(X, W, work, Z1, ep1, np.int64(g.PATH_HALVES))

    def rows():
        g._gemm_row_halves(M, N, K, X.reshape(-1), np.int64(K), one, W.reshape(-1), one, np.int64(K),
                           Z2.reshape(-1), work, ep2)
    cols()
    rows()
    assert Z1.tobytes() == Z2.tobytes()
    compare(f"forward {M}x{N}x{K}", {"column halves": cols, "row halves": rows}, 2.0 * M * N * K)

fb.set_num_threads(1)
for m, n, k in [(512, 1024, 256), (512, 784, 256), (128, 784, 128), (128, 256, 64), (1024, 1024, 256)]:
    Dt = rng.standard_normal((k, m)).astype(np.float32).ravel()    # A(i, p) = Dt[p, i]
    Xf = rng.standard_normal((k, n)).astype(np.float32).ravel()
    work = np.empty(g._serial_size(m, n, k) + 64, np.float32)
    C1, C2 = np.empty(m * n, np.float32), np.empty(m * n, np.float32)
    ep = g._no_epilogue(C1.reshape(m, n))

    def chunks():
        g._serial_direct_chunks(m, n, k, Dt, one, np.int64(m), Xf, np.int64(n), one, C1, np.int64(n), work, ep)

    def whole():
        g._gemm_serial(m, n, k, Dt, one, np.int64(m), Xf, np.int64(n), one, C2, np.int64(n), work, ep)
    chunks()
    whole()
    assert C1.tobytes() == C2.tobytes()
    compare(f"one thread tn {m}x{n}x{k} (direct whole: {bool(g._direct(k, n, 1, 4))})",
            {"whole": whole, "direct chunks": chunks}, 2.0 * m * n * k)
