"""Gradient checkpointing evidence: peak memory and step time of a deep MLP under several plans.

Each configuration runs in a fresh subprocess (so peak memory is its own):
build the model, apply the plan, run warm-up steps, then time steps.  Peak
memory is psutil's RSS high-water mark of that process (``ru_maxrss`` as a
cross-check); "workspace" is the activation workspace fastbp allocated, which
the planner predicts exactly.  Step time is the median of the timed steps.

    python benchmarks/checkpoint_memory.py [--layers 64 --width 1024 --batch 1024 --steps 3]
"""
import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = ["none", "sqrt", "budget:0.5", "budget:0.4", "budget:0.3"]   # ReLU layers keep one slot: 0.27 is the least


def run_one(args, config):
    import resource
    import statistics

    import numpy as np
    import psutil

    import fastbp as fb
    from fastbp import checkpoint as C

    fb.set_num_threads(args.threads) if args.threads else None
    sizes = [args.width] * (args.layers + 1)
    model = fb.MLP(sizes, activation="relu", dtype=np.float32, seed=0)
    opt = fb.optim.SGD(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.batch, args.width), dtype=np.float32)
    y = rng.integers(0, args.width, args.batch)
    unplanned = model.activation_bytes(args.batch)[1]
    if config == "none":
        plan = None
    elif config == "sqrt":
        plan = C.plan(model, args.batch, "sqrt")
    else:
        plan = C.plan(model, args.batch, int(unplanned * float(config.split(":")[1])))
    model.set_checkpoint(plan, batch_size=args.batch)
    loss = fb.CrossEntropyLoss()
    for _ in range(args.warmup):
        model.train_step(X, y, loss, opt)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        model.train_step(X, y, loss, opt)
        times.append(time.perf_counter() - start)
    proc = psutil.Process()
    info = proc.memory_full_info() if hasattr(proc, "memory_full_info") else proc.memory_info()
    return {
        "config": config, "segments": 1 if plan is None else plan.n_segments,
        "workspace": model.workspace_bytes, "unplanned": unplanned,
        "predicted": unplanned if plan is None else plan.peak_bytes,
        "recompute": 0.0 if plan is None else plan.recompute_fraction,
        "rss": info.rss, "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": model.parameters().params.nbytes, "step_s": statistics.median(times),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=64)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args, args.child)))
        return
    rows = []
    for config in args.configs.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", config] + sys.argv[1:]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    base = rows[0]
    mib = 1 << 20
    print(f"MLP {args.layers} x {args.width} ReLU, batch {args.batch}, float32, SGD; "
          f"parameters {base['params'] / mib:.0f} MiB")
    print(f"{'plan':<12}{'segments':>9}{'workspace MiB':>15}{'vs none':>9}{'peak RSS MiB':>14}"
          f"{'recompute':>11}{'step s':>9}{'vs none':>9}")
    for r in rows:
        print(f"{r['config']:<12}{r['segments']:>9}{r['workspace'] / mib:>15.1f}"
              f"{r['workspace'] / base['workspace']:>9.2f}{max(r['rss'], r['maxrss']) / mib:>14.0f}"
              f"{r['recompute']:>10.0%}{r['step_s']:>9.2f}{r['step_s'] / base['step_s']:>9.2f}")


if __name__ == "__main__":
    main()
