import numpy as np
import sys
import fastbp as fb
from fastbp.kernels import gemm as G
from fastbp._jit import jit, jit_parallel, prange
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

MR, NR = G.MR, G.NR
_cdiv = G._cdiv


@jit
def compute_task(t, m, n, kc, add, C, work, a_off, b_off, t_off, mcp, ncp):
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    nbi = _cdiv(mp, mcp)
    bi = t % nbi
    bj = t // nbi
    ip0 = bi * mcp
    ip1 = min(mp, ip0 + mcp)
    jp0 = bj * ncp
    jp1 = min(np_, jp0 + ncp)
    ts = t_off + t * MR * NR
    for jp in range(jp0, jp1):
        j0 = jp * NR
        nr = min(NR, n - j0)
        bo = b_off + jp * NR * kc
        for ip in range(ip0, ip1):
            i0 = ip * MR
            mr = min(MR, m - i0)
            ao = a_off + ip * MR * kc
            G._ukr(kc, work, ao, work, bo, work, ts)
            if mr == MR and nr == NR:
                G._tile_out(work, ts, C, i0 * n + j0, n, add)
            else:
                for i in range(mr):
                    r = (i0 + i) * n + j0
                    s = ts + i * NR
                    if add:
                        for j in range(nr):
                            C[r + j] += work[s + j]
                    else:
                        for j in range(nr):
                            C[r + j] = work[s + j]


@jit
def compute_all(t, m, n, k, C, work, a_off, b_off, t_off, mcp, ncp):
    nkb, kcmax = G._kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    for kb in range(nkb):
        p0 = (kb * k) // nkb
        kc = ((kb + 1) * k) // nkb - p0
        compute_task(t, m, n, kc, kb > 0, C, work, a_off + mp * MR * p0, b_off + np_ * NR * p0, t_off, mcp, ncp)


@jit_parallel
def gemm_par(m, n, k, A, ars, acs, B, brs, bcs, C, work, mcp, ncp):
    nkb, kcmax = G._kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    isz = work.itemsize
    mis = (work.ctypes.data // isz) % (64 // isz)
    a_off = 0 if mis == 0 else (64 // isz) - mis
    b_off = a_off + mp * MR * k
    mis = (b_off + (work.ctypes.data // isz)) % (64 // isz)
    if mis != 0:
        b_off += (64 // isz) - mis
    t_off = b_off + np_ * NR * k
    nt = _cdiv(mp, mcp) * _cdiv(np_, ncp)
    for t in prange(nkb * (mp + np_)):
        G._pack_all_task(t, m, n, k, A, ars, acs, B, brs, bcs, work, a_off, b_off)
    for t in prange(nt):
        compute_all(t, m, n, k, C, work, a_off, b_off, t_off, mcp, ncp)


fb.set_num_threads(int(sys.argv[1]))


def tm(f, n):
    return median_us(f, n)


rng = np.random.default_rng(0)
# usage: task_shapes.py THREADS [GRID ...]; a GRID is MCxNC micro-panels per task, or
# "serial" (the serial path); default 16x8 4x4 serial.  Each product is timed twice per grid.
grids = [(0, 0) if g == "serial" else tuple(int(v) for v in g.split("x")) for g in sys.argv[2:]]
grids = grids or [(16, 8), (4, 4), (0, 0)]
shapes = [(64, 256, 256), (128, 256, 256), (128, 256, 784), (256, 1024, 1024), (256, 1024, 784)]
for M, N, K in shapes:
    A = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((N, K)).astype(np.float32)
    D = rng.standard_normal((M, N)).astype(np.float32)
    Af, Wf, Df = A.reshape(-1), W.reshape(-1), D.reshape(-1)
    for name, (m, n, k, a, ars, acs, b, brs, bcs) in {
        "nt": (M, N, K, Af, K, 1, Wf, 1, K),
        "tn": (N, K, M, Df, 1, N, Af, K, 1),
        "nn": (M, K, N, Df, N, 1, Wf, K, 1),
    }.items():
        work = np.empty(G.work_size(M, N, K) + 64 * 32 * 8 * 64, np.float32)
        C = np.empty(m * n, np.float32)
        ref = np.empty(m * n, np.float32)
        G._gemm_parallel(m, n, k, a, ars, acs, b, brs, bcs, ref, work, G._no_epilogue(ref.reshape(m, n)))
        reps = max(3, int(3e8 / (2 * m * n * k)))
        row = []
        for mc, nc in grids:
            if mc == 0:
                continue
            gemm_par(m, n, k, a, ars, acs, b, brs, bcs, C, work, mc, nc)
            assert C.tobytes() == ref.tobytes()
        none = G._no_epilogue(C.reshape(m, n))
        G._gemm_serial(m, n, k, a, ars, acs, b, brs, bcs, C, n, work, none)
        for _rnd in range(2):
            for mc, nc in grids:
                if mc == 0:
                    t = tm(lambda: G._gemm_serial(m, n, k, a, ars, acs, b, brs, bcs, C, n, work, none), reps)
                    row.append(f"serial {2 * m * n * k / t / 1e3:5.0f}")
                    continue
                t = tm(lambda: gemm_par(m, n, k, a, ars, acs, b, brs, bcs, C, work, mc, nc), reps)
                nt = _cdiv(_cdiv(m, MR), mc) * _cdiv(_cdiv(n, NR), nc)
                row.append(f"{mc}x{nc}[{nt}] {2 * m * n * k / t / 1e3:5.0f}")
        print(f"{name} {m}x{n}x{k}:", "  ".join(row), flush=True)
