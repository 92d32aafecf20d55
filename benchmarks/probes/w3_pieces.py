"""Where a W3 step goes: the step from Python, the compiled call alone and its pieces.

    PYTHONPATH=. python benchmarks/probes/w3_pieces.py [THREADS]

Each piece called from Python (so each includes Numba's argument dispatch, which the
22-argument empty function measures); median µs over 5 rounds of 3 x 2,000 calls
(NOTES section 35).
"""
import sys

import numpy as np
from numba import njit

import fastbp as fb
from fastbp import bench
from fastbp.kernels import optim as O
from fastbp.kernels import program as P

from timing import median_us

fb.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
_, widths, batch = bench.WORKLOADS["W3"]
m = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0)
opt = fb.optim.Adam(m.parameters(), lr=1e-3)
loss = fb.CrossEntropyLoss()
x, y = bench.make_batch(widths, batch)
m.train_step(x, y, loss, opt)
T, labels = loss.prepare_target(y, m.out_features, m.dtype, n_rows=batch, strict=True)
args = (m._program, m._consts, m.arena.params, m.arena.grads, m.state.params, m._ws, m.capacity, m._layout,
        m._work, m._segments, m._dropout_seed, m._step, loss.code, m.dtype.type(loss.param), x, T, labels, opt.code,
        opt.state, opt.hyper, 5, True)


@njit
def empty22(a, b, c, d, e, f, g, h, i, j, k, l_, m_, n, o, p, q, r, s, t, u, v):
    return 1.0, 2.0


cases = {
    "model.train_step": lambda: m.train_step(x, y, loss, opt),
    "program.train_step": lambda: P.train_step(*args),
    "empty 22-arg njit": lambda: empty22(*args),
    "program.forward": lambda: P.forward(m._program, m._consts, m.arena.params, m.state.params, m._ws, m.capacity,
                                         batch, m._work, True, m._dropout_seed, m._step, m._segments, True),
    "program.backward": lambda: P.backward(m._program, m._consts, m.arena.params, m.arena.grads, m.state.params,
                                           m._ws, m.capacity, batch, m._layout, m._work, True, False,
                                           m._dropout_seed, m._step, m._segments, True),
    "opt.step (compiled call)": lambda: O.optimizer_step_call(opt.code, m.arena.params, m.arena.grads, opt.state,
                                                              opt.hyper, 5, True),
}
res = {k: [] for k in cases}
for _ in range(5):
    for k, f in cases.items():
        res[k].append(median_us(f, 2000, rounds=3))
for k, v in res.items():
    print(f"{k:26s} {np.median(v):6.1f} µs ({min(v):.1f}-{max(v):.1f})")
