"""A/B of two checkouts of fastbp on the workloads' training steps, in one run.

Each checkout gets its own worker process (``table.py --worker fastbp`` from that
tree, so its own fastbp is imported); the two are interleaved round by round so the
shared machine's load hits both alike.  Prints samples/s medians and new/base.

    git worktree add /tmp/base HEAD      # the baseline, e.g. the last commit
    python benchmarks/ab.py /tmp/base . [--threads 2] [--rounds 7] [--seconds 0.3] [--workloads W1,W4]
        [--one-process]

A process carries a bias of its own on this VM: the same tree against itself read W3
1.031 with every round agreeing (NOTES section 40).  ``--one-process`` removes it: each
tree's ``fastbp`` is copied under a new name (``copy_renamed``) and both run in this
process, alternating round by round.
"""
import argparse
import hashlib
import importlib
import os
import re
import shutil
import statistics
import sys
import tempfile

from fastbp import bench
from table import Worker, rate  # benchmarks/table.py (the script folder is on sys.path)

_FASTBP_NAME = re.compile(r"\b(from|import) fastbp\b|\bfastbp\.(?=[A-Za-z_])")


def copy_renamed(tree, name, into):
    """Copy ``tree``/fastbp to ``into``/``name`` with every ``fastbp`` import renamed, so that
    several checkouts load side by side in one process.  Each file keeps its source's
    modification time, so Numba's cache of an unchanged copy stays valid between runs."""
    src = os.path.join(tree, "fastbp")
    dst = os.path.join(into, name)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    for folder, _, files in os.walk(dst):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                with open(path) as fh:
                    text = fh.read()
                text = _FASTBP_NAME.sub(lambda m: f"{m.group(1)} {name}" if m.group(1) else f"{name}.", text)
                with open(path, "w") as fh:
                    fh.write(text)
                stat = os.stat(os.path.join(src, os.path.relpath(path, dst)))
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def install_renamed(tree, name):
    """``copy_renamed`` into a fixed folder per checkout (so the copy's compiled kernels are
    reused by later runs), and put that folder on ``sys.path`` so ``name`` imports."""
    digest = hashlib.sha256(os.path.abspath(tree).encode()).hexdigest()[:12]
    into = os.path.join(tempfile.gettempdir(), "fastbp_copies", digest)
    copy_renamed(os.path.abspath(tree), name, into)
    sys.path.insert(0, into)


class InProcess:
    """A checkout's fastbp loaded under another name in this process, answering like a Worker."""

    def __init__(self, tree, name, threads):
        install_renamed(tree, name)
        importlib.import_module(name).set_num_threads(threads)
        self.bench = importlib.import_module(f"{name}.bench")
        self.steps = {}

    def ask(self, kind, workload, seconds):
        """Calls per second of ``workload``'s training step (``kind`` "step") or its batch-1
        ``predict`` ("infer"), as the table's workers measure them."""
        assert kind in ("step", "infer")
        key = (kind, workload)
        if key not in self.steps:
            _, widths, batch = self.bench.WORKLOADS[workload]
            build = self.bench.fastbp_step if kind == "step" else self.bench.fastbp_infer
            self.steps[key] = call = build(widths, batch if kind == "step" else 1)
            for _ in range(self.bench.WARMUP_STEPS):
                call()
        return rate(self.steps[key], seconds)

    def close(self):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("new")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--workloads", default=",".join(bench.WORKLOADS))
    parser.add_argument("--one-process", action="store_true", help="both trees in this process")
    args = parser.parse_args(argv)
    trees = (("base", args.base), ("new", args.new))
    if args.one_process:
        workers = {name: InProcess(tree, f"fastbp_{name}", args.threads) for name, tree in trees}
    else:
        workers = {name: Worker("fastbp", args.threads, tree) for name, tree in trees}
    where = "one process" if args.one_process else "one process per tree"
    print(f"threads {args.threads}, {args.rounds} rounds of {args.seconds} s, {where}; samples/s (median)")
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
