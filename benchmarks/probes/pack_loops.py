import os
import time
import numpy as np

os.environ["NUMBA_SLP_VECTORIZE"] = "1"
from numba import njit

U = np.uint64


@njit
def pack_old(src, rs, cs, r0, nrows, c0, ncols, dst, doff, W):
    if cs == 1 and rs != 1:
        for r in range(nrows):
            base = (r0 + r) * rs + c0
            for c in range(ncols):
                dst[doff + c * W + r] = src[base + c]
    else:
        for c in range(ncols):
            base = (c0 + c) * cs + r0 * rs
            d = doff + c * W
            for r in range(nrows):
                dst[d + r] = src[base + r * rs]


@njit
def pack_t_rowwise(src, rs, r0, nrows, c0, ncols, dst, doff, W):
    # transpose, sequential reads, strided writes; unsigned indices
    w = U(W)
    for r in range(nrows):
        s = src[U((r0 + r) * rs + c0) :]
        d = U(doff + r)
        for c in range(U(ncols)):
            dst[d + c * w] = s[c]


@njit
def pack_t_colwise(src, rs, r0, nrows, c0, ncols, dst, doff, W):
    # transpose, sequential writes, strided reads
    urs = U(rs)
    for c in range(ncols):
        s = U(r0 * rs + c0 + c)
        d = U(doff + c * W)
        for r in range(U(nrows)):
            dst[d + r] = src[s + r * urs]


@njit
def pack_t_blocked(src, rs, r0, nrows, c0, ncols, dst, doff, W):
    # 8-column blocks: each row contributes 8 contiguous loads, writes 8 rows of the panel
    urs = U(rs)
    w = U(W)
    c = 0
    while c + 8 <= ncols:
        for r in range(U(nrows)):
            s = U(r0 * rs + c0 + c) + r * urs
            d = U(doff + c * W) + r
            x0 = src[s]
            x1 = src[s + U(1)]
            x2 = src[s + U(2)]
            x3 = src[s + U(3)]
            x4 = src[s + U(4)]
            x5 = src[s + U(5)]
            x6 = src[s + U(6)]
            x7 = src[s + U(7)]
            dst[d] = x0
            dst[d + w] = x1
            dst[d + U(2) * w] = x2
            dst[d + U(3) * w] = x3
            dst[d + U(4) * w] = x4
            dst[d + U(5) * w] = x5
            dst[d + U(6) * w] = x6
            dst[d + U(7) * w] = x7
        c += 8
    for cc in range(c, ncols):
        s = U(r0 * rs + c0 + cc)
        d = U(doff + cc * W)
        for r in range(U(nrows)):
            dst[d + r] = src[s + r * urs]


@njit
def pack_copy(src, cs, r0, nrows, c0, ncols, dst, doff, W):
    for c in range(ncols):
        s = src[U((c0 + c) * cs + r0) :]
        d = dst[U(doff + c * W) :]
        for r in range(U(nrows)):
            d[r] = s[r]


@njit
def run_t(f, src, K, rows, W, dst, reps):
    for _ in range(reps):
        for r0 in range(0, rows, W):
            f(src, K, r0, W, 0, K, dst, r0 * K, W)


@njit
def run_old_t(src, K, rows, W, dst, reps):
    for _ in range(reps):
        for r0 in range(0, rows, W):
            pack_old(src, K, 1, r0, W, 0, K, dst, r0 * K, W)


@njit
def run_old_c(src, K, rows, W, dst, reps):
    for _ in range(reps):
        for r0 in range(0, rows, W):
            pack_old(src, 1, rows, r0, W, 0, K, dst, r0 * K, W)


@njit
def run_c(src, K, rows, W, dst, reps):
    for _ in range(reps):
        for r0 in range(0, rows, W):
            pack_copy(src, rows, r0, W, 0, K, dst, r0 * K, W)


rng = np.random.default_rng(0)
for rows, K, W in [(256, 784, 32), (126, 784, 6), (64, 64, 32), (30, 64, 6)]:
    src = rng.standard_normal(rows * K).astype(np.float32)
    dst = np.zeros(rows * K + 64, np.float32)
    ref = src.reshape(rows // W, W, K).transpose(0, 2, 1).reshape(-1)
    res = []
    for name, call in [
        ("old", lambda reps: run_old_t(src, K, rows, W, dst, reps)),
        ("rowwise", lambda reps: run_t(pack_t_rowwise, src, K, rows, W, dst, reps)),
        ("colwise", lambda reps: run_t(pack_t_colwise, src, K, rows, W, dst, reps)),
        ("blocked", lambda reps: run_t(pack_t_blocked, src, K, rows, W, dst, reps)),
    ]:
        dst[:] = 0
        call(1)
        assert np.array_equal(dst[: rows * K], ref), name
        reps = max(1, 2000000 // (rows * K))
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            call(reps)
            ts.append((time.perf_counter() - t) / reps / (rows * K) * 1e9)
        res.append(f"{name} {np.median(ts):.3f}")
    # copy case: src is (K, rows) column layout: element (r, c) at c*rows + r
    srcc = np.ascontiguousarray(src.reshape(rows, K).T).reshape(-1)
    for name, call in [
        ("old-copy", lambda reps: run_old_c(srcc, K, rows, W, dst, reps)),
        ("copy", lambda reps: run_c(srcc, K, rows, W, dst, reps)),
    ]:
        dst[:] = 0
        call(1)
        assert np.array_equal(dst[: rows * K], ref), name
        reps = max(1, 2000000 // (rows * K))
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            call(reps)
            ts.append((time.perf_counter() - t) / reps / (rows * K) * 1e9)
        res.append(f"{name} {np.median(ts):.3f}")
    print(rows, K, W, "ns/elem:", *res)


@njit
def pack_copy6(src, cs, r0, nrows, c0, ncols, dst, doff, W):
    if nrows == 6 and W == 6:
        ucs = U(cs)
        s = U(c0 * cs + r0)
        d = U(doff)
        for _c in range(ncols):
            x0 = src[s]
            x1 = src[s + U(1)]
            x2 = src[s + U(2)]
            x3 = src[s + U(3)]
            x4 = src[s + U(4)]
            x5 = src[s + U(5)]
            dst[d] = x0
            dst[d + U(1)] = x1
            dst[d + U(2)] = x2
            dst[d + U(3)] = x3
            dst[d + U(4)] = x4
            dst[d + U(5)] = x5
            s += ucs
            d += U(6)


@njit
def run_c6(src, K, rows, W, dst, reps):
    for _ in range(reps):
        for r0 in range(0, rows, W):
            pack_copy6(src, rows, r0, W, 0, K, dst, r0 * K, W)


for rows, K, W in [(126, 784, 6), (30, 64, 6)]:
    src = rng.standard_normal(rows * K).astype(np.float32)
    dst = np.zeros(rows * K + 64, np.float32)
    ref = src.reshape(rows // W, W, K).transpose(0, 2, 1).reshape(-1)
    srcc = np.ascontiguousarray(src.reshape(rows, K).T).reshape(-1)
    def call(reps):
        return run_c6(srcc, K, rows, W, dst, reps)
    dst[:] = 0
    call(1)
    assert np.array_equal(dst[: rows * K], ref)
    reps = max(1, 2000000 // (rows * K))
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        call(reps)
        ts.append((time.perf_counter() - t) / reps / (rows * K) * 1e9)
    print(rows, K, "copy6", np.median(ts))
