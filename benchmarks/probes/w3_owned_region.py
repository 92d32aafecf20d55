"""W3's whole step on two threads in one parallel region, each thread owning half of every
hidden layer's output features (its rows of W and b, their gradients and Adam state).

Sections 35, 48 and 68 split W3 by batch rows and lost: both threads then read all of the
parameters, half of them rewritten by the other core's update the step before.  Here a
thread's parameters never leave its core; what crosses is activations: each hidden layer's
half of A (4 KB) after the forward product, the output layer's delta (thread 0 runs the
10-class layer and the loss), and the hidden layer-1 input gradient, summed over the two
threads' k halves (each adds its own columns, in a fixed order).  Four spin barriers in one
region (``kernels/atomics.py``).  The same phases run one after another on one thread
("serial") give the same bits: the split depends on the shape only.

    PYTHONPATH=benchmarks/probes:. python benchmarks/probes/w3_owned_region.py [ROUNDS]

Prints µs a step (compiled loops of 200 steps, medians over rounds, interleaved): the
library's raw ``program.train_step`` (called from Python: Numba's dispatch, ~1 µs, included),
this probe's phases serially, in one region, and the region with only its barriers, with its
work but no barriers (wrong results, timing only) and empty; ``bench.placement()`` before and
after.  BLAS products (W's rows transposed first, as ``gemm._blas_nt`` does), Adam as torch's.
"""
import sys
import time

import numpy as np
from numba import njit, prange

import fastbp as fb
from fastbp import bench
from fastbp.kernels import losses, optim, program
from fastbp.kernels.gemm import _pack_transpose
from fastbp.kernels.atomics import fetch_add, load_acquire, spin_pause

from stepped_model import raw_calls, stepped_model

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
fb.set_num_threads(2)
B, D, H, C = 32, 64, 64, 10
HALF = H // 2
f32 = np.float32
rng = np.random.default_rng(0)


def _aligned(shape, dtype=np.float32):
    """Zeros at a 64-byte boundary, so that two threads' column halves share no cache line."""
    n = int(np.prod(shape))
    raw = np.zeros(n + 16, dtype)
    off = (-raw.ctypes.data % 64) // raw.itemsize
    return raw[off:off + n].reshape(shape)


def _param(*shape):
    return (rng.standard_normal(shape) * 0.1).astype(f32)


# parameters, gradients and Adam's two moments, one flat array each (views reshape them)
sizes = [H * D, H, H * H, H, C * H, C]
params = [_aligned(n) for n in sizes]
for p_ in params:
    p_[:] = _param(p_.size)
grads = [_aligned(n) for n in sizes]
m1 = [_aligned(n) for n in sizes]
m2 = [_aligned(n) for n in sizes]
hyper = np.array([1e-3, 0.9, 0.999, 1e-8, 0.0], f32)
X = _aligned((B, D))
X[:] = rng.standard_normal((B, D))
labels = rng.integers(0, C, B).astype(np.int64)
A1 = _aligned((B, H))
A2 = _aligned((B, H))
Z3 = _aligned((B, C))
dZ3 = _aligned((B, C))
Zt = _aligned((2, B, HALF))          # each thread's half of a product, contiguous
D2 = _aligned((2, B, HALF))
D1 = _aligned((2, B, HALF))
Pk = _aligned((2, B, H))             # each thread's k-half partial of dA1
Wt = _aligned((2, H * HALF))         # each thread's rows of W transposed (BLAS's fast layout)
W3c = _aligned((2, C * HALF))        # each thread's columns of W3, contiguous
scratch = np.zeros(losses.scratch_size(B, C))
counters = _aligned(4 * 16, np.int32)     # one 64-byte line a barrier


@njit
def _bias_relu_into(Zh, b, A, lo):
    """A[:, lo:lo + n] = relu(Zh + b[lo:lo + n]); row slices, so the loop starts at 0 and vectorizes."""
    n = Zh.shape[1]
    bh = b[lo:lo + n]
    for i in range(Zh.shape[0]):
        z = Zh[i]
        a = A[i, lo:lo + n]
        for j in range(n):
            v = z[j] + bh[j]
            a[j] = v if v > f32(0) else f32(0)


@njit
def _colsum_into(Dh, out):
    for j in range(Dh.shape[1]):
        out[j] = f32(0)
    for i in range(Dh.shape[0]):
        for j in range(Dh.shape[1]):
            out[j] += Dh[i, j]


@njit
def _adam_rows(p, g, a, b, hyper, step, lo, hi):
    optim._adam(p[lo:hi], g[lo:hi], a[lo:hi], b[lo:hi], hyper, step, False)


@njit
def _barrier(counters, k, target):
    fetch_add(counters, k * 16, 1)
    while load_acquire(counters, k * 16) < target:
        spin_pause()


@njit
def _rows_transposed(Wflat, k, lo, Wt_t):
    """Wt_t (k, HALF) = W[lo:lo + HALF, :]ᵀ for W of k columns (the library's 8x8 transposes)."""
    _pack_transpose(Wflat, np.int64(k), np.int64(lo * k), np.int64(HALF), np.int64(k), Wt_t, np.int64(0),
                    np.int64(HALF))
    return Wt_t[:k * HALF].reshape(k, HALF)


@njit
def phase_l1(t, X, ps, A1, Zt, Wt):
    lo = t * HALF
    np.dot(X, _rows_transposed(ps[0], D, lo, Wt[t]), Zt[t])
    _bias_relu_into(Zt[t], ps[1], A1, lo)


@njit
def phase_l2(t, A1, ps, A2, Zt, Wt):
    lo = t * HALF
    np.dot(A1, _rows_transposed(ps[2], H, lo, Wt[t]), Zt[t])
    _bias_relu_into(Zt[t], ps[3], A2, lo)


@njit
def phase_out(A2, ps, gs, Z3, dZ3, labels, scratch):
    W3 = ps[4].reshape(C, H)
    np.dot(A2, W3.T, Z3)
    for i in range(B):
        for j in range(C):
            Z3[i, j] += ps[5][j]
    loss = losses.cross_entropy_loss(Z3, labels, 0.0, dZ3, scratch)
    np.dot(dZ3.T, A2, gs[4].reshape(C, H))
    _colsum_into(dZ3, gs[5])
    return loss


@njit
def phase_h2(t, dZ3, A1, A2, ps, gs, D2, Pk, W3c):
    lo = t * HALF
    W3 = ps[4].reshape(C, H)
    Wc = W3c[t].reshape(C, HALF)
    for c in range(C):
        Wc[c] = W3[c, lo:lo + HALF]
    Dh = D2[t]
    np.dot(dZ3, Wc, Dh)
    for i in range(B):
        a = A2[i, lo:lo + HALF]
        d = Dh[i]
        for j in range(HALF):
            d[j] = d[j] if a[j] > f32(0) else f32(0)
    _colsum_into(Dh, gs[3][lo:lo + HALF])
    np.dot(Dh.T, A1, gs[2].reshape(H, H)[lo:lo + HALF])
    np.dot(Dh, ps[2].reshape(H, H)[lo:lo + HALF], Pk[t])


@njit
def phase_h1(t, X, A1, gs, D1, Pk):
    lo = t * HALF
    Dh = D1[t]
    for i in range(B):
        p0 = Pk[0, i, lo:lo + HALF]
        p1 = Pk[1, i, lo:lo + HALF]
        a = A1[i, lo:lo + HALF]
        d = Dh[i]
        for j in range(HALF):
            v = p0[j] + p1[j]
            d[j] = v if a[j] > f32(0) else f32(0)
    _colsum_into(Dh, gs[1][lo:lo + HALF])
    np.dot(Dh.T, X, gs[0].reshape(H, D)[lo:lo + HALF])


@njit
def phase_update(t, ps, gs, m1, m2, hyper, step):
    lo = t * HALF
    _adam_rows(ps[0], gs[0], m1[0], m2[0], hyper, step, lo * D, (lo + HALF) * D)
    _adam_rows(ps[1], gs[1], m1[1], m2[1], hyper, step, lo, lo + HALF)
    _adam_rows(ps[2], gs[2], m1[2], m2[2], hyper, step, lo * H, (lo + HALF) * H)
    _adam_rows(ps[3], gs[3], m1[3], m2[3], hyper, step, lo, lo + HALF)
    if t == 0:
        _adam_rows(ps[4], gs[4], m1[4], m2[4], hyper, step, 0, C * H)
        _adam_rows(ps[5], gs[5], m1[5], m2[5], hyper, step, 0, C)


@njit
def _thread_step(t, s, X, labels, ps, gs, m1, m2, hyper, A1, A2, Z3, dZ3, Zt, D2, D1, Pk, Wt, W3c, scratch, counters,
                 work, sync):
    """One thread's step; ``work``/``sync`` False drop the phases or the barriers (timing the
    rest alone: wrong results)."""
    target = 2 * (s + 1)
    if work:
        phase_l1(t, X, ps, A1, Zt, Wt)
    if sync:
        _barrier(counters, 0, target)
    if work:
        phase_l2(t, A1, ps, A2, Zt, Wt)
    if sync:
        _barrier(counters, 1, target)
    if work and t == 0:
        phase_out(A2, ps, gs, Z3, dZ3, labels, scratch)
    if sync:
        _barrier(counters, 2, target)
    if work:
        phase_h2(t, dZ3, A1, A2, ps, gs, D2, Pk, W3c)
    if sync:
        _barrier(counters, 3, target)
    if work:
        phase_h1(t, X, A1, gs, D1, Pk)
        phase_update(t, ps, gs, m1, m2, hyper, s + 1)


@njit(parallel=True)
def region_step(s, X, labels, ps, gs, m1, m2, hyper, A1, A2, Z3, dZ3, Zt, D2, D1, Pk, Wt, W3c, scratch, counters,
                work, sync):
    for t in prange(2):
        _thread_step(t, s, X, labels, ps, gs, m1, m2, hyper, A1, A2, Z3, dZ3, Zt, D2, D1, Pk, Wt, W3c, scratch,
                     counters, work, sync)


@njit
def serial_step(s, X, labels, ps, gs, m1, m2, hyper, A1, A2, Z3, dZ3, Zt, D2, D1, Pk, Wt, W3c, scratch):
    for t in range(2):
        phase_l1(t, X, ps, A1, Zt, Wt)
    for t in range(2):
        phase_l2(t, A1, ps, A2, Zt, Wt)
    phase_out(A2, ps, gs, Z3, dZ3, labels, scratch)
    for t in range(2):
        phase_h2(t, dZ3, A1, A2, ps, gs, D2, Pk, W3c)
    for t in range(2):
        phase_h1(t, X, A1, gs, D1, Pk)
    for t in range(2):
        phase_update(t, ps, gs, m1, m2, hyper, s + 1)


@njit
def run_region(n, s0, *a):
    for s in range(s0, s0 + n):
        region_step(s, *a, True, True)


@njit
def run_region_variant(n, work, sync, *a):
    for s in range(n):
        region_step(s, *a, work, sync)


@njit
def run_serial(n, s0, *a):
    for s in range(s0, s0 + n):
        serial_step(s, *a)


ps, gs, ms, vs = (tuple(x) for x in (params, grads, m1, m2))
common = (X, labels, ps, gs, ms, vs, hyper, A1, A2, Z3, dZ3, Zt, D2, D1, Pk, Wt, W3c, scratch)

# the same bits from the region and the serial phases, from the same start
start = [p.copy() for p in params], [g.copy() for g in m1], [g.copy() for g in m2]
run_serial(3, 0, *common)
after_serial = [p.copy() for p in params]
for dst, src in zip((params, m1, m2), start):
    for d, s_ in zip(dst, src):
        d[:] = s_
run_region(3, 0, *common, counters)
same = all(np.array_equal(a, b) for a, b in zip(after_serial, params))
print(f"region and serial phases give the same parameters after 3 steps: {same}")

st = stepped_model(fb, bench, "W3")
lib_step = raw_calls(st, fb, program, losses, optim).step(st.opt.code)

n = 200
steps = [3]
times = {"library train_step": [], "probe serial": [], "probe region": [], "region, barriers only": [],
         "region, work without barriers": [], "region, empty": []}
variants = {"region, barriers only": (False, True), "region, work without barriers": (True, False),
            "region, empty": (False, False)}
for w, y in variants.values():
    run_region_variant(2, w, y, *common, counters)
print("placement before:", bench.placement())
for _ in range(rounds):
    t0 = time.perf_counter()
    for _i in range(n):
        lib_step()
    times["library train_step"].append((time.perf_counter() - t0) / n * 1e6)
    t0 = time.perf_counter()
    run_serial(n, steps[0], *common)
    times["probe serial"].append((time.perf_counter() - t0) / n * 1e6)
    steps[0] += n
    counters[:] = 0
    t0 = time.perf_counter()
    run_region(n, 0, *common, counters)
    times["probe region"].append((time.perf_counter() - t0) / n * 1e6)
    for k, (w, y) in variants.items():
        counters[:] = 0
        t0 = time.perf_counter()
        run_region_variant(n, w, y, *common, counters)
        times[k].append((time.perf_counter() - t0) / n * 1e6)
print("placement after:", bench.placement())
for k, v in times.items():
    print(f"  {k:20s} {np.median(v):6.2f} µs  ({min(v):.2f}-{max(v):.2f})")
print("library's call from Python includes Numba's dispatch (~1 µs); the probes' loops are compiled")
