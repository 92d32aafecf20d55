"""Where a training step's time goes beyond its products: the compiled step against its
pieces called one after another (forward, loss, backward, optimizer), and each piece
alone in a loop (its operands then stay in cache).

    PYTHONPATH=. python benchmarks/probes/step_sequence.py [THREADS] [WORKLOAD]

"in sequence" times each raw compiled call inside a step-like sequence (operands as the
step leaves them); "alone" repeats the piece back to back; the products alone run on copies of the
operands (``layer_products.py``, as in ``w4_pieces.py``), for what the step adds around them.  µs, medians over rounds.
"""
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp.kernels import losses, optim
from fastbp.kernels import program as P

from layer_products import layer_products  # benchmarks/probes (the script folder is on sys.path)
from stepped_model import raw_calls, stepped_model

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
name = sys.argv[2] if len(sys.argv) > 2 else "W1"
fb.set_num_threads(threads)
s = stepped_model(fb, bench, name)
m, opt, widths, batch = s.model, s.opt, s.widths, s.batch
calls = raw_calls(s, fb, P, losses, optim)
step_raw, fwd, lossgrad, bwd, optstep = (calls.step(opt.code), calls.forward, calls.loss_grad, calls.backward,
                                         calls.optimizer)


fwd_products, bwd_products, _, _ = layer_products(m, widths, batch, m._work)


pieces = {"forward": fwd, "loss": lossgrad, "backward": bwd, "optimizer": optstep}
extra = {"forward products": fwd_products, "backward products": bwd_products}
for f in (step_raw, *pieces.values(), *extra.values()):
    f()
seq = {k: [] for k in pieces}
alone = {k: [] for k in (*pieces, *extra)}
whole = []
for _ in range(7):
    t0 = time.perf_counter()
    for _ in range(50):
        step_raw()
    whole.append((time.perf_counter() - t0) / 50 * 1e6)
    acc = {k: [] for k in pieces}
    for _ in range(50):
        for k, f in pieces.items():
            t = time.perf_counter()
            f()
            acc[k].append(time.perf_counter() - t)
    for k in pieces:
        seq[k].append(np.median(acc[k]) * 1e6)
    for k, f in {**pieces, **extra}.items():
        ts = []
        for _ in range(50):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        alone[k].append(np.median(ts) * 1e6)
print(f"{name}, {threads} threads, batch {batch}, µs (median of 7 rounds of 50)")
print(f"  compiled train_step          {np.median(whole):8.1f}   ({min(whole):.0f}-{max(whole):.0f})")
for k in pieces:
    print(f"  {k:12s} in sequence {np.median(seq[k]):8.1f}   alone {np.median(alone[k]):8.1f}")
for k in extra:
    print(f"  {k:25s} alone {np.median(alone[k]):8.1f}")
print(f"  sum in sequence              {sum(np.median(v) for v in seq.values()):8.1f}")
print(f"  sum alone                    {sum(np.median(alone[k]) for k in pieces):8.1f}")
