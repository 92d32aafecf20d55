"""Forward products of a few rows (batch 2-32): the dot path (``gemm._dots_serial`` /
``_dots_parallel``: W read in place, once) against the packed tiles (``own_nt`` on the
packed path ``PATH_AUTO`` takes above ``DOTS_MAX_ROWS``, which packs all of W whatever the
number of rows) and BLAS (``np.dot``, where ``_blas_small`` sends small products), at 2
threads (NOTES section 60).

    PYTHONPATH=. python benchmarks/probes/few_rows.py [THREADS]

µs per product inside compiled loops, medians of 7 rounds, the four interleaved; OpenBLAS
on one thread (``threadpoolctl``), as for the products fastbp gives it.  Caution: in this
interleaved sequence the parallel dots read erratic at some sizes (4x256x784: 55-77 µs in
three runs against 22-25 µs timed without the other three; not explained, NOTES 60):
judge the dot path by ``model.predict`` too.
"""
import sys

import numpy as np
from threadpoolctl import threadpool_limits

import fastbp as fb
from fastbp._jit import jit
from fastbp.kernels import gemm

from timing import interleaved_us  # benchmarks/probes/timing.py (the script folder is on sys.path)


@jit
def dots(reps, A, W, out, par):
    m, k = A.shape
    n = W.shape[0]
    a = A.reshape(-1)
    w = W.reshape(-1)
    c = out.reshape(-1)
    for _ in range(reps):
        if par:
            gemm._dots_parallel(a, np.int64(k), np.int64(m), w, np.int64(k), np.int64(k), c, np.int64(n))
        else:
            gemm._dots_serial(a, np.int64(k), np.int64(m), w, np.int64(k), np.int64(k), c, np.int64(n))


@jit
def tiles(reps, A, W, work, out, path):
    for _ in range(reps):
        gemm.own_nt(A, W, work, out, gemm._no_epilogue(out), path)


@jit
def blas(reps, A, W, out):
    for _ in range(reps):
        np.dot(A, W.T, out)


def main():
    threadpool_limits(1, user_api="blas")
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    fb.set_num_threads(threads)
    rng = np.random.default_rng(0)
    print(f"{threads} thread(s), µs per product (dots serial / dots parallel / packed tiles / BLAS)")
    for n, k in ((256, 784), (256, 256), (1024, 1024)):
        W = rng.standard_normal((n, k)).astype(np.float32)
        for m in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32):
            A = rng.standard_normal((m, k)).astype(np.float32)
            work = np.empty(gemm.work_size(m, n, k), np.float32)
            # the packed path PATH_AUTO took before the dot path covered a few rows
            halves = threads == 2 and n > gemm.NR and 2 * m * n * k >= gemm.PAR_FLOPS
            path = np.int64(gemm.PATH_HALVES if halves else gemm.PATH_SERIAL)
            outs = [np.zeros((m, n), np.float32) for _ in range(4)]
            reps = max(5, int(3e6 / (2 * m * n * k) * 20))
            calls = [lambda: dots(reps, A, W, outs[0], False), lambda: dots(reps, A, W, outs[1], True),
                     lambda: tiles(reps, A, W, work, outs[2], path), lambda: blas(reps, A, W, outs[3])]
            times = list(interleaved_us(dict(enumerate(calls)), reps).values())
            want = A.astype(np.float64) @ W.T.astype(np.float64)
            err = max(np.abs(o - want).max() for o in outs) / np.abs(want).max()
            same = outs[0].tobytes() == outs[1].tobytes()
            print(f"{m:3d}x{n}x{k}: " + " / ".join(f"{t:7.1f}" for t in times)
                  + f"   rel err {err:.1e}, dots serial == parallel: {same}", flush=True)


if __name__ == "__main__":
    main()
