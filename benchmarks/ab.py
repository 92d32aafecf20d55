"""A/B of two checkouts of fastbp on the workloads' training steps, in one run.

Each checkout gets its own worker process (``table.py --worker fastbp`` from that
tree, so its own fastbp is imported); the two are interleaved round by round so the
shared machine's load hits both alike.  Prints samples/s medians and new/base.

    git worktree add /tmp/base HEAD      # the baseline, e.g. the last commit
    python benchmarks/ab.py /tmp/base . [--threads 2] [--rounds 7] [--seconds 0.3] [--workloads W1,W4]
"""
import argparse
import statistics

from fastbp import bench
from table import Worker  # benchmarks/table.py (the script folder is on sys.path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("new")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--workloads", default=",".join(bench.WORKLOADS))
    args = parser.parse_args(argv)
    workers = {name: Worker("fastbp", args.threads, tree) for name, tree in (("base", args.base), ("new", args.new))}
    print(f"threads {args.threads}, {args.rounds} rounds of {args.seconds} s; samples/s (median)")
    print(f"{'workload':8} {'base':>10} {'new':>10} {'new/base':>9}  per-round new/base")
    try:
        for workload in args.workloads.split(","):
            batch = bench.WORKLOADS[workload][2]
            samples = {name: [] for name in workers}
            for _ in range(args.rounds):
                for name, worker in workers.items():
                    samples[name].append(batch * worker.ask("step", workload, args.seconds))
            base, new = (statistics.median(samples[k]) for k in ("base", "new"))
            rounds = " ".join(f"{n / b:.2f}" for b, n in zip(samples["base"], samples["new"]))
            print(f"{workload:8} {base:10.0f} {new:10.0f} {new / base:9.3f}  {rounds}", flush=True)
    finally:
        for worker in workers.values():
            worker.close()


if __name__ == "__main__":
    main()
