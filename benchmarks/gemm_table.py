"""GFLOP/s of fastbp's three dense-layer products vs NumPy (OpenBLAS) at the workload shapes.

    python benchmarks/gemm_table.py [--dtype float32] [--reps 30] [--threads 1 2]

Prints, per shape, product and thread count: fastbp and NumPy GFLOP/s (best of
``reps`` and median), their ratio, the OPENBLAS_* environment and the BLAS
kernel threadpoolctl reports.  fastbp and NumPy runs are interleaved so the VM's
noise hits both alike.  Thread counts are set with numba.set_num_threads and
threadpoolctl (both OpenBLAS pools).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numba  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from fastbp.kernels import gemm  # noqa: E402

# (label, batch M, in K, out N)
SHAPES = [
    ("W1 784->256 b128", 128, 784, 256),
    ("W1 256->256 b128", 128, 256, 256),
    ("W1 256->10 b128", 128, 256, 10),
    ("W2 784->1024 b256", 256, 784, 1024),
    ("W2 1024->1024 b256", 256, 1024, 1024),
    ("W2 1024->10 b256", 256, 1024, 10),
    ("W3 64->64 b32", 32, 64, 64),
    ("W3 64->10 b32", 32, 64, 10),
    ("W4 256->256 b64", 64, 256, 256),
    ("b1 784->1024", 1, 784, 1024),
    ("b1 1024->1024", 1, 1024, 1024),
    ("sq 1024^3", 1024, 1024, 1024),
]


def _time(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), float(np.median(ts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", default="", help="substring filter on the shape label")
    ap.add_argument("--settle", type=float, default=0.2,
                    help="seconds of sleep before each block of reps: numpy's OpenBLAS threads spin after "
                         "its calls and took the cores from fastbp's next reps (NOTES section 37)")
    args = ap.parse_args()
    dt = np.dtype(args.dtype)
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}
    blas = [(i.get("internal_api"), i.get("architecture"), i.get("version")) for i in threadpool_info()
            if i.get("user_api") == "blas"]
    print(f"# dtype={dt} env={env} blas={blas} numba={numba.__version__} "
          f"threading_layer={numba.config.THREADING_LAYER}")
    t0 = time.perf_counter()
    w = np.ones((3, 5), dt)
    gemm.matmul_nt(np.ones((2, 5), dt), w, np.empty(gemm.work_size(2, 3, 5), dt), np.empty((2, 3), dt))
    print(f"# first call (compile or cache load) {time.perf_counter() - t0:.2f} s")
    print(f"{'shape':22s} {'prod':3s} {'thr':>3s} {'fastbp':>8s} {'numpy':>8s} {'ratio':>6s}"
          f"   {'fb med':>7s} {'np med':>7s}")
    rng = np.random.default_rng(0)
    for label, M, K, N in SHAPES:
        if args.only and args.only not in label:
            continue
        A = rng.standard_normal((M, K)).astype(dt)
        W = rng.standard_normal((N, K)).astype(dt)
        D = rng.standard_normal((M, N)).astype(dt)
        work = np.empty(gemm.work_size(M, N, K), dt)
        z, dw, da = np.empty((M, N), dt), np.empty((N, K), dt), np.empty((M, K), dt)
        flops = 2.0 * M * N * K
        prods = [
            ("nt", lambda: gemm.matmul_nt(A, W, work, z), lambda: np.dot(A, W.T, out=z)),
            ("tn", lambda: gemm.matmul_tn(D, A, work, dw), lambda: np.dot(D.T, A, out=dw)),
            ("nn", lambda: gemm.matmul_nn(D, W, work, da), lambda: np.dot(D, W, out=da)),
        ]
        reps = args.reps if flops > 1e7 else args.reps * 20
        for th in args.threads:
            numba.set_num_threads(th)
            with threadpool_limits(limits=th, user_api="blas"):
                for name, fb, npf in prods:
                    fb(), npf()
                    fbm = npm = float("inf")
                    fbmed, npmed = [], []
                    for _ in range(3):  # interleave
                        time.sleep(args.settle)
                        a, b = _time(fb, reps // 3 + 1)
                        time.sleep(args.settle)
                        c, d = _time(npf, reps // 3 + 1)
                        fbm, npm = min(fbm, a), min(npm, c)
                        fbmed.append(b)
                        npmed.append(d)
                    g = lambda t: flops / t / 1e9  # noqa: E731
                    print(f"{label:22s} {name:3s} {th:3d} {g(fbm):8.1f} {g(npm):8.1f} {npm / fbm:6.2f}"
                          f"   {g(np.median(fbmed)):7.1f} {g(np.median(npmed)):7.1f}", flush=True)


if __name__ == "__main__":
    main()
