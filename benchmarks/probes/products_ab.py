"""The three layer products of several checkouts of fastbp, timed in ONE process (NOTES 40).

    PYTHONPATH=. python benchmarks/probes/products_ab.py TREE [TREE ...] [--threads 1 2]
        [--shapes 256x1024x1024 128x256x784 ...] [--path auto|serial|halves|parallel] [--relu]

``ab.py`` runs each checkout in its own process, and on this VM a process carries a bias of
up to ~3% (the same tree against itself read W3 1.031 with every round agreeing).  Here each
tree's ``fastbp`` package is copied into a temporary folder under a new name (``fastbp_0``,
``fastbp_1``, ...; ``ab.install_renamed``), so all of them load into one process and the
products alternate round by round.  Prints µs per product (median of 11 rounds) and the
speed ratio to the first tree (above 1: faster).  ``--path`` other than ``auto`` forces one
packed path through ``own_nt``/``own_tn``/``own_nn`` (never BLAS), e.g. the parallel path at
two threads, where the layers take the column halves.  Each copy compiles its kernels on its
first run (minutes), then loads them from the cache; float32.
"""
import argparse
import importlib
import os
import statistics
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from ab import install_renamed  # noqa: E402  (benchmarks/ab.py)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shapes", nargs="+", default=["256x1024x1024", "256x1024x784", "128x256x784",
                                                       "128x256x256", "64x256x256"])
    parser.add_argument("--path", choices=("auto", "serial", "halves", "parallel"), default="auto")
    parser.add_argument("--relu", action="store_true",
                        help="nt as a ReLU layer's forward: bias + ReLU epilogue, in place (auto path only)")
    args = parser.parse_args(argv)
    names = [f"fastbp_{i}" for i in range(len(args.trees))]
    for tree, name in zip(args.trees, names):
        install_renamed(tree, name)
    mods = {n: importlib.import_module(f"{n}.kernels.gemm") for n in names}
    for n, tree in zip(names, args.trees):
        print(f"{n}: {tree} (tile {mods[n].MR}x{mods[n].NR}, KC {mods[n].KC})")
    rng = np.random.default_rng(0)
    for threads in args.threads:
        numba.set_num_threads(threads)
        print(f"-- {threads} thread(s): µs per product, median of 11 alternating rounds (speed vs {names[0]})")
        for M, N, K in (tuple(int(v) for v in s.split("x")) for s in args.shapes):
            A = rng.standard_normal((M, K)).astype(np.float32)
            W = rng.standard_normal((N, K)).astype(np.float32)
            D = rng.standard_normal((M, N)).astype(np.float32)
            for op, shape in (("nt", (M, N)), ("tn", (N, K)), ("nn", (M, K))):
                calls = {}
                for n, G in mods.items():
                    work = np.empty(G.work_size(M, N, K), np.float32)
                    out = np.empty(shape, np.float32)
                    if args.path == "auto" and args.relu and op == "nt":
                        bias = rng.standard_normal(N).astype(np.float32)
                        relu = importlib.import_module(f"{n}.kernels.codes").RELU
                        f = {"nt": lambda G=G, w=work, o=out, b=bias, r=relu:
                             G.matmul_nt_bias_act(A, W, b, r, np.float32(0), w, o, o)}[op]
                    elif args.path == "auto":
                        f = {"nt": lambda G=G, w=work, o=out: G.matmul_nt(A, W, w, o),
                             "tn": lambda G=G, w=work, o=out: G.matmul_tn(D, A, w, o),
                             "nn": lambda G=G, w=work, o=out: G.matmul_nn(D, W, w, o)}[op]
                    else:
                        p = np.int64(getattr(G, "PATH_" + args.path.upper()))
                        # gemm._no_epilogue's tuple with numpy scalars (as tests/kernels/test_gemm.py
                        # builds it): the one it returns to Python carries a float64 alpha
                        ep = (out, out.reshape(-1)[:0], out, np.int64(-1), out.dtype.type(0), np.int64(0))
                        f = {"nt": lambda G=G, w=work, o=out, p=p, ep=ep: G.own_nt(A, W, w, o, ep, p),
                             "tn": lambda G=G, w=work, o=out, p=p: G.own_tn(D, A, w, o, p),
                             "nn": lambda G=G, w=work, o=out, p=p: G.own_nn(D, W, w, o, p)}[op]
                    f()
                    calls[n] = f
                reps = max(3, int(1e8 / (2 * M * N * K)))
                times = {n: [] for n in calls}
                for _ in range(11):
                    for n, f in calls.items():
                        t0 = time.perf_counter()
                        for _ in range(reps):
                            f()
                        times[n].append((time.perf_counter() - t0) / reps * 1e6)
                med = {n: statistics.median(v) for n, v in times.items()}
                print(f"{M}x{N}x{K} {op}: " + "  ".join(f"{n[7:]} {med[n]:8.1f} ({med[names[0]] / med[n]:.3f}x)"
                                                      for n in names), flush=True)


if __name__ == "__main__":
    main()
