"""``model.forward`` and ``model.backward`` of several checkouts in ONE process, timed apart
(the two halves of the table's backward/forward ratio), rounds alternating (NOTES section 45).

    PYTHONPATH=. python benchmarks/probes/forward_backward_ab.py TREE [TREE ...] [--workload W2]
        [--rounds 25]

Each tree's ``fastbp`` is loaded under its own name (``ab.install_renamed``); prints each
tree's median forward and backward ms, their ratio, and its forward time over the first
tree's, per round (median).  The first tree loaded runs faster than later copies of the
same code (NOTES section 43): give the baseline twice and compare the later copies.
"""
import argparse
import importlib
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from ab import install_renamed  # noqa: E402  (benchmarks/ab.py)
from table import forward_backward_case, forward_backward_times  # noqa: E402  (benchmarks/table.py)


def build(name, workload, threads):
    fb = importlib.import_module(name)
    fb.set_num_threads(threads)
    _, widths, batch = importlib.import_module(f"{name}.bench").WORKLOADS[workload]
    model, x, dout = forward_backward_case(fb, widths, batch)
    model.backward(dout)
    return model, x, dout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--workload", default="W2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    names = [f"fastbp_{i}" for i in range(len(args.trees))]
    models = {}
    for tree, name in zip(args.trees, names):
        install_renamed(tree, name)
        models[name] = build(name, args.workload, args.threads)
    fwd = {n: [] for n in names}
    bwd = {n: [] for n in names}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            f, b = forward_backward_times(*models[name], 5)
            fwd[name].append(statistics.median(f))
            bwd[name].append(statistics.median(b))
    print(f"{args.workload}, {args.threads} thread(s), {args.rounds} alternating rounds of 5 calls")
    for tree, name in zip(args.trees, names):
        F, B = statistics.median(fwd[name]) * 1e3, statistics.median(bwd[name]) * 1e3
        per_round = statistics.median(a / b for a, b in zip(fwd[name], fwd[names[0]]))
        print(f"  {tree:30s} forward {F:8.2f} ms  backward {B:8.2f} ms  bwd/fwd {B / F:.2f}  "
              f"forward / first tree's {per_round:.3f}")


if __name__ == "__main__":
    main()
