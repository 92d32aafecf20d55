"""At 2 threads: the halves path (each thread packs all of A and half of B) against the
parallel path (shared packs, then compute tasks) for W1's, W4's and W2's products, in
alternating rounds of a compiled loop, one process (NOTES sections 20, 29 and 43).

    PYTHONPATH=. python benchmarks/probes/path_choice.py
"""
import time

import numpy as np

import fastbp as fb
from fastbp._jit import jit
from fastbp.kernels import gemm as g


@jit
def loop_nt(reps, A, W, work, Z, path):
    for _ in range(reps):
        g.own_nt(A, W, work, Z, g._no_epilogue(Z), path)


@jit
def loop_tn(reps, D, A, work, out, path):
    for _ in range(reps):
        g.own_tn(D, A, work, out, path)


def main():
    fb.set_num_threads(2)
    rng = np.random.default_rng(0)
    paths = (np.int64(g.PATH_HALVES), np.int64(g.PATH_PARALLEL))
    for m, n, k in ((128, 256, 784), (128, 256, 256), (64, 256, 256), (256, 1024, 784)):
        A = rng.standard_normal((m, k)).astype(np.float32)
        W = rng.standard_normal((n, k)).astype(np.float32)
        D = rng.standard_normal((m, n)).astype(np.float32)
        work = np.empty(2 * g.work_size(max(m, n), max(n, k), max(k, m)) + 64, np.float32)
        reps = max(3, int(2e8 / (2 * m * n * k)))
        for name, f, args in (("nt", loop_nt, (A, W, work, np.empty((m, n), np.float32))),
                              ("tn", loop_tn, (D, A, work, np.empty((n, k), np.float32)))):
            outs = []
            for path in paths:
                f(1, *args, path)
                outs.append(args[-1].tobytes())
            assert outs[0] == outs[1]
            res = {p: [] for p in range(2)}
            for r in range(15):
                for p in ((0, 1) if r % 2 == 0 else (1, 0)):
                    t = time.perf_counter()
                    f(reps, *args, paths[p])
                    res[p].append((time.perf_counter() - t) / reps * 1e6)
            h, p = np.median(res[0]), np.median(res[1])
            won = np.mean([a < b for a, b in zip(res[1], res[0])])
            print(f"{m}x{n}x{k} {name}: halves {h:.1f} µs ({2 * m * n * k / h / 1e3:.0f} GF/s)  parallel {p:.1f} µs "
                  f"({2 * m * n * k / p / 1e3:.0f})  halves/parallel time {h / p:.3f}  parallel faster in {won:.2f}")


if __name__ == "__main__":
    main()
