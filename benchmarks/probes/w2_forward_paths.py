"""W2's forward products at 2 threads: the serial, halves and parallel paths and two serial
products side by side (one per core, as ``backward_grads`` runs the backward's), each product
repeated; then the three 1024-wide layers in sequence, as the forward pass meets them (NOTES 46).

    PYTHONPATH=. python benchmarks/probes/w2_forward_paths.py

µs per product (GFLOP/s), medians of 7-9 interleaved rounds of 10, one process.  Run it from
another checkout (``PYTHONPATH=/tmp/tree``) to compare a change of ``gemm.KC`` and the like.
"""

import numba
import numpy as np

import fastbp as fb
from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import gemm as g

from timing import interleaved_us  # benchmarks/probes (the script folder is on sys.path)


@jit
def loop_nt(reps, A, W, work, Z, path):
    for _ in range(reps):
        g.own_nt(A, W, work, Z, g._no_epilogue(Z), path)


@jit_parallel
def loop_pair(reps, A, W, work, work2, Z, Z2):
    serial = np.int64(g.PATH_SERIAL)
    for _ in range(reps):
        for t in prange(2):
            if t == 0:
                g.own_nt(A, W, work, Z, g._no_epilogue(Z), serial)
            else:
                g.own_nt(A, W, work2, Z2, g._no_epilogue(Z2), serial)


@jit
def sequence(reps, Xs, Ws, Cs, work, path):
    for _ in range(reps):
        for i in range(len(Ws)):
            g.own_nt(Xs[i], Ws[i], work, Cs[i], g._no_epilogue(Cs[i]), path)


def main():
    fb.set_num_threads(2)
    rng = np.random.default_rng(0)
    paths = {"serial": g.PATH_SERIAL, "halves": g.PATH_HALVES, "parallel": g.PATH_PARALLEL}
    reps = 10
    print(f"KC {g.KC}")
    for m, n, k in ((256, 1024, 784), (256, 1024, 1024)):
        A = rng.standard_normal((m, k)).astype(np.float32)
        W = rng.standard_normal((n, k)).astype(np.float32)
        work, work2 = (np.empty(g.work_size(m, n, k), np.float32) for _ in range(2))
        Z, Z2 = np.empty((m, n), np.float32), np.empty((m, n), np.float32)
        cases = {name: (lambda p=p: loop_nt(reps, A, W, work, Z, np.int64(p))) for name, p in paths.items()}
        cases["pair (2 products)"] = lambda: loop_pair(reps, A, W, work, work2, Z, Z2)
        flops = 2.0 * m * n * k
        for name, us in interleaved_us(cases, reps, 9).items():
            f = 2 * flops if name.startswith("pair") else flops
            print(f"{m}x{n}x{k} {name:18s} {us:8.1f} µs  {f / us / 1e3:6.1f} GFLOP/s")
    widths = [784, 1024, 1024, 1024]
    Xs = numba.typed.List([rng.standard_normal((256, a)).astype(np.float32) for a in widths[:-1]])
    pairs = zip(widths[:-1], widths[1:])
    Ws = numba.typed.List([(rng.standard_normal((b, a)) / 30).astype(np.float32) for a, b in pairs])
    Cs = numba.typed.List([np.empty((256, b), np.float32) for b in widths[1:]])
    work = np.empty(g.work_size(256, 1024, 1024), np.float32)
    cases = {name: (lambda p=p: sequence(reps, Xs, Ws, Cs, work, np.int64(p))) for name, p in paths.items()}
    print("three layers in sequence: " + "  ".join(
        f"{name} {us:.0f} µs" for name, us in interleaved_us(cases, reps).items()))


if __name__ == "__main__":
    main()
