import numpy as np
import fastbp as fb
from fastbp.kernels import gemm as G
from numba import njit
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

fb.set_num_threads(1)


@njit
def pack_only(m, n, k, A, ars, acs, B, brs, bcs, work):
    nkb, kcmax = G._kblocks(k)
    mp = G._cdiv(m, G.MR)
    np_ = G._cdiv(n, G.NR)
    a_off, b_off, t_off = G._offsets(work, m, n, k)
    for kb in range(nkb):
        p0 = (kb * k) // nkb
        kc = ((kb + 1) * k) // nkb - p0
        for t in range(mp + np_):
            G._pack_task(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off)


def tm(f, n=300):
    return median_us(f, n, rounds=7)


rng = np.random.default_rng(0)
for M, N, K in [(128, 256, 784), (32, 64, 64), (256, 1024, 1024)]:
    A = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((N, K)).astype(np.float32)
    D = rng.standard_normal((M, N)).astype(np.float32)
    work = np.empty(G.work_size(M, N, K), np.float32)
    out = np.empty((M, N), np.float32)
    Af, Wf, Df = A.reshape(-1), W.reshape(-1), D.reshape(-1)
    cases = {
        "nt": (M, N, K, Af, K, 1, Wf, 1, K),
        "tn": (N, K, M, Df, 1, N, Af, K, 1),
        "nn": (M, K, N, Df, N, 1, Wf, K, 1),
    }
    for name, (m, n, k, a, ars, acs, b, brs, bcs) in cases.items():
        C = np.empty(m * n, np.float32)
        G._gemm_serial(m, n, k, a, ars, acs, b, brs, bcs, C, n, work, G._no_epilogue(C.reshape(m, n)))
        pack_only(m, n, k, a, ars, acs, b, brs, bcs, work)
        tg = tm(lambda: G._gemm_serial(m, n, k, a, ars, acs, b, brs, bcs, C, n, work, G._no_epilogue(C.reshape(m, n))))
        tp = tm(lambda: pack_only(m, n, k, a, ars, acs, b, brs, bcs, work))
        elems = (m + n) * k
        print(
            f"{name} m{m} n{n} k{k}: gemm {tg:8.1f} us ({2 * m * n * k / tg / 1e3:5.1f} GF/s)  "
            f"pack {tp:7.1f} us = {tp / tg:.0%}  {tp / elems * 1e3:.2f} ns/elem"
        )
