"""Prototype: a small MLP's training step in batch-row chunks, one chunk per thread.

Each thread runs forward, loss and backward over its half of the batch's rows into its own
gradient buffer (one region), then a second region sums the two partial gradients and
applies Adam on each thread's half of the parameters.  Timing only: the loss gradient is
scaled per chunk, not per batch.  Compared with the compiled ``program.train_step``.

    PYTHONPATH=benchmarks/probes:. python benchmarks/probes/row_chunks.py [WORKLOAD] [ROUNDS]
"""
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import fpenv, losses, optim
from fastbp.kernels import program as P

from stepped_model import raw_calls, stepped_model


@jit
def _chunk(prog, consts, params, grads, state, ws, cap, layout, work, seed, step, loss_code, loss_param,
           X, T, labels, c, half):
    """Forward, loss and backward of chunk ``c`` (rows ``[0, half)`` or ``[half, rows)``)."""
    rows = X.shape[0]
    n_in = X.shape[1]
    n_out = layout[P.L_WIDTH]
    n_ops = prog.shape[0]
    r0 = 0 if c == 0 else half
    r1 = half if c == 0 else rows
    n = r1 - r0
    X0 = P.slab(ws, layout[P.L_INPUT], cap, n, n_in)
    P._copy_rows(X[r0:r1], X0)
    P.forward_ops(prog, consts, params, state, ws, cap, n, work, np.bool_(True), np.bool_(True), seed, step,
                  np.int64(0), n_ops, X0)
    out = P.slab(ws, layout[P.L_OUTPUT], cap, n, n_out)
    dout = P.slab(ws, layout[P.L_GRAD0], cap, n, n_out)
    loss = losses.loss_value_and_grad(loss_code, out, T, labels[r0:r1], loss_param, dout,
                                      P.float64_scratch(work, losses.scratch_size(n, n_out)))
    P.backward_ops(prog, consts, params, grads, state, ws, cap, n, work, np.bool_(True), np.bool_(False),
                   seed, step, np.int64(0), n_ops, layout[P.L_GRAD0], layout[P.L_GRAD1], X0)
    return loss


@jit_parallel
def chunked_step(prog, consts, params, grads2, gsum, state, ws2, cap, layout, work2, segments, seed, step,
                 loss_code, loss_param, X, T, labels, opt_code, opt_state, hyper, opt_step, flush, partial):
    old0 = fpenv.enter(flush)
    bits = fpenv.current()
    half = X.shape[0] // 2
    for c in prange(2):
        old = fpenv.adopt(bits)
        partial[c] = _chunk(prog, consts, params, grads2[c], state, ws2[c], cap, layout, work2[c], seed, step,
                            loss_code, loss_param, X, T, labels, np.int64(c), half)
        fpenv.leave(old)
    total = params.shape[0]
    mid = total // 2
    for t in prange(2):
        old = fpenv.adopt(bits)
        lo = np.int64(0) if t == 0 else np.int64(mid)
        hi = np.int64(mid) if t == 0 else np.int64(total)
        g0 = grads2[0, lo:hi]
        g1 = grads2[1, lo:hi]
        out = gsum[lo:hi]
        for i in range(out.shape[0]):   # from 0: a loop from ``lo`` would not vectorize
            out[i] = g0[i] + g1[i]
        optim._update_range_linked(opt_code, params, gsum, opt_state, hyper, opt_step, lo, hi)
        fpenv.leave(old)
    fpenv.leave(old0)
    return partial[0] + partial[1]


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "W3"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    fb.set_num_threads(2)
    s = stepped_model(fb, bench, name)
    m, opt = s.model, s.opt
    calls = raw_calls(s, fb, P, losses, optim)
    whole = calls.step(opt.code)
    flush = fb.get_flush_denormal()
    grads2 = np.zeros((2, m.arena.grads.shape[0]), m.dtype)
    gsum = np.zeros_like(m.arena.grads)
    ws2 = np.stack([m._ws.copy(), m._ws.copy()])
    work2 = np.stack([m._work.copy(), m._work.copy()])
    partial = np.zeros(2)
    count = [10 ** 6]
    param = m.dtype.type(s.loss.param)

    def chunked():
        count[0] += 1
        chunked_step(m._program, m._consts, m.arena.params, grads2, gsum, m.state.params, ws2, m.capacity, m._layout,
                     work2, m._segments, m._dropout_seed, m._step, s.loss.code, param, s.x, s.T, s.labels,
                     opt.code, opt.state, opt.hyper, count[0], flush, partial)

    def timed(f, calls_n=200):
        t = time.perf_counter()
        for _ in range(calls_n):
            f()
        return (time.perf_counter() - t) / calls_n * 1e6

    for threads in (2, 1):
        fb.set_num_threads(threads)
        chunked()
        whole()
        res = {"train_step": [], "chunked": []}
        tags = []
        for _ in range(rounds):
            tags.append(bench.placement())
            res["train_step"].append(timed(whole))
            res["chunked"].append(timed(chunked))
        ratio = [a / b for a, b in zip(res["train_step"], res["chunked"])]
        print(f"{name}, {threads} thread(s), batch {s.batch}, µs per compiled step, median of {rounds} rounds:")
        print(f"  train_step {np.median(res['train_step']):7.2f}   chunked {np.median(res['chunked']):7.2f}"
              f"   speed ratio {np.median(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f})")
        print("  placement (sharing, region µs):", " ".join(f"{a:.2f}/{b:.2f}" for a, b in tags))


if __name__ == "__main__":
    main()
