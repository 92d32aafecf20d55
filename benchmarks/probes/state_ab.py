"""Two checkouts' training steps in one process (``ab.py``'s ``InProcess``), in alternating
blocks of 0.2 s, each pair of blocks tagged with both vCPUs' state measured before and
after it (``vcpu_speed.py``'s loop: f fast, S slow); prints new/base per state.  For changes
meant to help when one vCPU runs slow (NOTES section 64).

    PYTHONPATH=. python benchmarks/probes/state_ab.py BASE NEW WORKLOAD SECONDS
"""
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ab import InProcess  # noqa: E402  (benchmarks/ab.py)
from vcpu_speed import best_time, fma  # noqa: E402


def state(a):
    """'f' (full speed: ~0.05 ms here) or 'S' (above 1.5x that) for CPU 0, then CPU 1."""
    return "".join("S" if best_time(cpu, 300, 3, a) > 0.075e-3 else "f" for cpu in (0, 1))


def main():
    base, new, workload, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    trees = {"base": InProcess(base, "fastbp_base", 2), "new": InProcess(new, "fastbp_new", 2)}
    a = np.ones(4096, np.float32)
    fma(a, 1)
    for tree in trees.values():
        tree.ask("step", workload, 0.3)
    ratios = {}
    t_end = time.time() + seconds
    while time.time() < t_end:
        before = state(a)
        rates = {name: tree.ask("step", workload, 0.2) for name, tree in trees.items()}
        if state(a) == before:
            ratios.setdefault(before, []).append(rates["new"] / rates["base"])
    for s, v in sorted(ratios.items()):
        print(f"{workload} state {s}: {len(v):3d} block pairs, new/base median {statistics.median(v):.3f}")


if __name__ == "__main__":
    main()
