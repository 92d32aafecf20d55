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

from stepped_model import raw_calls, stepped_model

fb.set_num_threads(2)
name = sys.argv[1] if len(sys.argv) > 1 else "W4"
s = stepped_model(fb, bench, name)
m, opt = s.model, s.opt
calls = raw_calls(s, fb, P, losses, optim)
fwd, lossgrad, bwd, optstep = calls.forward, calls.loss_grad, calls.backward, calls.optimizer


def spin():
    t = time.perf_counter()
    while time.perf_counter() - t < 0.0025:
        pass


big = np.ones(8 << 20, np.float32)


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
    no_opt = calls.step(-1)
    steps = {"step with the optimizer": calls.step(opt.code), "step without": no_opt,
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
