"""W4's forward products (64x256x256, one k block) computed as Cᵀ tiles: W read in place as
the broadcast operand (``microkernels.ukr_8x32_direct``) and only X packed, against fastbp's
halves and parallel paths (which pack X and W); one process, AVX-512 tiles (NOTES section 46).

    PYTHONPATH=. python benchmarks/probes/forward_wt.py [LAYERS] [ROUNDS]

Each tile is 8 outputs x 32 rows of the batch; it goes to C through four 8x8 register
transposes (``gemm._transpose8``).  Full tiles only (the shapes here have no ragged edge).
Prints whether the bits equal the packed paths' (they must: one k block, the same sums)
and µs per product, medians over rounds of LAYERS products in sequence, 20 times.
"""
import sys
import time

import numba
import numpy as np

import fastbp as fb
from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import gemm as g
from fastbp.kernels import microkernels

assert g.MR == 8 and g.NR == 32, "the probe is written for the AVX-512 tiles"


@jit
def wt_part(m, n, k, X, W, C, work, j_lo, j_hi):
    """C[:, j_lo:j_hi] = X Wᵀ, one k block: X packed in 32-row panels, W's rows read in place."""
    mp = m // 32
    t_off = mp * 32 * k
    for ip in range(mp):
        g._pack(X, np.int64(k), np.int64(1), ip * 32, np.int64(32), np.int64(0), np.int64(k), work, ip * 32 * k,
                np.int64(32))
    for jb in range(j_lo, j_hi, 8):
        for ip in range(mp):
            microkernels.ukr_8x32_direct(k, W, jb * k, k, 1, work, ip * 32 * k, 32, work, t_off)
            for b in range(4):
                g._transpose8(work, t_off + 8 * b, 32, C, (ip * 32 + 8 * b) * n + jb, n)


@jit_parallel
def wt_halves(m, n, k, X, W, C, work, half):
    for t in prange(2):
        wt_part(m, n, k, X, W, C, work[t * half:(t + 1) * half], t * (n // 2), (t + 1) * (n // 2))


@jit
def seq_wt(reps, Xs, Ws, Cs, work, half):
    for _ in range(reps):
        for i in range(len(Ws)):
            m, k = Xs[i].shape
            wt_halves(m, Ws[i].shape[0], k, Xs[i].reshape(-1), Ws[i].reshape(-1), Cs[i].reshape(-1), work, half)


@jit
def seq_nt(reps, Xs, Ws, Cs, work, path):
    for _ in range(reps):
        for i in range(len(Ws)):
            g.own_nt(Xs[i], Ws[i], work, Cs[i], g._no_epilogue(Cs[i]), path)


def main():
    fb.set_num_threads(2)
    layers = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    rng = np.random.default_rng(0)
    m, n, k = 64, 256, 256
    half = m * k + 1024
    work = np.empty(max(2 * half, g.work_size(m, n, k)), np.float32)
    Xs = numba.typed.List([rng.standard_normal((m, k)).astype(np.float32) for _ in range(layers)])
    Ws = numba.typed.List([(rng.standard_normal((n, k)) / 16).astype(np.float32) for _ in range(layers)])
    Cs = numba.typed.List([np.empty((m, n), np.float32) for _ in range(layers)])
    C2 = numba.typed.List([np.empty((m, n), np.float32) for _ in range(layers)])
    seq_wt(1, Xs, Ws, Cs, work, half)
    seq_nt(1, Xs, Ws, C2, work, np.int64(g.PATH_HALVES))
    print("same bits as the halves path:", all(np.array_equal(a, b) for a, b in zip(Cs, C2)))
    res = {"W in place": [], "halves": [], "parallel": []}
    for _ in range(rounds):
        for name in res:
            t0 = time.perf_counter()
            if name == "W in place":
                seq_wt(20, Xs, Ws, Cs, work, half)
            else:
                seq_nt(20, Xs, Ws, C2, work, np.int64(g.PATH_HALVES if name == "halves" else g.PATH_PARALLEL))
            res[name].append((time.perf_counter() - t0) / 20 / layers * 1e6)
    print(f"{m}x{n}x{k}, {layers} layers in sequence, µs per product (median, min-max):  " + "  ".join(
        f"{name} {np.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" for name, v in res.items()))


if __name__ == "__main__":
    main()
