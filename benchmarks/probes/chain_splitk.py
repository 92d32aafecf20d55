"""W1 at batch 1: layer 2 split over its inputs (k) instead of its outputs, against the chain
as ``forward`` runs it (layer 1 in a region, 2 and 3 on one thread) and as ``predict`` runs it
since section 68 (``program._forward_region``: every layer split over outputs, the threads
meeting between layers).  Split over k, thread t computes its half of h1 and at once its
partial z2 = W2[:, half t] · h1[half t], which needs nothing from the other thread; thread 0
then waits once for thread 1's partial, sums, and runs layer 3: one hand-over between the
cores where the output split has three.  Different bits (the two partial sums): timing only.

    PYTHONPATH=benchmarks/probes:. python benchmarks/probes/chain_splitk.py [ROUNDS]
"""
import sys

import numba
import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp._jit import jit, jit_parallel
from fastbp.kernels import atomics, gemm
from fastbp.kernels import program as P
from chain_region import _relu_bias, chain  # benchmarks/probes
from gemv_chain import w1_operands
from timing import median_us


@jit
def _half(t, x, W1, b1, W2, h1, parts):
    """Thread t's half of layer 1, then its partial of layer 2 over that half."""
    k = x.shape[0]
    n1 = h1.shape[0]
    j0 = t * (n1 // 2)
    j1 = j0 + n1 // 2
    gemm._dots_rows(x, k, 1, W1, k, k, h1, n1, j0, j1)
    _relu_bias(h1, b1, j0, j1)
    gemm._dots_rows(h1[j0:], n1, 1, W2[j0:], n1, j1 - j0, parts[t], parts.shape[1], 0, parts.shape[1])


@jit_parallel
def split_k(x, W1, b1, W2, b2, W3, b3, h1, h2, out, parts, flags):
    flags[0] = 0
    for t in numba.prange(2):
        _half(t, x, W1, b1, W2, h1, parts)
        if t == 1:
            atomics.fetch_add(flags, 0, 1)
        else:
            P._wait_for(flags, 0, 1)
            for j in range(h2.shape[0]):
                h2[j] = parts[0, j] + parts[1, j]
            _relu_bias(h2, b2, 0, h2.shape[0])
            gemm._dots_rows(h2, h2.shape[0], 1, W3, h2.shape[0], h2.shape[0], out, out.shape[0], 0, out.shape[0])
            _relu_bias(out, b3, 0, out.shape[0])


@jit
def region_call(prog, consts, params, ws, cap, work):
    """``predict``'s compiled chain at one row (one call, as ``chain`` and ``split_k``)."""
    P._forward_region(prog, consts, params, ws, cap, 1, P._counters(work, prog, np.int64(1)),
                      P._input_rows(prog, ws, cap, np.int64(1)))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    fb.set_num_threads(2)
    Ws, bs, x, h1, h2, out = w1_operands()
    parts = np.zeros((2, 256), np.float32)
    flags = np.zeros(16, np.int32)
    args = (x, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2], h1, h2, out)
    chain(*args)
    ref = out.copy()
    split_k(*args, parts, flags)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    m = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
    xm = x.reshape(1, -1)
    m.predict(xm, batch_size=1)
    cap = m.capacity

    def region():
        region_call(m._program, m._consts, m.arena.params, m._ws, cap, m._work)

    region()
    by_state = {}
    for _ in range(rounds):
        sharing, reg = bench.placement()
        a = median_us(lambda: chain(*args), 2000, 3)
        b = median_us(region, 2000, 3)
        c = median_us(lambda: split_k(*args, parts, flags), 2000, 3)
        state = "near" if reg < 1.5 else "far"
        by_state.setdefault(state, []).append((a, b, c))
    for state, v in by_state.items():
        a, b, c = (np.median([r[i] for r in v]) for i in range(3))
        print(f"{state}: {len(v)} rounds, µs: forward's chain {a:.2f}, output split (predict) {b:.2f}, "
              f"k split {c:.2f}")


if __name__ == "__main__":
    main()
