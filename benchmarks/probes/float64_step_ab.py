"""float64 training steps of two checkouts in ONE process, rounds alternating (NOTES section 60).

    python benchmarks/probes/float64_step_ab.py BASE_TREE NEW_TREE [W1,W4,W2] [THREADS]

Each tree's ``fastbp`` is loaded under its own name (``ab.install_renamed``); prints the
median samples/s of 7 rounds of >= 0.3 s per workload and new/base (above 1: new faster).
"""
import importlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from ab import install_renamed  # noqa: E402  (benchmarks/ab.py)


def rate(step, batch, seconds=0.3):
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n * batch / dt


def main():
    trees = sys.argv[1:3]
    workloads = sys.argv[3].split(",") if len(sys.argv) > 3 else ["W1", "W4"]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    steps = {}
    for i, tree in enumerate(trees):
        name = f"fastbp_{i}"
        install_renamed(tree, name)
        fb = importlib.import_module(name)
        fb.set_num_threads(threads)
        bench = importlib.import_module(f"{name}.bench")
        for w in workloads:
            _, widths, batch = bench.WORKLOADS[w]
            model = fb.MLP(widths, activation="relu", dtype=np.float64, seed=0)
            opt = fb.optim.Adam(model.parameters(), lr=1e-3)
            loss = fb.CrossEntropyLoss()
            x, y = bench.make_batch(widths, batch)
            x = x.astype(np.float64)

            def step(model=model, x=x, y=y, loss=loss, opt=opt):
                model.train_step(x, y, loss, opt)
            for _ in range(6):
                step()
            steps[(i, w)] = (step, batch)
    res = {k: [] for k in steps}
    for r in range(7):
        for w in workloads:
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                step, batch = steps[(i, w)]
                res[(i, w)].append(rate(step, batch))
    for w in workloads:
        base, new = statistics.median(res[(0, w)]), statistics.median(res[(1, w)])
        ratios = [b / a for a, b in zip(res[(0, w)], res[(1, w)])]
        print(f"{w} float64, {threads} thread(s): base {base:,.0f} new {new:,.0f} samples/s, new/base "
              f"{new / base:.3f} (rounds {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
