"""W1's ``train_step`` (Adam, float32) at a few batch sizes, two checkouts in ONE process,
rounds alternating (NOTES section 60).

    python benchmarks/probes/train_batches_ab.py BASE_TREE NEW_TREE [1,2,4,8]

Each tree's ``fastbp`` is loaded under its own name (``ab.install_renamed``); 2 threads;
prints the median µs a step of 15 rounds of 50 steps and base/new (above 1: new faster).
"""
import importlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from ab import install_renamed  # noqa: E402  (benchmarks/ab.py)


def main():
    trees = sys.argv[1:3]
    batches = [int(b) for b in sys.argv[3].split(",")] if len(sys.argv) > 3 else [1, 2, 4, 8]
    rng = np.random.default_rng(0)
    data = {b: (rng.standard_normal((b, 784)).astype(np.float32), rng.integers(0, 10, b)) for b in batches}
    steps = {}
    for i, tree in enumerate(trees):
        name = f"fastbp_{i}"
        install_renamed(tree, name)
        fb = importlib.import_module(name)
        fb.set_num_threads(2)
        for b in batches:
            model = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0)
            opt = fb.optim.Adam(model.parameters(), lr=1e-3)
            x, y = data[b]
            loss = fb.CrossEntropyLoss()

            def step(model=model, x=x, y=y, loss=loss, opt=opt):
                model.train_step(x, y, loss, opt)
            for _ in range(5):
                step()
            steps[(i, b)] = step
    res = {k: [] for k in steps}
    for r in range(15):
        for b in batches:
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                step = steps[(i, b)]
                t = time.perf_counter()
                for _ in range(50):
                    step()
                res[(i, b)].append((time.perf_counter() - t) / 50 * 1e6)
    for b in batches:
        base, new = statistics.median(res[(0, b)]), statistics.median(res[(1, b)])
        print(f"train batch {b}: base {base:.1f} µs, new {new:.1f} µs, base/new {base / new:.2f}")


if __name__ == "__main__":
    main()
