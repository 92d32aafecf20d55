"""``predict``'s one-region chain (``program._forward_region``, counters zeroed in the work
buffer every call) against the same chain with counters that are never zeroed: a claim is a
compare-and-swap from the call number before to this call's, the done count reaches
``call * blocks``, and the counters live in an array of their own.  Where the cores sit far
apart (NOTES section 66) every line that moves between them costs; the zeroing moves the
other thread's claim and done lines to thread 0 and back each call.  Same arithmetic; W1 at
batch 1, compiled calls, µs by placement state.

    PYTHONPATH=benchmarks/probes:. python benchmarks/probes/region_epochs.py [ROUNDS]
"""
import sys

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

import fastbp as fb
from fastbp import bench
from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import activations, atomics, fpenv, gemm
from fastbp.kernels import program as P
from fastbp.kernels.views import c_view
from chain_splitk import region_call  # benchmarks/probes: the chain with zeroed counters
from timing import median_us


@intrinsic
def _cas(typingctx, counters, pos, expected, value):
    """Atomically: if counters[pos] == expected, set it to value; returns whether it did."""
    def codegen(context, builder, sig, args):
        ptr = atomics._element_pointer(context, builder, sig.args[0], args[0], args[1])
        i32 = ir.IntType(32)
        old_new = builder.cmpxchg(ptr, builder.trunc(args[2], i32), builder.trunc(args[3], i32), "acq_rel",
                                  "monotonic")
        return builder.extract_value(old_new, 1)
    return types.boolean(counters, pos, types.int64, types.int64), codegen


@jit
def _layer(prog, consts, params, ws, cap, rows, counters, i, t, threads, call):
    n_in = prog[i, P.C_IN]
    n_out = prog[i, P.C_OUT]
    w = prog[i, P.C_W]
    X = c_view(P.slab(ws, prog[i, P.C_X], cap, rows, n_in), (rows * n_in,))
    Z = P.slab(ws, prog[i, P.C_Z], cap, rows, n_out)
    z = c_view(Z, (rows * n_out,))
    A = P.slab(ws, prog[i, P.C_A], cap, rows, n_out)
    W = params[w:w + n_out * n_in]
    bias = P._vec(params, prog[i, P.C_B], n_out)
    blocks = P._region_blocks(rows, n_out, n_in, threads)
    done = P._done_at(i)
    for s in range(blocks):
        b = (t + s) % blocks
        claim = done + (1 + b) * P.LINE
        if (s > 0 or t >= blocks) and atomics.load_acquire(counters, claim) == call:
            continue
        if _cas(counters, claim, call - 1, call):
            j0 = P._block_start(b, blocks, n_out)
            j1 = P._block_start(b + 1, blocks, n_out)
            gemm._dots_rows(X, n_in, rows, W, n_in, n_in, z, n_out, j0, j1)
            activations.bias_act_block(Z, bias, prog[i, P.C_ACT], consts[i, P.K_ALPHA], A, np.int64(0), rows, j0, j1)
            atomics.fetch_add(counters, done, 1)


@jit_parallel
def _region(prog, consts, params, ws, cap, rows, counters, call):
    threads = gemm._num_threads()
    bits = fpenv.current()
    for t in prange(threads):
        old = fpenv.adopt(bits)
        for i in range(P._last_op_with_block(prog, rows, np.int64(t), threads) + 1):
            if i > 0:
                P._wait_for(counters, P._done_at(i - 1),
                            call * P._region_blocks(rows, prog[i - 1, P.C_OUT], prog[i - 1, P.C_IN], threads))
            _layer(prog, consts, params, ws, cap, rows, counters, i, np.int64(t), threads, call)
        fpenv.leave(old)


@jit
def epoch_call(prog, consts, params, ws, cap, counters):
    """One call: counters[0] holds the call number (reset with all counters before it could
    overflow the done counts: 15 blocks x 2**27 calls < 2**31)."""
    call = np.int64(counters[0]) + 1
    if call >= 1 << 27:
        counters[:] = 0
        call = np.int64(1)
    counters[0] = call
    _region(prog, consts, params, ws, cap, np.int64(1), counters[P.LINE:], call)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    fb.set_num_threads(2)
    m = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
    ref = m.predict(x, batch_size=1)
    counters = np.zeros(P.LINE + m._program.shape[0] * (P.MAX_BLOCKS + 1) * P.LINE, np.int32)
    args = (m._program, m._consts, m.arena.params, m._ws, m.capacity)
    out = P.slab(m._ws, m._layout[P.L_OUTPUT], m.capacity, 1, 10)
    for _ in range(3):
        epoch_call(*args, counters)
        assert out.tobytes() == ref.tobytes()
    region_call(*args, m._work)
    by_state = {}
    for _ in range(rounds):
        region = bench.placement()[1]
        a = median_us(lambda: region_call(*args, m._work), 2000, 3)
        b = median_us(lambda: epoch_call(*args, counters), 2000, 3)
        by_state.setdefault("near" if region < 1.5 else "far", []).append((a, b))
    assert out.tobytes() == ref.tobytes()
    for state, v in by_state.items():
        a, b = (np.median([r[i] for r in v]) for i in range(2))
        print(f"{state}: {len(v)} rounds, µs: zeroed counters {a:.2f}, epoch counters {b:.2f}, speed {a / b:.3f}")


if __name__ == "__main__":
    main()
