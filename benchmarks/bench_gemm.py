"""pytest-benchmark: fastbp's dense-layer products vs NumPy, grouped per shape.

    pytest benchmarks/bench_gemm.py --benchmark-enable --benchmark-group-by=group

With the default ``--benchmark-disable`` (pyproject) every case runs once as a
smoke test.  Thread count: whatever Numba/OpenBLAS default to (set
NUMBA_NUM_THREADS / OPENBLAS_NUM_THREADS, or use benchmarks/gemm_table.py, which
sweeps 1 and 2 threads and prints ratios).
"""
import numpy as np
import pytest

from fastbp.kernels import gemm

# (label, batch M, in K, out N)
SHAPES = [
    ("W1-784x256-b128", 128, 784, 256),
    ("W1-256x256-b128", 128, 256, 256),
    ("W2-1024x1024-b256", 256, 1024, 1024),
    ("W2-1024x10-b256", 256, 1024, 10),
    ("W3-64x64-b32", 32, 64, 64),
    ("W4-256x256-b64", 64, 256, 256),
    ("b1-1024x1024", 1, 1024, 1024),
]


def _setup(M, K, N, dtype=np.float32):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((M, K)).astype(dtype)
    W = rng.standard_normal((N, K)).astype(dtype)
    D = rng.standard_normal((M, N)).astype(dtype)
    work = np.empty(gemm.work_size(M, N, K), dtype)
    return A, W, D, work


def _cases():
    for label, M, K, N in SHAPES:
        for prod in ("nt", "tn", "nn"):
            for impl in ("fastbp", "numpy"):
                yield pytest.param(label, M, K, N, prod, impl, id=f"{label}-{prod}-{impl}")


@pytest.mark.parametrize("label,M,K,N,prod,impl", list(_cases()))
def test_gemm(benchmark, label, M, K, N, prod, impl):
    A, W, D, work = _setup(M, K, N)
    if prod == "nt":
        out = np.empty((M, N), A.dtype)
        fb, ref = (lambda: gemm.matmul_nt(A, W, work, out)), (lambda: np.dot(A, W.T, out=out))
    elif prod == "tn":
        out = np.empty((N, K), A.dtype)
        fb, ref = (lambda: gemm.matmul_tn(D, A, work, out)), (lambda: np.dot(D.T, A, out=out))
    else:
        out = np.empty((M, K), A.dtype)
        fb, ref = (lambda: gemm.matmul_nn(D, W, work, out)), (lambda: np.dot(D, W, out=out))
    fn = fb if impl == "fastbp" else ref
    fn()  # compile / warm up outside the timing
    benchmark.group = f"{label}-{prod}"
    benchmark.extra_info["gflop"] = 2.0 * M * N * K / 1e9
    benchmark(fn)
    if impl == "fastbp":
        fb_out = out.copy()
        ref()
        np.testing.assert_allclose(fb_out, out, rtol=1e-3, atol=1e-3 * np.sqrt(max(M, N, K)))
