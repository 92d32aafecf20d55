"""How fast W1's batch-1 ``model.predict`` could be on this machine, piece by piece, against
issue 3's target (a third of the best peer's time, hand numpy measured here; NOTES section 70).

    PYTHONPATH=. python benchmarks/probes/b1_floor.py [ROUNDS]

At batch 1 every layer is a matrix-vector product: the time is reading W (1.07 MB of float32)
from the caches, split between two threads.  The floor adds, per call:
  * stream: each thread reading its half of every layer's W as fast as a plain vectorized sum
    reads the same bytes (the rows ``program._forward_region`` gives it: half of layers 1 and 2,
    all of layer 3 on thread 0), one thread alone here (the slower half counts);
  * region: one empty two-thread parallel region (``bench.region_us``);
  * dispatch: Numba's typing and unboxing of ``program.predict``'s 12 arguments (the call from
    Python against the same call inside a compiled loop);
  * python: ``model.predict``'s checks in front of that call.
The measured rows are the library's own: its dot kernel on those halves, the compiled chain,
the call from Python, ``model.predict``.  µs, medians of ROUNDS interleaved rounds.
"""
import sys
import time

import numpy as np
from numba import njit, prange

import fastbp as fb
from fastbp import bench
from fastbp.kernels import gemm
from fastbp.kernels import program as P
from fastbp.model import flush_denormal

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
fb.set_num_threads(2)
widths = [784, 256, 256, 10]
model = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0).eval()
x, _ = bench.make_batch(widths, 1)
out = np.empty((1, widths[-1]), np.float32)
model.predict(x, batch_size=1, out=out)
numpy_infer = bench.numpy_infer(widths, 1)


@njit(fastmath=True)
def _stream(a):
    s = np.float32(0)
    for i in range(a.size):
        s += a[i]
    return s


@njit
def stream_loop(parts, n):
    t = np.float32(0)
    for _ in range(n):
        for a in parts:
            t += _stream(a)
    return t


@njit
def _dots(x, W, y):
    """y = W·x for the rows of W (flat, x.size long each), by the library's dot kernel."""
    gemm._dots_rows(x, x.size, 1, W, x.size, x.size, y, y.size, 0, y.size)


@njit
def dots_loop(parts, xs, ys, n):
    for _ in range(n):
        for i in range(len(parts)):
            _dots(xs[i], parts[i], ys[i])


@njit(parallel=True)
def _both_dots(w01, w02, w03, w11, w12, x1, x2, y1, y2, y3):
    """Each thread its blocks of the three layers, no waits between them (unlike the chain)."""
    for t in prange(2):
        if t == 0:
            _dots(x1, w01, y1[:w01.size // x1.size])
            _dots(x2, w02, y2[:w02.size // x2.size])
            _dots(x2, w03, y3)
        else:
            _dots(x1, w11, y1[y1.size - w11.size // x1.size:])
            _dots(x2, w12, y2[y2.size - w12.size // x2.size:])


@njit
def both_loop(w01, w02, w03, w11, w12, x1, x2, y1, y2, y3, n):
    for _ in range(n):
        _both_dots(w01, w02, w03, w11, w12, x1, x2, y1, y2, y3)


@njit
def chain_loop(n, prog, consts, params, state, ws, cap, layout, work, segments, X, out, flush):
    for _ in range(n):
        P.predict(prog, consts, params, state, ws, cap, layout, work, segments, X, out, flush)


def halves(thread):
    """Thread ``thread``'s rows of every layer's W, flat views of the arena, as
    ``program._forward_region`` splits them at two threads."""
    parts = []
    for layer in model.layers:
        W = getattr(layer, "weight", None)
        if W is None:
            continue
        n_out = W.shape[0]
        if 2.0 * n_out * W.shape[1] < P.REGION_SPLIT_FLOPS:     # one block, thread 0's
            rows = (0, n_out) if thread == 0 else (0, 0)
        else:
            split = P._block_start(1, 2, n_out)
            rows = (0, split) if thread == 0 else (split, n_out)
        if rows[1] > rows[0]:
            parts.append(np.ascontiguousarray(W[rows[0]:rows[1]]).ravel())
    return tuple(parts)


args = (model._program, model._consts, model.arena.params, model.state.params, model._ws, model.capacity,
        model._layout, model._work, model._segments, x, out, flush_denormal())
thread_parts = [halves(0), halves(1)]


def dot_case(parts):
    """The dot kernel over ``parts`` (each a block of W's rows), one output per row."""
    ks = [784, 256, 256]
    xs, ys = [], []
    for p, k in zip(parts, ks):
        xs.append(np.ones(k, np.float32))
        ys.append(np.empty(p.size // k, np.float32))
    return tuple(parts), tuple(xs), tuple(ys)


dots = [dot_case(p) for p in thread_parts]
N = 2000
cases = {
    "numpy b1 (best peer)": lambda: [numpy_infer() for _ in range(N)],
    "stream thread 0": lambda: stream_loop(thread_parts[0], N),
    "stream thread 1": lambda: stream_loop(thread_parts[1], N),
    "dots thread 0": lambda: dots_loop(*dots[0], N),
    "dots thread 1": lambda: dots_loop(*dots[1], N),
    "both halves, one region": lambda: both_loop(*thread_parts[0], *thread_parts[1], np.ones(784, np.float32),
                                                np.ones(256, np.float32), np.empty(256, np.float32),
                                                np.empty(256, np.float32), np.empty(10, np.float32), N),
    "compiled chain": lambda: chain_loop(N, *args),
    "P.predict from Python": lambda: [P.predict(*args) for _ in range(N)],
    "model.predict": lambda: [model.predict(x, batch_size=1, out=out) for _ in range(N)],
}
for f in cases.values():
    f()
times = {k: [] for k in cases}
regions = []
for _ in range(rounds):
    for k, f in cases.items():
        t0 = time.perf_counter()
        f()
        times[k].append((time.perf_counter() - t0) / N * 1e6)
    regions.append(bench.region_us(1000, 1))
med = {k: float(np.median(v)) for k, v in times.items()}
region = float(np.median(regions))
dispatch = med["P.predict from Python"] - med["compiled chain"]
python = med["model.predict"] - med["P.predict from Python"]
stream = max(med["stream thread 0"], med["stream thread 1"])
floor = stream + region + dispatch + python
for k, v in med.items():
    print(f"  {k:24s} {v:7.2f}")
print(f"  {'empty region':24s} {region:7.2f}")
print(f"floor: stream {stream:.2f} + region {region:.2f} + dispatch {dispatch:.2f} + python {python:.2f} "
      f"= {floor:.2f} µs; target (numpy / 3) {med['numpy b1 (best peer)'] / 3:.2f} µs; "
      f"model.predict {med['model.predict']:.2f} µs")
print("placement (sharing, region µs):", bench.placement())
