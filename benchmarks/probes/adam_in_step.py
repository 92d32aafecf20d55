"""What Adam costs inside a training step: the optimizer (with subnormals flushed, as the
step runs it) timed right after different preludes, and the compiled step with and without
its optimizer (NOTES section 44).  The raw ``optim.optimizer_step`` runs without
flush-to-zero: its state then holds subnormals and it read ~60% slower after a step.

    PYTHONPATH=. python benchmarks/probes/adam_in_step.py [WORKLOAD]
"""
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp.kernels import losses, optim
from fastbp.kernels import program as P

from stepped_model import stepped_model

fb.set_num_threads(2)
name = sys.argv[1] if len(sys.argv) > 1 else "W4"
s = stepped_model(fb, bench, name)
m, opt, loss, x, T, labels, batch = s.model, s.opt, s.loss, s.x, s.T, s.labels, s.batch
flush = fb.get_flush_denormal()
lay, cap, ws = m._layout, m.capacity, m._ws
n_out = lay[P.L_WIDTH]
Pout = P.slab(ws, lay[P.L_OUTPUT], cap, batch, n_out)
dP = P.slab(ws, lay[P.L_GRAD0], cap, batch, n_out)
step = [opt.step_count]


def fwd():
    P.forward(m._program, m._consts, m.arena.params, m.state.params, ws, cap, batch, m._work, True,
              m._dropout_seed, m._step, m._segments, flush)


def lossgrad():
    losses.loss_value_and_grad(loss.code, Pout, T, labels, m.dtype.type(loss.param), dP)


def bwd():
    P.backward(m._program, m._consts, m.arena.params, m.arena.grads, m.state.params, ws, cap, batch, lay, m._work,
               True, False, m._dropout_seed, m._step, m._segments, flush)


def optstep():
    step[0] += 1
    optim.optimizer_step_call(opt.code, m.arena.params, m.arena.grads, opt.state, opt.hyper, step[0], flush)


def spin():
    t = time.perf_counter()
    while time.perf_counter() - t < 0.0025:
        pass


big = np.ones(8 << 20, np.float32)


def train_step(code):
    def f():
        step[0] += 1
        P.train_step(m._program, m._consts, m.arena.params, m.arena.grads, m.state.params, ws, cap, lay,
                     m._work, m._segments, m._dropout_seed, m._step, loss.code, m.dtype.type(loss.param), x, T,
                     labels, code, opt.state, opt.hyper, step[0], flush)
    return f


def main():
    preludes = {"opt": [], "fwd, loss, bwd": [fwd, lossgrad, bwd], "bwd": [bwd], "fwd": [fwd],
                "2.5 ms spin": [spin], "a 32 MB read": [big.sum]}
    for f in (fwd, lossgrad, bwd, optstep):
        f()
    res = {k: [] for k in preludes}
    for _ in range(7):
        for k, pre in preludes.items():
            ts = []
            for _ in range(30):
                for f in pre:
                    f()
                t = time.perf_counter()
                optstep()
                ts.append(time.perf_counter() - t)
            res[k].append(np.median(ts) * 1e6)
    print(f"{name}: the optimizer over {m.arena.params.size:,} parameters, µs (median of 7 rounds of 30)")
    for k, v in res.items():
        print(f"  after {k:16s} {np.median(v):8.1f}  ({min(v):.0f}-{max(v):.0f})")
    no_opt = train_step(-1)
    steps = {"step with the optimizer": train_step(opt.code), "step without": no_opt,
             "step without, then the optimizer": lambda: (no_opt(), optstep())}
    for f in steps.values():
        f()
    res = {k: [] for k in steps}
    for _ in range(7):
        for k, f in steps.items():
            t = time.perf_counter()
            for _ in range(20):
                f()
            res[k].append((time.perf_counter() - t) / 20 * 1e6)
    for k, v in res.items():
        print(f"  {k:32s} {np.median(v):8.1f}  ({min(v):.0f}-{max(v):.0f})")


if __name__ == "__main__":
    main()
