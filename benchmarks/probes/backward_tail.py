"""W1's backward tail in fewer parallel regions (NOTES section 73).  Each variant starts with
layer 2's owned pair (``gemm.backward_grads``: it writes dA1's column halves), then:

* base (the library): the serial ReLU mask and bias gradient, dW1 in row halves
  (``gemm.weight_grad``), the owned update (``program._owned_update``): two regions;
* "dW1+update": the serial mask, then one region where each thread computes its dW1 rows
  and updates the parameters it owns;
* "one region": each thread masks its own columns of dA1 into a scratch of its own (no line
  written by both cores), sums its bias entries, computes its dW1 rows and updates its
  parameters.

All three give the same bits (checked).  Compiled loops of 200 tails, rounds alternating,
µs medians, and base/variant per round.

    PYTHONPATH=. python benchmarks/probes/backward_tail.py [ROUNDS]
"""
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import activations, fpenv
from fastbp.kernels import gemm as G
from fastbp.kernels import program as P
from fastbp.kernels.program import C_B, C_W

from stepped_model import stepped_model  # benchmarks/probes (the script folder is on sys.path)

fb.set_num_threads(2)
st = stepped_model(fb, bench, "W1")
m, opt, widths, batch = st.model, st.opt, st.widths, st.batch
prog = m._program
params, grads, state, hyper = m.arena.params, m.arena.grads, opt.state, opt.hyper
rng = np.random.default_rng(0)
f32 = np.float32
M, K, N1, N2 = batch, widths[0], widths[1], widths[2]
X = np.ascontiguousarray(st.x)
Z1 = rng.standard_normal((M, N1)).astype(f32)
A1 = np.maximum(Z1, 0)
D2 = (rng.standard_normal((M, N2)) * 1e-3).astype(f32)
Gd = np.zeros((M, N1), f32)            # dA1, written by the pair
w1, b1, w2 = prog[0, C_W], prog[0, C_B], prog[1, C_W]
work = np.zeros(m._work.size * 2, f32)


@jit
def _pair(D2, A1, params, grads, work, Gd, w2, N1, N2):
    W2 = params[w2:w2 + N2 * N1].reshape(N2, N1)
    dW2 = grads[w2:w2 + N2 * N1].reshape(N2, N1)
    G.backward_grads(D2, A1, W2, work, dW2, Gd)


@jit
def base(n, prog, code, D2, A1, Z1, X, Gd, params, grads, state, hyper, work, w1, b1, w2, N1, N2, K):
    dW1 = grads[w1:w1 + N1 * K].reshape(N1, K)
    for s in range(n):
        _pair(D2, A1, params, grads, work, Gd, w2, N1, N2)
        activations.relu_backward_bias_grad(Gd, Z1, grads[b1:b1 + N1])
        G.weight_grad(Gd, X, work, dW1)
        P._owned_update(prog, code, params, grads, state, hyper, s + 2)


@jit
def _mask_cols(Gd, Z1, c0, c1, S, db):
    """S (M, c1 - c0) = Gd[:, c0:c1] * relu'(Z1[:, c0:c1]); db = its column sums, rows in order."""
    n = c1 - c0
    for j in range(n):
        db[j] = 0
    for i in range(Gd.shape[0]):
        g = Gd[i, c0:c1]
        z = Z1[i, c0:c1]
        s = S[i * n:(i + 1) * n]
        for j in range(n):
            v = g[j] * activations._relu_grad(z[j])
            s[j] = v
            db[j] += v


@jit_parallel
def _tail(prog, code, Gd, Z1, X, params, grads, state, hyper, work, w1, b1, N1, K, step, mask):
    """Thread t's dW1 rows and its updates; ``mask``: first its columns of the ReLU mask and
    bias gradient into a δ of its own (else Gd is δ already, masked serially before)."""
    M = Gd.shape[0]
    n0 = G._split_at(N1)
    area = G._serial_size(n0, K, M)
    one = np.int64(1)
    Xf = X.reshape(M * K)
    C = grads[w1:w1 + N1 * K]
    ep = G._no_epilogue(C.reshape(N1, K))
    bits = fpenv.current()
    for t in prange(2):
        old = fpenv.adopt(bits)
        r0, r1 = (np.int64(0), n0) if t == 0 else (n0, np.int64(N1))
        nt = r1 - r0
        base_ = t * (area + M * n0 + 64)
        wt = work[base_:base_ + area]
        if mask:
            S = work[base_ + area:base_ + area + M * nt]
            _mask_cols(Gd, Z1, r0, r1, S, grads[b1 + r0:b1 + r1])
            G._serial_direct_chunks(nt, K, M, S, one, nt, Xf, K, one, C[r0 * K:], K, wt, ep)
        else:
            G._serial_direct_chunks(nt, K, M, Gd.reshape(M * N1)[r0:], one, N1, Xf, K, one, C[r0 * K:], K, wt, ep)
        P._owned_rows(prog, code, params, grads, state, hyper, step, t)
        fpenv.leave(old)


@jit
def rows_update(n, prog, code, D2, A1, Z1, X, Gd, params, grads, state, hyper, work, w1, b1, w2, N1, N2, K):
    for s in range(n):
        _pair(D2, A1, params, grads, work, Gd, w2, N1, N2)
        activations.relu_backward_bias_grad(Gd, Z1, grads[b1:b1 + N1])
        _tail(prog, code, Gd, Z1, X, params, grads, state, hyper, work, w1, b1, N1, K, s + 2, False)


@jit
def new(n, prog, code, D2, A1, Z1, X, Gd, params, grads, state, hyper, work, w1, b1, w2, N1, N2, K):
    for s in range(n):
        _pair(D2, A1, params, grads, work, Gd, w2, N1, N2)
        _tail(prog, code, Gd, Z1, X, params, grads, state, hyper, work, w1, b1, N1, K, s + 2, True)


args = (prog, opt.code, D2, A1, Z1, X, Gd, params, grads, state, hyper, work, w1, b1, w2, N1, N2, K)
variants = {"base": base, "dW1+update": rows_update, "one region": new}
p0, s0, g0 = params.copy(), state.copy(), grads.copy()
after = {}
for k, f in variants.items():
    params[:] = p0
    state[:] = s0
    grads[:] = g0
    f(1, *args)
    after[k] = params.copy(), grads.copy()
print("same grads and parameters as base after 1 call:",
      all(np.array_equal(after["base"][i], after[k][i]) for k in variants for i in (0, 1)))
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
n = 200
res = {k: [] for k in variants}
print("placement", bench.placement())
for r in range(rounds):
    order = list(variants.items())
    if r % 2:
        order.reverse()
    for k, f in order:
        t0 = time.perf_counter()
        f(n, *args)
        res[k].append((time.perf_counter() - t0) / n * 1e6)
print("placement", bench.placement())
for k, v in res.items():
    ratio = np.array(res["base"]) / np.array(v)
    print(f"{k:11s} {np.median(v):7.1f} µs ({min(v):.1f}-{max(v):.1f}); base/this per round: median "
          f"{np.median(ratio):.3f} ({ratio.min():.3f}-{ratio.max():.3f})")
