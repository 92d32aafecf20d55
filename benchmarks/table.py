"""The performance issue's table on the machine at hand, in one run: samples/s and ratios.

Rows: W1-W4 training steps (float32: forward, softmax-CE, backward, Adam;
samples/s, median of interleaved rounds), W1 inference latency at batch 1
(µs), W2's achieved GFLOP/s against numpy's sgemm on the same layer shapes,
and W2's backward/forward time ratio.  Peers that are not installed are
skipped.  Say whether OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set: they slow numpy.

    python benchmarks/table.py [--threads 2] [--rounds 5] [--seconds 0.3] [--workloads W1,W3]
                               [--against numpy,torch,jax] [--bounds]

``--bounds`` adds what the machine allows in the same run: each training step's products
alone at the GEMM register tile's rate on every thread with its operands in L1 (the most
fastbp's products can reach, about the cores' FMA peak: an upper bound on samples/s for any
step built on them), as samples/s, as the share of it fastbp's step reaches and as a ratio
to every peer.  A target ratio above the bound's cannot be met in that run.
"""
import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import psutil

# The torch worker imports torch first: fastbp's first compiled call starts Numba's OpenMP
# pool, which loads the system's libgomp, and a torch imported after that binds to that one
# instead of its own and trains ~7x slower (NOTES section 30).
if "--worker" in sys.argv[:-1] and sys.argv[sys.argv.index("--worker") + 1] == "torch":
    import torch  # noqa: F401

import fastbp as fb  # noqa: E402
from fastbp import bench  # noqa: E402
from fastbp.kernels import gemm  # noqa: E402


def rate(step, seconds):
    """Calls per second of ``step`` over at least ``seconds``."""
    t0 = time.perf_counter()
    step()
    n = max(1, int(seconds / max(time.perf_counter() - t0, 1e-9)))
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - t0)


def samples_bound(gflops, widths, batch):
    """Samples/s of a step whose products alone run at ``gflops`` and the rest takes no time."""
    return gflops * 1e9 / step_flops(widths, batch) * batch


class Worker:
    """One framework in its own process, measuring on request.

    Each framework gets a process of its own so that no thread pool (Numba's
    OpenMP threads, OpenBLAS's, torch's) spins on the cores while another
    framework is being timed; the parent interleaves the frameworks round by
    round, so load changes on this shared machine hit all of them alike.
    """

    def __init__(self, framework, threads, tree=None):
        """``tree``: run the worker from that checkout (its table.py, its fastbp), for A/Bs."""
        script, env = os.path.abspath(__file__), None
        if tree is not None:
            tree = os.path.abspath(tree)
            script, env = os.path.join(tree, "benchmarks", "table.py"), dict(os.environ, PYTHONPATH=tree)
        self.proc = subprocess.Popen(
            [sys.executable, script, "--worker", framework, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env, cwd=tree)

    def cpu_seconds(self):
        """User + system CPU time of the worker process so far (10 ms ticks on Linux)."""
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def ask(self, *request):
        self.proc.stdin.write(" ".join(str(r) for r in request) + "\n")
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"benchmark worker died on {request}")
        return float(reply)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def pinned_cpus(threads):
    """The CPUs a worker runs on: the first ``threads`` of those this process may use, so that
    a peer whose pool cannot be sized (XLA's) runs on as many cores as the others; all of
    them when there are no more than ``threads``."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[:threads] if threads < len(cpus) else cpus


def serve(framework, threads):
    """Worker loop: ``step W seconds`` / ``infer W seconds`` → calls per second; W2 extras."""
    # before any framework starts a thread pool: its threads inherit the affinity
    os.sched_setaffinity(0, pinned_cpus(threads))
    if framework == "fastbp":
        fb.set_num_threads(threads)
    bench._limit_threads(threads)
    built = {}
    for line in sys.stdin:
        kind, workload, seconds = line.split()
        _, widths, batch = bench.WORKLOADS[workload]
        if kind == "sgemm":
            value = sgemm_gflops(widths, batch, float(seconds))
        elif kind == "tile":
            value = bench.tile_gflops(float(seconds))
        elif kind == "sharing":
            value = bench.core_sharing()
        elif kind == "region":
            value = bench.region_us()
        elif kind == "bwdfwd":
            value = backward_forward_ratio(widths, batch, 5)[0]
        else:
            key = (kind, workload)
            if key not in built:
                builders = bench.STEP_BUILDERS if kind == "step" else bench.INFER_BUILDERS
                built[key] = builders[framework](widths, batch if kind == "step" else 1)
                for _ in range(bench.WARMUP_STEPS):
                    built[key]()
            value = rate(built[key], float(seconds))
        print(value, flush=True)


def cpu_list(cpus):
    """``[0, 1, 2, 5]`` as ``0-2,5``."""
    runs = []
    for c in cpus:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def wait_quiet(workers):
    """Wait until no worker burns CPU (``bench.wait_quiet``): numpy's idle OpenBLAS pool spins
    ~0.1 s after its last product, and torch was timed right after numpy (NOTES section 55)."""
    bench.wait_quiet(lambda: sum(w.cpu_seconds() for w in workers.values()))


class Placement:
    """Tags each timed block with where the host had put the two vCPUs around it: probes in the
    fastbp worker just before and just after the block (NOTES section 66: this VM's slow spells
    are its vCPUs sharing one core, ``bench.core_sharing``, or sitting where cache lines take
    twice as long to pass between them, ``bench.region_us``; the second halves W4's step).  A
    block is ``slow`` when a probe on either side shows either.  With ``retries``, a slow block
    is timed again, up to that many times."""

    def __init__(self, workers, retries=0):
        self.workers, self.retries = workers, retries
        self.blocks = self.slow = 0
        self.regions = []

    def probe(self):
        """True when the vCPUs are placed badly now (``bench.badly_placed``)."""
        wait_quiet(self.workers)
        reading = self.workers["fastbp"].ask("sharing", "W1", 0), self.workers["fastbp"].ask("region", "W1", 0)
        self.regions.append(reading[1])
        return bench.badly_placed(reading, min(self.regions))

    def timed(self, name, *request):
        for _ in range(self.retries + 1):
            before = self.probe()
            wait_quiet(self.workers)
            value = self.workers[name].ask(*request)
            slow = self.probe() or before
            if not slow:
                break
        self.blocks += 1
        self.slow += slow
        return value

    def take(self):
        """'k/n' blocks slow since the last call."""
        text = f"{self.slow}/{self.blocks}"
        self.blocks = self.slow = 0
        return text

    def summary(self):
        r = sorted(self.regions)
        return (f"empty two-thread region over the run's {len(r)} probes: {r[0]:.2f} µs fastest, "
                f"{statistics.median(r):.2f} median, {r[-1]:.2f} slowest") if r else ""


def interleaved(workers, kind, workload, rounds, seconds, names=None, placement=None):
    """Median reply per framework (calls/s for steps), the frameworks interleaved round by
    round; ``names``: ask only these (every worker's pool is still waited out); ``placement``: a
    ``Placement`` that tags (and may retry) each block."""
    samples = {name: [] for name in names or workers}
    for _ in range(rounds):
        for name in samples:
            samples[name].append(ask(workers, name, placement, kind, workload, seconds))
    return {name: statistics.median(v) for name, v in samples.items()}


def ask(workers, name, placement, *request):
    """``workers[name]``'s reply to ``request`` once every pool is quiet, through ``placement``
    when given."""
    if placement is not None:
        return placement.timed(name, *request)
    wait_quiet(workers)
    return workers[name].ask(*request)


def paired_gflops(workers, workload, flops, rounds, seconds, placement=None):
    """Median GFLOP/s of fastbp's step and of numpy's sgemm on the same products, the two
    asked alternately round by round (one sgemm reading swung 85-152 GFLOP/s between runs)."""
    ours, blas = [], []
    for _ in range(rounds):
        ours.append(ask(workers, "fastbp", placement, "step", workload, seconds) * flops / 1e9)
        blas.append(ask(workers, "numpy", placement, "sgemm", workload, seconds))
    return statistics.median(ours), statistics.median(blas)


def step_flops(widths, batch):
    """FLOPs of one training step's products: per layer the forward and the weight
    gradient and, from the second layer on, the input gradient.  No framework computes
    the first layer's input gradient (the data needs none); counting it would credit a
    step with FLOPs it does not do (9.2% of W2's: NOTES section 55)."""
    sizes = [a * b for a, b in zip(widths[:-1], widths[1:])]
    return 2 * batch * (3 * sum(sizes) - sizes[0])


def sgemm_gflops(widths, batch, seconds):
    """numpy's GFLOP/s over the products of one training step (same shapes and layouts:
    W is (out, in) as in torch.nn.Linear; no input gradient for the first layer)."""
    rng = np.random.default_rng(0)
    flops, total = 0, 0.0
    for layer, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        A = rng.standard_normal((batch, n_in), dtype=np.float32)
        W = rng.standard_normal((n_out, n_in), dtype=np.float32)
        D = rng.standard_normal((batch, n_out), dtype=np.float32)
        products = (lambda: A @ W.T, lambda: D.T @ A) + ((lambda: D @ W,) if layer > 0 else ())
        for f in products:
            total += 1.0 / rate(f, seconds / 3)
            flops += 2 * batch * n_in * n_out
    assert flops == step_flops(widths, batch)
    return flops / total / 1e9


def forward_backward_case(fastbp, widths, batch):
    """``(model, x, dout)``: a ReLU MLP of ``widths`` built by the module ``fastbp`` (a renamed
    checkout in probes), the fixed batch and ∂L/∂output of its cross-entropy."""
    model = fastbp.MLP(widths, activation="relu", dtype=np.float32, seed=0)
    x, y = bench.make_batch(widths, batch)
    _, dout = fastbp.CrossEntropyLoss()(model.forward(x), y)
    return model, x, dout


def forward_backward_times(model, x, dout, calls):
    """Seconds of each of ``calls`` ``model.forward(x)`` and of the ``model.backward(dout)`` after it."""
    fwd, bwd = [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        model.forward(x)
        t1 = time.perf_counter()
        model.backward(dout)
        fwd.append(t1 - t0)
        bwd.append(time.perf_counter() - t1)
    return fwd, bwd


def backward_forward_ratio(widths, batch, rounds):
    fwd, bwd = forward_backward_times(*forward_backward_case(fb, widths, batch), rounds * 3)
    return statistics.median(bwd) / statistics.median(fwd), statistics.median(fwd), statistics.median(bwd)


def print_bounds(workers, measured, peers, rounds, seconds, threads, placement=None):
    """The ``--bounds`` block: per workload, its step's FLOPs, the samples/s its products alone
    allow at the register tile's rate (median of ``rounds``), the share of it fastbp's step
    reaches, and the bound's ratio to every peer measured above in this run."""
    # the tile request takes no workload; the worker protocol wants one
    tile = interleaved(workers, "tile", "W1", rounds, seconds, names=["fastbp"], placement=placement)["fastbp"]
    print(f"bound: the step's products alone at the {gemm.MR}x{gemm.NR} register tile's rate with its operands "
          f"in L1, {tile:.0f} GFLOP/s on {threads} thread(s)" + (f" (slow {placement.take()})" if placement else ""))
    print(f"{'workload':<10}{'MFLOP':>8}{'bound':>12}{'fastbp':>10}{'of bound':>10}"
          + "".join(f"{'bound/' + p:>13}" for p in peers))
    for w, samples in measured.items():
        _, widths, batch = bench.WORKLOADS[w]
        bound = samples_bound(tile, widths, batch)
        print(f"{w:<10}{step_flops(widths, batch) / 1e6:>8.1f}{bound:>12,.0f}{samples['fastbp']:>10,.0f}"
              f"{samples['fastbp'] / bound:>10.0%}" + "".join(f"{bound / samples[p]:>12.2f}x" for p in peers),
              flush=True)
    print("bound/peer: the most fastbp / peer a step could reach in this run if its products ran at the tile's "
          "rate and nothing else took time")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--workloads", default=",".join(bench.WORKLOADS))
    parser.add_argument("--against", default=",".join(bench.PEERS))
    parser.add_argument("--bounds", action="store_true",
                        help="also print each step's products-alone bound at the register tile's rate")
    parser.add_argument("--retry-slow", type=int, default=0, metavar="RETRIES",
                        help="time a block again (up to RETRIES times) when the probes around it show "
                             "the vCPUs placed badly (sharing a core or far apart)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return serve(args.worker, args.threads)
    peers = [p for p in args.against.split(",") if p and importlib.util.find_spec(p) is not None]
    names = ["fastbp"] + peers
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    print(f"fastbp {fb.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs; OpenBLAS env: "
          f"{env or 'unset'}; median of {args.rounds} interleaved rounds of >= {args.seconds:g} s, "
          f"one process per framework, each on CPUs {cpu_list(pinned_cpus(args.threads))}"
          + ("; jax runs XLA's own thread pool on them" if "jax" in peers else ""))
    workers = {n: Worker(n, args.threads) for n in names}
    placement = Placement(workers, args.retry_slow) if args.threads >= 2 else None
    try:
        if placement is not None:
            print(f"slow: blocks (one framework's timing) with the vCPUs placed badly just before or after: sharing "
                  f"one core (tile time on two threads / one > {bench.SHARED_RATIO}) or far apart (an empty "
                  f"two-thread region > {bench.FAR_REGION}x the run's fastest)"
                  + (f"; such a block is timed again, up to {args.retry_slow} times" if args.retry_slow else ""))
        header = f"{'workload':<22}" + "".join(f"{n:>11}" for n in names) + "".join(f"{'/' + p:>9}" for p in peers)
        print(header + ("     slow" if placement is not None else ""))
        measured = {}
        for w in args.workloads.split(","):
            desc, widths, batch = bench.WORKLOADS[w]
            per_s = interleaved(workers, "step", w, args.rounds, args.seconds, placement=placement)
            samples = measured[w] = {n: per_s[n] * batch for n in names}
            print(f"{w + ' ' + desc + ' b' + str(batch):<22}" + "".join(f"{samples[n]:>11,.0f}" for n in names)
                  + "".join(f"{samples['fastbp'] / samples[p]:>8.2f}x" for p in peers)
                  + (f"{placement.take():>9}" if placement is not None else ""), flush=True)
            if w == "W2":
                flops = step_flops(widths, batch)
                if "numpy" in workers:
                    ours, blas = paired_gflops(workers, w, flops, args.rounds, args.seconds, placement)
                    how = f"medians of {args.rounds} paired rounds"
                else:
                    ours, blas = per_s["fastbp"] * flops / 1e9, float("nan")
                    how = "numpy not run"
                wait_quiet(workers)
                ratio = workers["fastbp"].ask("bwdfwd", w, args.seconds)
                print(f"   W2 step {ours:.0f} GFLOP/s vs numpy sgemm {blas:.0f} GFLOP/s on the step's products "
                      f"({how}): {ours / blas:.0%}; backward/forward time = {ratio:.2f}"
                      + (f"; slow {placement.take()}" if placement is not None else ""), flush=True)
        calls = interleaved(workers, "infer", "W1", args.rounds, args.seconds, placement=placement)
        print(f"{'W1 inference b1 (µs)':<22}" + "".join(f"{1e6 / calls[n]:>11.1f}" for n in names)
              + "".join(f"{calls['fastbp'] / calls[p]:>8.2f}x" for p in peers)
              + (f"{placement.take():>9}" if placement is not None else ""))
        print("ratios: fastbp / peer in samples/s, peer time / fastbp time in latency (above 1: fastbp faster)")
        if args.bounds:
            print_bounds(workers, measured, peers, args.rounds, args.seconds, args.threads, placement)
        if placement is not None:
            print(placement.summary())
    finally:
        for worker in workers.values():
            worker.close()


if __name__ == "__main__":
    main()
