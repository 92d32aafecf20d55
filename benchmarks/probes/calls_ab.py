"""``model.predict`` at batch 1 (W1), the compiled predict call alone (``rawpredict``),
``model.train_step`` or the loss gradient and backward pass (any workload) of several
checkouts of fastbp, timed in ONE process (NOTES section 41).

    PYTHONPATH=. python benchmarks/probes/calls_ab.py TREE [TREE ...]
        [--call predict|rawpredict|step|backward] [--workload W3] [--threads 2] [--rounds 21]

Each tree's ``fastbp`` is loaded under its own name (``ab.install_renamed``, as
``products_ab.py`` does), the same model (seed 0) is built in each, and the trees' calls
alternate round by round, the order reversed every other round (each round: the mean µs of
``--calls`` calls).  Prints the median µs per tree, its speed ratio to the first tree (above
1: faster) and the share of rounds it was faster.  Give a tree twice to see the bias
between two copies of one tree.
"""
import argparse
import importlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from ab import install_renamed  # noqa: E402  (benchmarks/ab.py)
from stepped_model import stepped_model  # noqa: E402  (benchmarks/probes, the script folder)


def make_call(name, what, workload, threads):
    fb = importlib.import_module(name)
    bench = importlib.import_module(f"{name}.bench")
    fb.set_num_threads(threads)
    if what == "predict":
        model = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
        x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
        out = np.empty((1, 10), np.float32)
        return lambda: model.predict(x, batch_size=1, out=out)
    if what == "rawpredict":        # the compiled call alone, without predict's Python
        P = importlib.import_module(f"{name}.kernels.program")
        model = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
        x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
        out = np.empty((1, 10), np.float32)
        m = model
        return lambda: P.predict(m._program, m._consts, m.arena.params, m.state.params, m._ws, m.capacity,
                                 m._layout, m._work, m._segments, x, out, True)
    s = stepped_model(fb, bench, workload)
    model, opt, loss, x, y, T, labels, batch = s.model, s.opt, s.loss, s.x, s.y, s.T, s.labels, s.batch
    if what == "step":
        return lambda: model.train_step(x, y, loss, opt)
    # "backward": the loss's gradient, then the backward pass, over the stored forward pass
    P = importlib.import_module(f"{name}.kernels.program")
    losses = importlib.import_module(f"{name}.kernels.losses")
    lay, ws, cap, flush = model._layout, model._ws, model.capacity, fb.get_flush_denormal()
    out = P.slab(ws, lay[P.L_OUTPUT], cap, batch, lay[P.L_WIDTH])
    dout = P.slab(ws, lay[P.L_GRAD0], cap, batch, lay[P.L_WIDTH])

    def backward():
        losses.loss_value_and_grad(loss.code, out, T, labels, model.dtype.type(loss.param), dout)
        P.backward(model._program, model._consts, model.arena.params, model.arena.grads, model.state.params, ws,
                   cap, batch, lay, model._work, True, False, model._dropout_seed, model._step, model._segments,
                   flush)
    return backward


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--call", choices=["predict", "rawpredict", "step", "backward"], default="predict")
    parser.add_argument("--workload", default="W3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    names = [f"fastbp_{i}" for i in range(len(args.trees))]
    calls = {}
    for tree, name in zip(args.trees, names):
        install_renamed(tree, name)
        calls[name] = make_call(name, args.call, args.workload, args.threads)
        for _ in range(50):
            calls[name]()
    times = {n: [] for n in names}
    for r in range(args.rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            f = calls[n]
            t = time.perf_counter()
            for _ in range(args.calls):
                f()
            times[n].append((time.perf_counter() - t) / args.calls * 1e6)
    what = f"W1 {args.call}, batch 1" if args.call.endswith("predict") else f"{args.workload} {args.call}"
    print(f"{what}, {args.threads} thread(s), {args.rounds} alternating rounds of {args.calls} calls")
    first = names[0]
    base = statistics.median(times[first])
    for n, tree in zip(names, args.trees):
        med = statistics.median(times[n])
        won = np.mean([t < b for t, b in zip(times[n], times[first])])
        print(f"  {tree:30s} {med:8.2f} µs  x{base / med:5.3f}  faster than the first in {won:.2f} of rounds")


if __name__ == "__main__":
    main()
