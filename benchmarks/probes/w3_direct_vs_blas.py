"""W3's 32x64x64 products at one thread: the tile that reads its operands in place
(``microkernels.ukr_8x32_direct``, nothing packed) against ``np.dot`` (SciPy's OpenBLAS,
what fastbp runs for these sizes) and fastbp's packed serial path (NOTES section 46).

    PYTHONPATH=. python benchmarks/probes/w3_direct_vs_blas.py

Forward: C = X Wᵀ on a transposed copy of W (as ``gemm._blas_nt`` gives BLAS); weight
gradient: Dᵀ X.  µs per product inside compiled loops of 2,000, medians of 9 rounds.
"""
import numpy as np

import fastbp as fb
from fastbp._jit import jit
from fastbp.kernels import gemm as g
from fastbp.kernels import microkernels

from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

assert g.MR == 8 and g.NR == 32, "the probe is written for the AVX-512 tiles"


@jit
def direct(m, n, k, A, ars, acs, B, brs, C, T):
    """C (m, n) = op(A) B over full 8x32 tiles, nothing packed."""
    for j0 in range(0, n, 32):
        for i0 in range(0, m, 8):
            microkernels.ukr_8x32_direct(k, A, i0 * ars, ars, acs, B, j0, brs, T, 0)
            microkernels.tile_out_32(T, 0, C, i0 * n + j0, n, False)


@jit
def loop_direct_nt(reps, X, Wt, C, T):
    m, k = X.shape
    n = Wt.shape[1]
    for _ in range(reps):
        direct(m, n, k, X.reshape(-1), k, 1, Wt.reshape(-1), n, C.reshape(-1), T)


@jit
def loop_direct_tn(reps, D, X, G, T):
    b, no = D.shape
    ni = X.shape[1]
    for _ in range(reps):
        direct(no, ni, b, D.reshape(-1), 1, no, X.reshape(-1), ni, G.reshape(-1), T)


@jit
def loop_blas_nt(reps, X, Wt, C):
    for _ in range(reps):
        np.dot(X, Wt, C)


@jit
def loop_blas_tn(reps, D, X, G):
    for _ in range(reps):
        np.dot(D.T, X, G)


@jit
def loop_packed_nt(reps, X, W, work, C):
    for _ in range(reps):
        g.own_nt(X, W, work, C, g._no_epilogue(C), np.int64(g.PATH_SERIAL))


def main():
    fb.set_num_threads(1)
    rng = np.random.default_rng(0)
    m, n, k = 32, 64, 64
    X = rng.standard_normal((m, k)).astype(np.float32)
    W = rng.standard_normal((n, k)).astype(np.float32)
    Wt = np.ascontiguousarray(W.T)
    D = rng.standard_normal((m, n)).astype(np.float32)
    C, G = np.empty((m, n), np.float32), np.empty((n, k), np.float32)
    T = np.empty(256, np.float32)
    work = np.empty(g.work_size(m, n, k), np.float32)
    reps = 2000
    cases = {"nt direct": lambda: loop_direct_nt(reps, X, Wt, C, T),
             "nt BLAS": lambda: loop_blas_nt(reps, X, Wt, C),
             "nt packed": lambda: loop_packed_nt(reps, X, W, work, C),
             "tn direct": lambda: loop_direct_tn(reps, D, X, G, T),
             "tn BLAS": lambda: loop_blas_tn(reps, D, X, G)}
    for f in cases.values():
        f()
    print(f"{m}x{n}x{k}, 1 thread, µs per product: " + "  ".join(
        f"{name} {median_us(f, 1, 9) / reps:.2f}" for name, f in cases.items()))


if __name__ == "__main__":
    main()
