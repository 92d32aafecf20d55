"""The three products of a dense layer, as packed, register-tiled Numba GEMMs.

``W`` has shape ``(out, in)`` like ``torch.nn.Linear.weight``:

* ``matmul_nt(A, W, work, out)``: ``out = A @ W.T``  (forward, ``Z = A Wᵀ``)
* ``matmul_tn(D, A, work, out)``: ``out = D.T @ A``  (weight gradient ``δᵀ A``)
* ``matmul_nn(D, W, work, out)``: ``out = D @ W``    (input gradient ``δ W``)

All three reduce to one core, ``C (m, n) = op(A) (m, k) · op(B) (k, n)`` over flat
arrays with (row, column) strides, so transposes cost nothing but a packing order.
The core (BLIS style): the k range is cut into balanced blocks of at most ``KC``;
per block, A is packed into ``MR``-row micro-panels and B into ``NR``-column
micro-panels (zero padded, so every tile runs the same full micro-kernel), then a
``prange`` over (row block, column block) tasks runs the ``MR x NR`` register-tile
micro-kernel ``_ukr``, which accumulates across k in registers (generated code,
see ``benchmarks/NOTES.md``).  The first k block writes ``C``, later ones add to it.
The parallel path (above ``PAR_FLOPS``) opens two ``prange`` regions per product
whatever k is: one packs the panels of every k block (threads claim panels from an
atomic counter, since B panels are NR/MR times larger than A's: NOTES section 18),
one runs the output-block tasks, each looping over all k blocks in order (NOTES
section 10).  At exactly two threads, parallel products up to ``HALVES_MAX_FLOPS``
split C's columns between the threads instead, each running the serial path on its
half (NOTES section 20), and ``backward_grads`` runs a layer's two backward
products side by side, one per thread (section 19).

Determinism: every element of ``C`` is computed by one micro-kernel call per k
block, over the k blocks in a fixed order, and the k blocking depends on k alone;
so every path (serial, parallel, halves, pair) gives the same bits and results
are bitwise identical for any number of threads.

Small products go to BLAS instead when ``BLAS_SMALL`` (SciPy installed and
``FASTBP_GEMM`` not ``own``): ``np.dot`` in compiled code, which Numba routes to
SciPy's OpenBLAS, for batch > 1 and ``M*N*K <= BLAS_MAX_MNK`` — sizes where
OpenBLAS's small-matrix kernels beat the packed path 1.4-2.5x and that it runs
on the calling thread (NOTES section 15).

``work`` is a 1-D scratch buffer of the arrays' dtype, at least ``work_size(M, N,
K)`` long for a layer with ``in = K``, ``out = N``, batch ``M``: one size serves
all three products.  The kernels allocate nothing.
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
# numba.get_num_threads() in compiled code calls through a ctypes pointer, which keeps
# every caller out of the cache; this is the intrinsic Numba's own parfor code uses
# (a call of the threading layer's get_num_threads symbol)
from numba.np.ufunc.parallel import _iget_num_threads as _num_threads

from fastbp._jit import BLAS_SMALL, FASTMATH_REDUCE, jit, jit_parallel, prange
from fastbp.kernels import fpenv

MR = 6               # micro-tile rows (register tile; regenerate _ukr to change)
NR = 32              # micro-tile columns (two zmm vectors of float32)
KC = 256             # maximum k block (packed B micro-panel NR*KC*4 B = 32 KiB, fits L1)
MC_PANELS = 4        # row micro-panels per parallel task (NOTES section 13)
NC_PANELS = 4        # column micro-panels per parallel task
ALIGN = 16           # elements of slack to align packed panels to 64 bytes
PAR_FLOPS = 2000000   # 2*m*n*k below this runs serially (thread launch dominates)
BLAS_MAX_MNK = 262144   # M*N*K up to which products may go to BLAS (OpenBLAS: one thread)
GEMV_ROWS = 64       # outputs per parallel task of the batch-1 (dot) path (a multiple of 4)
HALVES_MAX_FLOPS = 100000000  # at 2 threads, parallel products up to here split C's columns (NOTES 20)
GEMV_PAR_FLOPS = 300000  # the dot path runs in parallel from here (it is memory-bound: NOTES 12)
GEMV_COLS = 256      # outputs per parallel task of the batch-1 (axpy) path
MAX_SLOTS = 64       # most threads a dynamically scheduled region uses (each claims tasks until none are left)
# backward_grads' pair runs products above PAR_FLOPS on the packed core at 2 threads; they must
# never be ones that matmul_tn/matmul_nn would hand to BLAS, or 1 and 2 threads would differ
assert 2 * BLAS_MAX_MNK < PAR_FLOPS, "BLAS-sized products must stay below the parallel threshold"


@intrinsic
def _wide_vectors(typingctx):
    """Let LLVM use 512-bit vectors in the calling function (a no-op at run time).

    On AVX-512 CPUs (this machine: Emerald Rapids) LLVM's X86 tuning prefers
    256-bit vectors, so the SLP-vectorized micro-kernel used ymm registers and
    ran at half of OpenBLAS's zmm kernel.  These two function attributes (what
    clang's ``-mprefer-vector-width=512`` sets) lift that for the micro-kernel
    only; ``noinline`` keeps it a function of its own so the attributes stay
    with its code.  Without AVX-512 the attributes change nothing.
    """
    def codegen(context, builder, sig, args):
        attrs = builder.function.attributes
        # llvmlite validates attribute names against a fixed list; string
        # attributes are valid LLVM IR, so add them to the underlying set.
        set.add(attrs, '"prefer-vector-width"="512"')
        set.add(attrs, '"min-legal-vector-width"="512"')
        attrs.add("noinline")
        return context.get_dummy_value()
    return types.none(), codegen


@intrinsic
def _claim(typingctx, work, pos):
    """Atomically ``c = counter; counter += 1; return c`` for the int32 counter stored in
    the bytes of ``work[pos]`` (zeroed by writing 0.0 there before the parallel region).

    Lets the parallel regions hand out tasks dynamically: a thread that is late (or
    whose tasks are larger) takes fewer; which thread runs a task does not change
    its arithmetic, so results stay bitwise identical."""
    if not (isinstance(work, types.Array) and isinstance(pos, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]], wraparound=False)
        counter = builder.bitcast(ptr, ir.PointerType(ir.IntType(32)))
        old = builder.atomic_rmw("add", counter, ir.Constant(ir.IntType(32), 1), "monotonic")
        return builder.sext(old, ir.IntType(64))
    return types.int64(work, pos), codegen


@jit
def _cdiv(a, b):
    return (a + b - 1) // b


@jit
def _kblocks(k):
    """Number of k blocks and their maximum length (balanced; depends on k only)."""
    nkb = _cdiv(k, KC)
    return nkb, _cdiv(k, nkb)


@jit
def _serial_size(m, n, k):
    """Scratch of the serial path: one k block's panels, aligned, and the edge tiles."""
    nkb, kcmax = _kblocks(k)
    return ALIGN + _cdiv(m, MR) * MR * kcmax + _cdiv(n, NR) * NR * kcmax + ALIGN + _ntasks(m, n) * MR * NR


@jit
def _split_at(n):
    """Where ``_gemm_halves`` splits n columns: half the NR-wide panels, rounded up
    (n itself when there is one panel: the second half is then empty)."""
    return min(n, _cdiv(_cdiv(n, NR), 2) * NR)


@jit
def _halves_size(m, n, k):
    """Scratch of ``_gemm_halves``: the serial path's for each half, one after the other."""
    n0 = _split_at(n)
    return _serial_size(m, n0, k) + _serial_size(m, n - n0, k)


@jit
def _core_size(m, n, k):
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    # the parallel path packs every k block up front: A and B panels over all of k
    parallel = ALIGN + mp * MR * k + np_ * NR * k + ALIGN + _ntasks(m, n) * MR * NR + 1
    return max(_serial_size(m, n, k), _halves_size(m, n, k), parallel)


@jit
def _ntasks(m, n):
    return _cdiv(_cdiv(m, MR), MC_PANELS) * _cdiv(_cdiv(n, NR), NC_PANELS)


@jit
def work_size(M, N, K):
    """Scratch length (elements) that serves matmul_nt, matmul_tn and matmul_nn of one layer.

    Layer: batch ``M``, ``in = K``, ``out = N`` (``W`` is ``(N, K)``).  The three
    products are the cores (m, n, k) = (M, N, K), (N, K, M) and (M, K, N).
    """
    if M <= 0 or N <= 0 or K <= 0:
        return 0
    s = _core_size(M, N, K)
    s = max(s, _core_size(N, K, M))
    s = max(s, _core_size(M, K, N))
    # backward_grads' pair: the serial tn and nn paths side by side
    return max(s, _serial_size(N, K, M) + _serial_size(M, K, N))



# ---- generated (generator in benchmarks/NOTES.md): the MR x NR register tile ----
_U = np.arange(33, dtype=np.uint64)  # unsigned offsets: no wraparound code on loads


@jit
def _ukr(kc, Ap, ao, Bp, bo, C, co, ldc, add):
    """C[co + i*ldc + j] (=|+=) sum_p Ap[ao + p*6 + i] * Bp[bo + p*32 + j], a 6x32 register tile.

    Generated (see benchmarks/NOTES.md).  Indices are uint64 so Numba emits no
    negative-index wraparound selects (which made LLVM gather instead of load).
    """
    _wide_vectors()
    pa = np.uint64(ao)
    pb = np.uint64(bo)
    # k = 0 peeled: initialises the accumulators in the arrays' dtype (no float64 literal)
    a0 = Ap[pa]
    a1 = Ap[pa + _U[1]]
    a2 = Ap[pa + _U[2]]
    a3 = Ap[pa + _U[3]]
    a4 = Ap[pa + _U[4]]
    a5 = Ap[pa + _U[5]]
    b0 = Bp[pb]
    b1 = Bp[pb + _U[1]]
    b2 = Bp[pb + _U[2]]
    b3 = Bp[pb + _U[3]]
    b4 = Bp[pb + _U[4]]
    b5 = Bp[pb + _U[5]]
    b6 = Bp[pb + _U[6]]
    b7 = Bp[pb + _U[7]]
    b8 = Bp[pb + _U[8]]
    b9 = Bp[pb + _U[9]]
    b10 = Bp[pb + _U[10]]
    b11 = Bp[pb + _U[11]]
    b12 = Bp[pb + _U[12]]
    b13 = Bp[pb + _U[13]]
    b14 = Bp[pb + _U[14]]
    b15 = Bp[pb + _U[15]]
    b16 = Bp[pb + _U[16]]
    b17 = Bp[pb + _U[17]]
    b18 = Bp[pb + _U[18]]
    b19 = Bp[pb + _U[19]]
    b20 = Bp[pb + _U[20]]
    b21 = Bp[pb + _U[21]]
    b22 = Bp[pb + _U[22]]
    b23 = Bp[pb + _U[23]]
    b24 = Bp[pb + _U[24]]
    b25 = Bp[pb + _U[25]]
    b26 = Bp[pb + _U[26]]
    b27 = Bp[pb + _U[27]]
    b28 = Bp[pb + _U[28]]
    b29 = Bp[pb + _U[29]]
    b30 = Bp[pb + _U[30]]
    b31 = Bp[pb + _U[31]]
    c0_0 = a0 * b0
    c0_1 = a0 * b1
    c0_2 = a0 * b2
    c0_3 = a0 * b3
    c0_4 = a0 * b4
    c0_5 = a0 * b5
    c0_6 = a0 * b6
    c0_7 = a0 * b7
    c0_8 = a0 * b8
    c0_9 = a0 * b9
    c0_10 = a0 * b10
    c0_11 = a0 * b11
    c0_12 = a0 * b12
    c0_13 = a0 * b13
    c0_14 = a0 * b14
    c0_15 = a0 * b15
    c0_16 = a0 * b16
    c0_17 = a0 * b17
    c0_18 = a0 * b18
    c0_19 = a0 * b19
    c0_20 = a0 * b20
    c0_21 = a0 * b21
    c0_22 = a0 * b22
    c0_23 = a0 * b23
    c0_24 = a0 * b24
    c0_25 = a0 * b25
    c0_26 = a0 * b26
    c0_27 = a0 * b27
    c0_28 = a0 * b28
    c0_29 = a0 * b29
    c0_30 = a0 * b30
    c0_31 = a0 * b31
    c1_0 = a1 * b0
    c1_1 = a1 * b1
    c1_2 = a1 * b2
    c1_3 = a1 * b3
    c1_4 = a1 * b4
    c1_5 = a1 * b5
    c1_6 = a1 * b6
    c1_7 = a1 * b7
    c1_8 = a1 * b8
    c1_9 = a1 * b9
    c1_10 = a1 * b10
    c1_11 = a1 * b11
    c1_12 = a1 * b12
    c1_13 = a1 * b13
    c1_14 = a1 * b14
    c1_15 = a1 * b15
    c1_16 = a1 * b16
    c1_17 = a1 * b17
    c1_18 = a1 * b18
    c1_19 = a1 * b19
    c1_20 = a1 * b20
    c1_21 = a1 * b21
    c1_22 = a1 * b22
    c1_23 = a1 * b23
    c1_24 = a1 * b24
    c1_25 = a1 * b25
    c1_26 = a1 * b26
    c1_27 = a1 * b27
    c1_28 = a1 * b28
    c1_29 = a1 * b29
    c1_30 = a1 * b30
    c1_31 = a1 * b31
    c2_0 = a2 * b0
    c2_1 = a2 * b1
    c2_2 = a2 * b2
    c2_3 = a2 * b3
    c2_4 = a2 * b4
    c2_5 = a2 * b5
    c2_6 = a2 * b6
    c2_7 = a2 * b7
    c2_8 = a2 * b8
    c2_9 = a2 * b9
    c2_10 = a2 * b10
    c2_11 = a2 * b11
    c2_12 = a2 * b12
    c2_13 = a2 * b13
    c2_14 = a2 * b14
    c2_15 = a2 * b15
    c2_16 = a2 * b16
    c2_17 = a2 * b17
    c2_18 = a2 * b18
    c2_19 = a2 * b19
    c2_20 = a2 * b20
    c2_21 = a2 * b21
    c2_22 = a2 * b22
    c2_23 = a2 * b23
    c2_24 = a2 * b24
    c2_25 = a2 * b25
    c2_26 = a2 * b26
    c2_27 = a2 * b27
    c2_28 = a2 * b28
    c2_29 = a2 * b29
    c2_30 = a2 * b30
    c2_31 = a2 * b31
    c3_0 = a3 * b0
    c3_1 = a3 * b1
    c3_2 = a3 * b2
    c3_3 = a3 * b3
    c3_4 = a3 * b4
    c3_5 = a3 * b5
    c3_6 = a3 * b6
    c3_7 = a3 * b7
    c3_8 = a3 * b8
    c3_9 = a3 * b9
    c3_10 = a3 * b10
    c3_11 = a3 * b11
    c3_12 = a3 * b12
    c3_13 = a3 * b13
    c3_14 = a3 * b14
    c3_15 = a3 * b15
    c3_16 = a3 * b16
    c3_17 = a3 * b17
    c3_18 = a3 * b18
    c3_19 = a3 * b19
    c3_20 = a3 * b20
    c3_21 = a3 * b21
    c3_22 = a3 * b22
    c3_23 = a3 * b23
    c3_24 = a3 * b24
    c3_25 = a3 * b25
    c3_26 = a3 * b26
    c3_27 = a3 * b27
    c3_28 = a3 * b28
    c3_29 = a3 * b29
    c3_30 = a3 * b30
    c3_31 = a3 * b31
    c4_0 = a4 * b0
    c4_1 = a4 * b1
    c4_2 = a4 * b2
    c4_3 = a4 * b3
    c4_4 = a4 * b4
    c4_5 = a4 * b5
    c4_6 = a4 * b6
    c4_7 = a4 * b7
    c4_8 = a4 * b8
    c4_9 = a4 * b9
    c4_10 = a4 * b10
    c4_11 = a4 * b11
    c4_12 = a4 * b12
    c4_13 = a4 * b13
    c4_14 = a4 * b14
    c4_15 = a4 * b15
    c4_16 = a4 * b16
    c4_17 = a4 * b17
    c4_18 = a4 * b18
    c4_19 = a4 * b19
    c4_20 = a4 * b20
    c4_21 = a4 * b21
    c4_22 = a4 * b22
    c4_23 = a4 * b23
    c4_24 = a4 * b24
    c4_25 = a4 * b25
    c4_26 = a4 * b26
    c4_27 = a4 * b27
    c4_28 = a4 * b28
    c4_29 = a4 * b29
    c4_30 = a4 * b30
    c4_31 = a4 * b31
    c5_0 = a5 * b0
    c5_1 = a5 * b1
    c5_2 = a5 * b2
    c5_3 = a5 * b3
    c5_4 = a5 * b4
    c5_5 = a5 * b5
    c5_6 = a5 * b6
    c5_7 = a5 * b7
    c5_8 = a5 * b8
    c5_9 = a5 * b9
    c5_10 = a5 * b10
    c5_11 = a5 * b11
    c5_12 = a5 * b12
    c5_13 = a5 * b13
    c5_14 = a5 * b14
    c5_15 = a5 * b15
    c5_16 = a5 * b16
    c5_17 = a5 * b17
    c5_18 = a5 * b18
    c5_19 = a5 * b19
    c5_20 = a5 * b20
    c5_21 = a5 * b21
    c5_22 = a5 * b22
    c5_23 = a5 * b23
    c5_24 = a5 * b24
    c5_25 = a5 * b25
    c5_26 = a5 * b26
    c5_27 = a5 * b27
    c5_28 = a5 * b28
    c5_29 = a5 * b29
    c5_30 = a5 * b30
    c5_31 = a5 * b31
    for _ in range(1, kc):
        pa += _U[6]
        pb += _U[32]
        a0 = Ap[pa]
        a1 = Ap[pa + _U[1]]
        a2 = Ap[pa + _U[2]]
        a3 = Ap[pa + _U[3]]
        a4 = Ap[pa + _U[4]]
        a5 = Ap[pa + _U[5]]
        b0 = Bp[pb]
        b1 = Bp[pb + _U[1]]
        b2 = Bp[pb + _U[2]]
        b3 = Bp[pb + _U[3]]
        b4 = Bp[pb + _U[4]]
        b5 = Bp[pb + _U[5]]
        b6 = Bp[pb + _U[6]]
        b7 = Bp[pb + _U[7]]
        b8 = Bp[pb + _U[8]]
        b9 = Bp[pb + _U[9]]
        b10 = Bp[pb + _U[10]]
        b11 = Bp[pb + _U[11]]
        b12 = Bp[pb + _U[12]]
        b13 = Bp[pb + _U[13]]
        b14 = Bp[pb + _U[14]]
        b15 = Bp[pb + _U[15]]
        b16 = Bp[pb + _U[16]]
        b17 = Bp[pb + _U[17]]
        b18 = Bp[pb + _U[18]]
        b19 = Bp[pb + _U[19]]
        b20 = Bp[pb + _U[20]]
        b21 = Bp[pb + _U[21]]
        b22 = Bp[pb + _U[22]]
        b23 = Bp[pb + _U[23]]
        b24 = Bp[pb + _U[24]]
        b25 = Bp[pb + _U[25]]
        b26 = Bp[pb + _U[26]]
        b27 = Bp[pb + _U[27]]
        b28 = Bp[pb + _U[28]]
        b29 = Bp[pb + _U[29]]
        b30 = Bp[pb + _U[30]]
        b31 = Bp[pb + _U[31]]
        c0_0 += a0 * b0
        c0_1 += a0 * b1
        c0_2 += a0 * b2
        c0_3 += a0 * b3
        c0_4 += a0 * b4
        c0_5 += a0 * b5
        c0_6 += a0 * b6
        c0_7 += a0 * b7
        c0_8 += a0 * b8
        c0_9 += a0 * b9
        c0_10 += a0 * b10
        c0_11 += a0 * b11
        c0_12 += a0 * b12
        c0_13 += a0 * b13
        c0_14 += a0 * b14
        c0_15 += a0 * b15
        c0_16 += a0 * b16
        c0_17 += a0 * b17
        c0_18 += a0 * b18
        c0_19 += a0 * b19
        c0_20 += a0 * b20
        c0_21 += a0 * b21
        c0_22 += a0 * b22
        c0_23 += a0 * b23
        c0_24 += a0 * b24
        c0_25 += a0 * b25
        c0_26 += a0 * b26
        c0_27 += a0 * b27
        c0_28 += a0 * b28
        c0_29 += a0 * b29
        c0_30 += a0 * b30
        c0_31 += a0 * b31
        c1_0 += a1 * b0
        c1_1 += a1 * b1
        c1_2 += a1 * b2
        c1_3 += a1 * b3
        c1_4 += a1 * b4
        c1_5 += a1 * b5
        c1_6 += a1 * b6
        c1_7 += a1 * b7
        c1_8 += a1 * b8
        c1_9 += a1 * b9
        c1_10 += a1 * b10
        c1_11 += a1 * b11
        c1_12 += a1 * b12
        c1_13 += a1 * b13
        c1_14 += a1 * b14
        c1_15 += a1 * b15
        c1_16 += a1 * b16
        c1_17 += a1 * b17
        c1_18 += a1 * b18
        c1_19 += a1 * b19
        c1_20 += a1 * b20
        c1_21 += a1 * b21
        c1_22 += a1 * b22
        c1_23 += a1 * b23
        c1_24 += a1 * b24
        c1_25 += a1 * b25
        c1_26 += a1 * b26
        c1_27 += a1 * b27
        c1_28 += a1 * b28
        c1_29 += a1 * b29
        c1_30 += a1 * b30
        c1_31 += a1 * b31
        c2_0 += a2 * b0
        c2_1 += a2 * b1
        c2_2 += a2 * b2
        c2_3 += a2 * b3
        c2_4 += a2 * b4
        c2_5 += a2 * b5
        c2_6 += a2 * b6
        c2_7 += a2 * b7
        c2_8 += a2 * b8
        c2_9 += a2 * b9
        c2_10 += a2 * b10
        c2_11 += a2 * b11
        c2_12 += a2 * b12
        c2_13 += a2 * b13
        c2_14 += a2 * b14
        c2_15 += a2 * b15
        c2_16 += a2 * b16
        c2_17 += a2 * b17
        c2_18 += a2 * b18
        c2_19 += a2 * b19
        c2_20 += a2 * b20
        c2_21 += a2 * b21
        c2_22 += a2 * b22
        c2_23 += a2 * b23
        c2_24 += a2 * b24
        c2_25 += a2 * b25
        c2_26 += a2 * b26
        c2_27 += a2 * b27
        c2_28 += a2 * b28
        c2_29 += a2 * b29
        c2_30 += a2 * b30
        c2_31 += a2 * b31
        c3_0 += a3 * b0
        c3_1 += a3 * b1
        c3_2 += a3 * b2
        c3_3 += a3 * b3
        c3_4 += a3 * b4
        c3_5 += a3 * b5
        c3_6 += a3 * b6
        c3_7 += a3 * b7
        c3_8 += a3 * b8
        c3_9 += a3 * b9
        c3_10 += a3 * b10
        c3_11 += a3 * b11
        c3_12 += a3 * b12
        c3_13 += a3 * b13
        c3_14 += a3 * b14
        c3_15 += a3 * b15
        c3_16 += a3 * b16
        c3_17 += a3 * b17
        c3_18 += a3 * b18
        c3_19 += a3 * b19
        c3_20 += a3 * b20
        c3_21 += a3 * b21
        c3_22 += a3 * b22
        c3_23 += a3 * b23
        c3_24 += a3 * b24
        c3_25 += a3 * b25
        c3_26 += a3 * b26
        c3_27 += a3 * b27
        c3_28 += a3 * b28
        c3_29 += a3 * b29
        c3_30 += a3 * b30
        c3_31 += a3 * b31
        c4_0 += a4 * b0
        c4_1 += a4 * b1
        c4_2 += a4 * b2
        c4_3 += a4 * b3
        c4_4 += a4 * b4
        c4_5 += a4 * b5
        c4_6 += a4 * b6
        c4_7 += a4 * b7
        c4_8 += a4 * b8
        c4_9 += a4 * b9
        c4_10 += a4 * b10
        c4_11 += a4 * b11
        c4_12 += a4 * b12
        c4_13 += a4 * b13
        c4_14 += a4 * b14
        c4_15 += a4 * b15
        c4_16 += a4 * b16
        c4_17 += a4 * b17
        c4_18 += a4 * b18
        c4_19 += a4 * b19
        c4_20 += a4 * b20
        c4_21 += a4 * b21
        c4_22 += a4 * b22
        c4_23 += a4 * b23
        c4_24 += a4 * b24
        c4_25 += a4 * b25
        c4_26 += a4 * b26
        c4_27 += a4 * b27
        c4_28 += a4 * b28
        c4_29 += a4 * b29
        c4_30 += a4 * b30
        c4_31 += a4 * b31
        c5_0 += a5 * b0
        c5_1 += a5 * b1
        c5_2 += a5 * b2
        c5_3 += a5 * b3
        c5_4 += a5 * b4
        c5_5 += a5 * b5
        c5_6 += a5 * b6
        c5_7 += a5 * b7
        c5_8 += a5 * b8
        c5_9 += a5 * b9
        c5_10 += a5 * b10
        c5_11 += a5 * b11
        c5_12 += a5 * b12
        c5_13 += a5 * b13
        c5_14 += a5 * b14
        c5_15 += a5 * b15
        c5_16 += a5 * b16
        c5_17 += a5 * b17
        c5_18 += a5 * b18
        c5_19 += a5 * b19
        c5_20 += a5 * b20
        c5_21 += a5 * b21
        c5_22 += a5 * b22
        c5_23 += a5 * b23
        c5_24 += a5 * b24
        c5_25 += a5 * b25
        c5_26 += a5 * b26
        c5_27 += a5 * b27
        c5_28 += a5 * b28
        c5_29 += a5 * b29
        c5_30 += a5 * b30
        c5_31 += a5 * b31
    r = np.uint64(co)
    ld = np.uint64(ldc)
    if add:
        C[r] += c0_0
        C[r + _U[1]] += c0_1
        C[r + _U[2]] += c0_2
        C[r + _U[3]] += c0_3
        C[r + _U[4]] += c0_4
        C[r + _U[5]] += c0_5
        C[r + _U[6]] += c0_6
        C[r + _U[7]] += c0_7
        C[r + _U[8]] += c0_8
        C[r + _U[9]] += c0_9
        C[r + _U[10]] += c0_10
        C[r + _U[11]] += c0_11
        C[r + _U[12]] += c0_12
        C[r + _U[13]] += c0_13
        C[r + _U[14]] += c0_14
        C[r + _U[15]] += c0_15
        C[r + _U[16]] += c0_16
        C[r + _U[17]] += c0_17
        C[r + _U[18]] += c0_18
        C[r + _U[19]] += c0_19
        C[r + _U[20]] += c0_20
        C[r + _U[21]] += c0_21
        C[r + _U[22]] += c0_22
        C[r + _U[23]] += c0_23
        C[r + _U[24]] += c0_24
        C[r + _U[25]] += c0_25
        C[r + _U[26]] += c0_26
        C[r + _U[27]] += c0_27
        C[r + _U[28]] += c0_28
        C[r + _U[29]] += c0_29
        C[r + _U[30]] += c0_30
        C[r + _U[31]] += c0_31
        r += ld
        C[r] += c1_0
        C[r + _U[1]] += c1_1
        C[r + _U[2]] += c1_2
        C[r + _U[3]] += c1_3
        C[r + _U[4]] += c1_4
        C[r + _U[5]] += c1_5
        C[r + _U[6]] += c1_6
        C[r + _U[7]] += c1_7
        C[r + _U[8]] += c1_8
        C[r + _U[9]] += c1_9
        C[r + _U[10]] += c1_10
        C[r + _U[11]] += c1_11
        C[r + _U[12]] += c1_12
        C[r + _U[13]] += c1_13
        C[r + _U[14]] += c1_14
        C[r + _U[15]] += c1_15
        C[r + _U[16]] += c1_16
        C[r + _U[17]] += c1_17
        C[r + _U[18]] += c1_18
        C[r + _U[19]] += c1_19
        C[r + _U[20]] += c1_20
        C[r + _U[21]] += c1_21
        C[r + _U[22]] += c1_22
        C[r + _U[23]] += c1_23
        C[r + _U[24]] += c1_24
        C[r + _U[25]] += c1_25
        C[r + _U[26]] += c1_26
        C[r + _U[27]] += c1_27
        C[r + _U[28]] += c1_28
        C[r + _U[29]] += c1_29
        C[r + _U[30]] += c1_30
        C[r + _U[31]] += c1_31
        r += ld
        C[r] += c2_0
        C[r + _U[1]] += c2_1
        C[r + _U[2]] += c2_2
        C[r + _U[3]] += c2_3
        C[r + _U[4]] += c2_4
        C[r + _U[5]] += c2_5
        C[r + _U[6]] += c2_6
        C[r + _U[7]] += c2_7
        C[r + _U[8]] += c2_8
        C[r + _U[9]] += c2_9
        C[r + _U[10]] += c2_10
        C[r + _U[11]] += c2_11
        C[r + _U[12]] += c2_12
        C[r + _U[13]] += c2_13
        C[r + _U[14]] += c2_14
        C[r + _U[15]] += c2_15
        C[r + _U[16]] += c2_16
        C[r + _U[17]] += c2_17
        C[r + _U[18]] += c2_18
        C[r + _U[19]] += c2_19
        C[r + _U[20]] += c2_20
        C[r + _U[21]] += c2_21
        C[r + _U[22]] += c2_22
        C[r + _U[23]] += c2_23
        C[r + _U[24]] += c2_24
        C[r + _U[25]] += c2_25
        C[r + _U[26]] += c2_26
        C[r + _U[27]] += c2_27
        C[r + _U[28]] += c2_28
        C[r + _U[29]] += c2_29
        C[r + _U[30]] += c2_30
        C[r + _U[31]] += c2_31
        r += ld
        C[r] += c3_0
        C[r + _U[1]] += c3_1
        C[r + _U[2]] += c3_2
        C[r + _U[3]] += c3_3
        C[r + _U[4]] += c3_4
        C[r + _U[5]] += c3_5
        C[r + _U[6]] += c3_6
        C[r + _U[7]] += c3_7
        C[r + _U[8]] += c3_8
        C[r + _U[9]] += c3_9
        C[r + _U[10]] += c3_10
        C[r + _U[11]] += c3_11
        C[r + _U[12]] += c3_12
        C[r + _U[13]] += c3_13
        C[r + _U[14]] += c3_14
        C[r + _U[15]] += c3_15
        C[r + _U[16]] += c3_16
        C[r + _U[17]] += c3_17
        C[r + _U[18]] += c3_18
        C[r + _U[19]] += c3_19
        C[r + _U[20]] += c3_20
        C[r + _U[21]] += c3_21
        C[r + _U[22]] += c3_22
        C[r + _U[23]] += c3_23
        C[r + _U[24]] += c3_24
        C[r + _U[25]] += c3_25
        C[r + _U[26]] += c3_26
        C[r + _U[27]] += c3_27
        C[r + _U[28]] += c3_28
        C[r + _U[29]] += c3_29
        C[r + _U[30]] += c3_30
        C[r + _U[31]] += c3_31
        r += ld
        C[r] += c4_0
        C[r + _U[1]] += c4_1
        C[r + _U[2]] += c4_2
        C[r + _U[3]] += c4_3
        C[r + _U[4]] += c4_4
        C[r + _U[5]] += c4_5
        C[r + _U[6]] += c4_6
        C[r + _U[7]] += c4_7
        C[r + _U[8]] += c4_8
        C[r + _U[9]] += c4_9
        C[r + _U[10]] += c4_10
        C[r + _U[11]] += c4_11
        C[r + _U[12]] += c4_12
        C[r + _U[13]] += c4_13
        C[r + _U[14]] += c4_14
        C[r + _U[15]] += c4_15
        C[r + _U[16]] += c4_16
        C[r + _U[17]] += c4_17
        C[r + _U[18]] += c4_18
        C[r + _U[19]] += c4_19
        C[r + _U[20]] += c4_20
        C[r + _U[21]] += c4_21
        C[r + _U[22]] += c4_22
        C[r + _U[23]] += c4_23
        C[r + _U[24]] += c4_24
        C[r + _U[25]] += c4_25
        C[r + _U[26]] += c4_26
        C[r + _U[27]] += c4_27
        C[r + _U[28]] += c4_28
        C[r + _U[29]] += c4_29
        C[r + _U[30]] += c4_30
        C[r + _U[31]] += c4_31
        r += ld
        C[r] += c5_0
        C[r + _U[1]] += c5_1
        C[r + _U[2]] += c5_2
        C[r + _U[3]] += c5_3
        C[r + _U[4]] += c5_4
        C[r + _U[5]] += c5_5
        C[r + _U[6]] += c5_6
        C[r + _U[7]] += c5_7
        C[r + _U[8]] += c5_8
        C[r + _U[9]] += c5_9
        C[r + _U[10]] += c5_10
        C[r + _U[11]] += c5_11
        C[r + _U[12]] += c5_12
        C[r + _U[13]] += c5_13
        C[r + _U[14]] += c5_14
        C[r + _U[15]] += c5_15
        C[r + _U[16]] += c5_16
        C[r + _U[17]] += c5_17
        C[r + _U[18]] += c5_18
        C[r + _U[19]] += c5_19
        C[r + _U[20]] += c5_20
        C[r + _U[21]] += c5_21
        C[r + _U[22]] += c5_22
        C[r + _U[23]] += c5_23
        C[r + _U[24]] += c5_24
        C[r + _U[25]] += c5_25
        C[r + _U[26]] += c5_26
        C[r + _U[27]] += c5_27
        C[r + _U[28]] += c5_28
        C[r + _U[29]] += c5_29
        C[r + _U[30]] += c5_30
        C[r + _U[31]] += c5_31
    else:
        C[r] = c0_0
        C[r + _U[1]] = c0_1
        C[r + _U[2]] = c0_2
        C[r + _U[3]] = c0_3
        C[r + _U[4]] = c0_4
        C[r + _U[5]] = c0_5
        C[r + _U[6]] = c0_6
        C[r + _U[7]] = c0_7
        C[r + _U[8]] = c0_8
        C[r + _U[9]] = c0_9
        C[r + _U[10]] = c0_10
        C[r + _U[11]] = c0_11
        C[r + _U[12]] = c0_12
        C[r + _U[13]] = c0_13
        C[r + _U[14]] = c0_14
        C[r + _U[15]] = c0_15
        C[r + _U[16]] = c0_16
        C[r + _U[17]] = c0_17
        C[r + _U[18]] = c0_18
        C[r + _U[19]] = c0_19
        C[r + _U[20]] = c0_20
        C[r + _U[21]] = c0_21
        C[r + _U[22]] = c0_22
        C[r + _U[23]] = c0_23
        C[r + _U[24]] = c0_24
        C[r + _U[25]] = c0_25
        C[r + _U[26]] = c0_26
        C[r + _U[27]] = c0_27
        C[r + _U[28]] = c0_28
        C[r + _U[29]] = c0_29
        C[r + _U[30]] = c0_30
        C[r + _U[31]] = c0_31
        r += ld
        C[r] = c1_0
        C[r + _U[1]] = c1_1
        C[r + _U[2]] = c1_2
        C[r + _U[3]] = c1_3
        C[r + _U[4]] = c1_4
        C[r + _U[5]] = c1_5
        C[r + _U[6]] = c1_6
        C[r + _U[7]] = c1_7
        C[r + _U[8]] = c1_8
        C[r + _U[9]] = c1_9
        C[r + _U[10]] = c1_10
        C[r + _U[11]] = c1_11
        C[r + _U[12]] = c1_12
        C[r + _U[13]] = c1_13
        C[r + _U[14]] = c1_14
        C[r + _U[15]] = c1_15
        C[r + _U[16]] = c1_16
        C[r + _U[17]] = c1_17
        C[r + _U[18]] = c1_18
        C[r + _U[19]] = c1_19
        C[r + _U[20]] = c1_20
        C[r + _U[21]] = c1_21
        C[r + _U[22]] = c1_22
        C[r + _U[23]] = c1_23
        C[r + _U[24]] = c1_24
        C[r + _U[25]] = c1_25
        C[r + _U[26]] = c1_26
        C[r + _U[27]] = c1_27
        C[r + _U[28]] = c1_28
        C[r + _U[29]] = c1_29
        C[r + _U[30]] = c1_30
        C[r + _U[31]] = c1_31
        r += ld
        C[r] = c2_0
        C[r + _U[1]] = c2_1
        C[r + _U[2]] = c2_2
        C[r + _U[3]] = c2_3
        C[r + _U[4]] = c2_4
        C[r + _U[5]] = c2_5
        C[r + _U[6]] = c2_6
        C[r + _U[7]] = c2_7
        C[r + _U[8]] = c2_8
        C[r + _U[9]] = c2_9
        C[r + _U[10]] = c2_10
        C[r + _U[11]] = c2_11
        C[r + _U[12]] = c2_12
        C[r + _U[13]] = c2_13
        C[r + _U[14]] = c2_14
        C[r + _U[15]] = c2_15
        C[r + _U[16]] = c2_16
        C[r + _U[17]] = c2_17
        C[r + _U[18]] = c2_18
        C[r + _U[19]] = c2_19
        C[r + _U[20]] = c2_20
        C[r + _U[21]] = c2_21
        C[r + _U[22]] = c2_22
        C[r + _U[23]] = c2_23
        C[r + _U[24]] = c2_24
        C[r + _U[25]] = c2_25
        C[r + _U[26]] = c2_26
        C[r + _U[27]] = c2_27
        C[r + _U[28]] = c2_28
        C[r + _U[29]] = c2_29
        C[r + _U[30]] = c2_30
        C[r + _U[31]] = c2_31
        r += ld
        C[r] = c3_0
        C[r + _U[1]] = c3_1
        C[r + _U[2]] = c3_2
        C[r + _U[3]] = c3_3
        C[r + _U[4]] = c3_4
        C[r + _U[5]] = c3_5
        C[r + _U[6]] = c3_6
        C[r + _U[7]] = c3_7
        C[r + _U[8]] = c3_8
        C[r + _U[9]] = c3_9
        C[r + _U[10]] = c3_10
        C[r + _U[11]] = c3_11
        C[r + _U[12]] = c3_12
        C[r + _U[13]] = c3_13
        C[r + _U[14]] = c3_14
        C[r + _U[15]] = c3_15
        C[r + _U[16]] = c3_16
        C[r + _U[17]] = c3_17
        C[r + _U[18]] = c3_18
        C[r + _U[19]] = c3_19
        C[r + _U[20]] = c3_20
        C[r + _U[21]] = c3_21
        C[r + _U[22]] = c3_22
        C[r + _U[23]] = c3_23
        C[r + _U[24]] = c3_24
        C[r + _U[25]] = c3_25
        C[r + _U[26]] = c3_26
        C[r + _U[27]] = c3_27
        C[r + _U[28]] = c3_28
        C[r + _U[29]] = c3_29
        C[r + _U[30]] = c3_30
        C[r + _U[31]] = c3_31
        r += ld
        C[r] = c4_0
        C[r + _U[1]] = c4_1
        C[r + _U[2]] = c4_2
        C[r + _U[3]] = c4_3
        C[r + _U[4]] = c4_4
        C[r + _U[5]] = c4_5
        C[r + _U[6]] = c4_6
        C[r + _U[7]] = c4_7
        C[r + _U[8]] = c4_8
        C[r + _U[9]] = c4_9
        C[r + _U[10]] = c4_10
        C[r + _U[11]] = c4_11
        C[r + _U[12]] = c4_12
        C[r + _U[13]] = c4_13
        C[r + _U[14]] = c4_14
        C[r + _U[15]] = c4_15
        C[r + _U[16]] = c4_16
        C[r + _U[17]] = c4_17
        C[r + _U[18]] = c4_18
        C[r + _U[19]] = c4_19
        C[r + _U[20]] = c4_20
        C[r + _U[21]] = c4_21
        C[r + _U[22]] = c4_22
        C[r + _U[23]] = c4_23
        C[r + _U[24]] = c4_24
        C[r + _U[25]] = c4_25
        C[r + _U[26]] = c4_26
        C[r + _U[27]] = c4_27
        C[r + _U[28]] = c4_28
        C[r + _U[29]] = c4_29
        C[r + _U[30]] = c4_30
        C[r + _U[31]] = c4_31
        r += ld
        C[r] = c5_0
        C[r + _U[1]] = c5_1
        C[r + _U[2]] = c5_2
        C[r + _U[3]] = c5_3
        C[r + _U[4]] = c5_4
        C[r + _U[5]] = c5_5
        C[r + _U[6]] = c5_6
        C[r + _U[7]] = c5_7
        C[r + _U[8]] = c5_8
        C[r + _U[9]] = c5_9
        C[r + _U[10]] = c5_10
        C[r + _U[11]] = c5_11
        C[r + _U[12]] = c5_12
        C[r + _U[13]] = c5_13
        C[r + _U[14]] = c5_14
        C[r + _U[15]] = c5_15
        C[r + _U[16]] = c5_16
        C[r + _U[17]] = c5_17
        C[r + _U[18]] = c5_18
        C[r + _U[19]] = c5_19
        C[r + _U[20]] = c5_20
        C[r + _U[21]] = c5_21
        C[r + _U[22]] = c5_22
        C[r + _U[23]] = c5_23
        C[r + _U[24]] = c5_24
        C[r + _U[25]] = c5_25
        C[r + _U[26]] = c5_26
        C[r + _U[27]] = c5_27
        C[r + _U[28]] = c5_28
        C[r + _U[29]] = c5_29
        C[r + _U[30]] = c5_30
        C[r + _U[31]] = c5_31



@jit
def _pack_copy(src, cs, s0, nrows, ncols, dst, doff, W):
    """dst[doff + c*W + r] = src[s0 + c*cs + r]: each panel column is a contiguous copy."""
    ucs = np.uint64(cs)
    s = np.uint64(s0)
    d = np.uint64(doff)
    if nrows == MR and W == MR:
        # unrolled: a 6-element inner loop would not vectorize
        for _ in range(ncols):
            x0 = src[s]
            x1 = src[s + _U[1]]
            x2 = src[s + _U[2]]
            x3 = src[s + _U[3]]
            x4 = src[s + _U[4]]
            x5 = src[s + _U[5]]
            dst[d] = x0
            dst[d + _U[1]] = x1
            dst[d + _U[2]] = x2
            dst[d + _U[3]] = x3
            dst[d + _U[4]] = x4
            dst[d + _U[5]] = x5
            s += ucs
            d += _U[MR]
    else:
        uw = np.uint64(W)
        for _ in range(ncols):
            for r in range(np.uint64(nrows)):
                dst[d + r] = src[s + r]
            s += ucs
            d += uw


@jit
def _pack_transpose(src, rs, s0, nrows, ncols, dst, doff, W):
    """dst[doff + c*W + r] = src[s0 + r*rs + c]: source rows are contiguous along c."""
    urs = np.uint64(rs)
    d = np.uint64(doff)
    if nrows == MR and W == MR:
        # six row streams read in step, one contiguous 6-element store group per c
        s = np.uint64(s0)
        for _ in range(ncols):
            x0 = src[s]
            x1 = src[s + urs]
            x2 = src[s + _U[2] * urs]
            x3 = src[s + _U[3] * urs]
            x4 = src[s + _U[4] * urs]
            x5 = src[s + _U[5] * urs]
            dst[d] = x0
            dst[d + _U[1]] = x1
            dst[d + _U[2]] = x2
            dst[d + _U[3]] = x3
            dst[d + _U[4]] = x4
            dst[d + _U[5]] = x5
            s += _U[1]
            d += _U[MR]
    else:
        # contiguous writes, strided reads (measured 3-6x faster than the reverse order)
        uw = np.uint64(W)
        s = np.uint64(s0)
        for _ in range(ncols):
            for r in range(np.uint64(nrows)):
                dst[d + r] = src[s + r * urs]
            s += _U[1]
            d += uw


@jit
def _pack(src, rs, cs, r0, nrows, c0, ncols, dst, doff, W):
    """Pack src[r0:r0+nrows, c0:c0+ncols] (element (r, c) at src[r*rs + c*cs]) into a
    ``W``-wide micro-panel stored column by column: dst[doff + c*W + r]; rows
    nrows..W-1 are zero.  Indices are uint64 (no wraparound code; see _ukr)."""
    s0 = r0 * rs + c0 * cs
    if rs == 1:
        _pack_copy(src, cs, s0, nrows, ncols, dst, doff, W)
    elif cs == 1:
        _pack_transpose(src, rs, s0, nrows, ncols, dst, doff, W)
    else:
        for c in range(ncols):
            base = s0 + c * cs
            d = doff + c * W
            for r in range(nrows):
                dst[d + r] = src[base + r * rs]
    if nrows < W:
        uw = np.uint64(W)
        d = np.uint64(doff)
        for _ in range(ncols):
            for r in range(np.uint64(nrows), uw):
                dst[d + r] = 0
            d += uw


@jit
def _offsets(work, m, n, span):
    """Aligned offsets of the packed A, packed B and edge-scratch regions in ``work``,
    for panels ``span`` long in k (one k block on the serial path, all of k on the
    parallel one)."""
    isz = work.itemsize
    mis = (work.ctypes.data // isz) % (64 // isz)
    a_off = 0 if mis == 0 else (64 // isz) - mis
    b_off = a_off + _cdiv(m, MR) * MR * span
    mis = (b_off + (work.ctypes.data // isz)) % (64 // isz)
    if mis != 0:
        b_off += (64 // isz) - mis
    t_off = b_off + _cdiv(n, NR) * NR * span
    return a_off, b_off, t_off


@jit
def _pack_task(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off):
    if t < mp:
        i0 = t * MR
        _pack(A, ars, acs, i0, min(MR, m - i0), p0, kc, work, a_off + t * MR * kc, MR)
    else:
        jp = t - mp
        j0 = jp * NR
        # B (k, n): element (p, j) at B[p*brs + j*bcs]; pack with rows = j
        _pack(B, bcs, brs, j0, min(NR, n - j0), p0, kc, work, b_off + jp * NR * kc, NR)


@jit
def _compute_task(t, m, n, kc, add, C, ldc, work, a_off, b_off, t_off):
    """Output block t of C (m, n; rows ``ldc`` apart) over one k block."""
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    nbi = _cdiv(mp, MC_PANELS)
    bi = t % nbi
    bj = t // nbi
    ip0 = bi * MC_PANELS
    ip1 = min(mp, ip0 + MC_PANELS)
    jp0 = bj * NC_PANELS
    jp1 = min(np_, jp0 + NC_PANELS)
    ts = t_off + t * MR * NR
    for jp in range(jp0, jp1):
        j0 = jp * NR
        nr = min(NR, n - j0)
        bo = b_off + jp * NR * kc
        for ip in range(ip0, ip1):
            i0 = ip * MR
            mr = min(MR, m - i0)
            ao = a_off + ip * MR * kc
            if mr == MR and nr == NR:
                _ukr(kc, work, ao, work, bo, C, i0 * ldc + j0, ldc, add)
            else:
                _ukr(kc, work, ao, work, bo, work, ts, NR, False)
                for i in range(mr):
                    r = (i0 + i) * ldc + j0
                    s = ts + i * NR
                    if add:
                        for j in range(nr):
                            C[r + j] += work[s + j]
                    else:
                        for j in range(nr):
                            C[r + j] = work[s + j]


@jit
def _gemm_serial(m, n, k, A, ars, acs, B, brs, bcs, C, ldc, work):
    """The serial path; C's rows are ``ldc`` apart (``n`` for a whole product)."""
    nkb, kcmax = _kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    a_off, b_off, t_off = _offsets(work, m, n, kcmax)
    nt = _ntasks(m, n)
    for kb in range(nkb):
        p0 = (kb * k) // nkb
        kc = ((kb + 1) * k) // nkb - p0
        for t in range(mp + np_):
            _pack_task(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off)
        for t in range(nt):
            _compute_task(t, m, n, kc, kb > 0, C, ldc, work, a_off, b_off, t_off)


@jit
def _pack_all_task(t, m, n, k, A, ars, acs, B, brs, bcs, work, a_off, b_off):
    """Pack task t of the parallel path: one A or B micro-panel of one k block.  k block
    kb's panels start at a_off + mp*MR*p0 (A) and b_off + np_*NR*p0 (B)."""
    nkb, kcmax = _kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    kb = t // (mp + np_)
    u = t - kb * (mp + np_)
    p0 = (kb * k) // nkb
    kc = ((kb + 1) * k) // nkb - p0
    _pack_task(u, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work,
               a_off + mp * MR * p0, b_off + np_ * NR * p0)


@jit
def _compute_all_task(t, m, n, k, C, work, a_off, b_off, t_off):
    """Compute task t of the parallel path over all k blocks, in order."""
    nkb, kcmax = _kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    for kb in range(nkb):
        p0 = (kb * k) // nkb
        kc = ((kb + 1) * k) // nkb - p0
        _compute_task(t, m, n, kc, kb > 0, C, n, work, a_off + mp * MR * p0, b_off + np_ * NR * p0, t_off)


@jit_parallel
def _gemm_parallel(m, n, k, A, ars, acs, B, brs, bcs, C, work):
    """Two parallel regions per product whatever k is: pack every k block's panels
    (no duplication), then (row block x column block) tasks loop over the k blocks."""
    nkb, kcmax = _kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    a_off, b_off, t_off = _offsets(work, m, n, k)
    nt = _ntasks(m, n)
    bits = fpenv.current()
    # pack tasks differ in size (B panels are NR/MR times A's): hand them out dynamically
    npk = nkb * (mp + np_)
    c_off = t_off + nt * MR * NR
    work[c_off] = 0
    for _ in prange(min(npk, MAX_SLOTS)):
        old = fpenv.adopt(bits)
        t = _claim(work, c_off)
        while t < npk:
            _pack_all_task(t, m, n, k, A, ars, acs, B, brs, bcs, work, a_off, b_off)
            t = _claim(work, c_off)
        fpenv.leave(old)
    for t in prange(nt):
        old = fpenv.adopt(bits)
        _compute_all_task(t, m, n, k, C, work, a_off, b_off, t_off)
        fpenv.leave(old)


@jit(fastmath=set(FASTMATH_REDUCE))
def _gemv_t_rows(a, B, k, C, j0, j1):
    """C[j] = sum_p a[p] * B[j*k + p] for j in [j0, j1), four rows of B per pass over a.

    ``reassoc`` lets LLVM vectorize the reductions; their order is fixed by the
    compiled code and the row grouping (which starts at ``j0``), not by the thread
    count.  Four rows share each load of ``a``: 1.5x faster than one dot per row
    (NOTES section 12)."""
    zero = C.dtype.type(0)
    j = j0
    while j + 4 <= j1:
        b0 = B[j * k:(j + 1) * k]
        b1 = B[(j + 1) * k:(j + 2) * k]
        b2 = B[(j + 2) * k:(j + 3) * k]
        b3 = B[(j + 3) * k:(j + 4) * k]
        s0 = zero
        s1 = zero
        s2 = zero
        s3 = zero
        for p in range(k):
            x = a[p]
            s0 += x * b0[p]
            s1 += x * b1[p]
            s2 += x * b2[p]
            s3 += x * b3[p]
        C[j] = s0
        C[j + 1] = s1
        C[j + 2] = s2
        C[j + 3] = s3
        j += 4
    while j < j1:
        b0 = B[j * k:(j + 1) * k]
        s0 = zero
        for p in range(k):
            s0 += a[p] * b0[p]
        C[j] = s0
        j += 1


@jit
def _gemv_t_serial(a, B, k, C):
    _gemv_t_rows(a, B, k, C, 0, C.shape[0])


@jit_parallel
def _gemv_t_parallel(a, B, k, C):
    n = C.shape[0]
    nb = _cdiv(n, GEMV_ROWS)
    bits = fpenv.current()
    for t in prange(nb):
        old = fpenv.adopt(bits)
        _gemv_t_rows(a, B, k, C, t * GEMV_ROWS, min(n, (t + 1) * GEMV_ROWS))
        fpenv.leave(old)


@jit
def _gemv_n_cols(a, acs, B, brs, k, C, j0, j1):
    """C[j0:j1] = sum_p a[p*acs] * B[p*brs + j0:j1], p in order (an axpy per p)."""
    c = C[j0:j1]
    b = B[j0:j1]
    ap = a[0]
    for j in range(j1 - j0):
        c[j] = ap * b[j]
    for p in range(1, k):
        ap = a[p * acs]
        b = B[p * brs + j0:p * brs + j1]
        for j in range(j1 - j0):
            c[j] += ap * b[j]


@jit
def _gemv_n_serial(a, acs, B, brs, k, C):
    _gemv_n_cols(a, acs, B, brs, k, C, 0, C.shape[0])


@jit_parallel
def _gemv_n_parallel(a, acs, B, brs, k, C):
    n = C.shape[0]
    nb = _cdiv(n, GEMV_COLS)
    bits = fpenv.current()
    for t in prange(nb):
        old = fpenv.adopt(bits)
        _gemv_n_cols(a, acs, B, brs, k, C, t * GEMV_COLS, min(n, (t + 1) * GEMV_COLS))
        fpenv.leave(old)


@jit_parallel
def _gemm_halves(m, n, k, A, ars, acs, B, brs, bcs, C, work):
    """C = op(A)·op(B) on two threads that split C's columns, each packing all of A,
    its half of B and computing its half on the serial path: one fork/join and no
    packed panel read by the other core (NOTES section 20)."""
    n0 = _split_at(n)
    second = _serial_size(m, n0, k)
    bits = fpenv.current()
    for t in prange(2):
        old = fpenv.adopt(bits)
        if t == 0:
            _gemm_serial(m, n0, k, A, ars, acs, B, brs, bcs, C, n, work[:second])
        elif n > n0:
            _gemm_serial(m, n - n0, k, A, ars, acs, B[n0 * bcs:], brs, bcs, C[n0:], n, work[second:])
        fpenv.leave(old)


@jit
def _gemm(m, n, k, A, ars, acs, B, brs, bcs, C, work):
    """C (m, n) = op(A) · op(B); A (i, p) at A[i*ars + p*acs], B (p, j) at B[p*brs + j*bcs]."""
    if m == 0 or n == 0:
        return
    if k == 0:
        C[:] = 0
        return
    par = 2.0 * m * n * k >= PAR_FLOPS
    if m == 1 and acs == 1 and brs == 1:
        # matrix-vector, B's columns contiguous (forward at batch 1): one dot per output
        # (serial and parallel give the same bits: tasks start at multiples of 4 rows)
        if 2.0 * n * k >= GEMV_PAR_FLOPS:
            _gemv_t_parallel(A[:k], B, k, C)
        else:
            _gemv_t_serial(A[:k], B, k, C)
        return
    if m == 1 and bcs == 1:
        # matrix-vector, B's rows contiguous: axpy over rows of B
        if par:
            _gemv_n_parallel(A, acs, B, brs, k, C)
        else:
            _gemv_n_serial(A, acs, B, brs, k, C)
        return
    if not par:
        _gemm_serial(m, n, k, A, ars, acs, B, brs, bcs, C, n, work)
    elif n > NR and 2.0 * m * n * k <= HALVES_MAX_FLOPS and _num_threads() == 2:
        _gemm_halves(m, n, k, A, ars, acs, B, brs, bcs, C, work)
    else:
        _gemm_parallel(m, n, k, A, ars, acs, B, brs, bcs, C, work)


@jit
def _blas_small(M, N, K):
    """Whether the product of a layer (batch M, out N, in K) goes to BLAS: only small
    ones (at most ``BLAS_MAX_MNK`` multiply-adds, which OpenBLAS runs on the calling
    thread, so no BLAS pool wakes up beside Numba's and results do not depend on the
    thread count), batch > 1, and only when ``BLAS_SMALL`` (NOTES section 15)."""
    return M > 1 and 0 < M * N * K <= BLAS_MAX_MNK


@jit
def matmul_nt(A, W, work, out):
    """out = A @ W.T.  A (M, K), W (N, K), out (M, N); forward Z = A·Wᵀ."""
    M, K = A.shape
    N = W.shape[0]
    if BLAS_SMALL:
        if _blas_small(M, N, K):
            np.dot(A, W.T, out)
            return
    _gemm(M, N, K, A.reshape(M * K), K, 1, W.reshape(N * K), 1, K, out.reshape(M * N), work)


@jit
def matmul_tn(D, A, work, out):
    """out = D.T @ A.  D (M, N), A (M, K), out (N, K); weight gradient ∂W = δᵀ·A."""
    M, N = D.shape
    K = A.shape[1]
    if BLAS_SMALL:
        if _blas_small(M, N, K):
            np.dot(D.T, A, out)
            return
    _gemm(N, K, M, D.reshape(M * N), 1, N, A.reshape(M * K), K, 1, out.reshape(N * K), work)


@jit
def matmul_nn(D, W, work, out):
    """out = D @ W.  D (M, N), W (N, K), out (M, K); input gradient ∂A = δ·W."""
    M, N = D.shape
    K = W.shape[1]
    if BLAS_SMALL:
        if _blas_small(M, N, K):
            np.dot(D, W, out)
            return
    _gemm(M, K, N, D.reshape(M * N), N, 1, W.reshape(N * K), K, 1, out.reshape(M * K), work)


@jit_parallel
def _grads_pair(M, N, K, D, A, W, dW, dA, work):
    """dW = Dᵀ A and dA = D W at once, each on one thread through the serial path
    (``work`` holds the two scratch areas one after the other)."""
    second = _serial_size(N, K, M)
    bits = fpenv.current()
    for t in prange(2):
        old = fpenv.adopt(bits)
        if t == 0:
            _gemm_serial(N, K, M, D, 1, N, A, K, 1, dW, K, work[:second])
        else:
            _gemm_serial(M, K, N, D, N, 1, W, K, 1, dA, K, work[second:])
        fpenv.leave(old)


@jit
def backward_grads(D, A, W, work, dW, dA):
    """A dense layer's two backward products: ``dW = D.T @ A`` (``matmul_tn``) and
    ``dA = D @ W`` (``matmul_nn``); D (M, N), A (M, K), W (N, K).

    At exactly two threads, products big enough for the parallel path (and with
    M, N > 1, so neither is a matrix-vector product) run side by side instead, each
    on one thread through the serial path: one fork/join instead of four and no
    packed panel crossing cores (NOTES section 19: 1.36-1.65x at W4's 64x256x256,
    1.07x at 256x1024x1024).  The serial and parallel paths give
    the same bits, so the results do not depend on the thread count.
    """
    M, N = D.shape
    K = A.shape[1]
    if _num_threads() == 2 and M > 1 and N > 1 and 2.0 * M * N * K >= PAR_FLOPS:
        _grads_pair(M, N, K, D.reshape(M * N), A.reshape(M * K), W.reshape(N * K),
                    dW.reshape(N * K), dA.reshape(M * K), work)
    else:
        matmul_tn(D, A, work, dW)
        matmul_nn(D, W, work, dA)
