"""NOTES section 24: the register tile with the output's row stride as a run-time argument
(the old form: the tile stored straight into C) against the generated tiles of
fastbp/kernels/microkernels.py (stored into contiguous scratch, then moved by tile_out).

    PYTHONPATH=. python benchmarks/probes/tile_stride.py

GFLOP/s of 4 x 4 tiles over packed panels (kc = 256, float32, one thread), every
argument a run-time value as in gemm._compute_task.
"""
import time

import numpy as np
from numba import njit

from fastbp._jit import jit
from fastbp.kernels import microkernels
from fastbp.kernels.microkernels import _U, _wide_vectors  # noqa: F401  (used by the exec'd source)

KC = 256


def _old_form(MR, NR):
    """The tile as generated before section 24: C[co + i*ldc + j] (=|+=) ..., ldc at run time."""
    def at(base, i):
        return base if i == 0 else f"{base} + _U[{i}]"
    L = [f"def old_{MR}x{NR}(kc, Ap, ao, Bp, bo, C, co, ldc, add):", "    _wide_vectors()",
         "    pa = np.uint64(ao)", "    pb = np.uint64(bo)"]
    ld = [f"    a{i} = Ap[{at('pa', i)}]" for i in range(MR)] + [f"    b{j} = Bp[{at('pb', j)}]" for j in range(NR)]
    L += ld + [f"    c{i}_{j} = a{i} * b{j}" for i in range(MR) for j in range(NR)]
    L += ["    for _ in range(1, kc):", f"        pa += _U[{MR}]", f"        pb += _U[{NR}]"]
    L += ["    " + x for x in ld] + [f"        c{i}_{j} += a{i} * b{j}" for i in range(MR) for j in range(NR)]
    L += ["    r = np.uint64(co)", "    ld = np.uint64(ldc)", "    if add:"]
    for i in range(MR):
        L += (["        r += ld"] if i else []) + [f"        C[{at('r', j)}] += c{i}_{j}" for j in range(NR)]
    L += ["    else:"]
    for i in range(MR):
        L += (["        r += ld"] if i else []) + [f"        C[{at('r', j)}] = c{i}_{j}" for j in range(NR)]
    ns = {"np": np, "_U": _U, "_wide_vectors": _wide_vectors}
    exec("\n".join(L), ns)
    return jit(cache=False)(ns[f"old_{MR}x{NR}"])


def _loops(MR, NR):
    old = _old_form(MR, NR)
    new = getattr(microkernels, f"ukr_{MR}x{NR}")
    out = getattr(microkernels, f"tile_out_{NR}")

    @njit
    def run_old(reps, kc, work, C, ldc):
        boff = 4 * MR * KC
        for _ in range(reps):
            for jb in range(4):
                for ia in range(4):
                    old(kc, work, ia * MR * kc, work, boff + jb * NR * kc, C, ia * MR * ldc + jb * NR, ldc, True)

    return run_old, tiles_loop(new, out, MR, NR)


def tiles_loop(ukr, out, MR, NR):
    """``run(reps, kc, work, C, ldc)``: ``reps`` times 4 x 4 tiles through scratch, then added into
    C (``work`` holds 4 A panels, then 4 B panels of ``KC`` steps, then the tile)."""
    @njit
    def run(reps, kc, work, C, ldc):
        boff = 4 * MR * KC
        toff = boff + 4 * NR * KC
        for _ in range(reps):
            for jb in range(4):
                for ia in range(4):
                    ukr(kc, work, ia * MR * kc, work, boff + jb * NR * kc, work, toff)
                    out(work, toff, C, ia * MR * ldc + jb * NR, ldc, True)
    return run


def main():
    rng = np.random.default_rng(0)
    for MR, NR in ((6, 16), (8, 32)):
        run_old, run_new = _loops(MR, NR)
        work = rng.random(4 * MR * KC + 4 * NR * KC + MR * NR + 64).astype(np.float32)
        ldc = 1024
        C = np.zeros(4 * MR * ldc + 4 * NR, np.float32)
        reps = 1000
        res = {}
        for name, f in (("old (C, ldc)", run_old), ("new (scratch + tile_out)", run_new)):
            f(1, KC, work, C, ldc)
            ts = []
            for _ in range(7):
                t0 = time.perf_counter()
                f(reps, KC, work, C, ldc)
                ts.append(time.perf_counter() - t0)
            res[name] = 2 * MR * NR * KC * 16 * reps / np.median(ts) / 1e9
        print(f"{MR}x{NR}: " + "  ".join(f"{k} {v:5.1f} GF/s" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    main()
