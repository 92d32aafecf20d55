"""The forward's transposed pack of W: the scalar gather loop against 8x8 register transposes.

    PYTHONPATH=. python benchmarks/probes/pack_transpose8.py

Packs every 16-row panel of W (N, K) over k blocks of KC, as a forward product does,
with the previous scalar loop (copied here) and with ``gemm._pack`` (NOTES section 31);
one thread, median ns an element of interleaved rounds; checks the panels are equal.
"""
import numpy as np

from fastbp._jit import jit
from fastbp.kernels import gemm

from timing import median_us


@jit
def scalar_pack(src, rs, s0, nrows, ncols, dst, doff, W):
    """The loop gemm._pack_transpose ran for 16-row panels before section 31."""
    urs = np.uint64(rs)
    d = np.uint64(doff)
    s = np.uint64(s0)
    for _ in range(ncols):
        for r in range(np.uint64(nrows)):
            dst[d + r] = src[s + r * urs]
        s += np.uint64(1)
        d += np.uint64(W)


@jit
def pack_all(Wm, out, vectorized):
    n, k = Wm.shape
    flat = Wm.ravel()
    off = 0
    for p0 in range(0, k, gemm.KC):
        kc = min(gemm.KC, k - p0)
        for j0 in range(0, n, gemm.NR):
            if vectorized:
                gemm._pack(flat, k, 1, j0, min(gemm.NR, n - j0), p0, kc, out, off, gemm.NR)
            else:
                scalar_pack(flat, k, j0 * k + p0, min(gemm.NR, n - j0), kc, out, off, gemm.NR)
            off += gemm.NR * kc


print(f"NR = {gemm.NR}, KC = {gemm.KC}; ns an element, median of 7 rounds (interleaved)")
# the last four: output layers (10 rows, NOTES section 35)
for n, k in [(256, 256), (256, 784), (1024, 784), (1024, 1024), (10, 64), (10, 256), (10, 784), (10, 1024)]:
    Wm = np.random.default_rng(0).standard_normal((n, k)).astype(np.float32)
    size = -(-n // gemm.NR) * gemm.NR * k
    a, b = np.zeros(size, np.float32), np.zeros(size, np.float32)
    pack_all(Wm, a, False)
    pack_all(Wm, b, True)
    assert np.array_equal(a, b)
    reps = max(1, 2_000_000 // (n * k))
    reps = min(reps, 3000)
    old, new = [], []
    for _ in range(7):
        old.append(median_us(lambda: pack_all(Wm, a, False), reps, rounds=1) * 1e3 / (n * k))
        new.append(median_us(lambda: pack_all(Wm, b, True), reps, rounds=1) * 1e3 / (n * k))
    print(f"  W {n}x{k}: scalar {np.median(old):.3f}, gemm._pack {np.median(new):.3f}"
          f" ({np.median(old) / np.median(new):.1f}x)")
