"""The three products of a dense layer, as packed, register-tiled Numba GEMMs.

``W`` has shape ``(out, in)`` like ``torch.nn.Linear.weight``:

* ``matmul_nt(A, W, work, out)``: ``out = A @ W.T``  (forward, ``Z = A Wᵀ``)
* ``matmul_tn(D, A, work, out)``: ``out = D.T @ A``  (weight gradient ``δᵀ A``)
* ``matmul_nn(D, W, work, out)``: ``out = D @ W``    (input gradient ``δ W``)

All three reduce to one core, ``C (m, n) = op(A) (m, k) · op(B) (k, n)`` over flat
arrays with (row, column) strides, so transposes cost nothing but a packing order.
The strides are run-time values (``own_nt``/``own_tn``/``own_nn``), so each dtype
compiles the core once, not once per layout (NOTES section 36).
The core (BLIS style): the k range is cut into balanced blocks of at most ``KC``;
per block, A is packed into ``MR``-row micro-panels and B into ``NR``-column
micro-panels (zero padded, so every tile runs the same full micro-kernel), then a
``prange`` over (row block, column block) tasks runs the ``MR x NR`` register-tile
micro-kernel ``_ukr``, which accumulates across k in registers (generated code in
``microkernels.py``: 8x32 with AVX-512, 6x16 with AVX2, chosen at import by the
vector width Numba compiles for).  ``_tile_out`` moves each tile into ``C``: the
first k block writes it, later ones add to it; before each tile runs, the cache lines of
its part of ``C`` are prefetched for writing (``_prefetch_tile``: W2's step 1.04x, W1's
1.02x; the direct path below lost with it: NOTES section 64).
On the serial path with the 8x32 tile, a product of one k block whose B has contiguous
rows (``tn``, ``nn``) and is small (``DIRECT_MAX_B_BYTES``) packs nothing:
``_gemm_direct`` runs the same tiles over A and B where they lie (W4's backward
1.05-1.07x faster: NOTES section 46; with the 6x16 tile it lost: section 54); a
forward ``nt`` product of one k block and at least NR rows runs as Cᵀ = W·Aᵀ with W
read in place (``_gemm_transposed``, NOTES section 49).
Products below ``PAR_FLOPS``, and all products at one thread (where the serial path
is 0-20% faster: NOTES section 29), run serially.  Above it, at exactly two threads,
products with more than one column panel split C's columns between the threads, each
running the serial path on its half (NOTES sections 20, 29, 53), and
``backward_grads`` runs a layer's two backward products side by side, one per
thread (section 19), or, where both widths span more than one panel and the halves
run on the direct path, each computes the rows of dW and columns of dA its forward half
owns (section 67); the first layer's
weight gradient, which has no input gradient beside it, splits dW's rows the same way
(``weight_grad``): each thread writes the gradient rows of the W rows its forward half
reads and its optimizer half updates (section 67).
Otherwise the parallel path opens two ``prange`` regions per
product whatever k is: one packs the panels of every k block (threads claim panels
from an atomic counter, since B panels are NR/MR times larger than A's: NOTES
section 18), one runs the output-block tasks, each looping over all k blocks in
order (NOTES section 10); the tasks are made smaller, down to one tile, until every
thread has one (NOTES section 61).

Compile time: the packed paths' leaves (``_pack_task``, ``_pack_b_block``,
``_compute_task``: packs, tiles and epilogues) are compiled once per dtype as C callbacks
and called by symbol (``linked.py``), not linked into every library above them; a cold
W1 step compiled in 77-92 s instead of 128-131 (NOTES section 57).

Determinism: every element of ``C`` is computed by one micro-kernel call per k
block, over the k blocks in a fixed order, and the k blocking depends on k alone;
so every path (serial, direct, parallel, halves, row halves, pair) gives the same bits and results
are bitwise identical for any number of threads.

Forward products of at most ``DOTS_MAX_ROWS`` rows (predictions of a few samples) pack
nothing: one dot per output, W read in place once (``_dots_rows``; a packed W cost
2-4x more at 2-4 rows of W1's first layer: NOTES section 60), except the small ones of
``BLAS_MIN_ROWS`` rows and more, which BLAS takes (below).

Small products go to BLAS instead when ``BLAS_SMALL`` (SciPy installed and
``FASTBP_GEMM`` not ``own``): ``np.dot`` in compiled code, which Numba routes to
SciPy's OpenBLAS, for batch > 1 (forward and input gradient: from ``BLAS_MIN_ROWS`` rows) and
``M*N*K <= BLAS_MAX_MNK`` — sizes where
OpenBLAS's small-matrix kernels beat the packed path 1.4-2.5x and that it runs
on the calling thread (NOTES section 15).  On AVX-512 CPUs (``BLAS_NT_TRANSPOSE``),
forward products of at least ``BLAS_NT_MIN_ROWS`` rows and ``BLAS_NT_MIN_OUT`` outputs
transpose W into ``work`` first (``_blas_nt``, NOTES sections 42, 54).

``work`` is a 1-D scratch buffer of the arrays' dtype, at least ``work_size(M, N,
K)`` long for a layer with ``in = K``, ``out = N``, batch ``M``: one size serves
all three products.  The kernels allocate nothing.
"""
import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np import numpy_support
# numba.get_num_threads() in compiled code calls through a ctypes pointer, which keeps
# every caller out of the cache; this is the intrinsic Numba's own parfor code uses
# (a call of the threading layer's get_num_threads symbol)
from numba.np.ufunc.parallel import _iget_num_threads as _num_threads

from fastbp._jit import BLAS_SMALL, FASTMATH_REDUCE, FASTMATH_SAFE, VECTOR_BITS, jit, jit_parallel, prange
from fastbp.kernels import activations, fpenv, linked, microkernels
from fastbp.kernels.linked import data_address
from fastbp.kernels.views import c_view

# the register tile and the k block by the vector width Numba compiles for.  AVX-512: an
# 8x32 tile (16 zmm accumulators of float32) over k blocks of up to 512; on the Xeon this
# ran W2's steps 1.06x, W1's 1.02x and W4's 1.03x faster than 6x32 over blocks of 256 at two
# threads, and 1.00x, 0.99x and 0.95x at one (NOTES section 40; a packed B panel is then
# 64 KiB, more than L1, yet KC 512 beat 256, 192 and 128 there).  Otherwise (AVX2): 6x16
# (12 ymm; 6x32 needs 24 accumulators of 16 registers: section 24) over blocks of up to 256.
# float64 runs either tile in two passes of NR/2 columns (``_halves``): in one pass it needs
# twice the accumulators and spills (AVX2's 6x16 in float64: 17 against 35 GFLOP/s, section 60).
# MR is 6 or 8: the pack loops below have a branch for each.
#
# DIRECT_MAX_B_BYTES: serial products of one k block whose B has contiguous rows (tn, nn) and
# at most this many bytes read B and A in place, without packing (``_gemm_direct``).  With
# the 8x32 tile on Zen 5 that ran W4's backward 1.05-1.07x faster (NOTES section 46; W2's
# 1 MiB B ran 1.4x slower, hence the cap).  With the 6x16 tile on a Zen 3 (32 KiB L1d) every
# such product ran 1.07-1.73x faster packed, and W4's and W1's steps 1.16x and 1.11x
# (section 54): off there.
if VECTOR_BITS >= 512:
    MR, NR, KC, _tile_out = 8, 32, 512, microkernels.tile_out_32
    _UKR_F32, _UKR_F64 = microkernels.ukr_8x32, microkernels.ukr_8x32_halves
    _DIRECT_F32, _DIRECT_F64 = microkernels.ukr_8x32_direct, microkernels.ukr_8x32_halves_direct
    DIRECT_MAX_B_BYTES = 262144
else:
    MR, NR, KC, _tile_out = 6, 16, 256, microkernels.tile_out_16
    _UKR_F32, _UKR_F64 = microkernels.ukr_6x16, microkernels.ukr_6x16_halves
    _DIRECT_F32, _DIRECT_F64 = microkernels.ukr_6x16_direct, microkernels.ukr_6x16_halves_direct
    DIRECT_MAX_B_BYTES = 0
# Compile-time switches: ``_gemm_serial`` branches on them first, so Numba prunes the path a
# tile does not use before typing and never compiles it (on AVX2 the direct and transposed
# paths and their tile, which every entry point would otherwise link and re-optimize).
USE_DIRECT = DIRECT_MAX_B_BYTES > 0
USE_TRANSPOSED = MR == 8 and NR == 32
# A forward product of several k blocks runs in the transposed form (W read in place, only A
# packed) while A's packed panels stay within this many elements (512 KiB of float32).  At two
# threads W1's 128x784 -> 256 ran 1.01-1.02x as fast as on the packed halves where the vCPUs
# sit close and 1.08-1.10x where they sit far apart, 128x1024 -> 1024 1.08x, 64x2048 -> 512
# 1.09x (NOTES section 70); with its k blocks' tiles summed in vector code, 1.05-1.06x close
# and 128x1024 -> 1024 1.14-1.15x (section 71); W2's 256-row products (800 KB-1 MB of float32
# panels) stay on the packed paths, where this form measured 0.87-1.10x (section 50).
TRANSPOSED_MAX_A = 131072
_U = np.arange(33, dtype=np.uint64)  # unsigned offsets: no wraparound code on loads
MC_PANELS = 4        # row micro-panels per parallel task (NOTES section 13)
NC_PANELS = 4        # column micro-panels per parallel task
PACK_GROUP = 4       # B panels the serial path packs together when B's rows are contiguous (NOTES 39)
ALIGN = 16           # elements of slack to align packed panels to 64 bytes
PAR_FLOPS = 2000000   # 2*m*n*k below this runs serially (thread launch dominates); so does all at 1 thread
OWNED_MIN_FLOPS = 500000   # at two threads, from here a layer's backward products run in owned halves
                           # or side by side (``backward_grads``, ``weight_grad``; not where BLAS
                           # takes them) instead of serially on the calling
                           # thread: W4's shapes at 4-12 rows trained 1.3-1.5x faster (1.7x at 8-12
                           # rows where the vCPUs sit far apart), W1's at 4-12 rows 1.06-1.25x; W3's
                           # 32-row products (262k) stay serial, on BLAS (NOTES section 70)
BLAS_MAX_MNK = 262144   # M*N*K up to which products may go to BLAS (OpenBLAS: one thread)
BLAS_NT_MIN_ROWS = 16   # a BLAS forward product from this batch and ...
BLAS_NT_MIN_OUT = 32    # ... this many outputs runs on a transposed copy of W (NOTES 42) ...
# ... on AVX-512 CPUs only: there OpenBLAS ran its SkylakeX kernels and the copy paid
# (1.31-1.85x, section 42); on a Zen 3 (its Haswell kernels) it lost at every shape,
# 0.78-0.94x with the same bits, and W3's step ran 1.06x / 1.11x faster without it (section 54)
BLAS_NT_TRANSPOSE = VECTOR_BITS >= 512
GEMV_ROWS = 64       # outputs per parallel task of the dot path (a multiple of 4)
DOTS_MAX_ROWS = 12   # forward products of at most this many rows run as dots, unless BLAS takes
                     # them (8 until NOTES section 70: W1's predict at 9-12 rows packed W, 1.45-1.75x slower)
BLAS_MIN_ROWS = 9    # forward and input-gradient products of fewer rows never go to BLAS
                     # (``_rows_to_blas``, NOTES 60); from here the small ones do (W3's predict at
                     # 9-12 rows: 1.2x faster than its dots, section 70)
GEMV_PAR_FLOPS = 300000  # the dot path runs in parallel from here (it is memory-bound: NOTES 12)
GEMV_COLS = 256      # outputs per parallel task of the batch-1 (axpy) path
MAX_SLOTS = 64       # most threads a dynamically scheduled region uses (each claims tasks until none are left)
PATH_AUTO, PATH_SERIAL, PATH_HALVES, PATH_PARALLEL = range(4)   # _gemm's ``path`` argument
# backward_grads' pair runs products above PAR_FLOPS on the packed core at 2 threads; they must
# never be ones that matmul_tn/matmul_nn would hand to BLAS, or 1 and 2 threads would differ
assert 2 * BLAS_MAX_MNK < PAR_FLOPS, "BLAS-sized products must stay below the parallel threshold"


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


@intrinsic
def _transpose8(typingctx, src, s, rs, dst, d, ld):
    """``dst[d + j*ld + i] = src[s + i*rs + j]`` for i, j in 0..7: one 8x8 block transposed in
    registers (eight vector loads, three rounds of shufflevector, eight vector stores).

    The transposed pack's scalar loop gathers one element per load (0.4-0.9 ns an element
    on Zen 3, NOTES section 24); Numba cannot express vector shuffles, so this emits them.
    A pure data movement: the packed panel, and so every result, is the same bits."""
    ints = (s, rs, d, ld)
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and all(isinstance(x, types.Integer) for x in ints)):
        return None

    def codegen(context, builder, sig, args):
        src_ary = context.make_array(sig.args[0])(context, builder, args[0])
        dst_ary = context.make_array(sig.args[3])(context, builder, args[3])
        s, rs, d, ld = (context.cast(builder, v, t, types.uint64)
                        for v, t in zip((args[1], args[2], args[4], args[5]), ints))
        elem = context.get_data_type(sig.args[0].dtype)
        vptr = ir.PointerType(ir.VectorType(elem, 8))
        align = context.get_abi_sizeof(elem)
        i64 = ir.IntType(64)

        def shuffle(a, b, mask):
            return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), 8), mask))

        rows = []
        for i in range(8):
            ptr = builder.gep(src_ary.data, [builder.add(s, builder.mul(rs, ir.Constant(i64, i)))])
            rows.append(builder.load(builder.bitcast(ptr, vptr), align=align))
        # pairs of rows interleaved: t[2q] holds columns 0 1 4 5 of rows 2q, 2q+1; t[2q+1] 2 3 6 7
        t = []
        for q in range(0, 8, 2):
            t.append(shuffle(rows[q], rows[q + 1], [0, 8, 1, 9, 4, 12, 5, 13]))
            t.append(shuffle(rows[q], rows[q + 1], [2, 10, 3, 11, 6, 14, 7, 15]))
        # u[j] (j < 4): columns j and j+4 of rows 0-3; u[4+j]: the same of rows 4-7
        u = []
        for h in (0, 4):
            for a, b in ((t[h], t[h + 2]), (t[h + 1], t[h + 3])):
                u.append(shuffle(a, b, [0, 1, 8, 9, 4, 5, 12, 13]))
                u.append(shuffle(a, b, [2, 3, 10, 11, 6, 7, 14, 15]))
        for j in range(8):
            col = shuffle(u[j % 4], u[4 + j % 4], [0, 1, 2, 3, 8, 9, 10, 11] if j < 4 else
                          [4, 5, 6, 7, 12, 13, 14, 15])
            ptr = builder.gep(dst_ary.data, [builder.add(d, builder.mul(ld, ir.Constant(i64, j)))])
            builder.store(col, builder.bitcast(ptr, vptr), align=align)
        return context.get_dummy_value()
    return types.none(src, s, rs, dst, d, ld), codegen


@intrinsic
def _prefetch_write(typingctx, arr, i):
    """Ask the CPU for the cache line of ``arr[i]``, to be written (``llvm.prefetch`` with
    rw = 1: ``prefetchw`` on x86); a hint only, no effect on any value."""
    if not (isinstance(arr, types.Array) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.uint64)
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr] + [i32] * 3),
                                            "llvm.prefetch.p0")
        # rw 1 (write), locality 3 (keep in every cache level), cache type 1 (data)
        builder.call(fn, [builder.bitcast(builder.gep(ary.data, [idx]), byte_ptr),
                          ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.none(arr, i), codegen


@jit(inline="always")
def _prefetch_tile(C, i0, mr, j0, nr, ldc):
    """Prefetch, for writing, the cache lines of the tile C[i0:i0+mr, j0:j0+nr] (rows ``ldc``
    apart) before the tile is computed, so that its stores find them in L1.  Each row's
    first, middle and last element: all of a float32 row of NR = 32 (128 bytes, at most
    three lines); a float64 row's other lines are left to the hardware.  (A loop over
    the row's lines made the tiles around it 1.3-1.8x slower.)"""
    for i in range(mr):
        r = (i0 + i) * ldc + j0
        _prefetch_write(C, r)
        _prefetch_write(C, r + nr // 2)
        _prefetch_write(C, r + nr - 1)


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
    """Scratch of the serial path: one k block's panels, aligned, and the edge tiles; or,
    where a product of these sizes may run as ``_gemm_transposed`` over several k blocks,
    A's panels over all of k, a ragged block of W's rows and two tiles, if that is more."""
    nkb, kcmax = _kblocks(k)
    size = ALIGN + _cdiv(m, MR) * MR * kcmax + _cdiv(n, NR) * NR * kcmax + ALIGN + _ntasks(m, n) * MR * NR
    if nkb > 1 and _transposed_shape(m, k):
        size = max(size, ALIGN + MR * k + ALIGN + _transposed_a(m, k) + 2 * MR * NR)
    return size


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
def _slots(m, n):
    """Most task slots ``_gemm_parallel`` runs for (m, n): one a task of one tile, at most ``MAX_SLOTS``."""
    return min(_cdiv(m, MR) * _cdiv(n, NR), MAX_SLOTS)


@jit
def _parallel_size(m, n, k):
    """Scratch of ``_gemm_parallel``: every k block's A and B panels packed up front, a
    tile for each task slot, and the counter its tasks are claimed by."""
    return ALIGN + _cdiv(m, MR) * MR * k + _cdiv(n, NR) * NR * k + ALIGN + _slots(m, n) * MR * NR + 1


@jit
def _core_size(m, n, k):
    return max(_serial_size(m, n, k), _halves_size(m, n, k), _parallel_size(m, n, k))


@jit
def _check_work(work, need):
    """Raise unless ``work`` holds ``need`` elements: the packed paths write their panels
    into it unchecked, so a short buffer would corrupt the heap."""
    if work.size < need:
        raise ValueError("work is too small for this product: allocate gemm.work_size(M, N, K) elements")


@jit
def _ntasks(m, n):
    return _cdiv(_cdiv(m, MR), MC_PANELS) * _cdiv(_cdiv(n, NR), NC_PANELS)


@jit
def _task_panels(mp, np_, threads):
    """Row and column micro-panels per task of the parallel path: ``MC_PANELS`` x ``NC_PANELS``,
    halved (the larger first, columns on a tie) until every thread has a task or a task is one tile.
    At 16 threads W4's 64-row products were 4 tasks of 4 x 4 panels, 12 cores idle (NOTES
    section 61).  A task's size changes which thread computes an element, never its sum."""
    mc, nc = MC_PANELS, NC_PANELS
    while _cdiv(mp, mc) * _cdiv(np_, nc) < threads and (mc > 1 or nc > 1):
        if nc >= mc:
            nc = _cdiv(nc, 2)
        else:
            mc = _cdiv(mc, 2)
    return mc, nc


@jit
def _task_block(t, mp, np_, mc, nc):
    """Row panels [ip0, ip1) and column panels [jp0, jp1) of task t, tasks of mc x nc panels
    numbered down the rows first."""
    nbi = _cdiv(mp, mc)
    bi = t % nbi
    bj = t // nbi
    ip0 = bi * mc
    jp0 = bj * nc
    return ip0, min(mp, ip0 + mc), jp0, min(np_, jp0 + nc)


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
    s = max(s, _row_halves_size(N, K, M), _owned_size(M, N, K))     # weight_grad's, backward_grads' halves
    if N < NR and M >= NR:      # any batch up to M that runs the forward swapped (``_swapped_nt``)
        s = max(s, _swapped_size(M, N, K))
    # backward_grads' pair: the serial tn and nn paths side by side
    return max(s, _serial_size(N, K, M) + _serial_size(M, K, N))



@jit
def _copy8(src, s, dst, d):
    """dst[d:d + 8] = src[s:s + 8], all loads before the stores (one vector each way)."""
    x0 = src[s]
    x1 = src[s + _U[1]]
    x2 = src[s + _U[2]]
    x3 = src[s + _U[3]]
    x4 = src[s + _U[4]]
    x5 = src[s + _U[5]]
    x6 = src[s + _U[6]]
    x7 = src[s + _U[7]]
    dst[d] = x0
    dst[d + _U[1]] = x1
    dst[d + _U[2]] = x2
    dst[d + _U[3]] = x3
    dst[d + _U[4]] = x4
    dst[d + _U[5]] = x5
    dst[d + _U[6]] = x6
    dst[d + _U[7]] = x7


@jit
def _copy_nr(src, s, dst, d):
    """dst[d:d + NR] = src[s:s + NR]: one whole column of a B panel, 8 elements at a time."""
    for r in range(0, NR, 8):
        _copy8(src, s + _U[r], dst, d + _U[r])


@jit
def _pack_copy(src, cs, s0, nrows, ncols, dst, doff, W):
    """dst[doff + c*W + r] = src[s0 + c*cs + r]: each panel column is a contiguous copy."""
    ucs = np.uint64(cs)
    s = np.uint64(s0)
    d = np.uint64(doff)
    if MR == 8 and nrows == MR and W == MR:
        for _ in range(ncols):
            _copy8(src, s, dst, d)
            s += ucs
            d += _U[MR]
    elif MR == 6 and nrows == MR and W == MR:
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
    elif nrows == NR and W == NR:
        # whole B panels (the parallel path's tasks): 8 loads then 8 stores, not the loop
        # below, which packed W2's 1024x1024 W in 0.66-1.28 ms against 0.53-0.69 (NOTES 39)
        for _ in range(ncols):
            _copy_nr(src, s, dst, d)
            s += ucs
            d += _U[NR]
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
    if MR == 6 and nrows == MR and W == MR:
        # six row streams read in step, one contiguous 6-element store group per c
        # (8-row panels take the 8x8 register transposes below)
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
        uw = np.uint64(W)
        s = np.uint64(s0)
        un = np.uint64(nrows)
        r8 = np.uint64(nrows - nrows % 8)
        c0 = ncols - ncols % 8 if r8 > 0 else 0
        for _ in range(0, c0, 8):
            # 8x8 blocks transposed in registers (NOTES section 32), then the rows below
            # the last whole block (an output layer's 10 rows: 8 + 2; NOTES section 35)
            for r in range(0, r8, _U[8]):
                _transpose8(src, s + r * urs, urs, dst, d + r, uw)
            for c in range(_U[8]):
                for r in range(r8, un):
                    dst[d + c * uw + r] = src[s + r * urs + c]
            s += _U[8]
            d += _U[8] * uw
        # contiguous writes, strided reads (measured 3-6x faster than the reverse order)
        for _ in range(c0, ncols):
            for r in range(un):
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
def _pack_b_rows(B, brs, p0, kc, jp0, jp1, work, b_off):
    """Whole B panels jp0..jp1-1 of one k block, B's rows contiguous along j: row by row
    across the group, so each row of B is read as one run of (jp1-jp0)*NR elements.
    Panel by panel, W2's products read one cache line from each row, rows 4 KiB apart:
    W2's nn pack took 0.66-1.07 ms of a 7-9 ms product against 0.41-0.50 ms now (NOTES 39)."""
    step = np.uint64(NR * kc)
    for p in range(kc):
        s = np.uint64((p0 + p) * brs + jp0 * NR)
        d = np.uint64(b_off + jp0 * NR * kc + p * NR)
        for _ in range(jp0, jp1):
            _copy_nr(B, s, work, d)
            s += _U[NR]
            d += step


@jit(inline="always")
def _pack_b_block(n, p0, kc, B, brs, bcs, work, b_off):
    """Every B panel of one k block, as ``_pack_task`` packs them one by one (same bits):
    whole panels in groups of ``PACK_GROUP`` when B's rows are contiguous (bcs == 1)."""
    whole = n // NR if bcs == 1 else 0
    for jp0 in range(0, whole, PACK_GROUP):
        _pack_b_rows(B, brs, p0, kc, jp0, min(whole, jp0 + PACK_GROUP), work, b_off)
    for jp in range(whole, _cdiv(n, NR)):
        _pack_b_panel(jp, n, p0, kc, B, brs, bcs, work, b_off)


@jit
def _pack_b_panel(jp, n, p0, kc, B, brs, bcs, work, b_off):
    """B panel jp of one k block: B (k, n), element (p, j) at B[p*brs + j*bcs], packed
    with rows = j."""
    j0 = jp * NR
    _pack(B, bcs, brs, j0, min(NR, n - j0), p0, kc, work, b_off + jp * NR * kc, NR)


@jit(inline="always")
def _pack_task(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off):
    if t < mp:
        i0 = t * MR
        _pack(A, ars, acs, i0, min(MR, m - i0), p0, kc, work, a_off + t * MR * kc, MR)
    else:
        _pack_b_panel(t - mp, n, p0, kc, B, brs, bcs, work, b_off)


@jit(inline="always")
def _compute_task(ip0, ip1, jp0, jp1, m, n, kc, add, C, ldc, work, a_off, b_off, ts, ep, last):
    """The output block of row panels [ip0, ip1) and column panels [jp0, jp1) of C (m, n;
    rows ``ldc`` apart) over one k block, each tile through the scratch tile at ``ts``; in
    the ``last`` one, the epilogue ``ep`` (see ``_no_epilogue``): on each tile as soon as it
    is written, while it is in L1, where it works on Z alone (in place: per block
    it cost 2-4% of W2's forward products, NOTES section 62); else on the block after it."""
    per_tile = last and ep[3] >= 0 and activations.runs_in_place(ep[0], ep[3], ep[2])
    for jp in range(jp0, jp1):
        j0 = jp * NR
        nr = min(NR, n - j0)
        bo = b_off + jp * NR * kc
        for ip in range(ip0, ip1):
            i0 = ip * MR
            mr = min(MR, m - i0)
            ao = a_off + ip * MR * kc
            _prefetch_tile(C, i0, mr, j0, nr, ldc)
            # the tile goes through scratch (a run-time ldc in the k loop's function made
            # LLVM spill accumulators: NOTES section 24)
            _ukr(kc, work, ao, work, bo, work, ts)
            if mr == MR and nr == NR:
                _tile_out(work, ts, C, i0 * ldc + j0, ldc, add)
            else:
                for i in range(mr):
                    r = (i0 + i) * ldc + j0
                    s = ts + i * NR
                    if add:
                        for j in range(nr):
                            C[r + j] += work[s + j]
                    else:
                        for j in range(nr):
                            C[r + j] = work[s + j]
            if per_tile:
                _epilogue_block(ep, i0, i0 + mr, j0, j0 + nr)
    if last and not per_tile:
        _epilogue_block(ep, ip0 * MR, min(m, ip1 * MR), jp0 * NR, min(n, jp1 * NR))


@jit
def _direct(k, n, bcs, itemsize):
    """Whether ``_gemm_serial`` runs a product as ``_gemm_direct`` (a function of the shapes)."""
    return bcs == 1 and k <= KC and k * n * itemsize <= DIRECT_MAX_B_BYTES


@jit
def _gemm_direct(m, n, k, A, ars, acs, B, brs, C, ldc, work, ep):
    """The serial path for one k block with B's rows contiguous, nothing packed: the tiles
    read A and B where they are (``_ukr_direct``).  Only a ragged last column panel of B and
    a ragged last row panel of A are packed (zero padded), as the packed paths pack them,
    so every element gets the same operations: the same bits as the packed paths.  At W4's
    64x256x256 the packs were 5-15% of a serial product (NOTES section 46)."""
    mp = _cdiv(m, MR)
    a_off, b_off, t_off = _offsets(work, MR, NR, k)
    for jp in range(_cdiv(n, NR)):
        j0 = jp * NR
        nr = min(NR, n - j0)
        if nr == NR:
            Bs, bo, ldb = B, j0, brs
        else:
            _pack(B, np.int64(1), brs, j0, nr, np.int64(0), k, work, b_off, NR)
            Bs, bo, ldb = work, b_off, np.int64(NR)
        for ip in range(mp):
            i0 = ip * MR
            mr = min(MR, m - i0)
            if mr == MR:
                _ukr_direct(k, A, i0 * ars, ars, acs, Bs, bo, ldb, work, t_off)
            else:
                _pack(A, ars, acs, i0, mr, np.int64(0), k, work, a_off, MR)
                _ukr_direct(k, work, a_off, np.int64(1), np.int64(MR), Bs, bo, ldb, work, t_off)
            if mr == MR and nr == NR:
                _tile_out(work, t_off, C, i0 * ldc + j0, ldc, np.bool_(False))   # not a literal: one compile (NOTES 55)
            else:
                for i in range(mr):     # a ragged tile, as _compute_task moves it (kept inline there)
                    r = (i0 + i) * ldc + j0
                    s = t_off + i * NR
                    for j in range(nr):
                        C[r + j] = work[s + j]
        _epilogue_block(ep, np.int64(0), m, j0, j0 + nr)


@jit
def _transposed_a(m, k):
    """Elements of A's NR-row panels over all of k, as ``_gemm_transposed`` packs them."""
    return _cdiv(m, NR) * NR * k


@jit
def _transposed_rows(m):
    """Whether m rows fill ``_gemm_transposed``'s NR-row panels of A: at least one, and the
    zero rows padding the last at most 1/32 of m.  Each padded row costs a row of tiles:
    at two threads a 40x256x256 product ran at 0.69x the packed path's speed, 48 rows at 0.81x,
    100 at 0.87x (NOTES section 70)."""
    return m >= NR and _cdiv(m, NR) * NR * 32 <= m * 33


@jit
def _transposed_shape(m, k):
    """Whether a forward product of m rows and depth k suits ``_gemm_transposed``: the 8x32
    tile (its 8x8 register transposes), rows that fill the NR-row panels
    (``_transposed_rows``), and one k block or several with A's packed panels at most
    ``TRANSPOSED_MAX_A`` elements."""
    return USE_TRANSPOSED and _transposed_rows(m) and (k <= KC or _transposed_a(m, k) <= TRANSPOSED_MAX_A)


@jit
def _transposed(m, k, brs, bcs):
    """Whether ``_gemm_serial`` runs a product as ``_gemm_transposed`` (a function of the
    shapes and strides): a forward ``nt`` product (B = Wᵀ, W's rows contiguous) of a shape
    that suits it (``_transposed_shape``)."""
    return brs == 1 and bcs != 1 and _transposed_shape(m, k)


@jit
def _gemm_transposed(m, n, k, A, ars, acs, W, wrs, C, ldc, work, ep):
    """C = A·Wᵀ computed as Cᵀ = W·Aᵀ: W, the tile's broadcast operand, is read in place
    (rows ``wrs`` apart) and only A is packed, in NR-row panels over all of k; each 8x32
    tile of Cᵀ goes to C through four 8x8 register transposes.  The packed paths pack
    both operands, and a B panel of Wᵀ is a gathering transpose: at W4's 64x256x256 this
    form took 25.6 µs a product against the halves path's 29.9 (NOTES sections 46, 49); at
    W1's 128x784 -> 256 (two k blocks) 1.05-1.06x as fast where the vCPUs sit close
    (``TRANSPOSED_MAX_A``; NOTES sections 70, 71).
    A ragged last block of W's rows is packed (zero padded) and A's last panel is zero
    padded, and a tile runs over the packed paths' k blocks (``_kblocks``), each block's
    tile added to the first in block order as they add it to C: every element of C is the
    same sum in the same order as on the packed paths, the same bits."""
    a_off, x_off, t_off = _offsets(work, MR, m, k)
    nkb = _kblocks(k)[0]
    tile = MR * NR
    mp = _cdiv(m, NR)
    for ip in range(mp):
        i0 = ip * NR
        _pack(A, ars, acs, i0, min(NR, m - i0), np.int64(0), k, work, x_off + ip * NR * k, NR)
    for jg in range(0, n, NR):
        jg1 = min(n, jg + NR)
        for j0 in range(jg, jg1, MR):
            nr = min(MR, n - j0)
            if nr == MR:        # W (r, p) at Ws[wo + r*w_rs + p*w_cs]
                Ws, wo, w_rs, w_cs = W, j0 * wrs, wrs, np.int64(1)
            else:
                _pack(W, wrs, np.int64(1), j0, nr, np.int64(0), k, work, a_off, MR)
                Ws, wo, w_rs, w_cs = work, a_off, np.int64(1), np.int64(MR)
            for ip in range(mp):
                i0 = ip * NR
                mr = min(NR, m - i0)
                for kb in range(nkb):
                    p0 = (kb * k) // nkb
                    kc = ((kb + 1) * k) // nkb - p0
                    to = t_off + tile if kb > 0 else t_off
                    _ukr_direct(kc, Ws, wo + p0 * w_cs, w_rs, w_cs, work, x_off + ip * NR * k + p0 * NR,
                                np.int64(NR), work, to)
                    if kb > 0:      # (a signed-index loop here ran scalar: NOTES section 71)
                        _tile_out(work, to, work, t_off, np.int64(NR), np.bool_(True))
                if nr == MR and mr == NR:
                    for b in range(0, NR, 8):
                        _transpose8(work, t_off + b, NR, C, (i0 + b) * ldc + j0, ldc)
                else:
                    for r in range(nr):       # tile row r is output j0 + r, column c batch row i0 + c
                        s = t_off + r * NR
                        for c in range(mr):
                            C[(i0 + c) * ldc + j0 + r] = work[s + c]
        _epilogue_block(ep, np.int64(0), m, jg, jg1)


@jit
def _gemm_serial(m, n, k, A, ars, acs, B, brs, bcs, C, ldc, work, ep):
    """The serial path; C's rows are ``ldc`` apart (``n`` for a whole product)."""
    if USE_DIRECT and _direct(k, n, bcs, work.itemsize):
        _gemm_unpacked_linked(UNPACKED_DIRECT, m, n, k, A, ars, acs, B, brs, C, ldc, work, ep)
    elif USE_TRANSPOSED and _transposed(m, k, brs, bcs):
        _gemm_unpacked_linked(UNPACKED_TRANSPOSED, m, n, k, A, ars, acs, B, bcs, C, ldc, work, ep)
    else:
        _gemm_packed(m, n, k, A, ars, acs, B, brs, bcs, C, ldc, work, ep)


# The packed paths' leaves, compiled once per dtype and called by symbol (``linked.py``):
# linked into every library above them, they made up most of a cold compile (NOTES 57).
# Arrays cross as address and shape; the callbacks rebuild them and run the leaves above,
# which are inlined into them (``inline="always"``: no library of their own).
def _compute_leaf(ip0, ip1, jp0, jp1, m, n, kc, add, c, c_len, ldc, w, w_len, a_off, b_off, ts,
                  z, z_rows, z_cols, bias, bias_len, a, a_rows, a_cols, act, alpha, j0, last):
    ep = (carray(z, (z_rows, z_cols)), carray(bias, (bias_len,)), carray(a, (a_rows, a_cols)), act, alpha, j0)
    _compute_task(ip0, ip1, jp0, jp1, m, n, kc, add != 0, carray(c, (c_len,)), ldc, carray(w, (w_len,)),
                  a_off, b_off, ts, ep, last != 0)


UNPACKED_DIRECT, UNPACKED_TRANSPOSED = 0, 1     # _unpacked_leaf's ``which``


def _unpacked_leaf(which, m, n, k, a, a_len, ars, acs, b, b_len, brs, c, c_len, ldc, w, w_len,
                   z, z_rows, z_cols, bias, bias_len, act_out, a_rows, a_cols, act, alpha, j0):
    """``_gemm_direct`` or ``_gemm_transposed`` (``which``): the serial path's products
    without packed panels, one leaf for both (their arguments line up)."""
    ep = (carray(z, (z_rows, z_cols)), carray(bias, (bias_len,)), carray(act_out, (a_rows, a_cols)), act, alpha, j0)
    A, B, C, work = carray(a, (a_len,)), carray(b, (b_len,)), carray(c, (c_len,)), carray(w, (w_len,))
    if which == UNPACKED_DIRECT:
        _gemm_direct(m, n, k, A, ars, acs, B, brs, C, ldc, work, ep)
    else:
        _gemm_transposed(m, n, k, A, ars, acs, B, brs, C, ldc, work, ep)


def _pack_leaf(t, mp, m, n, p0, kc, a, a_len, ars, acs, b, b_len, brs, bcs, w, w_len, a_off, b_off):
    _pack_task(t, mp, m, n, p0, kc, carray(a, (a_len,)), ars, acs, carray(b, (b_len,)), brs, bcs,
               carray(w, (w_len,)), a_off, b_off)


def _pack_b_leaf(n, p0, kc, b, b_len, brs, bcs, w, w_len, b_off):
    _pack_b_block(n, p0, kc, carray(b, (b_len,)), brs, bcs, carray(w, (w_len,)), b_off)


def _link_leaves(dtype):
    """(compute, pack, pack B block) for arrays of ``dtype``, as ``linked.c_function``s."""
    i, p = types.int64, types.CPointer(dtype)
    name = str(dtype)
    return (
        linked.c_function("compute_task_" + name, (i, i, i, i, i, i, i, i, p, i, i, p, i, i, i, i,
                                                   p, i, i, p, i, p, i, i, i, dtype, i, i), _compute_leaf),
        linked.c_function("pack_task_" + name, (i, i, i, i, i, i, p, i, i, i, p, i, i, i, p, i, i, i), _pack_leaf),
        linked.c_function("pack_b_block_" + name, (i, i, i, p, i, i, i, p, i, i), _pack_b_leaf),
        linked.c_function("gemm_unpacked_" + name, (i, i, i, i, p, i, i, i, p, i, i, p, i, i, p, i,
                                                    p, i, i, p, i, p, i, i, i, dtype, i), _unpacked_leaf),
    )


_LEAVES = {dtype: _link_leaves(dtype) for dtype in (types.float32, types.float64)}


def _compute_task_linked(ip0, ip1, jp0, jp1, m, n, kc, add, C, ldc, work, a_off, b_off, ts, ep, last):
    """``_compute_task`` through its compiled-once callback (inside jitted code only)."""
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_compute_task_linked, inline="always")
def _compute_task_linked_overload(ip0, ip1, jp0, jp1, m, n, kc, add, C, ldc, work, a_off, b_off, ts, ep, last):
    call = _LEAVES[work.dtype][0]
    linked.bind(call)

    def impl(ip0, ip1, jp0, jp1, m, n, kc, add, C, ldc, work, a_off, b_off, ts, ep, last):
        Z, bias, A = ep[0], ep[1], ep[2]
        call(ip0, ip1, jp0, jp1, m, n, kc, np.int64(add), data_address(C), C.size, ldc, data_address(work),
             work.size, a_off, b_off, ts, data_address(Z), Z.shape[0], Z.shape[1], data_address(bias), bias.size,
             data_address(A), A.shape[0], A.shape[1], ep[3], ep[4], ep[5], np.int64(last))
    return impl


def _gemm_unpacked_linked(which, m, n, k, A, ars, acs, B, brs, C, ldc, work, ep):
    """``_unpacked_leaf`` through its compiled-once callback (inside jitted code only)."""
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_gemm_unpacked_linked, inline="always")
def _gemm_unpacked_linked_overload(which, m, n, k, A, ars, acs, B, brs, C, ldc, work, ep):
    call = _LEAVES[work.dtype][3]
    linked.bind(call)

    def impl(which, m, n, k, A, ars, acs, B, brs, C, ldc, work, ep):
        Z, bias, Aout = ep[0], ep[1], ep[2]
        call(np.int64(which), m, n, k, data_address(A), A.size, ars, acs, data_address(B), B.size, brs,
             data_address(C), C.size, ldc, data_address(work), work.size, data_address(Z), Z.shape[0], Z.shape[1],
             data_address(bias), bias.size, data_address(Aout), Aout.shape[0], Aout.shape[1], ep[3], ep[4], ep[5])
    return impl


def _pack_task_linked(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off):
    """``_pack_task`` through its compiled-once callback (inside jitted code only)."""
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_pack_task_linked, inline="always")
def _pack_task_linked_overload(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off):
    call = _LEAVES[work.dtype][1]
    linked.bind(call)

    def impl(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off):
        call(t, mp, m, n, p0, kc, data_address(A), A.size, ars, acs, data_address(B), B.size, brs, bcs,
             data_address(work), work.size, a_off, b_off)
    return impl


def _pack_b_block_linked(n, p0, kc, B, brs, bcs, work, b_off):
    """``_pack_b_block`` through its compiled-once callback (inside jitted code only)."""
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_pack_b_block_linked, inline="always")
def _pack_b_block_linked_overload(n, p0, kc, B, brs, bcs, work, b_off):
    call = _LEAVES[work.dtype][2]
    linked.bind(call)

    def impl(n, p0, kc, B, brs, bcs, work, b_off):
        call(n, p0, kc, data_address(B), B.size, brs, bcs, data_address(work), work.size, b_off)
    return impl


@jit
def _gemm_packed(m, n, k, A, ars, acs, B, brs, bcs, C, ldc, work, ep):
    """The serial path by k blocks: pack A's and B's panels of the block, then its tiles."""
    nkb, kcmax = _kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    a_off, b_off, t_off = _offsets(work, m, n, kcmax)
    nt = _ntasks(m, n)
    for kb in range(nkb):
        p0 = (kb * k) // nkb
        kc = ((kb + 1) * k) // nkb - p0
        # A panel by panel (6-wide columns share cache lines from panel to panel; grouped
        # like B's, Dᵀ's pack in W2's tn took 0.44 ms against 0.24: NOTES section 39)
        for t in range(mp):
            _pack_task_linked(t, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work, a_off, b_off)
        _pack_b_block_linked(n, p0, kc, B, brs, bcs, work, b_off)
        for t in range(nt):
            ip0, ip1, jp0, jp1 = _task_block(t, mp, np_, MC_PANELS, NC_PANELS)
            _compute_task_linked(ip0, ip1, jp0, jp1, m, n, kc, kb > 0, C, ldc, work, a_off, b_off, t_off, ep,
                                 kb == nkb - 1)


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
    _pack_task_linked(u, mp, m, n, p0, kc, A, ars, acs, B, brs, bcs, work,
                      a_off + mp * MR * p0, b_off + np_ * NR * p0)


@jit
def _compute_all_task(t, mc, nc, m, n, k, C, work, a_off, b_off, ts, ep):
    """Compute task t (of mc x nc panels) of the parallel path over all k blocks, in order."""
    nkb, kcmax = _kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    ip0, ip1, jp0, jp1 = _task_block(t, mp, np_, mc, nc)
    for kb in range(nkb):
        p0 = (kb * k) // nkb
        kc = ((kb + 1) * k) // nkb - p0
        _compute_task_linked(ip0, ip1, jp0, jp1, m, n, kc, kb > 0, C, n, work, a_off + mp * MR * p0,
                             b_off + np_ * NR * p0, ts, ep, kb == nkb - 1)


@jit_parallel
def _gemm_parallel(m, n, k, A, ars, acs, B, brs, bcs, C, work, ep):
    """Two parallel regions per product whatever k is: pack every k block's panels
    (no duplication), then (row block x column block) tasks, as many as threads where the
    product allows (``_task_panels``), loop over the k blocks.  Pack tasks are claimed
    from a counter; compute tasks go to at most ``MAX_SLOTS`` slots in contiguous runs,
    each slot with its own scratch tile (claimed ones ran W4's 64x256x256 nt and nn products
    0.88-0.94x as fast at two threads: NOTES section 61)."""
    nkb, kcmax = _kblocks(k)
    mp = _cdiv(m, MR)
    np_ = _cdiv(n, NR)
    a_off, b_off, t_off = _offsets(work, m, n, k)
    mc, nc = _task_panels(mp, np_, _num_threads())
    nt = _cdiv(mp, mc) * _cdiv(np_, nc)
    bits = fpenv.current()
    # pack tasks differ in size (B panels are NR/MR times A's): hand them out dynamically
    npk = nkb * (mp + np_)
    c_off = t_off + _slots(m, n) * MR * NR
    work[c_off] = 0
    for _ in prange(min(npk, MAX_SLOTS)):
        old = fpenv.adopt(bits)
        t = _claim(work, c_off)
        while t < npk:
            _pack_all_task(t, m, n, k, A, ars, acs, B, brs, bcs, work, a_off, b_off)
            t = _claim(work, c_off)
        fpenv.leave(old)
    # compute tasks in contiguous runs, one run a slot: a thread's runs cover neighbouring
    # column blocks, so it reads about its share of B's panels
    ns = min(nt, MAX_SLOTS)
    for s in prange(ns):
        old = fpenv.adopt(bits)
        # prange indices are uint64: the int64 keeps one _compute_all_task signature
        u = np.int64(s)
        ts = t_off + u * MR * NR
        for t in range(u * nt // ns, (u + 1) * nt // ns):
            _compute_all_task(t, mc, nc, m, n, k, C, work, a_off, b_off, ts, ep)
        fpenv.leave(old)


@jit(fastmath=set(FASTMATH_REDUCE))
def _dots_rows(A, ars, m, B, brs, k, C, ldc, j0, j1):
    """C[i*ldc + j] = sum_p A[i*ars + p] * B[j*brs + p] for the m rows i of A and j in [j0, j1):
    four rows of B per pass, each pass over every row of A (the 4k elements of B stay in
    L1 across them, so B is read from memory once whatever m is).

    ``reassoc`` lets LLVM vectorize the reductions; their order is fixed by the
    compiled code and the row grouping (which starts at ``j0``), not by the thread
    count or by m.  Four rows share each load of A's row: 1.5x faster than one dot per
    row (NOTES section 12).  512-bit vectors allowed (``_wide_vectors``): LLVM's tuning for
    Intel's AVX-512 cores picks 256-bit ones, which ran this kernel 1.13-1.25x slower on
    the Xeon of NOTES section 53."""
    microkernels._wide_vectors()
    zero = C.dtype.type(0)
    j = j0
    while j + 4 <= j1:
        b0 = B[j * brs:j * brs + k]
        b1 = B[(j + 1) * brs:(j + 1) * brs + k]
        b2 = B[(j + 2) * brs:(j + 2) * brs + k]
        b3 = B[(j + 3) * brs:(j + 3) * brs + k]
        for i in range(m):
            a = A[i * ars:i * ars + k]
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
            c = i * ldc + j
            C[c] = s0
            C[c + 1] = s1
            C[c + 2] = s2
            C[c + 3] = s3
        j += 4
    while j < j1:
        b0 = B[j * brs:j * brs + k]
        for i in range(m):
            a = A[i * ars:i * ars + k]
            s0 = zero
            for p in range(k):
                s0 += a[p] * b0[p]
            C[i * ldc + j] = s0
        j += 1


@jit
def _dots_serial(A, ars, m, B, brs, k, C, n):
    """C (m, n, row-major) = A·Bᵀ by ``_dots_rows``, on this thread."""
    _dots_rows(A, ars, m, B, brs, k, C, n, np.int64(0), n)


@jit_parallel
def _dots_parallel(A, ars, m, B, brs, k, C, n):
    """``_dots_serial`` in tasks of at most ``GEMV_ROWS`` outputs, and at least one task a
    thread (64 outputs were one task: NOTES section 60).  Task sizes are multiples of 4, so
    every task starts a group of four: the same groups, so the same bits, at any thread count."""
    rows = min(GEMV_ROWS, _cdiv(_cdiv(n, _num_threads()), 4) * 4)
    nb = _cdiv(n, rows)
    bits = fpenv.current()
    for t in prange(nb):
        old = fpenv.adopt(bits)
        j0 = np.int64(t) * rows
        _dots_rows(A, ars, m, B, brs, k, C, n, j0, min(n, j0 + rows))
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
    _gemv_n_cols(a, acs, B, brs, k, C, np.int64(0), C.shape[0])


@jit_parallel
def _gemv_n_parallel(a, acs, B, brs, k, C):
    n = C.shape[0]
    nb = _cdiv(n, GEMV_COLS)
    bits = fpenv.current()
    for t in prange(nb):
        old = fpenv.adopt(bits)
        j0 = np.int64(t) * GEMV_COLS
        _gemv_n_cols(a, acs, B, brs, k, C, j0, min(n, j0 + GEMV_COLS))
        fpenv.leave(old)


@jit_parallel
def _gemm_halves(m, n, k, A, ars, acs, B, brs, bcs, C, work, ep):
    """C = op(A)·op(B) on two threads that split C's columns, each packing all of A,
    its half of B and computing its half on the serial path: one fork/join and no
    packed panel read by the other core (NOTES section 20)."""
    n0 = _split_at(n)
    second = _serial_size(m, n0, k)
    bits = fpenv.current()
    for t in prange(2):
        old = fpenv.adopt(bits)
        if t == 0:
            _gemm_serial(m, n0, k, A, ars, acs, B, brs, bcs, C, n, work[:second], ep)
        elif n > n0:
            # the second half's epilogue columns start at n0
            ep2 = (ep[0], ep[1], ep[2], ep[3], ep[4], ep[5] + n0)
            _gemm_serial(m, n - n0, k, A, ars, acs, B[n0 * bcs:], brs, bcs, C[n0:], n, work[second:], ep2)
        fpenv.leave(old)


@jit
def _row_halves_size(m, n, k):
    """Scratch of ``_gemm_row_halves``: the serial path's for each row half, one after the other."""
    m0 = _split_at(m)
    return _serial_size(m0, n, k) + _serial_size(m - m0, n, k)


@jit
def _serial_direct_chunks(m, n, k, A, ars, acs, B, brs, bcs, C, ldc, work, ep):
    """``_gemm_serial`` over column chunks narrow enough for the direct path where the whole
    width is not (B's rows contiguous, one k block): the same bits, since every element
    of C is the same sum on every serial path."""
    cw = n
    if USE_DIRECT and bcs == 1 and k <= KC:
        widest = max(NR, DIRECT_MAX_B_BYTES // (k * work.itemsize) // NR * NR)
        cw = _cdiv(_cdiv(n, _cdiv(n, widest)), NR) * NR     # equal chunks, whole panels
    for j0 in range(0, n, cw):
        _gemm_serial(m, min(cw, n - j0), k, A, ars, acs, B[j0 * bcs:], brs, bcs, C[j0:], ldc, work, ep)


@jit_parallel
def _gemm_row_halves(m, n, k, A, ars, acs, B, brs, bcs, C, work, ep):
    """C = op(A)·op(B) on two threads that split C's rows at ``_split_at(m)``, each on the
    serial path (no epilogue: ``ep`` only carries the types)."""
    m0 = _split_at(m)
    second = _serial_size(m0, n, k)
    bits = fpenv.current()
    for t in prange(2):
        old = fpenv.adopt(bits)
        if t == 0:
            _serial_direct_chunks(m0, n, k, A, ars, acs, B, brs, bcs, C, n, work[:second], ep)
        elif m > m0:
            _serial_direct_chunks(m - m0, n, k, A[m0 * ars:], ars, acs, B, brs, bcs, C[m0 * n:], n,
                                  work[second:], ep)
        fpenv.leave(old)


@jit
def _gemm(m, n, k, A, ars, acs, B, brs, bcs, C, work, ep, path):
    """C (m, n) = op(A) · op(B); A (i, p) at A[i*ars + p*acs], B (p, j) at B[p*brs + j*bcs];
    then the epilogue ``ep`` (``_no_epilogue``), block by block where the packed paths run.
    ``path``: ``PATH_AUTO`` chooses by shape and thread count; the others force one
    packed path (the tests compare them: all give the same bits)."""
    if m == 0 or n == 0:
        return
    if k == 0:
        C[:] = 0
        _epilogue_whole(ep, m, n)
        return
    if path == PATH_AUTO:
        par = 2.0 * m * n * k >= PAR_FLOPS
        if m <= DOTS_MAX_ROWS and acs == 1 and brs == 1:
            # B's columns contiguous (the forward) with few rows of A: one dot per output,
            # nothing packed (serial and parallel give the same bits: tasks start at
            # multiples of 4 rows; at one thread the parallel region costs ~5 µs of W1's
            # batch-1 25: NOTES section 28; a packed W costs far more than two rows: section 60)
            if 2.0 * m * n * k >= GEMV_PAR_FLOPS and _num_threads() > 1:
                _dots_parallel(A, ars, m, B, bcs, k, C, n)
            else:
                _dots_serial(A, ars, m, B, bcs, k, C, n)
            _epilogue_whole(ep, m, n)
            return
        if m == 1 and bcs == 1:
            # matrix-vector, B's rows contiguous: axpy over rows of B
            if par and _num_threads() > 1:
                _gemv_n_parallel(A, acs, B, brs, k, C)
            else:
                _gemv_n_serial(A, acs, B, brs, k, C)
            _epilogue_whole(ep, m, n)
            return
        threads = _num_threads()
        if not par or threads == 1:
            path = PATH_SERIAL
        elif n > NR and threads == 2:
            # the column halves at every size: on the Xeon of section 53 they beat the parallel
            # path on 17 of 18 products from 64x256x256 to 1024x4096x1024 (0.98-1.73x) and ran
            # W2's step 1.03x faster
            # (on Zen 3 they lost W2's step by 4-8%, section 29, when the cap was set at 1e8)
            path = PATH_HALVES
        else:
            path = PATH_PARALLEL
    if path == PATH_SERIAL:
        _check_work(work, _serial_size(m, n, k))
        _gemm_serial(m, n, k, A, ars, acs, B, brs, bcs, C, n, work, ep)
    elif path == PATH_HALVES:
        _check_work(work, _halves_size(m, n, k))
        _gemm_halves(m, n, k, A, ars, acs, B, brs, bcs, C, work, ep)
    else:
        _check_work(work, _parallel_size(m, n, k))
        _gemm_parallel(m, n, k, A, ars, acs, B, brs, bcs, C, work, ep)


def _ukr(kc, Ap, ao, Bp, bo, T, to):
    """The MR x NR register tile for ``Ap``'s dtype (inside jitted code only): float64 runs the
    tile in two column halves, where one pass would need twice the vector accumulators."""
    raise NotImplementedError("_ukr() is only available inside Numba-compiled code")


@overload(_ukr, jit_options={"fastmath": set(FASTMATH_SAFE)})
def _ukr_overload(kc, Ap, ao, Bp, bo, T, to):
    # The tile's own source is the implementation, compiled with the tiles' flags (``jit``'s
    # FMA contraction).  An inlined ``lambda ...: tile(...)`` wrapper left four NRT
    # incref/decref pairs (atomic) around every tile call: ~60 ns a tile, a quarter of a
    # tile at kc = 64 (NOTES section 42).
    return _UKR_F64.py_func if Ap.dtype.bitwidth == 64 else _UKR_F32.py_func


def _ukr_direct(kc, A, ao, ars, acs, B, bo, brs, T, to):
    """``_ukr`` over operands read in place (strides at run time; inside jitted code only)."""
    raise NotImplementedError("_ukr_direct() is only available inside Numba-compiled code")


@overload(_ukr_direct, jit_options={"fastmath": set(FASTMATH_SAFE)})
def _ukr_direct_overload(kc, A, ao, ars, acs, B, bo, brs, T, to):
    return _DIRECT_F64.py_func if A.dtype.bitwidth == 64 else _DIRECT_F32.py_func


def _zero_of(a):
    """A zero of ``a``'s dtype (inside jitted code only)."""
    raise NotImplementedError("_zero_of() is only available inside Numba-compiled code")


@overload(_zero_of, inline="always")
def _zero_of_overload(a):
    cast = numpy_support.as_dtype(a.dtype).type
    return lambda a: cast(0)


@jit
def _no_epilogue(out):
    """The epilogue argument of a product without one (same types as a real one).

    An epilogue is ``(Z, bias, A, act, alpha, j0)``: unless ``act`` is -1, every finished
    block [r0:r1, c0:c1] of the product (columns counted from ``j0`` in ``Z``) gets
    ``Z += bias; A = act(Z)`` (``activations.bias_act_block``) while it is in cache.
    (No boolean switch: Numba would type a constant True/False as a literal and compile
    every GEMM path twice, once per value.)
    """
    return (out, c_view(out, (out.size,))[:0], out, np.int64(-1), _zero_of(out), np.int64(0))


@jit
def _epilogue_block(ep, r0, r1, c0, c1):
    """The epilogue ``ep`` (see ``_no_epilogue``) on the finished block [r0:r1, c0:c1] of
    the product; nothing for a product without one."""
    if ep[3] >= 0:
        activations.bias_act_block(ep[0], ep[1], ep[3], ep[4], ep[2], r0, r1, ep[5] + c0, ep[5] + c1)


@jit
def _epilogue_whole(ep, m, n):
    """The epilogue over a whole m x n product (paths that do not run by blocks)."""
    _epilogue_block(ep, np.int64(0), m, np.int64(0), n)


@jit
def _blas_small(M, N, K):
    """Whether the product of a layer (batch M, out N, in K) goes to BLAS: only small
    ones (at most ``BLAS_MAX_MNK`` multiply-adds, which OpenBLAS runs on the calling
    thread, so no BLAS pool wakes up beside Numba's and results do not depend on the
    thread count), batch > 1, and only when ``BLAS_SMALL`` (NOTES section 15)."""
    return M > 1 and 0 < M * N * K <= BLAS_MAX_MNK


@jit
def _rows_to_blas(M, N, K):
    """Whether a forward (``matmul_nt``) or input-gradient (``matmul_nn``) product goes to BLAS:
    a ``_blas_small`` one of at least ``BLAS_MIN_ROWS`` rows.  At 2-4 rows of W1's 256x256
    layer OpenBLAS ran the forward in 47-76 µs (the dots: 8-18) and the input gradient in
    47-49 (the packed path: 22-23); W1's training step at 2-4 rows ran 1.09-1.28x faster
    without it (NOTES section 60)."""
    return M >= BLAS_MIN_ROWS and _blas_small(M, N, K)


@jit
def _blas_nt(A, W, work, out):
    """out = A @ W.T through BLAS (a ``_blas_small`` product).  With ``BLAS_NT_TRANSPOSE``
    (AVX-512), from ``BLAS_NT_MIN_ROWS`` rows and ``BLAS_NT_MIN_OUT`` outputs, W is first
    transposed into ``work`` (8x8 blocks in registers) and the product runs as A @ Wᵀ with
    Wᵀ row-major: on a Xeon, OpenBLAS's small-matrix kernel for that layout ran W3's
    32x64x64 1.85x faster than its A·Wᵀ kernel, the transpose included (NOTES section 42);
    on a Zen 3 the copy only cost (section 54).  Narrower outputs (W3's 10 classes) ran
    slower that way and keep A·Wᵀ.  Single-threaded either way, so the bits do not depend
    on the thread count (they can differ between the two forms)."""
    M, K = A.shape
    N = W.shape[0]
    if M >= BLAS_NT_MIN_ROWS and N >= BLAS_NT_MIN_OUT:
        _check_work(work, K * N)    # on every CPU, so a short buffer fails alike everywhere
        if BLAS_NT_TRANSPOSE:
            zero = np.int64(0)
            _pack_transpose(c_view(W, (N * K,)), np.int64(K), zero, np.int64(N), np.int64(K), work, zero, np.int64(N))
            np.dot(A, c_view(work[:K * N], (K, N)), out)
            return
    np.dot(A, W.T, out)


@jit
def _swapped_nt(M, N):
    """Whether a forward product of ``M`` rows into ``N`` outputs runs swapped (``_nt_swapped``):
    N is narrower than one NR panel (a classifier's few outputs) and Zᵀ = W·Aᵀ needs fewer
    MR x NR tiles than Z = A·Wᵀ.  W1's 128 rows into 10 classes: 8 tiles, not 16 (NOTES 72)."""
    return N < NR and M >= NR and _cdiv(N, MR) * _cdiv(M, NR) < _cdiv(M, MR)


@jit
def _swapped_size(M, N, K):
    """Scratch of ``_nt_swapped``: Zᵀ (M*N elements, then padded to 64 bytes) and the product's own."""
    return _cdiv(M * N, ALIGN) * ALIGN + _core_size(N, M, K)


@jit(inline="always")
def _nt_swapped(A, W, work, Z):
    """Z = A @ W.T computed as Zᵀ = W @ A.T into the front of ``work``, then transposed into Z.
    Its tiles sum the products in another grouping than ``own_nt(A, W)``'s partial column panel,
    so the last bits can differ from that form; the choice depends on the shape alone, so the
    results still do not depend on the thread count."""
    M, K = A.shape
    N = W.shape[0]
    _check_work(work, _swapped_size(M, N, K))
    Zt = c_view(work[:M * N], (N, M))
    own_nt(W, A, work[_cdiv(M * N, ALIGN) * ALIGN:], Zt, _no_epilogue(Zt), np.int64(PATH_AUTO))
    zero = np.int64(0)
    _pack_transpose(work, np.int64(M), zero, np.int64(N), np.int64(M), c_view(Z, (M * N,)), zero, np.int64(N))


@jit
def matmul_nt(A, W, work, out):
    """out = A @ W.T.  A (M, K), W (N, K), out (M, N); forward Z = A·Wᵀ."""
    M, K = A.shape
    N = W.shape[0]
    if BLAS_SMALL:
        if _rows_to_blas(M, N, K):
            _blas_nt(A, W, work, out)
            return
    if _swapped_nt(M, N):
        _nt_swapped(A, W, work, out)
        return
    own_nt(A, W, work, out, _no_epilogue(out), np.int64(PATH_AUTO))


# The thin levels between the entry points and ``_gemm`` are inlined at Numba IR level
# (``inline="always"``): each compiled library links and re-optimizes the GEMM's levels
# below it, so a level without a library of its own saved 3-6 s of a cold compile
# (NOTES section 56).  Bits and speed are unchanged; called from Python they compile as usual.
@jit(inline="always")
def own_nt(A, W, work, Z, ep, path):
    """Z = A @ W.T, then the epilogue ``ep``, always through fastbp's own kernels (never
    BLAS); ``path`` as in ``_gemm``.  ``own_nt``, ``own_tn`` and ``own_nn`` are the only
    callers of ``_gemm`` and pass every stride as a run-time ``np.int64``: a bare ``1``
    would be typed as a literal and compile the whole core once per stride pattern (three
    times per dtype, ~25-40 s each) for a branch ``_pack`` takes per panel anyway.  The
    tests of the packed paths (forced with ``path``) run exactly the code the layers run.
    (Pass ``path`` as ``np.int64`` too.)"""
    M, K = A.shape
    N = W.shape[0]
    one = np.int64(1)
    _gemm(M, N, K, c_view(A, (M * K,)), K, one, c_view(W, (N * K,)), one, K, c_view(Z, (M * N,)), work, ep, path)


@jit(inline="always")
def matmul_nt_bias_act(A, W, bias, act, alpha, work, Z, Aout):
    """Z = A @ W.T + bias, then Aout = act(Z) (``activations``' codes; alpha its parameter):
    a dense layer's forward with the bias and activation applied to each output block
    right after the packed paths compute it, while it is in cache (NOTES section 25).
    ``bias`` is (N,) or empty; ``Aout`` may be ``Z``.  Same bits as ``matmul_nt`` then
    ``activations.bias_act_forward``."""
    M, K = A.shape
    N = W.shape[0]
    if bias.size != 0 and bias.size != N:
        raise ValueError("bias must have W.shape[0] elements, or none")
    if Aout.shape[0] != M or Aout.shape[1] != N:
        raise ValueError("Aout must have shape (A.shape[0], W.shape[0])")
    if BLAS_SMALL:
        if _rows_to_blas(M, N, K):
            _blas_nt(A, W, work, Z)
            activations.bias_act_forward(Z, bias, act, alpha, Aout)
            return
    if _swapped_nt(M, N):
        _nt_swapped(A, W, work, Z)
        activations.bias_act_forward(Z, bias, act, alpha, Aout)
        return
    own_nt(A, W, work, Z, (Z, bias, Aout, np.int64(act), alpha, np.int64(0)), np.int64(PATH_AUTO))


@jit(inline="always")
def matmul_tn(D, A, work, out):
    """out = D.T @ A.  D (M, N), A (M, K), out (N, K); weight gradient ∂W = δᵀ·A."""
    M, N = D.shape
    K = A.shape[1]
    if BLAS_SMALL:
        if _blas_small(M, N, K):
            np.dot(D.T, A, out)
            return
    own_tn(D, A, work, out, np.int64(PATH_AUTO))


@jit(inline="always")
def own_tn(D, A, work, out, path):
    """out = D.T @ A through fastbp's own kernels (see ``own_nt``)."""
    M, N = D.shape
    K = A.shape[1]
    one = np.int64(1)
    _gemm(N, K, M, c_view(D, (M * N,)), one, N, c_view(A, (M * K,)), K, one, c_view(out, (N * K,)), work,
          _no_epilogue(out), path)


@jit(inline="always")
def weight_grad(D, A, work, out):
    """out = D.T @ A (``matmul_tn``) for a layer whose input gradient is not needed.  At two
    threads the halves split dW's rows where the forward's halves split W's rows
    (``_split_at``), so each thread writes the gradient rows it updates and reads, in one
    block instead of half of every row (hot: W4's first layer 1.08-1.16x the column halves'
    speed, W2's 1.01-1.11x, W1's 0.91-1.02x; W1's step 5-9% faster when the vCPUs sit far
    apart, level otherwise: NOTES section 67).  The same bits as ``matmul_tn``."""
    M, N = D.shape
    K = A.shape[1]
    if _num_threads() == 2 and N > NR and 2.0 * M * N * K >= OWNED_MIN_FLOPS and \
            not (BLAS_SMALL and _blas_small(M, N, K)):
        _check_work(work, _row_halves_size(N, K, M))
        one = np.int64(1)
        _gemm_row_halves(N, K, M, c_view(D, (M * N,)), one, N, c_view(A, (M * K,)), K, one, c_view(out, (N * K,)),
                         work, _no_epilogue(out))
    else:
        matmul_tn(D, A, work, out)


@jit(inline="always")
def matmul_nn(D, W, work, out):
    """out = D @ W.  D (M, N), W (N, K), out (M, K); input gradient ∂A = δ·W."""
    M, N = D.shape
    K = W.shape[1]
    if BLAS_SMALL:
        if _rows_to_blas(M, N, K):
            np.dot(D, W, out)
            return
    own_nn(D, W, work, out, np.int64(PATH_AUTO))


@jit(inline="always")
def own_nn(D, W, work, out, path):
    """out = D @ W through fastbp's own kernels (see ``own_nt``)."""
    M, N = D.shape
    K = W.shape[1]
    one = np.int64(1)
    _gemm(M, K, N, c_view(D, (M * N,)), N, one, c_view(W, (N * K,)), K, one, c_view(out, (M * K,)), work,
          _no_epilogue(out), path)


@jit_parallel
def _grads_pair(M, N, K, D, A, W, dW, dA, work):
    """dW = Dᵀ A and dA = D W at once, each on one thread through the serial path
    (``work`` holds the two scratch areas one after the other)."""
    second = _serial_size(N, K, M)
    bits = fpenv.current()
    one = np.int64(1)    # strides are run-time values, as in own_tn/own_nn (the same compiled core)
    for t in prange(2):
        old = fpenv.adopt(bits)
        if t == 0:
            _gemm_serial(N, K, M, D, one, N, A, K, one, dW, K, work[:second], _no_epilogue(c_view(dW, (N, K))))
        else:
            _gemm_serial(M, K, N, D, N, one, W, K, one, dA, K, work[second:], _no_epilogue(c_view(dA, (M, K))))
        fpenv.leave(old)


@jit_parallel
def _grads_owned(M, N, K, D, A, W, dW, dA, work):
    """dW = Dᵀ A and dA = D W on two threads, each computing the rows of dW (``_split_at(N)``)
    and the columns of dA (``_split_at(K)``) that its forward halves own: the rows of W it
    reads and updates and the columns of the lower layer's activations it wrote; each on
    the serial path, which ``_owned_direct`` makes the direct one (``work``: two equal
    areas, ``_owned_size``)."""
    n0 = _split_at(N)
    k0 = _split_at(K)
    half = _owned_size(M, N, K) // 2
    bits = fpenv.current()
    one = np.int64(1)
    for t in prange(2):
        old = fpenv.adopt(bits)
        w = work[t * half:(t + 1) * half]
        r0, r1 = (np.int64(0), n0) if t == 0 else (n0, N)
        c0, c1 = (np.int64(0), k0) if t == 0 else (k0, K)
        _gemm_serial(r1 - r0, K, M, D[r0:], one, N, A, K, one, dW[r0 * K:], K, w, _no_epilogue(c_view(dW, (N, K))))
        _gemm_serial(M, c1 - c0, N, D, N, one, W[c0:], K, one, dA[c0:], K, w, _no_epilogue(c_view(dA, (M, K))))
        fpenv.leave(old)


@jit
def _owned_direct(M, N, K, itemsize):
    """Whether ``backward_grads`` runs as ``_grads_owned``: both widths span more than one
    NR panel and each thread's two products run on the direct path whole.  W2's
    (256x1024x1024: dW's halves in direct chunks, dA's packed) ran 4-5% slower owned than
    paired (NOTES section 67)."""
    return M > 1 and N > NR and K > NR and _direct(M, K, 1, itemsize) and _direct(N, _split_at(K), 1, itemsize)


@jit
def _owned_size(M, N, K):
    """Scratch of ``_grads_owned``: two equal areas, each the larger of a thread's two products."""
    return 2 * max(_serial_size(_split_at(N), K, M), _serial_size(M, _split_at(K), N))


@jit(inline="always")
def backward_grads(D, A, W, work, dW, dA):
    """A dense layer's two backward products: ``dW = D.T @ A`` (``matmul_tn``) and
    ``dA = D @ W`` (``matmul_nn``); D (M, N), A (M, K), W (N, K).

    At exactly two threads, products big enough for the parallel path (and with
    M, N > 1, so neither is a matrix-vector product) run side by side instead, each
    on one thread through the serial path: one fork/join instead of four and no
    packed panel crossing cores (NOTES section 19: 1.36-1.65x at W4's 64x256x256,
    1.07x at 256x1024x1024).  Where both of D's and dA's widths span more than one NR
    panel and the halves run on the direct path (``_owned_direct``), each thread instead
    computes its forward halves' rows of dW and columns of dA (``_grads_owned``): as fast
    hot, and little of what one core writes is read by the other (when the vCPUs sit far
    apart W4's step ran 1.11-1.21x and W1's 1.02-1.03x, otherwise W4's level and W1's 1%
    slower: NOTES section 67); from ``OWNED_MIN_FLOPS``, smaller than the parallel path's
    ``PAR_FLOPS`` (a step of a few rows then keeps the gradients where the update reads
    them: NOTES section 70).  The pair too runs from ``OWNED_MIN_FLOPS`` where BLAS does not
    take the products (hot, 1.41-1.71x at 0.66-1.2 MFLOP: W1's output layer 128x10x256,
    64x64x128, 100x30x200; where BLAS takes them, one thread ran 0.69-1.09x the pair:
    NOTES 72).  The serial and parallel paths give the same bits, so the results do not
    depend on the thread count.
    """
    M, N = D.shape
    K = A.shape[1]
    if _num_threads() == 2 and _owned_direct(M, N, K, work.itemsize) and 2.0 * M * N * K >= OWNED_MIN_FLOPS:
        _check_work(work, _owned_size(M, N, K))
        _grads_owned(M, N, K, c_view(D, (M * N,)), c_view(A, (M * K,)), c_view(W, (N * K,)),
                     c_view(dW, (N * K,)), c_view(dA, (M * K,)), work)
    elif _num_threads() == 2 and M > 1 and N > 1 and 2.0 * M * N * K >= OWNED_MIN_FLOPS and \
            not (BLAS_SMALL and _blas_small(M, N, K)):
        _check_work(work, _serial_size(N, K, M) + _serial_size(M, K, N))
        _grads_pair(M, N, K, c_view(D, (M * N,)), c_view(A, (M * K,)), c_view(W, (N * K,)),
                    c_view(dW, (N * K,)), c_view(dA, (M * K,)), work)
    else:
        matmul_tn(D, A, work, dW)
        matmul_nn(D, W, work, dA)
