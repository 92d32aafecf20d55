import time
import numpy as np
import fastbp as fb
from fastbp.kernels import gemm as G, activations as Ak, optim as O, reductions as R
from numba import njit

fb.set_num_threads(1)


@njit
def loop_nt(A, W, w, o, n):
    for _ in range(n):
        G.matmul_nt(A, W, w, o)


@njit
def loop_tn(D, A, w, o, n):
    for _ in range(n):
        G.matmul_tn(D, A, w, o)


@njit
def loop_nn(D, W, w, o, n):
    for _ in range(n):
        G.matmul_nn(D, W, w, o)


@njit
def loop_bias_act(Z, b, A, n):
    for _ in range(n):
        Ak.bias_act_forward(Z, b, 1, 0.0, A)


@njit
def loop_act_bwd(G_, Z, A, n):
    for _ in range(n):
        Ak.act_backward(G_, Z, A, 1, 0.0, G_)


@njit
def loop_colsum(D, out, n):
    for _ in range(n):
        R.column_sums(D, out)


@njit
def loop_adam(p, g, st, h, n):
    for _i in range(n):
        O.optimizer_step(2, p, g, st, h, 5)


def tm(f, n=2000):
    ts = []
    for _r in range(7):
        t = time.perf_counter()
        f(n)
        ts.append((time.perf_counter() - t) / n)
    return np.median(ts) * 1e6


rng = np.random.default_rng(0)
tot = 0
for M, N, K in [(32, 64, 64), (32, 64, 64), (32, 10, 64)]:
    A = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((N, K)).astype(np.float32)
    D = rng.standard_normal((M, N)).astype(np.float32)
    w = np.empty(G.work_size(M, N, K), np.float32)
    o1 = np.empty((M, N), np.float32)
    o2 = np.empty((N, K), np.float32)
    o3 = np.empty((M, K), np.float32)
    b = np.zeros(N, np.float32)
    t1 = tm(lambda n: loop_nt(A, W, w, o1, n))
    t2 = tm(lambda n: loop_tn(D, A, w, o2, n))
    t3 = tm(lambda n: loop_nn(D, W, w, o3, n))
    t4 = tm(lambda n: loop_bias_act(o1, b, D, n))
    t5 = tm(lambda n: loop_act_bwd(D, o1, o1.copy(), n))
    t6 = tm(lambda n: loop_colsum(D, b, n))
    print(f"{M}x{N}x{K}: nt {t1:.2f} tn {t2:.2f} nn {t3:.2f} bias_act {t4:.2f} act_bwd {t5:.2f} colsum {t6:.2f}")
    tot += t1 + t2 + t3 + t4 + t5 + t6
p = np.zeros(8970, np.float32)
g = rng.standard_normal(8970).astype(np.float32)
st = np.zeros((2, 8970), np.float32)
h = np.array([1e-3, 0.9, 0.999, 1e-8, 0], np.float32)
ta = tm(lambda n: loop_adam(p, g, st, h, n))
print(f"adam {ta:.2f}; sum of pieces {tot + ta:.1f} us")
