"""Two checkouts' training steps in one process (``ab.py``'s ``InProcess``), in alternating
blocks of 0.2 s, each pair of blocks tagged with where the host had put the two vCPUs, measured
before and after it; prints new/base per state.  For changes meant to help in this VM's slow
spells.

    PYTHONPATH=. python benchmarks/probes/state_ab.py BASE NEW WORKLOAD SECONDS

WORKLOAD: W1-W4 (training steps), or b1 (W1's batch-1 ``predict``).

States (NOTES section 66, ``fastbp.bench.badly_placed``): ``shared`` (``bench.core_sharing``
above 1.4: the two threads on one core), ``far`` (``bench.region_us`` above 1.5x the fastest
seen: cache lines pass between the cores twice as slowly; W4's step halves), else ``near``.
Until section 66 the tag was each vCPU's single-thread speed (``vcpu_speed.py``), which stays
fast in both spells: every block of sections 64-65 was tagged both-fast.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ab import InProcess  # noqa: E402  (benchmarks/ab.py)

import fastbp as fb  # noqa: E402  (the probe's own copy: PYTHONPATH=.)
from fastbp import bench  # noqa: E402

_regions = []


def state():
    sharing, region = reading = bench.placement()
    _regions.append(region)
    if not bench.badly_placed(reading, min(_regions)):
        return "near"
    return "shared" if sharing > bench.SHARED_RATIO else "far"


def main():
    base, new, workload, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    kind, workload = ("infer", "W1") if workload == "b1" else ("step", workload)
    trees = {"base": InProcess(base, "fastbp_base", 2), "new": InProcess(new, "fastbp_new", 2)}
    fb.set_num_threads(2)
    for tree in trees.values():
        tree.ask(kind, workload, 0.3)
    ratios = {}
    t_end = time.time() + seconds
    while time.time() < t_end:
        before = state()
        rates = {name: tree.ask(kind, workload, 0.2) for name, tree in trees.items()}
        if state() == before:
            ratios.setdefault(before, []).append(rates["new"] / rates["base"])
    for s, v in sorted(ratios.items()):
        print(f"{workload} state {s}: {len(v):3d} block pairs, new/base median {statistics.median(v):.3f}")


if __name__ == "__main__":
    main()
