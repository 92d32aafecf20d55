"""The compute phase alone over one packed k block, in different task shapes (NOTES 39).

    PYTHONPATH=. python benchmarks/probes/tile_order.py

A 252x1024 output (whole 6x16 tiles) over kc = 256, packed once; the tiles are visited
in blocks of MC row panels x NC column panels (``MC_PANELS`` x ``NC_PANELS``, 4 x 4 in
``gemm.py``), column panels outer within a block as ``_compute_task`` does.  One
thread, GF/s of 9 interleaved rounds of 10 passes.
"""
import time

import numba
import numpy as np

import fastbp as fb
from fastbp.kernels import gemm as g

fb.set_num_threads(1)
MR, NR = g.MR, g.NR


@numba.njit
def _compute(m, n, kc, C, work, a_off, b_off, t_off, mcp, ncp, reps):
    mp = g._cdiv(m, MR)
    np_ = g._cdiv(n, NR)
    for _ in range(reps):
        for bj in range(0, np_, ncp):
            for bi in range(0, mp, mcp):
                for jp in range(bj, min(np_, bj + ncp)):
                    bo = b_off + jp * NR * kc
                    for ip in range(bi, min(mp, bi + mcp)):
                        g._ukr(kc, work, a_off + ip * MR * kc, work, bo, work, t_off)
                        g._tile_out(work, t_off, C, ip * MR * n + jp * NR, n, True)


@numba.njit
def _pack(m, n, k, A, B, work, a_off, b_off):
    mp = g._cdiv(m, MR)
    for t in range(mp):
        g._pack_task(t, mp, m, n, 0, k, A, k, np.int64(1), B, n, np.int64(1), work, a_off, b_off)
    g._pack_b_block(n, 0, k, B, n, np.int64(1), work, b_off)


def main(M=252, N=1024, kc=256):
    i64 = np.int64
    rng = np.random.default_rng(0)
    A = rng.standard_normal(M * kc).astype(np.float32)
    B = rng.standard_normal(kc * N).astype(np.float32)
    C = np.zeros(M * N, np.float32)
    work = np.empty(M * kc + N * kc + 1000, np.float32)
    a_off, b_off, t_off = g._offsets(work, M, N, kc)
    _pack(i64(M), i64(N), i64(kc), A, B, work, a_off, b_off)
    shapes = [(4, 4), (8, 4), (4, 8), (8, 8), (12, 4), (42, 1), (42, 4), (1, 64), (2, 2)]
    args = (i64(M), i64(N), i64(kc), C, work, a_off, b_off, t_off)
    for mc, nc in shapes:
        _compute(*args, mc, nc, 1)
    gflops = {s: [] for s in shapes}
    for _ in range(9):
        for mc, nc in shapes:
            t = time.perf_counter()
            _compute(*args, mc, nc, 10)
            gflops[(mc, nc)].append(2 * M * N * kc * 10 / (time.perf_counter() - t) / 1e9)
    for (mc, nc), v in gflops.items():
        print(f"MC {mc:2d} NC {nc:2d}: median {np.median(v):5.1f}  best {max(v):5.1f} GF/s")


if __name__ == "__main__":
    main()
