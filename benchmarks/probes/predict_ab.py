"""W1's batch-1 ``model.predict`` of several checkouts of fastbp, timed in ONE process.

    PYTHONPATH=. python benchmarks/probes/predict_ab.py TREE [TREE ...] [--threads 2] [--rounds 15]

Each tree's ``fastbp`` is loaded under its own name (``ab.install_renamed``, as
``products_ab.py`` does), the same model (seed 0) is built in each, and the trees' predicts
alternate round by round (each round: the mean µs of 2,000 calls).  Prints the median µs per
tree and its ratio to the first (above 1: faster), and the share of rounds it won.
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    names = [f"fastbp_{i}" for i in range(len(args.trees))]
    x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
    calls = {}
    outs = {}
    for tree, name in zip(args.trees, names):
        install_renamed(tree, name)
        fb = importlib.import_module(name)
        fb.set_num_threads(args.threads)
        model = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
        out = np.empty((1, 10), np.float32)
        calls[name] = (lambda m=model, o=out: m.predict(x, batch_size=1, out=o))
        outs[name] = out
        calls[name]()
    first = names[0]
    np.testing.assert_allclose(outs[names[-1]], outs[first], rtol=1e-4, atol=1e-5)
    times = {n: [] for n in names}
    for _ in range(args.rounds):
        for n in names:
            f = calls[n]
            t = time.perf_counter()
            for _ in range(2000):
                f()
            times[n].append((time.perf_counter() - t) / 2000 * 1e6)
    base = statistics.median(times[first])
    print(f"W1 predict, batch 1, {args.threads} thread(s), {args.rounds} alternating rounds of 2,000 calls")
    for n, tree in zip(names, args.trees):
        med = statistics.median(times[n])
        won = np.mean([t < b for t, b in zip(times[n], times[first])]) if n != first else float("nan")
        print(f"  {tree:30s} {med:7.2f} µs  x{base / med:5.3f}  rounds faster than the first: {won:.2f}")


if __name__ == "__main__":
    main()
