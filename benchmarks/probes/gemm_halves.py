"""At 2 threads: a product on the parallel path (_gemm_parallel) against _gemm_halves (two
threads splitting C's columns, each on the serial path) and the serial path alone.
Bitwise check; median of 5 alternating rounds.
PYTHONPATH=. python benchmarks/probes/gemm_halves.py [THREADS [MxNxK ...]]  (NOTES sections 20, 29)"""
import sys

import numpy as np

import fastbp as fb
from fastbp.kernels import gemm as G
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

fb.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
rng = np.random.default_rng(0)
print(f"{'M x N x K':>16} {'op':>3} {'parallel µs':>12} {'halves µs':>10} {'serial µs':>10} {'par/halves':>10} "
      f"{'serial/halves':>13}")
SHAPES = [(64, 256, 256), (128, 256, 256), (128, 256, 784), (128, 10, 256), (32, 64, 64), (32, 256, 256),
          (256, 1024, 784), (256, 1024, 1024)]
for M, N, K in [tuple(int(v) for v in a.split("x")) for a in sys.argv[2:]] or SHAPES:
    A = rng.standard_normal((M, K), dtype=np.float32).reshape(-1)
    W = rng.standard_normal((N, K), dtype=np.float32).reshape(-1)
    D = rng.standard_normal((M, N), dtype=np.float32).reshape(-1)
    work = np.empty(G.work_size(M, N, K), np.float32)
    cases = {"nt": (M, N, K, A, K, 1, W, 1, K), "tn": (N, K, M, D, 1, N, A, K, 1), "nn": (M, K, N, D, N, 1, W, K, 1)}
    for name, (m, n, k, a, ars, acs, b, brs, bcs) in cases.items():
        if n <= G.NR:
            continue  # one column panel: nothing to split
        c1, c2, c3 = (np.empty(m * n, np.float32) for _ in range(3))
        e1, e2, e3 = (G._no_epilogue(c.reshape(m, n)) for c in (c1, c2, c3))
        G._gemm_parallel(m, n, k, a, ars, acs, b, brs, bcs, c1, work, e1)
        G._gemm_halves(m, n, k, a, ars, acs, b, brs, bcs, c2, work, e2)
        G._gemm_serial(m, n, k, a, ars, acs, b, brs, bcs, c3, n, work, e3)
        assert c1.tobytes() == c2.tobytes() == c3.tobytes(), (M, N, K, name)
        reps = max(3, int(1e8 / (2 * m * n * k)))
        par, hal, ser, ratio, sratio = [], [], [], [], []
        for _ in range(5):
            par.append(median_us(lambda: G._gemm_parallel(m, n, k, a, ars, acs, b, brs, bcs, c1, work, e1), reps, 3))
            hal.append(median_us(lambda: G._gemm_halves(m, n, k, a, ars, acs, b, brs, bcs, c2, work, e2), reps, 3))
            ser.append(median_us(lambda: G._gemm_serial(m, n, k, a, ars, acs, b, brs, bcs, c3, n, work, e3), reps, 3))
            ratio.append(par[-1] / hal[-1])
            sratio.append(ser[-1] / hal[-1])
        print(f"{f'{M}x{N}x{K}':>16} {name:>3} {np.median(par):12.1f} {np.median(hal):10.1f} {np.median(ser):10.1f} "
              f"{np.median(ratio):10.2f} {np.median(sratio):13.2f}", flush=True)
