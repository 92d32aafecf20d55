"""Batch-1 products: the library's dot kernel (``gemm._dots_rows``: four rows a pass,
LLVM's vectorized ``reassoc`` reductions) against a lane-explicit one written as LLVM IR
(one 64-byte vector accumulator per row, R rows a pass, FMAs in p order per lane, a fixed
halving tree over the lanes at the end) and a plain float32 sum over the same bytes.
Prediction (NOTES section 51): the vectorizer's per-row reductions (four accumulators,
then a horizontal add) cost ~40% at k = 256.  One thread, µs medians of 5 rounds of 2,000
calls (each call includes Numba's dispatch, ~0.3 µs).

    PYTHONPATH=. python benchmarks/probes/gemv_lanes.py
"""
import sys

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from fastbp._jit import FASTMATH_REDUCE, FASTMATH_SAFE
from fastbp.kernels import gemm
from fastbp.kernels.microkernels import _wide_vectors
sys.path.insert(0, __import__("os").path.dirname(__file__))
from timing import median_us  # noqa: E402
def make_dot_rows(R, ahead=0):
    """An intrinsic ``dot_rows(a, B, k, C, j)``: C[j + r] = a[:k] · B[(j + r)*k:(j + r + 1)*k]
    for r < R.  ``ahead`` > 0 adds an ``llvm.prefetch`` of each row that many elements ahead
    (tried: no faster)."""
    @intrinsic
    def dot_rows(typingctx, a, B, k, C, j):
        if not (isinstance(a, types.Array) and isinstance(B, types.Array) and isinstance(C, types.Array)
                and a.dtype == B.dtype == C.dtype and isinstance(k, types.Integer) and isinstance(j, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            elem = context.get_data_type(sig.args[0].dtype)
            size = context.get_abi_sizeof(elem)
            V = 64 // size
            vty = ir.VectorType(elem, V)
            vptr = ir.PointerType(vty)
            i64 = ir.IntType(64)
            a_ary = context.make_array(sig.args[0])(context, builder, args[0])
            b_ary = context.make_array(sig.args[1])(context, builder, args[1])
            c_ary = context.make_array(sig.args[3])(context, builder, args[3])
            k = context.cast(builder, args[2], sig.args[2], types.int64)
            j = context.cast(builder, args[4], sig.args[4], types.int64)
            suffix = "f32" if size == 4 else "f64"
            fma_v = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                                   f"llvm.fma.v{V}{suffix}")
            fma_s = cgutils.get_or_insert_function(builder.module, ir.FunctionType(elem, [elem] * 3),
                                                   f"llvm.fma.{suffix}")
            rows = [builder.gep(b_ary.data, [builder.mul(builder.add(j, ir.Constant(i64, r)), k)]) for r in range(R)]
            kmain = builder.sub(k, builder.srem(k, ir.Constant(i64, V)))
            zero_v = ir.Constant(vty, [ir.Constant(elem, 0.0)] * V)
            zero = ir.Constant(elem, 0.0)
            pre = builder.block
            head = builder.append_basic_block("dot.vhead")
            body = builder.append_basic_block("dot.vbody")
            shead = builder.append_basic_block("dot.shead")
            sbody = builder.append_basic_block("dot.sbody")
            done = builder.append_basic_block("dot.done")
            builder.branch(head)
            # vector loop
            builder.position_at_end(head)
            p = builder.phi(i64)
            accs = [builder.phi(vty) for _ in range(R)]
            p.add_incoming(ir.Constant(i64, 0), pre)
            for acc in accs:
                acc.add_incoming(zero_v, pre)
            builder.cbranch(builder.icmp_signed("<", p, kmain), body, shead)
            builder.position_at_end(body)
            x = builder.load(builder.bitcast(builder.gep(a_ary.data, [p]), vptr), align=size)
            new = []
            if ahead:
                pf = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()] + [ir.IntType(32)] * 3),
                    "llvm.prefetch.p0i8")
                for r in range(R):
                    ptr = builder.bitcast(builder.gep(rows[r], [builder.add(p, ir.Constant(i64, ahead))]),
                                          ir.IntType(8).as_pointer())
                    builder.call(pf, [ptr, ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 3),
                                      ir.Constant(ir.IntType(32), 1)])
            for r in range(R):
                b = builder.load(builder.bitcast(builder.gep(rows[r], [p]), vptr), align=size)
                new.append(builder.call(fma_v, [x, b, accs[r]]))
            p_next = builder.add(p, ir.Constant(i64, V))
            p.add_incoming(p_next, body)
            for acc, nv in zip(accs, new):
                acc.add_incoming(nv, body)
            builder.branch(head)
            # scalar tail
            builder.position_at_end(shead)
            q = builder.phi(i64)
            ts = [builder.phi(elem) for _ in range(R)]
            q.add_incoming(kmain, head)
            for t in ts:
                t.add_incoming(zero, head)
            builder.cbranch(builder.icmp_signed("<", q, k), sbody, done)
            builder.position_at_end(sbody)
            xs = builder.load(builder.gep(a_ary.data, [q]))
            tn = [builder.call(fma_s, [xs, builder.load(builder.gep(rows[r], [q])), ts[r]]) for r in range(R)]
            q.add_incoming(builder.add(q, ir.Constant(i64, 1)), sbody)
            for t, v in zip(ts, tn):
                t.add_incoming(v, sbody)
            builder.branch(shead)
            # lane tree + tail
            builder.position_at_end(done)
            for r in range(R):
                v = accs[r]
                w = V
                while w > 1:
                    h = w // 2
                    lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), h), list(range(h))))
                    hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), h), list(range(h, w))))
                    v = builder.fadd(lo, hi)
                    w = h
                s = builder.fadd(builder.extract_element(v, ir.Constant(ir.IntType(32), 0)), ts[r])
                builder.store(s, builder.gep(c_ary.data, [builder.add(j, ir.Constant(i64, r))]))
            return context.get_dummy_value()
        return types.none(a, B, k, C, j), codegen
    return dot_rows


_DOT = {R: make_dot_rows(R) for R in (1, 4, 8, 16)}


def lanes_kernel(R):
    dot, one = _DOT[R], _DOT[1]

    @njit(fastmath=set(FASTMATH_SAFE))
    def run(a, B, k, C, j0, j1):
        _wide_vectors()
        j = j0
        while j + R <= j1:
            dot(a, B, k, C, j)
            j += R
        while j < j1:
            one(a, B, k, C, j)
            j += 1
    return run


@njit(fastmath=set(FASTMATH_REDUCE))
def library(a, B, k, C, j0, j1):
    gemm._dots_rows(a, k, 1, B, k, k, C, 0, j0, j1)


@njit(fastmath=set(FASTMATH_REDUCE))
def stream(B, n):
    s = np.float32(0)
    for i in range(n):
        s += B[i]
    return s


def main():
    rng = np.random.default_rng(0)
    kernels = {"library": library, **{f"lanes{R}": lanes_kernel(R) for R in (4, 8, 16)}}
    for dt in (np.float32, np.float64):
        for n, k in ((256, 784), (256, 256), (10, 256), (67, 101)):
            a = rng.standard_normal(k).astype(dt)
            B = rng.standard_normal(n * k).astype(dt)
            kk, j0, j1 = np.int64(k), np.int64(0), np.int64(n)
            out = {name: np.zeros(n, dt) for name in kernels}
            for name, f in kernels.items():
                f(a, B, kk, out[name], j0, j1)
            ref = B.reshape(n, k).astype(np.float64) @ a.astype(np.float64)
            lanes_same = len({out[f"lanes{R}"].tobytes() for R in (4, 8, 16)}) == 1
            print(f"{dt.__name__} {n}x{k}: max |error| " +
                  ", ".join(f"{name} {np.abs(c - ref).max():.1e}" for name, c in out.items()) +
                  f"; lanes kernels bitwise equal: {lanes_same}")
            if dt is np.float32 and n == 256:
                nk = np.int64(n * k)
                stream(B, nk)
                for _ in range(3):
                    times = {name: median_us(lambda f=f, c=out[name]: f(a, B, kk, c, j0, j1), 2000, 5)
                             for name, f in kernels.items()}
                    times["stream"] = median_us(lambda: stream(B, nk), 2000, 5)
                    print("   " + "  ".join(f"{name} {t:6.2f}" for name, t in times.items()))


if __name__ == "__main__":
    main()
