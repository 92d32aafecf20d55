import sys
import numpy as np
import fastbp as fb
from fastbp.kernels import gemm as G

fb.set_num_threads(2)
shapes = [
    (32, 64, 64),
    (32, 10, 64),
    (64, 256, 256),
    (7, 17, 17),
    (129, 257, 129),
    (13, 40, 70),
    (129, 3, 3),
    (300, 33, 65),
    (257, 130, 1000),
]
res = {}
for dt in (np.float32, np.float64):
    for M, N, K in shapes:
        rng = np.random.default_rng(M * N * K)
        A = rng.standard_normal((M, K)).astype(dt)
        W = rng.standard_normal((N, K)).astype(dt)
        D = rng.standard_normal((M, N)).astype(dt)
        w = np.empty(G.work_size(M, N, K), dt)
        o1 = np.empty((M, N), dt)
        o2 = np.empty((N, K), dt)
        o3 = np.empty((M, K), dt)
        G.matmul_nt(A, W, w, o1)
        G.matmul_tn(D, A, w, o2)
        G.matmul_nn(D, W, w, o3)
        for nm, o in (("nt", o1), ("tn", o2), ("nn", o3)):
            res[f"{dt.__name__}_{M}_{N}_{K}_{nm}"] = o.copy()
if sys.argv[1] == "save":
    np.savez("bitwise_ref.npz", **res)
else:
    ref = np.load("bitwise_ref.npz")
    bad = [k for k in res if res[k].tobytes() != ref[k].tobytes()]
    print("bitwise identical" if not bad else f"DIFFER: {bad}")
