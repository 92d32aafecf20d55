"""W3's backward pass and optimizer update overlapped on two threads (NOTES section 48; not
kept): apply the patch first, ``git apply benchmarks/probes/overlap_backward.patch``.

    PYTHONPATH=. python benchmarks/probes/overlap_step.py [WORKLOAD] [ROUNDS]

At 2 threads, in one process, interleaved: the raw pass (``backward`` then
``optimizer_step`` against ``overlapped_backward_update``, after one step has filled the
workspace), and a whole compiled step (``staged_step``'s body with either pass).  µs per
call: the median and the quartiles over rounds of the mean of 500 calls.
"""
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp._jit import jit
from fastbp.kernels import fpenv, losses, optim
from fastbp.kernels import program as P

name = sys.argv[1] if len(sys.argv) > 1 else "W3"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 21
_, widths, batch = bench.WORKLOADS[name]
fb.set_num_threads(2)
m = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0)
opt = fb.optim.Adam(m.parameters(), lr=1e-3)
x, y = bench.make_batch(widths, batch)
loss = fb.CrossEntropyLoss()
m.train_step(x, y, loss, opt)
assert P.can_overlap(m._program, m.arena.params, batch, m._work, m._segments), "the overlap does not apply"


@jit
def step(prog, consts, params, grads, state, ws, cap, rows, layout, work, segments, loss_code, loss_param, T, labels,
         opt_code, opt_state, hyper, opt_step, overlap):
    """``program.staged_step`` with the pass chosen by ``overlap``."""
    old = fpenv.enter(True)
    P.forward(prog, consts, params, state, ws, cap, rows, work, np.bool_(True), 0, 1, segments, True)
    n_out = layout[P.L_WIDTH]
    out = P.slab(ws, layout[P.L_OUTPUT], cap, rows, n_out)
    dout = P.slab(ws, layout[P.L_GRAD0], cap, rows, n_out)
    value = losses.loss_value_and_grad(loss_code, out, T, labels, loss_param, dout,
                                       P.float64_scratch(work, losses.scratch_size(rows, n_out)))
    if overlap:
        P.overlapped_backward_update(prog, consts, params, grads, ws, cap, rows, layout, work, opt_code, opt_state,
                                     hyper, opt_step)
    else:
        P.backward(prog, consts, params, grads, state, ws, cap, rows, layout, work, np.bool_(True), np.bool_(False),
                   0, 1, segments, True)
        optim.optimizer_step(opt_code, params, grads, opt_state, hyper, opt_step)
    fpenv.leave(old)
    return value


no_targets = np.zeros((0, widths[-1]), np.float32)
labels = y.astype(np.int64)


def step_with(overlap):
    return lambda: step(m._program, m._consts, m.arena.params, m.arena.grads, m.state.params, m._ws, m.capacity,
                        batch, m._layout, m._work, m._segments, loss.code, loss.typed_param(np.float32), no_targets,
                        labels, opt.code, opt.state, opt.hyper, 5, overlap)


def serial_pass():
    P.backward(m._program, m._consts, m.arena.params, m.arena.grads, m.state.params, m._ws, m.capacity, batch,
               m._layout, m._work, np.bool_(True), np.bool_(False), 0, 1, m._segments, True)
    optim.optimizer_step(opt.code, m.arena.params, m.arena.grads, opt.state, opt.hyper, 5)


def overlapped_pass():
    P.overlapped_backward_update(m._program, m._consts, m.arena.params, m.arena.grads, m._ws, m.capacity, batch,
                                 m._layout, m._work, opt.code, opt.state, opt.hyper, 5)


cases = {"pass, serial": serial_pass, "pass, overlapped": overlapped_pass,
         "step, serial pass": step_with(False), "step, overlapped pass": step_with(True)}
for f in cases.values():
    for _ in range(500):
        f()
times = {k: [] for k in cases}
for _ in range(rounds):
    for k, f in cases.items():
        t = time.perf_counter()
        for _ in range(500):
            f()
        times[k].append((time.perf_counter() - t) / 500 * 1e6)
print(f"{name}, batch {batch}, 2 threads, {rounds} interleaved rounds of 500 calls, µs: median (quartiles)")
for k, v in times.items():
    print(f"  {k:24s} {np.median(v):7.2f} ({np.percentile(v, 25):.2f}-{np.percentile(v, 75):.2f})")
for a, b in (("pass, serial", "pass, overlapped"), ("step, serial pass", "step, overlapped pass")):
    r = np.array(times[a]) / np.array(times[b])
    print(f"  {a} / {b.split(', ')[1]}: median ratio {np.median(r):.3f} (rounds {r.min():.2f}-{r.max():.2f})")
