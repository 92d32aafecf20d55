"""W2's three 1024-wide forward products in sequence at 2 threads: the library's parallel
path against three variants of it, interleaved in one process (NOTES section 50).

    PYTHONPATH=. python benchmarks/probes/w2_forward_variants.py [ROUNDS]

* ``parallel``: ``gemm._gemm_parallel`` as the forward runs it (pack region, then the
  compute region's tasks in static halves).
* ``steal``: the same, but the compute region hands tasks out from both ends (slot 0
  from the first column block on, slot 1 from the last one back, one shared ticket
  counter), so a late vCPU takes fewer tasks.  Same bits.
* ``W in place``: ``_gemm_transposed``'s form (Cᵀ = W·Aᵀ, W's rows read in place, only A
  packed) over several k blocks, each k block's tile summed in scratch in k-block order
  (the same bits as the packed paths), on two threads that split W's rows (each packs all
  of A, as the halves path does).
* ``pack only`` / ``compute only``: the parallel path's two regions timed apart.

Prints µs a pass of the three products (median, min-max), GFLOP/s, and for ``steal`` and
``W in place`` the per-round time ratio to ``parallel`` (above 1: faster).
"""
import sys
import time

import numba
import numpy as np

import fastbp as fb
from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import fpenv, microkernels
from fastbp.kernels import gemm as g

assert g.MR == 8 and g.NR == 32, "the W-in-place variant is written for the AVX-512 tiles"
TILE = g.MR * g.NR


@jit_parallel
def parallel_variant(m, n, k, A, ars, acs, B, brs, bcs, C, work, ep, pack, compute, steal):
    """``_gemm_parallel`` with switches: ``pack``/``compute`` run its regions, ``steal``
    hands the compute tasks out from both ends."""
    nkb, kcmax = g._kblocks(k)
    mp = g._cdiv(m, g.MR)
    np_ = g._cdiv(n, g.NR)
    a_off, b_off, t_off = g._offsets(work, m, n, k)
    nt = g._ntasks(m, n)
    bits = fpenv.current()
    npk = nkb * (mp + np_)
    c_off = t_off + nt * TILE
    work[c_off] = 0
    if pack:
        for _ in prange(min(npk, g.MAX_SLOTS)):
            old = fpenv.adopt(bits)
            t = g._claim(work, c_off)
            while t < npk:
                g._pack_all_task(t, m, n, k, A, ars, acs, B, brs, bcs, work, a_off, b_off)
                t = g._claim(work, c_off)
            fpenv.leave(old)
    if compute and steal:
        work[c_off + 1] = 0
        for s in prange(2):
            old = fpenv.adopt(bits)
            taken = 0
            while g._claim(work, c_off + 1) < nt:    # a ticket for one more task, from this slot's end
                t = taken if s == 0 else nt - 1 - taken
                taken += 1
                g._compute_all_task(np.int64(t), m, n, k, C, work, a_off, b_off, t_off, ep)
            fpenv.leave(old)
    elif compute:
        for t in prange(nt):
            old = fpenv.adopt(bits)
            g._compute_all_task(np.int64(t), m, n, k, C, work, a_off, b_off, t_off, ep)
            fpenv.leave(old)


@jit
def w_in_place_part(m, n, k, X, W, C, work, j_lo, j_hi):
    """C[:, j_lo:j_hi] = X Wᵀ (m a multiple of 32, the columns of 8): X packed in 32-row
    panels over all of k, W's rows read in place, each k block's tile summed in scratch."""
    nkb, kcmax = g._kblocks(k)
    mp = m // g.NR
    t_off = mp * g.NR * k
    for ip in range(mp):
        g._pack(X, np.int64(k), np.int64(1), ip * g.NR, np.int64(g.NR), np.int64(0), np.int64(k), work,
                ip * g.NR * k, np.int64(g.NR))
    for jb in range(j_lo, j_hi, g.MR):
        for ip in range(mp):
            for kb in range(nkb):
                p0 = (kb * k) // nkb
                kc = ((kb + 1) * k) // nkb - p0
                to = t_off + (TILE if kb > 0 else 0)
                microkernels.ukr_8x32_direct(kc, W, jb * k + p0, k, 1, work, ip * g.NR * k + p0 * g.NR, g.NR,
                                             work, to)
                if kb > 0:
                    for e in range(TILE):
                        work[t_off + e] += work[t_off + TILE + e]
            for b in range(0, g.NR, 8):
                g._transpose8(work, t_off + b, g.NR, C, (ip * g.NR + b) * n + jb, n)


@jit_parallel
def w_in_place(m, n, k, X, W, C, work, half):
    for t in prange(2):
        w_in_place_part(m, n, k, X, W, C, work[t * half:(t + 1) * half], t * (n // 2), (t + 1) * (n // 2))


@jit
def sequence(reps, Xs, Ws, Cs, work, half, variant):
    """``variant``: 0 parallel, 1 steal, 2 W in place, 3 pack only, 4 compute only."""
    one = np.int64(1)
    for _ in range(reps):
        for i in range(len(Ws)):
            m, k = Xs[i].shape
            n = Ws[i].shape[0]
            X, W, C = Xs[i].reshape(m * k), Ws[i].reshape(n * k), Cs[i].reshape(m * n)
            if variant == 2:
                w_in_place(m, n, k, X, W, C, work, half)
            else:
                parallel_variant(m, n, k, X, k, one, W, one, k, C, work, g._no_epilogue(Cs[i]),
                                 variant != 4, variant != 3, variant == 1)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    fb.set_num_threads(2)
    rng = np.random.default_rng(0)
    m, widths = 256, [784, 1024, 1024, 1024]
    Xs = numba.typed.List([rng.standard_normal((m, a)).astype(np.float32) for a in widths[:-1]])
    Ws = numba.typed.List([(rng.standard_normal((b, a)) / 30).astype(np.float32)
                           for a, b in zip(widths[:-1], widths[1:])])
    Cs = numba.typed.List([np.empty((m, b), np.float32) for b in widths[1:]])
    half = m * max(widths) + 4 * TILE + 64
    work = np.empty(max(2 * half, g.work_size(m, 1024, 1024) + 64), np.float32)
    names = ["parallel", "steal", "W in place", "pack only", "compute only"]
    sequence(1, Xs, Ws, Cs, work, half, 0)
    reference = [c.copy() for c in Cs]
    for v in (1, 2):
        sequence(1, Xs, Ws, Cs, work, half, v)
        print(f"{names[v]}: same bits as the parallel path:", all(np.array_equal(a, b) for a, b in zip(Cs, reference)))
    reps = 5
    times = {name: [] for name in names}
    for r in range(rounds):
        order = range(len(names)) if r % 2 else range(len(names) - 1, -1, -1)
        for v in order:
            t0 = time.perf_counter()
            sequence(reps, Xs, Ws, Cs, work, half, v)
            times[names[v]].append((time.perf_counter() - t0) / reps * 1e6)
    flops = sum(2.0 * m * a * b for a, b in zip(widths[:-1], widths[1:]))
    for name, v in times.items():
        med = np.median(v)
        line = f"{name:13s} {med:7.0f} µs ({min(v):.0f}-{max(v):.0f})  {flops / med / 1e3:5.0f} GFLOP/s"
        if name in ("steal", "W in place"):
            ratio = np.array(times["parallel"]) / np.array(v)
            line += f"  parallel/this per round: median {np.median(ratio):.3f}, faster in {np.mean(ratio > 1):.2f}"
        print(line)


if __name__ == "__main__":
    main()
