"""What cold operands cost the products at W4's layer shape (64x256x256).  "hot" repeats one
layer's operands; "cold X" takes X from 16 copies in turn (16 layers' worth: ~11 MB with
everything cold, in L3 and not in L2, as in a step) and keeps the rest hot.  Also the
backward pair (``backward_grads``) against ``matmul_tn`` then ``matmul_nn``.  µs a call,
medians of 15 rounds (NOTES section 64).

    PYTHONPATH=TREE python benchmarks/probes/cold_operands.py TREE [THREADS]
"""
import sys
import time

import numpy as np

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
import fastbp as fb  # noqa: E402
from fastbp.kernels import gemm  # noqa: E402
from fastbp.kernels.codes import RELU  # noqa: E402

fb.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
M, N, K, L = 64, 256, 256, 16
rng = np.random.default_rng(0)
D = [rng.standard_normal((M, N)).astype(np.float32) for _ in range(L)]
A = [rng.standard_normal((M, K)).astype(np.float32) for _ in range(L)]
W = [rng.standard_normal((N, K)).astype(np.float32) for _ in range(L)]
dW = [np.empty((N, K), np.float32) for _ in range(L)]
dA = [np.empty((M, K), np.float32) for _ in range(L)]
Z = [np.empty((M, N), np.float32) for _ in range(L)]
bias = np.zeros(N, np.float32)
work = np.zeros(gemm.work_size(M, N, K) * 4, np.float32)


def hot(i):
    return 0


def cold(i):
    return i


def tn(d, a, o):
    return lambda i: gemm.matmul_tn(D[d(i)], A[a(i)], work, dW[o(i)])


def nn(d, w, o):
    return lambda i: gemm.matmul_nn(D[d(i)], W[w(i)], work, dA[o(i)])


def nt(a, w, o):
    return lambda i: gemm.matmul_nt_bias_act(A[a(i)], W[w(i)], bias, RELU, np.float32(0), work, Z[o(i)], Z[o(i)])


def pair(x):
    return lambda i: gemm.backward_grads(D[x(i)], A[x(i)], W[x(i)], work, dW[x(i)], dA[x(i)])


def in_turn(x):
    def both(i):
        gemm.matmul_tn(D[x(i)], A[x(i)], work, dW[x(i)])
        gemm.matmul_nn(D[x(i)], W[x(i)], work, dA[x(i)])
    return both


cases = {"tn hot": tn(hot, hot, hot), "tn cold D,A": tn(cold, cold, hot), "tn cold dW": tn(hot, hot, cold),
         "tn cold all": tn(cold, cold, cold),
         "nn hot": nn(hot, hot, hot), "nn cold D": nn(cold, hot, hot), "nn cold W": nn(hot, cold, hot),
         "nn cold all": nn(cold, cold, cold),
         "nt hot": nt(hot, hot, hot), "nt cold A": nt(cold, hot, hot), "nt cold W": nt(hot, cold, hot),
         "nt cold Z": nt(hot, hot, cold), "nt cold all": nt(cold, cold, cold),
         "pair hot": pair(hot), "pair cold": pair(cold), "tn+nn hot": in_turn(hot), "tn+nn cold": in_turn(cold)}


def run(f):
    for i in range(L):
        f(i)


for f in cases.values():
    run(f)
res = {k: [] for k in cases}
for _ in range(15):
    for k, f in cases.items():
        t = time.perf_counter()
        for _ in range(10):
            run(f)
        res[k].append((time.perf_counter() - t) / 10 / L * 1e6)
for k, v in res.items():
    print(f"{k:12s} {np.median(v):7.1f} µs  (min {min(v):.1f})")
