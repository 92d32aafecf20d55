"""fastbp.kernels.gemm against float64 NumPy references."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from fastbp.kernels import gemm
from tests.reference import gemm as ref

DTYPES = [np.float64, np.float32]
RTOL = {np.float64: 1e-12, np.float32: 2e-5}

# (M, N, K) of a layer: batch M, out N, in K.  A representative subset of
# M in {1, 7, 129} x N, K in {1, 3, 17, 129, 257}, plus shapes above the
# parallel threshold with ragged edges.
SHAPES = [
    (1, 1, 1), (1, 17, 257), (1, 257, 3), (1, 129, 129),
    (7, 1, 17), (7, 3, 1), (7, 17, 17), (7, 257, 129), (7, 129, 1),
    (129, 1, 257), (129, 3, 3), (129, 17, 129), (129, 129, 17), (129, 257, 257),
    (257, 130, 1000),   # above the parallel threshold, several k blocks
    (13, 48, 33),       # whole 16-wide panels that are not whole 32-wide ones
    (16, 32, 9), (33, 70, 41),   # BLAS-sized forward products on a transposed copy of W (gemm._blas_nt)
]


def _operands(M, N, K, dtype, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((M, K)).astype(dtype)
    W = rng.standard_normal((N, K)).astype(dtype)
    D = rng.standard_normal((M, N)).astype(dtype)
    return A, W, D


def _check(got, want, K, dtype):
    # error bound scales with the reduction length and the magnitudes summed
    tol = RTOL[dtype] * max(1.0, np.sqrt(K))
    scale = np.abs(want).max() if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def _no_epilogue(out):
    """gemm._no_epilogue's tuple built in Python with numpy scalars: the one gemm returns
    comes back with alpha as a Python float (float64), a second signature of every GEMM
    path to compile for float32."""
    return (out, out.reshape(-1)[:0], out, np.int64(-1), out.dtype.type(0), np.int64(0))


# _gemm's paths, as np.int64 like the layers pass them (a Python int is typed the same)
AUTO, SERIAL, HALVES, PARALLEL = (np.int64(p) for p in (gemm.PATH_AUTO, gemm.PATH_SERIAL, gemm.PATH_HALVES,
                                                         gemm.PATH_PARALLEL))


def _run(fn, x, y, out_shape, dtype, M, N, K):
    work = np.empty(gemm.work_size(M, N, K), dtype)   # exactly work_size
    out = np.full(out_shape, np.nan, dtype)           # must be fully overwritten
    fn(x, y, work, out)
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_products_match_reference(shape, dtype):
    M, N, K = shape
    A, W, D = _operands(M, N, K, dtype)
    out = _run(gemm.matmul_nt, A, W, (M, N), dtype, M, N, K)
    assert out.dtype == dtype
    _check(out, ref.matmul_nt(A, W), K, dtype)
    out = _run(gemm.matmul_tn, D, A, (N, K), dtype, M, N, K)
    _check(out, ref.matmul_tn(D, A), M, dtype)
    out = _run(gemm.matmul_nn, D, W, (M, K), dtype, M, N, K)
    _check(out, ref.matmul_nn(D, W), N, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(7, 17, 17), (129, 17, 129), (33, 40, 70), (2, 5, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_own_core_matches_reference_where_blas_may_serve(shape, dtype):
    """Shapes small enough for the BLAS path: the packed core itself must still be right
    (it serves them when SciPy is absent or FASTBP_GEMM=own)."""
    M, N, K = shape
    A, W, D = _operands(M, N, K, dtype)
    work = np.empty(gemm.work_size(M, N, K), dtype)
    # own_nt/own_tn/own_nn are the packed core exactly as the layers call it (the same
    # compiled specializations: the epilogue's alpha must be of the model's dtype)
    out = np.full((M, N), np.nan, dtype)
    gemm.own_nt(A, W, work, out, _no_epilogue(out), AUTO)                                 # A Wᵀ
    _check(out, ref.matmul_nt(A, W), K, dtype)
    # with a fused bias + activation epilogue: the unfused pass's bits
    from fastbp.kernels import activations, codes
    bias = np.linspace(-1, 1, N).astype(dtype)
    z_want, a_want = out.copy(), np.empty((M, N), dtype)
    activations.bias_act_forward(z_want, bias, codes.GELU, dtype(0), a_want)
    z, a = np.full((M, N), np.nan, dtype), np.full((M, N), np.nan, dtype)
    gemm.own_nt(A, W, work, z, (z, bias, a, np.int64(codes.GELU), dtype(0), np.int64(0)), AUTO)
    assert z.tobytes() == z_want.tobytes() and a.tobytes() == a_want.tobytes()
    out = np.full((N, K), np.nan, dtype)
    gemm.own_tn(D, A, work, out, AUTO)                                                   # Dᵀ A
    _check(out, ref.matmul_tn(D, A), M, dtype)
    out = np.full((M, K), np.nan, dtype)
    gemm.own_nn(D, W, work, out, AUTO)                                                   # D W
    _check(out, ref.matmul_nn(D, W), N, dtype)


def test_gemm_backend_setting_is_validated():
    env = dict(os.environ, FASTBP_GEMM="fast")
    proc = subprocess.run([sys.executable, "-c", "import fastbp"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "FASTBP_GEMM must be 'auto' or 'own', got 'fast'" in proc.stderr


# (129, 257, 257) and (256, 384, 700) take the column halves at 2 threads, (700, 13, 300)'s A Wᵀ
# runs swapped (W Aᵀ, gemm._nt_swapped) on the parallel path; at 1 thread all run serially (the
# parallel path with several column panels, which more threads take, against the others: the
# tests with ``path``)
@pytest.mark.parametrize("shape", [(129, 257, 257), (256, 384, 700), (700, 13, 300), (1, 300, 700), (1, 301, 700),
                                   (33, 40, 70), (5, 301, 700), (3, 62, 5000)],
                         ids=lambda s: "x".join(map(str, s)))
def test_bitwise_identical_across_thread_counts(shape):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 threads")
    M, N, K = shape
    dtype = np.float32
    A, W, D = _operands(M, N, K, dtype, seed=1)
    cases = [(gemm.matmul_nt, A, W, (M, N)), (gemm.matmul_tn, D, A, (N, K)), (gemm.matmul_nn, D, W, (M, K))]
    before = numba.get_num_threads()
    try:
        for fn, x, y, oshape in cases:
            results = []
            for nthreads in (1, 2, 1):
                numba.set_num_threads(nthreads)
                results.append(_run(fn, x, y, oshape, dtype, M, N, K))
            assert results[0].tobytes() == results[1].tobytes() == results[2].tobytes(), fn.__name__
    finally:
        numba.set_num_threads(before)


# a classifier's output layer (W1's), one output, MR + 1 outputs over several k blocks, ragged
# rows, and the largest width that still runs swapped with 8 x 32 tiles (20: 3 x 4 tiles, not 16)
SWAPPED_SHAPES = [(128, 10, 256), (129, 1, 3000), (257, 9, 1000), (40, 7, 1000), (128, 20, 300), (600, 10, 784)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SWAPPED_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_narrow_forward_runs_swapped_and_matches_reference(shape, dtype):
    """A forward product into fewer outputs than one column panel runs as W Aᵀ
    (``gemm._nt_swapped``): the reference's values, with bias + ReLU the unfused pass's bits,
    the same bits at 1 and 2 threads, and a scratch of exactly ``work_size``."""
    from fastbp.kernels import activations, codes
    M, N, K = shape
    if not gemm._swapped_nt(M, N) or (gemm.BLAS_SMALL and gemm._rows_to_blas(M, N, K)):
        pytest.skip("this build's tiles do not take the swapped form at this shape")
    A, W, _ = _operands(M, N, K, dtype, seed=11)
    bias = np.random.default_rng(12).standard_normal(N).astype(dtype)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            z = _run(gemm.matmul_nt, A, W, (M, N), dtype, M, N, K)
            _check(z, ref.matmul_nt(A, W), K, dtype)
            a_want = np.empty((M, N), dtype)
            activations.bias_act_forward(z, bias, codes.RELU, dtype(0), a_want)
            work = np.empty(gemm.work_size(M, N, K), dtype)
            z2, a = np.full((M, N), np.nan, dtype), np.full((M, N), np.nan, dtype)
            gemm.matmul_nt_bias_act(A, W, bias, codes.RELU, dtype(0), work, z2, a)
            assert z2.tobytes() == z.tobytes() and a.tobytes() == a_want.tobytes()
            results.append(a.tobytes())
    finally:
        numba.set_num_threads(before)
    assert len(set(results)) == 1
    with pytest.raises(ValueError, match="work"):
        gemm.matmul_nt(A, W, np.empty(gemm._swapped_size(M, N, K) - 1, dtype), np.empty((M, N), dtype))


def test_swapped_form_is_taken_where_it_needs_fewer_tiles_and_fits_the_scratch():
    assert gemm._swapped_nt(128, 10) and gemm._swapped_nt(129, 1)
    assert not gemm._swapped_nt(128, gemm.NR)          # a whole column panel: the usual form
    assert not gemm._swapped_nt(gemm.NR - 1, 10)       # fewer rows than a column panel
    for M in (32, 100, 128, 1000):
        for N in range(1, gemm.NR):
            swapped = gemm._cdiv(N, gemm.MR) * gemm._cdiv(M, gemm.NR)
            assert bool(gemm._swapped_nt(M, N)) == (swapped < gemm._cdiv(M, gemm.MR))
    # a model's scratch is sized for its largest batch and serves every smaller one
    for K in (17, 1000):
        for N in range(1, gemm.NR):
            for cap in (40, 128, 129, 600):
                size = gemm.work_size(cap, N, K)
                for M in range(gemm.NR, cap + 1):
                    if gemm._swapped_nt(M, N):
                        assert gemm._swapped_size(M, N, K) <= size, (cap, M, N, K)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("N, K", [(301, 700), (13, 33)], ids=["301x700", "13x33"])
def test_forward_rows_do_not_depend_on_how_many_rows_come_with_them(N, K, dtype):
    """Up to ``DOTS_MAX_ROWS`` rows the forward product runs as dots (W read in place, one
    pass of four outputs at a time over every row), unless BLAS takes it (a small product
    of ``BLAS_MIN_ROWS`` rows or more, with SciPy): each row gets the bits it gets alone
    (batch 1), whatever the batch, at 1 and 2 threads, and the reference's values."""
    M = gemm.DOTS_MAX_ROWS
    A, W, _ = _operands(M + 1, N, K, dtype, seed=7)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            alone = [_run(gemm.matmul_nt, A[i:i + 1], W, (1, N), dtype, 1, N, K)[0] for i in range(M)]
            for m in range(2, M + 1):
                if gemm.BLAS_SMALL and gemm._rows_to_blas(m, N, K):
                    continue
                got = _run(gemm.matmul_nt, A[:m], W, (m, N), dtype, m, N, K)
                for i in range(m):
                    assert got[i].tobytes() == alone[i].tobytes(), (threads, m, i)
                _check(got, ref.matmul_nt(A[:m], W), K, dtype)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_input_gradient_of_a_few_rows_runs_on_the_own_core(dtype):
    """Below ``BLAS_MIN_ROWS`` rows ``matmul_nn`` leaves BLAS aside even where the product is
    BLAS-sized (OpenBLAS ran such products 2x slower: NOTES section 60): its bits are the
    packed core's.  (Without SciPy every product runs on the own core.)"""
    N, K = 64, 48
    for m in range(2, gemm.BLAS_MIN_ROWS):
        _, W, D = _operands(m, N, K, dtype, seed=m)
        assert gemm._blas_small(m, N, K)
        got = _run(gemm.matmul_nn, D, W, (m, K), dtype, m, N, K)
        want = np.full((m, K), np.nan, dtype)
        gemm.own_nn(D, W, np.empty(gemm.work_size(m, N, K), dtype), want, AUTO)
        assert got.tobytes() == want.tobytes(), m
        _check(got, ref.matmul_nn(D, W), N, dtype)


# n just above one column panel, an odd number of panels, ragged tiles, several k blocks
HALVES_SHAPES = [(129, 257, 257), (7, 33, 17), (64, 65, 600), (300, 40, 5), (6, 96, 256)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", HALVES_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_column_halves_give_the_parallel_paths_bits(shape, dtype):
    """_gemm_halves (two threads splitting C's columns) = _gemm_parallel = _gemm_serial bit
    for bit, in all three layouts, with exactly work_size scratch, and matches the reference."""
    M, N, K = shape
    A, W, D = _operands(M, N, K, dtype, seed=3)
    work = np.empty(gemm.work_size(M, N, K), dtype)
    layouts = [(lambda out, path: gemm.own_nt(A, W, work, out, _no_epilogue(out), path), (M, N),
                ref.matmul_nt(A, W), K),
               (lambda out, path: gemm.own_tn(D, A, work, out, path), (N, K), ref.matmul_tn(D, A), M),
               (lambda out, path: gemm.own_nn(D, W, work, out, path), (M, K), ref.matmul_nn(D, W), N)]
    for product, out_shape, want, depth in layouts:
        got = [np.full(out_shape, np.nan, dtype) for _ in range(3)]
        product(got[0], PARALLEL)
        product(got[1], HALVES)
        product(got[2], SERIAL)
        assert got[0].tobytes() == got[1].tobytes() == got[2].tobytes(), out_shape
        _check(got[1], want, depth, dtype)
    # A Wᵀ with a bias + GELU epilogue on both paths (run block by block): the unfused bits
    from fastbp.kernels import activations, codes
    bias = np.linspace(-1, 1, N).astype(dtype)
    z_want, a_want = np.full((M, N), np.nan, dtype), np.empty((M, N), dtype)
    gemm.own_nt(A, W, work, z_want, _no_epilogue(z_want), PARALLEL)
    activations.bias_act_forward(z_want, bias, codes.GELU, dtype(0), a_want)
    for path in (PARALLEL, HALVES, SERIAL):
        z, act_out = np.full((M, N), np.nan, dtype), np.full((M, N), np.nan, dtype)
        gemm.own_nt(A, W, work, z, (z, bias, act_out, np.int64(codes.GELU), dtype(0), np.int64(0)), path)
        assert z.tobytes() == z_want.tobytes() and act_out.tobytes() == a_want.tobytes(), path


def _one_and_two_threads():
    """Yields 1, then 2 where Numba allows two threads, with Numba's thread count set to
    it; restores the count afterwards."""
    before = numba.get_num_threads()
    try:
        for nthreads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(nthreads)
            yield nthreads
    finally:
        numba.set_num_threads(before)


# products at and above the parallel threshold (at two threads: the owned halves where both
# widths span more than one NR panel and the halves run direct, else the pair, as in W2's),
# ragged edges, several k blocks, and the matrix-vector shapes left to the single products;
# a few rows below the parallel threshold that the owned halves take (OWNED_MIN_FLOPS); below it
# too, the pair (W1's output layer; ragged) and a BLAS-sized one left to the single products
PAIR_SHAPES = [(64, 256, 256), (129, 257, 257), (33, 40, 770), (256, 1024, 1024), (300, 2, 2000), (512, 20, 256),
               (512, 256, 20), (1, 1030, 1030), (1030, 1, 1030), (7, 17, 17), (8, 256, 256), (3, 250, 350),
               (128, 10, 256), (100, 30, 200), (64, 16, 256)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", PAIR_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_backward_grads_is_tn_and_nn_bitwise_at_any_thread_count(shape, dtype):
    """backward_grads = (matmul_tn, matmul_nn), bit for bit, at 1 and 2 threads (where
    2 runs the products side by side on the serial path), and matches the reference."""
    M, N, K = shape
    A, W, D = _operands(M, N, K, dtype, seed=2)
    work = np.empty(gemm.work_size(M, N, K), dtype)   # exactly work_size: serves the pair too
    want_dw = _run(gemm.matmul_tn, D, A, (N, K), dtype, M, N, K)
    want_da = _run(gemm.matmul_nn, D, W, (M, K), dtype, M, N, K)
    _check(want_dw, ref.matmul_tn(D, A), M, dtype)
    _check(want_da, ref.matmul_nn(D, W), N, dtype)
    for nthreads in _one_and_two_threads():
        dw = np.full((N, K), np.nan, dtype)
        da = np.full((M, K), np.nan, dtype)
        gemm.backward_grads(D, A, W, work, dw, da)
        assert dw.tobytes() == want_dw.tobytes(), nthreads
        assert da.tobytes() == want_da.tobytes(), nthreads


# the first layer's weight gradient: W1's (split into two direct chunks at float32), ragged rows
# and columns, a batch above KC (packed), widths the row halves leave to matmul_tn, and a few
# rows below the parallel threshold that the row halves take (OWNED_MIN_FLOPS)
WEIGHT_GRAD_SHAPES = [(128, 256, 784), (129, 257, 257), (33, 40, 770), (600, 70, 90), (300, 2, 2000),
                      (64, 256, 256), (7, 17, 17), (4, 256, 300), (5, 97, 600)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", WEIGHT_GRAD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_weight_grad_is_tn_bitwise_at_any_thread_count(shape, dtype):
    """weight_grad = matmul_tn, bit for bit, at 1 and 2 threads (where 2 splits dW's rows)."""
    M, N, K = shape
    A, _, D = _operands(M, N, K, dtype, seed=3)
    work = np.empty(gemm.work_size(M, N, K), dtype)   # exactly work_size: serves the row halves too
    want = _run(gemm.matmul_tn, D, A, (N, K), dtype, M, N, K)
    _check(want, ref.matmul_tn(D, A), M, dtype)
    for nthreads in _one_and_two_threads():
        dw = np.full((N, K), np.nan, dtype)
        gemm.weight_grad(D, A, work, dw)
        assert dw.tobytes() == want.tobytes(), nthreads


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["ukr_6x16", "ukr_6x16_halves", "ukr_8x32", "ukr_8x32_halves"])
def test_register_tiles_match_reference(name, dtype):
    """Every generated tile, including those this CPU's gemm does not use (in float32 only:
    a float64 version costs CI a compile of ~11 s, and a tile's code does not depend on
    the dtype); the two forms of each tile give the same bits (compared in float32, for
    the same reason)."""
    from fastbp.kernels import microkernels
    ukr = getattr(microkernels, name)
    mr, nr = (int(v) for v in name.split("_")[1].split("x"))
    used = ukr is (gemm._UKR_F64 if dtype == np.float64 else gemm._UKR_F32)
    if not used and dtype == np.float64:
        pytest.skip("tiles this CPU does not use are checked in float32")
    tile_out = getattr(microkernels, f"tile_out_{nr}")
    rng = np.random.default_rng(nr)
    for kc in (1, 2, 7, 256):
        Ap = rng.standard_normal(3 + mr * kc).astype(dtype)      # panels at odd offsets
        Bp = rng.standard_normal(5 + nr * kc).astype(dtype)
        T = np.full(1 + mr * nr, np.nan, dtype)
        ukr(kc, Ap, 3, Bp, 5, T, 1)
        want = Ap[3:].reshape(kc, mr).T.astype(np.float64) @ Bp[5:].reshape(kc, nr).astype(np.float64)
        _check(T[1:].reshape(mr, nr), want, kc, dtype)
        if name.endswith("_halves") and dtype == np.float32:
            one_pass = np.full_like(T, np.nan)
            getattr(microkernels, name.replace("_halves", ""))(kc, Ap, 3, Bp, 5, one_pass, 1)
            np.testing.assert_array_equal(T, one_pass)
        ldc = nr + 3
        C = rng.standard_normal(2 + mr * ldc).astype(dtype)
        before = C.copy()
        tile_out(T, 1, C, 2, ldc, True)
        rows = C[2:].reshape(mr, ldc)
        np.testing.assert_array_equal(rows[:, :nr], before[2:].reshape(mr, ldc)[:, :nr] + T[1:].reshape(mr, nr))
        np.testing.assert_array_equal(rows[:, nr:], before[2:].reshape(mr, ldc)[:, nr:])   # untouched
        tile_out(T, 1, C, 2, ldc, False)
        np.testing.assert_array_equal(C[2:].reshape(mr, ldc)[:, :nr], T[1:].reshape(mr, nr))
        assert C[0] == before[0] and C[1] == before[1]


@pytest.mark.parametrize("name", ["ukr_6x16_direct", "ukr_6x16_halves_direct", "ukr_8x32_direct",
                                  "ukr_8x32_halves_direct"])
def test_direct_tiles_are_the_packed_tiles_on_strided_operands(name):
    """Each tile that reads its operands in place (``_gemm_direct``) gives the packed tile's
    bits on the same numbers, whether they lie as packed panels or as strided rows and
    columns, and matches the reference (float32, as the packed tiles' test)."""
    from fastbp.kernels import microkernels
    direct = getattr(microkernels, name)
    packed = getattr(microkernels, name.replace("_direct", ""))
    mr, nr = (int(v) for v in name.split("_")[1].split("x"))
    rng = np.random.default_rng(mr)
    for kc in (1, 2, 7, 64):
        Ap = rng.standard_normal(3 + mr * kc).astype(np.float32)
        Bp = rng.standard_normal(5 + nr * kc).astype(np.float32)
        want_bits = np.full(1 + mr * nr, np.nan, np.float32)
        packed(kc, Ap, 3, Bp, 5, want_bits, 1)
        # the packed panels read through strides: A (i, p) at 3 + p*mr + i, B (p, j) at 5 + p*nr + j
        T = np.full_like(want_bits, np.nan)
        direct(kc, Ap, 3, 1, mr, Bp, 5, nr, T, 1)
        np.testing.assert_array_equal(T, want_bits)
        # the same numbers as row-major A (mr, kc) with rows kc + 2 apart and B (kc, nr) with rows nr + 3 apart
        A = np.zeros((mr, kc + 2), np.float32)
        A[:, :kc] = Ap[3:].reshape(kc, mr).T
        B = np.zeros((kc, nr + 3), np.float32)
        B[:, 1:nr + 1] = Bp[5:].reshape(kc, nr)
        T = np.full_like(want_bits, np.nan)
        direct(kc, A.reshape(-1), 0, kc + 2, 1, B.reshape(-1), 1, nr + 3, T, 1)
        np.testing.assert_array_equal(T, want_bits)
        # and A transposed in memory: (i, p) at p*(mr + 1) + i
        At = np.zeros((kc, mr + 1), np.float32)
        At[:, :mr] = A[:, :kc].T
        T = np.full_like(want_bits, np.nan)
        direct(kc, At.reshape(-1), 0, 1, mr + 1, B.reshape(-1), 1, nr + 3, T, 1)
        np.testing.assert_array_equal(T, want_bits)
        _check(T[1:].reshape(mr, nr), A[:, :kc].astype(np.float64) @ B[:, 1:nr + 1].astype(np.float64), kc,
               np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(64, 256, 256), (13, 70, 41), (6, 96, 256), (9, 33, 512), (3, 5, 2), (512, 8, 16)],
                         ids=lambda s: "x".join(map(str, s)))
def test_direct_path_gives_the_packed_bits(shape, dtype):
    """The serial path's direct form (one k block, B's rows contiguous: tn and nn; nothing
    packed but ragged edge panels) against the parallel path, which always packs: the same
    bits, with ragged rows and columns and exactly work_size scratch; and the reference."""
    M, N, K = shape
    A, W, D = _operands(M, N, K, dtype, seed=5)
    work = np.empty(gemm.work_size(M, N, K), dtype)
    # every shape here is one whose tn product (k = M, B = A: M x K) takes the direct form
    # where the tile has it (8x32; the 6x16 tile packs: DIRECT_MAX_B_BYTES is 0)
    if gemm.MR == 8:
        assert gemm._direct(M, K, 1, np.dtype(dtype).itemsize)
    for product, out_shape, want, depth in (
            (lambda out, path: gemm.own_tn(D, A, work, out, path), (N, K), ref.matmul_tn(D, A), M),
            (lambda out, path: gemm.own_nn(D, W, work, out, path), (M, K), ref.matmul_nn(D, W), N)):
        got, packed = np.full(out_shape, np.nan, dtype), np.full(out_shape, np.nan, dtype)
        product(got, SERIAL)
        product(packed, PARALLEL)
        assert got.tobytes() == packed.tobytes(), out_shape
        _check(got, want, depth, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(64, 256, 256), (250, 70, 41), (32, 1, 7), (250, 13, 512), (125, 10, 300),
                                   (128, 256, 256), (64, 256, 784), (125, 13, 785), (32, 70, 1100)],
                         ids=lambda s: "x".join(map(str, s)))
def test_transposed_forward_gives_the_packed_bits(shape, dtype):
    """The serial path's transposed form of the forward product (C = A·Wᵀ as Cᵀ = W·Aᵀ, W
    read in place: rows filling 32-row panels but for at most 1/32 of padding; k in one
    block, or in two or three with A's panels within ``TRANSPOSED_MAX_A``, odd k splitting
    unevenly) against the parallel path, which packs both operands: the same bits, with
    ragged outputs (N % 8) and rows (M % 32), exactly work_size scratch, with and without a
    bias + activation epilogue; and the reference."""
    from fastbp.kernels import activations, codes
    M, N, K = shape
    A, W, _ = _operands(M, N, K, dtype, seed=7)
    work = np.empty(gemm.work_size(M, N, K), dtype)
    if gemm.MR == 8:
        assert gemm._transposed(M, K, 1, K)
        # rows that would pad the last panel by more than 1/32 go to the packed paths
        assert not gemm._transposed(M - M % 32 + 33, K, 1, K) and not gemm._transposed(31, K, 1, K)
    got, packed = np.full((M, N), np.nan, dtype), np.full((M, N), np.nan, dtype)
    gemm.own_nt(A, W, work, got, _no_epilogue(got), SERIAL)
    gemm.own_nt(A, W, work, packed, _no_epilogue(packed), PARALLEL)
    assert got.tobytes() == packed.tobytes()
    _check(got, ref.matmul_nt(A, W), K, dtype)
    bias = np.linspace(-1, 1, N).astype(dtype)
    a_want = np.empty((M, N), dtype)
    activations.bias_act_forward(packed, bias, codes.RELU, dtype(0), a_want)
    z, act_out = np.full((M, N), np.nan, dtype), np.full((M, N), np.nan, dtype)
    gemm.own_nt(A, W, work, z, (z, bias, act_out, np.int64(codes.RELU), dtype(0), np.int64(0)), SERIAL)
    assert z.tobytes() == packed.tobytes() and act_out.tobytes() == a_want.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_transposed_pack_matches_numpy(dtype):
    """``_pack`` of a row-major block into W-wide panels: the 8x8 register transposes (whole
    blocks of 8 rows) and the scalar rest (rows below them, columns beyond the last whole 8),
    at offsets that are not multiples of 8; rows past ``nrows`` are zeroed, nothing else
    outside the panel is written."""
    rng = np.random.default_rng(3)
    src = rng.standard_normal((27, 300)).astype(dtype)
    flat = src.ravel()
    for nrows, W in [(16, 16), (8, 16), (8, 8), (24, 32), (6, 6), (11, 16), (10, 16), (19, 32), (7, 16),
                      (1, 16)]:
        for ncols in (1, 7, 8, 9, 17, 256, 297):
            r0, c0, doff = 2, 3, 5
            dst = np.full(doff + W * ncols + 4, -7.0, dtype)
            gemm._pack(flat, src.shape[1], 1, r0, nrows, c0, ncols, dst, doff, W)
            want = np.zeros((ncols, W), dtype)
            want[:, :nrows] = src[r0:r0 + nrows, c0:c0 + ncols].T
            np.testing.assert_array_equal(dst[doff:doff + W * ncols].reshape(ncols, W), want)
            assert (dst[:doff] == -7).all() and (dst[doff + W * ncols:] == -7).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_grouped_b_pack_is_the_panel_by_panel_pack(dtype):
    """The serial path packs a k block's whole B panels in groups, row by row, when B's
    rows are contiguous (``_pack_b_block``): the same panels as one ``_pack_b_panel``
    after another, for group counts that do not divide the panels, a ragged last panel,
    an offset k block, and B with strided rows (no grouping)."""
    rng = np.random.default_rng(5)
    nr, group = gemm.NR, gemm.PACK_GROUP
    for n in (1, nr - 1, nr, nr + 3, 3 * nr, (group + 1) * nr + 5, (2 * group + 3) * nr):
        for contiguous in (True, False):
            k, p0, kc = 40, 3, 29
            src = rng.standard_normal((k, n) if contiguous else (n, k)).astype(dtype)
            brs, bcs = (n, 1) if contiguous else (1, k)
            panels = gemm._cdiv(n, nr)
            want = np.full(panels * nr * kc + 8, -7.0, dtype)
            for jp in range(panels):
                gemm._pack_b_panel(jp, n, p0, kc, src.ravel(), brs, bcs, want, 5)
            got = np.full_like(want, -7.0)
            gemm._pack_b_block(n, p0, kc, src.ravel(), brs, bcs, got, 5)
            np.testing.assert_array_equal(got, want)
            B = src if contiguous else src.T                   # B (k, n)
            laid = want[5:5 + panels * nr * kc].reshape(panels, kc, nr)
            np.testing.assert_array_equal(np.hstack(laid)[:, :n], B[p0:p0 + kc])


def test_tile_width_follows_the_vector_width():
    from fastbp._jit import VECTOR_BITS
    assert gemm.NR == (32 if VECTOR_BITS >= 512 else 16)


# serial, two-thread halves (two shapes), parallel at 2 threads (one column panel),
# dots (batch 1 and a few rows), BLAS-sized, empty reduction; packed over two k blocks
# with ragged row and column panels (the per-tile epilogue; on AVX-512 one k block
# of these shapes runs the direct or transposed form instead)
EPILOGUE_SHAPES = [(7, 33, 17), (129, 257, 257), (400, 520, 300), (400, 13, 300), (1, 301, 700), (1, 20, 9),
                   (6, 301, 700), (33, 40, 70), (5, 9, 0), (131, 70, 600)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", EPILOGUE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_fused_bias_activation_is_the_unfused_forward_bitwise(shape, dtype):
    """matmul_nt_bias_act = matmul_nt then bias_act_forward, bit for bit, for every
    activation, with and without bias, into a separate A and in place, at 1 and 2 threads."""
    from fastbp.kernels import activations, codes
    M, N, K = shape
    A, W, _ = _operands(M, N, K, dtype, seed=5)
    bias = np.random.default_rng(6).standard_normal(N).astype(dtype)
    work = np.empty(gemm.work_size(M, N, max(K, 1)), dtype)
    acts = [codes.IDENTITY, codes.RELU, codes.LEAKY_RELU, codes.ELU, codes.GELU, codes.GELU_TANH,
            codes.SILU, codes.SIGMOID, codes.TANH, codes.SOFTPLUS]
    alpha = dtype(0.1)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            for act in acts:
                for b in (bias, bias[:0]):
                    z_want = np.empty((M, N), dtype)
                    a_want = np.empty((M, N), dtype)
                    gemm.matmul_nt(A, W, work, z_want)
                    activations.bias_act_forward(z_want, b, act, alpha, a_want)
                    z, a = np.full((M, N), np.nan, dtype), np.full((M, N), np.nan, dtype)
                    gemm.matmul_nt_bias_act(A, W, b, act, alpha, work, z, a)
                    assert z.tobytes() == z_want.tobytes() and a.tobytes() == a_want.tobytes(), (act, threads)
                    gemm.matmul_nt_bias_act(A, W, b, act, alpha, work, z, z)     # in place
                    assert z.tobytes() == a_want.tobytes(), (act, threads)
    finally:
        numba.set_num_threads(before)
    # and the values: ReLU with bias against the reference
    z, a = np.empty((M, N), dtype), np.empty((M, N), dtype)
    gemm.matmul_nt_bias_act(A, W, bias, codes.RELU, alpha, work, z, a)
    _check(a, np.maximum(ref.matmul_nt(A, W) + bias, 0), max(K, 1), dtype)


def test_work_size_serves_all_products_and_is_zero_for_empty():
    assert gemm.work_size(0, 5, 5) == 0
    for M, N, K in SHAPES:
        s = gemm.work_size(M, N, K)
        assert s >= 0 and isinstance(s, int)
        # gemm._blas_nt transposes W (N x K) into the scratch, unchecked
        assert s >= N * K


@pytest.mark.parametrize("path", [SERIAL, HALVES, PARALLEL])
def test_short_work_raises_before_writing(path):
    """A scratch buffer shorter than the path needs is refused (it used to corrupt the heap)."""
    M, N, K = 64, 96, 80
    A, W, D = _operands(M, N, K, np.float32)
    short = np.empty(gemm.work_size(1, N, K) // 4, np.float32)
    z = np.full((M, N), 7, np.float32)
    with pytest.raises(ValueError, match="work"):
        gemm.own_nt(A, W, short, z, gemm._no_epilogue(z), path)
    assert (z == 7).all()
    with pytest.raises(ValueError, match="work"):
        gemm.own_tn(D, A, short, np.empty((N, K), np.float32), path)
    with pytest.raises(ValueError, match="work"):
        gemm.own_nn(D, W, short, np.empty((M, K), np.float32), path)


def test_short_work_raises_in_the_blas_and_paired_products():
    M, N, K = 16, 32, 24   # BLAS, W transposed into the scratch on AVX-512 (checked on every CPU)
    A, W, _ = _operands(M, N, K, np.float32)
    with pytest.raises(ValueError, match="work"):
        gemm.matmul_nt(A, W, np.empty(N * K - 1, np.float32), np.empty((M, N), np.float32))
    M, N, K = 64, 256, 256   # at two threads: the two backward products side by side
    A, W, D = _operands(M, N, K, np.float32)
    old = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        with pytest.raises(ValueError, match="work"):
            gemm.backward_grads(D, A, W, np.empty(1000, np.float32), np.empty((N, K), np.float32),
                                np.empty((M, K), np.float32))
        with pytest.raises(ValueError, match="work"):     # the first layer's weight gradient in row halves
            gemm.weight_grad(D, A, np.empty(1000, np.float32), np.empty((N, K), np.float32))
    finally:
        numba.set_num_threads(old)


def test_bias_act_checks_bias_and_output_shapes():
    M, N, K = 5, 7, 3
    A, W, _ = _operands(M, N, K, np.float64)
    work = np.empty(gemm.work_size(M, N, K))
    z = np.empty((M, N))
    with pytest.raises(ValueError, match="bias"):
        gemm.matmul_nt_bias_act(A, W, np.zeros(N - 1), 0, 0.0, work, z, z)
    with pytest.raises(ValueError, match="Aout"):
        gemm.matmul_nt_bias_act(A, W, np.zeros(N), 0, 0.0, work, z, np.empty((M, N - 1)))


def test_empty_reduction_writes_zeros():
    A = np.ones((3, 0), np.float64)
    W = np.ones((4, 0), np.float64)
    out = np.full((3, 4), np.nan)
    gemm.matmul_nt(A, W, np.empty(gemm.work_size(3, 4, 1)), out)
    assert (out == 0).all()


def test_callable_from_njit():
    @numba.njit
    def layer_pass(A, W, D, work, z, dw, da):
        gemm.matmul_nt(A, W, work, z)
        gemm.matmul_tn(D, A, work, dw)
        gemm.matmul_nn(D, W, work, da)

    M, N, K = 9, 20, 33
    A, W, D = _operands(M, N, K, np.float64)
    z, dw, da = np.empty((M, N)), np.empty((N, K)), np.empty((M, K))
    layer_pass(A, W, D, np.empty(gemm.work_size(M, N, K)), z, dw, da)
    _check(z, ref.matmul_nt(A, W), K, np.float64)
    _check(dw, ref.matmul_tn(D, A), M, np.float64)
    _check(da, ref.matmul_nn(D, W), N, np.float64)


def test_no_allocations_in_steady_state():
    """Run in a subprocess: NRT statistics need NUMBA_NRT_STATS=1 before Numba is imported."""
    code = textwrap.dedent("""
        import numba
        import numpy as np
        from numba.core.runtime import rtsys
        from fastbp.kernels import gemm

        @numba.njit
        def steps(A, W, D, work, z, dw, da, reps):
            for _ in range(reps):
                gemm.matmul_nt(A, W, work, z)
                gemm.matmul_tn(D, A, work, dw)
                gemm.matmul_nn(D, W, work, da)

        for (M, N, K) in [(1, 10, 64), (1, 300, 700), (32, 64, 64), (256, 300, 700)]:
            A = np.ones((M, K), np.float32); W = np.ones((N, K), np.float32); D = np.ones((M, N), np.float32)
            work = np.empty(gemm.work_size(M, N, K), np.float32)
            z = np.empty((M, N), np.float32); dw = np.empty((N, K), np.float32); da = np.empty((M, K), np.float32)
            args = (A, W, D, work, z, dw, da)
            steps(*args, 1)
            s0 = rtsys.get_allocation_stats()
            steps(*args, 1)   # the call itself (unboxing) may allocate meminfos ...
            s1 = rtsys.get_allocation_stats()
            steps(*args, 5)   # ... but the kernels must not: 5 steps cost what 1 does
            s2 = rtsys.get_allocation_stats()
            assert s2.alloc - s1.alloc == s1.alloc - s0.alloc, (M, N, K, s0, s1, s2)
        print("OK")
    """)
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]


@pytest.mark.skipif(not gemm.BLAS_SMALL, reason="the BLAS path needs SciPy and FASTBP_GEMM=auto")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_blas_forward_of_wide_layers_runs_on_transposed_weights(dtype):
    """From BLAS_NT_MIN_ROWS rows and BLAS_NT_MIN_OUT outputs the BLAS forward product
    transposes W into ``work`` first (NOTES section 42) where ``BLAS_NT_TRANSPOSE`` (AVX-512);
    narrower layers, and every layer without it, do not touch ``work``."""
    for M, N, K, transposed in [(33, 70, 41, True), (gemm.BLAS_NT_MIN_ROWS, gemm.BLAS_NT_MIN_OUT, 9, True),
                                (33, gemm.BLAS_NT_MIN_OUT - 1, 41, False), (gemm.BLAS_NT_MIN_ROWS - 1, 70, 41, False)]:
        A, W, _ = _operands(M, N, K, dtype, seed=2)
        work = np.full(gemm.work_size(M, N, K), np.nan, dtype)
        out = np.full((M, N), np.nan, dtype)
        gemm.matmul_nt(A, W, work, out)
        _check(out, ref.matmul_nt(A, W), K, dtype)
        if transposed and gemm.BLAS_NT_TRANSPOSE:
            assert np.array_equal(work[:N * K].reshape(K, N), W.T)
        else:
            assert np.isnan(work).all()


def test_serial_path_compiles_only_the_forms_this_cpu_uses():
    """``_gemm_serial`` branches on the compile-time switches ``USE_DIRECT`` and
    ``USE_TRANSPOSED`` first, so Numba prunes the forms a CPU never runs before typing: on
    AVX2 neither the direct nor the transposed form (nor their tile) is compiled, nor linked
    into every entry point above them (NOTES section 56).  Where they run, they are one
    leaf called by symbol (``_gemm_unpacked_linked``), not code of the caller's."""
    one, eight = np.int64(1), np.int64(8)
    A, C = np.ones(64, np.float32), np.zeros(64, np.float32)
    work = np.empty(gemm.work_size(8, 8, 8), np.float32)
    fresh = numba.njit(cache=False)(gemm._gemm_serial.py_func)
    fresh(eight, eight, eight, A, eight, one, A, eight, one, C, eight, work, gemm._no_epilogue(C.reshape(8, 8)))
    typemap = fresh.overloads[fresh.signatures[0]].type_annotation.typemap
    called = {t.dispatcher.py_func.__name__ for t in typemap.values() if hasattr(t, "dispatcher")}
    leaves = {t.typing_key for t in typemap.values() if isinstance(t, numba.types.Function)}
    assert "_gemm_packed" in called
    assert not {"_gemm_direct", "_gemm_transposed"} & called
    assert ("_direct" in called) == gemm.USE_DIRECT
    assert ("_transposed" in called) == gemm.USE_TRANSPOSED
    assert (gemm._gemm_unpacked_linked in leaves) == (gemm.USE_DIRECT or gemm.USE_TRANSPOSED)
    np.testing.assert_array_equal(C, np.full(64, 8, np.float32))


@pytest.mark.parametrize("mp, np_, threads", [(8, 8, 16), (11, 16, 16), (2, 2, 16), (1, 1, 4), (32, 32, 16),
                                              (3, 40, 64), (40, 3, 64), (5, 7, 2), (8, 8, 1)])
def test_parallel_tasks_cover_every_tile_once_and_reach_the_thread_count(mp, np_, threads):
    """``_task_panels`` shrinks the parallel path's tasks from MC x NC panels only as far as it
    takes to give every thread one (or to one tile a task); ``_task_block`` tiles the grid."""
    mc, nc = gemm._task_panels(mp, np_, threads)
    tasks = -(-mp // mc) * -(-np_ // nc)
    assert 1 <= mc <= gemm.MC_PANELS and 1 <= nc <= gemm.NC_PANELS
    assert tasks >= threads or (mc, nc) == (1, 1)
    if (mc, nc) != (gemm.MC_PANELS, gemm.NC_PANELS):
        # one halving less would leave a thread without a task (columns are halved first:
        # (4, 4), (4, 2), (2, 2), (2, 1), (1, 1))
        bigger = (mc, 2 * nc) if mc > nc else (2 * mc, nc)
        assert -(-mp // bigger[0]) * -(-np_ // bigger[1]) < threads
    covered = np.zeros((mp, np_), np.int64)
    for t in range(tasks):
        ip0, ip1, jp0, jp1 = gemm._task_block(t, mp, np_, mc, nc)
        covered[ip0:ip1, jp0:jp1] += 1
    assert (covered == 1).all()
