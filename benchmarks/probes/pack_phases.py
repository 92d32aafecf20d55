"""The serial path's three phases per k block timed apart: pack A, pack B, compute (NOTES 39).

    PYTHONPATH=. python benchmarks/probes/pack_phases.py

W2's 256x1024x1024 backward products at one thread: ``nn`` (dA = D W: B = W, whose
rows are contiguous along the panels' rows: a copy pack) and ``tn`` (dW = Dᵀ A: both
A = Dᵀ and B = A copy packs).  Packed either panel by panel as before section 39
(``old``: B's whole panels through ``_pack_copy``'s general loop of then), panel by
panel as ``_pack_task`` does now (``panel``), as the serial path now does (``grouped``:
B's whole panels in groups, ``_pack_b_block``), and with A's panels grouped the same way
(``grp A+B``, ``tn`` only, where A's rows are contiguous).
Timers are objmode calls around each phase (~1 µs each, 12 per product).
"""
import time

import numba
import numpy as np
from numba import objmode

import fastbp as fb
from fastbp.kernels import gemm as g

fb.set_num_threads(1)


@numba.njit
def _panel_copy(src, cs, s0, nrows, ncols, dst, doff, W):
    """``_pack_copy``'s general loop (run-time row count), as every 16-row panel used it."""
    ucs = np.uint64(cs)
    s = np.uint64(s0)
    d = np.uint64(doff)
    uw = np.uint64(W)
    for _ in range(ncols):
        for r in range(np.uint64(nrows)):
            dst[d + r] = src[s + r]
        s += ucs
        d += uw


@numba.njit
def _pack_a_grouped(A, acs, p0, kc, whole, work, a_off):
    """A's ``whole`` 6-wide panels (A's rows contiguous, ars == 1) in groups of ``PACK_GROUP``,
    column by column, like B's in ``_pack_b_rows`` (tried for ``tn``'s Dᵀ, not kept)."""
    for q0 in range(0, whole, g.PACK_GROUP):
        q1 = min(whole, q0 + g.PACK_GROUP)
        for p in range(kc):
            s = (p0 + p) * acs + q0 * g.MR
            d = a_off + q0 * g.MR * kc + p * g.MR
            for _ in range(q0, q1):
                for r in range(g.MR):
                    work[d + r] = A[s + r]
                s += g.MR
                d += g.MR * kc


@numba.njit
def _now():
    with objmode(t="float64"):
        t = time.perf_counter()
    return t


@numba.njit
def _product(m, n, k, A, ars, acs, B, brs, bcs, C, work, ep, grouped, acc):
    nkb, kcmax = g._kblocks(k)
    mp = g._cdiv(m, g.MR)
    np_ = g._cdiv(n, g.NR)
    a_off, b_off, t_off = g._offsets(work, m, n, kcmax)
    for kb in range(nkb):
        p0 = (kb * k) // nkb
        kc = ((kb + 1) * k) // nkb - p0
        t0 = _now()
        if grouped == 3:
            _pack_a_grouped(A, acs, p0, kc, m // g.MR, work, a_off)
            for t in range(m // g.MR, mp):
                g._pack_task(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off)
        else:
            for t in range(mp):
                g._pack_task(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off)
        t1 = _now()
        if grouped == 1 or grouped == 3:
            g._pack_b_block(n, p0, kc, B, brs, bcs, work, b_off)
        elif grouped == 2:
            for jp in range(np_):
                g._pack_task(mp + jp, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off)
        else:
            for jp in range(np_):
                j0 = jp * g.NR
                if bcs == 1 and n - j0 >= g.NR:
                    _panel_copy(B, brs, p0 * brs + j0, g.NR, kc, work, b_off + jp * g.NR * kc, g.NR)
                else:
                    g._pack_task(mp + jp, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off)
        t2 = _now()
        for t in range(g._ntasks(m, n)):
            g._compute_task(t, m, n, kc, kb > 0, C, n, work, a_off, b_off, t_off, ep, kb == nkb - 1)
        t3 = _now()
        acc[0] += t1 - t0
        acc[1] += t2 - t1
        acc[2] += t3 - t2


def main(M=256, N=1024, K=1024, rounds=11, reps=5):
    i64, one = np.int64, np.int64(1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal(M * K).astype(np.float32)
    W = rng.standard_normal(N * K).astype(np.float32)
    D = rng.standard_normal(M * N).astype(np.float32)
    work = np.empty(g.work_size(M, N, K), np.float32)
    products = {   # (m, n, k, A, ars, acs, B, brs, bcs, C) of the serial path
        "nn": (i64(M), i64(K), i64(N), D, i64(N), one, W, i64(K), one, np.zeros(M * K, np.float32)),
        "tn": (i64(N), i64(K), i64(M), D, one, i64(N), X, i64(K), one, np.zeros(N * K, np.float32)),
    }
    print(f"{M}x{N}x{K}, 1 thread; ms per product, medians of {rounds} rounds of {reps}")
    for name, args in products.items():
        ep = g._no_epilogue(args[9].reshape(args[0], args[1]))
        times = {0: [], 1: [], 2: []} if args[4] != 1 else {0: [], 1: [], 2: [], 3: []}
        for _ in range(rounds):
            for grouped in times:
                acc = np.zeros(3)
                for _ in range(reps):
                    _product(*args, work, ep, grouped, acc)
                times[grouped].append(acc / reps * 1e3)
        for grouped in times:
            a, b, c = np.median(np.array(times[grouped]), 0)
            label = ("old    ", "grouped", "panel  ", "grp A+B")[grouped]
            print(f"  {name} {label}  pack A {a:.3f}  pack B {b:.3f}  compute {c:.3f}")


if __name__ == "__main__":
    main()
