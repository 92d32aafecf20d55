"""W1's forward products (nt: X (M, K) times W (N, K) transposed) on the serial path at one
thread: the whole product against its A packs and B packs alone, each repeated in a compiled
loop; µs per product, medians of 7 rounds, and the compute phase's GF/s by difference
(NOTES section 43).  128x128 shapes are one thread's share on the halves path.

    PYTHONPATH=. python benchmarks/probes/pack_share_nt.py
"""
import time

import numpy as np

import fastbp as fb
from fastbp._jit import jit
from fastbp.kernels import gemm as g


@jit
def whole(reps, m, n, k, A, B, C, work):
    one = np.int64(1)
    for _ in range(reps):
        g._gemm_serial(m, n, k, A, k, one, B, one, k, C, n, work, g._no_epilogue(C.reshape(m, n)))


@jit
def packs(reps, m, n, k, A, B, work, which):
    """``_gemm_serial``'s A packs (which = 0) or B packs (1), k block by k block."""
    one = np.int64(1)
    nkb, kcmax = g._kblocks(k)
    mp = g._cdiv(m, g.MR)
    a_off, b_off, t_off = g._offsets(work, m, n, kcmax)
    for _ in range(reps):
        for kb in range(nkb):
            p0 = (kb * k) // nkb
            kc = ((kb + 1) * k) // nkb - p0
            if which == 0:
                for t in range(mp):
                    g._pack_task(t, mp, m, n, p0, kc, A, k, one, B, one, k, work, a_off, b_off)
            else:
                g._pack_b_block(n, p0, kc, B, one, k, work, b_off)


def main():
    fb.set_num_threads(1)
    rng = np.random.default_rng(0)
    for m, n, k in ((128, 256, 784), (128, 128, 784), (128, 256, 256), (128, 128, 256)):
        A = rng.standard_normal(m * k).astype(np.float32)
        B = rng.standard_normal(n * k).astype(np.float32)
        C = np.empty(m * n, np.float32)
        work = np.empty(g.work_size(m, n, k) + 64, np.float32)
        reps = 200
        runs = {"whole": lambda: whole(reps, m, n, k, A, B, C, work),
                "packA": lambda: packs(reps, m, n, k, A, B, work, 0),
                "packB": lambda: packs(reps, m, n, k, A, B, work, 1)}
        res = {key: [] for key in runs}
        for f in runs.values():
            f()
        for _ in range(7):
            for key, f in runs.items():
                t = time.perf_counter()
                f()
                res[key].append((time.perf_counter() - t) / reps * 1e6)
        med = {key: float(np.median(v)) for key, v in res.items()}
        flops = 2.0 * m * n * k
        compute = med["whole"] - med["packA"] - med["packB"]
        print(f"{m}x{n}x{k}: whole {med['whole']:.1f} µs ({flops / med['whole'] / 1e3:.0f} GF/s)  "
              f"packA {med['packA']:.1f}  packB {med['packB']:.1f}  "
              f"compute ~{compute:.1f} ({flops / compute / 1e3:.0f} GF/s)")


if __name__ == "__main__":
    main()
