"""Training-step throughput of fastbp beside numpy, PyTorch and JAX (``fastbp bench``).

A step is the full float32 training step of an MLP with ReLU between its
Linear layers: forward, softmax cross-entropy, backward and an Adam update
(lr 1e-3), on one fixed random batch.  fastbp runs ``model.train_step`` (one
compiled call); numpy runs the hand-written reference below (GEMMs in numpy's
BLAS, elementwise work in numpy); torch runs eager mode; JAX runs one
``jax.jit``-compiled step with a hand-written Adam.  Each framework is warmed up
(which compiles fastbp's kernels and JAX's step) before it is timed.
"""
import importlib.util
import itertools
import os
import statistics
import sys
import time

import numpy as np

from fastbp import _jit, arena
from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import gemm, microkernels
from fastbp.validation import check_positive_int

WORKLOADS = {  # name: (description, layer widths including input and output, batch)
    "W1": ("784-256-256-10", [784, 256, 256, 10], 128),
    "W2": ("784-1024x3-10", [784, 1024, 1024, 1024, 10], 256),
    "W3": ("64-64-64-10", [64, 64, 64, 10], 32),
    "W4": ("256-256x16-10", [256] + [256] * 16 + [10], 64),
}
FRAMEWORKS = ("fastbp", "numpy", "torch", "jax")
PEERS = FRAMEWORKS[1:]
LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8
WARMUP_STEPS = 3


def make_batch(widths, batch, seed=1):
    """A fixed random batch: float32 inputs (batch, widths[0]) and int64 labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], batch).astype(np.int64)
    return x, y


def init_params(widths, seed=0):
    """He-initialized weights (in, out) and zero biases, float32: one starting point for every peer."""
    rng = np.random.default_rng(seed)
    Ws = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32)
          for a, b in itertools.pairwise(widths)]
    bs = [np.zeros(b, np.float32) for b in widths[1:]]
    return Ws, bs


class NumpyMLP:
    """The plain-numpy reference step: forward, softmax-CE, backward, Adam, with in-place buffers."""

    def __init__(self, widths, seed=0):
        self.W, self.b = init_params(widths, seed)
        self.params = self.W + self.b
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.tmp = [np.empty_like(p) for p in self.params]
        self.t = 0

    def step(self, x, y):
        hs = [x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = hs[-1] @ W
            z += b
            if i < len(self.W) - 1:
                np.maximum(z, 0, out=z)
            hs.append(z)
        z = hs[-1]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        n = len(y)
        rows = np.arange(n)
        loss = -np.log(z[rows, y]).mean()
        z[rows, y] -= 1
        dz = z * np.float32(1 / n)
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for i in range(len(self.W) - 1, -1, -1):
            gW[i] = hs[i].T @ dz
            gb[i] = dz.sum(axis=0)
            if i > 0:
                dz = dz @ self.W[i].T
                dz *= hs[i] > 0
        self._adam(gW + gb)
        return float(loss)

    def _adam(self, grads):
        self.t += 1
        f = np.float32
        lr_t = f(LR * (1 - BETA2 ** self.t) ** 0.5 / (1 - BETA1 ** self.t))
        for p, g, m, v, tmp in zip(self.params, grads, self.m, self.v, self.tmp):
            m *= f(BETA1)
            m += f(1 - BETA1) * g
            v *= f(BETA2)
            np.multiply(g, g, out=tmp)
            tmp *= f(1 - BETA2)
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += f(EPS)
            np.divide(m, tmp, out=tmp)
            tmp *= lr_t
            p -= tmp


def fastbp_step(widths, batch):
    import fastbp as fb
    model = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0)
    opt = fb.optim.Adam(model.parameters(), lr=LR)
    loss = fb.CrossEntropyLoss()
    x, y = make_batch(widths, batch)
    return lambda: model.train_step(x, y, loss, opt)


def numpy_step(widths, batch):
    net = NumpyMLP(widths)
    x, y = make_batch(widths, batch)
    return lambda: net.step(x, y)


def torch_step(widths, batch):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x, y = (torch.from_numpy(a) for a in make_batch(widths, batch))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _import_jax_on_cpu():
    """jax, its backend set to the CPU unless JAX_PLATFORMS says otherwise: on a machine with
    a GPU, jax would train there and the table would compare a CPU library with a GPU."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    return jax


def jax_step(widths, batch):
    jax = _import_jax_on_cpu()
    import jax.numpy as jnp
    Ws, bs = init_params(widths)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(Ws, bs)]
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    x, y = (jnp.asarray(a) for a in make_batch(widths, batch))

    def loss_fn(params, x, y):
        h = x
        for i, (W, b) in enumerate(params):
            h = h @ W + b
            if i < len(params) - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def train(params, m, v, t, x, y):
        loss, g = jax.value_and_grad(loss_fn)(params, x, y)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: BETA1 * m + (1 - BETA1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: BETA2 * v + (1 - BETA2) * g * g, v, g)
        c1, c2 = 1 - BETA1 ** t, 1 - BETA2 ** t
        params = jax.tree_util.tree_map(lambda p, m, v: p - LR * (m / c1) / (jnp.sqrt(v / c2) + EPS),
                                        params, m, v)
        return params, m, v, t, loss

    state = [params, zeros, zeros, jnp.float32(0)]

    def step():
        *state[:], loss = train(*state, x, y)
        loss.block_until_ready()
        return loss
    return step


STEP_BUILDERS = {"fastbp": fastbp_step, "numpy": numpy_step, "torch": torch_step, "jax": jax_step}


def fastbp_infer(widths, batch):
    import fastbp as fb
    model = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0).eval()
    x, _ = make_batch(widths, batch)
    out = np.empty((batch, widths[-1]), np.float32)
    return lambda: model.predict(x, batch_size=batch, out=out)


def numpy_infer(widths, batch):
    Ws, bs = init_params(widths)
    x, _ = make_batch(widths, batch)

    def infer():
        h = x
        for i, (W, b) in enumerate(zip(Ws, bs)):
            h = h @ W + b
            if i < len(Ws) - 1:
                np.maximum(h, 0, out=h)
        return h
    return infer


def torch_infer(widths, batch):
    import torch
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).eval()
    x = torch.from_numpy(make_batch(widths, batch)[0])

    def infer():
        with torch.no_grad():
            return model(x)
    return infer


def jax_infer(widths, batch):
    jax = _import_jax_on_cpu()
    import jax.numpy as jnp
    Ws, bs = init_params(widths)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(Ws, bs)]
    x = jnp.asarray(make_batch(widths, batch)[0])

    @jax.jit
    def forward(params, x):
        h = x
        for i, (W, b) in enumerate(params):
            h = h @ W + b
            if i < len(params) - 1:
                h = jax.nn.relu(h)
        return h
    return lambda: forward(params, x).block_until_ready()


INFER_BUILDERS = {"fastbp": fastbp_infer, "numpy": numpy_infer, "torch": torch_infer, "jax": jax_infer}


def missing(framework):
    """None when ``framework`` can run here, else why it cannot (for the table's notes)."""
    module = {"fastbp": "fastbp", "numpy": "numpy", "torch": "torch", "jax": "jax"}[framework]
    if importlib.util.find_spec(module) is None:
        return f"{framework} is not installed (pip install {framework}); column skipped"
    return None


def wait_quiet(cpu_seconds, poll=0.03, limit=2.0):
    """Wait until ``cpu_seconds()`` stops growing (at most ``limit`` s): an idle OpenBLAS pool
    spins ~0.1 s after its last product, which would take a core from whatever is timed
    next (benchmarks/NOTES.md section 55)."""
    t_end = time.perf_counter() + limit
    used = cpu_seconds()
    while time.perf_counter() < t_end:
        time.sleep(poll)
        now = cpu_seconds()
        if now == used:
            return
        used = now


def other_threads_cpu_seconds():
    """CPU seconds of this process's threads other than the calling one."""
    import threading

    import psutil
    me = threading.get_native_id()
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id != me)


def measure(step, batch, repeats=3, seconds=0.2, warmup=WARMUP_STEPS):
    """Median samples/s over ``repeats`` timed runs of at least ``seconds`` each, after ``warmup``
    steps; first waits for the thread pools of what ran before to stop spinning."""
    wait_quiet(other_threads_cpu_seconds)
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    step()
    dt = max(time.perf_counter() - t0, 1e-9)
    n = max(1, int(seconds / dt))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        rates.append(batch * n / (time.perf_counter() - t0))
    return statistics.median(rates)


def import_torch_first(frameworks):
    """Import torch now if it is among ``frameworks`` and installed: before Numba's thread
    pool starts, which loads the system's libgomp; a torch imported after that binds to it
    and trains ~6x slower (W4 941 against 5,376 samples/s; benchmarks/NOTES.md sections 30
    and 55).  Returns a note when the pool has already started in this process."""
    if "torch" not in frameworks or "torch" in sys.modules or importlib.util.find_spec("torch") is None:
        return []
    from numba.np.ufunc import parallel
    late = parallel._is_initialized
    import torch  # noqa: F401
    return ["torch: imported after fastbp started its threads in this process, so it runs several times "
            "slower than it can; compare in a fresh process (fastbp bench)"] if late else []


def _limit_threads(threads):
    """Give every framework the same thread count; returns notes about what could not be limited."""
    notes = []
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=threads, user_api="blas")
    except ImportError:
        notes.append("numpy: threadpoolctl is not installed, so BLAS used its own thread count")
    if importlib.util.find_spec("torch") is not None:
        import torch
        torch.set_num_threads(threads)
    return notes


def run(workloads=None, against=PEERS, repeats=3, seconds=0.2, threads=None, print_fn=print):
    """Measure and print the side-by-side table; returns ``{workload: {framework: samples/s}}``."""
    import fastbp as fb
    early_notes = import_torch_first(against)
    workloads = list(WORKLOADS) if not workloads else list(workloads)
    if threads is not None:
        fb.set_num_threads(threads)
    threads = fb.get_num_threads()
    frameworks = ["fastbp"] + [f for f in PEERS if f in against]
    notes = early_notes + [why for why in (missing(f) for f in frameworks) if why]
    frameworks = [f for f in frameworks if missing(f) is None]
    if "jax" in frameworks:
        notes.append("jax: uses its own thread pool (XLA), not limited to the thread count above")
    notes += _limit_threads(threads)
    print_fn(f"samples/s of a full float32 training step (forward, softmax-CE, backward, Adam), "
             f"{threads} thread(s); median of {repeats} run(s) of >= {seconds:g} s after {WARMUP_STEPS} "
             "warm-up steps (higher is better)")
    peers = [f for f in frameworks if f != "fastbp"]
    header = f"{'workload':<20}{'batch':>6}" + "".join(f"{f:>12}" for f in frameworks) + \
        "".join(f"{'vs ' + f:>11}" for f in peers)
    print_fn(header)
    print_fn("-" * len(header))
    results = {}
    placed = {}             # workload: the placement probes before and after its row (two threads or more)
    for name in workloads:
        desc, widths, batch = WORKLOADS[name]
        before = placement() if threads >= 2 else None
        rates = {f: measure(STEP_BUILDERS[f](widths, batch), batch, repeats, seconds) for f in frameworks}
        if before is not None:
            placed[name] = (before, placement())
        results[name] = rates
        line = f"{name + ' ' + desc:<20}{batch:>6}" + "".join(f"{rates[f]:>12,.0f}" for f in frameworks)
        line += "".join(f"{rates['fastbp'] / rates[f]:>10.2f}x" for f in peers)
        print_fn(line)
    notes += placement_notes(placed)
    for note in notes:
        print_fn("note: " + note)
    if peers:
        print_fn("'vs X' = fastbp samples/s / X samples/s (above 1 means fastbp is faster)")
    return results


# ----------------------------------------------------------------- the machine's bound
# (``benchmarks/table.py --bounds``: the most samples/s a step whose products ran at this rate could reach)

_TILE = microkernels.ukr_8x32 if gemm.MR == 8 else microkernels.ukr_6x16
_TILE_KC = 256          # an A and a B micro-panel of this length fit L1 (22 KiB with 6x16, 40 with 8x32)
_TILE_STRIDE = 16384    # float32s between two threads' panels (64 KiB: no shared cache lines)


@jit_parallel
def _tile_calls(work, calls):
    """``calls`` register tiles on each thread, each thread over its own panels in ``work``."""
    for t in prange(work.shape[0] // _TILE_STRIDE):
        a = t * _TILE_STRIDE
        b = a + gemm.MR * _TILE_KC
        for _ in range(calls):
            _TILE(_TILE_KC, work, a, work, b, work, b + gemm.NR * _TILE_KC)


def tile_gflops(seconds):
    """float32 GFLOP/s of the GEMM's register tile on all of fastbp's threads at once, operands
    in L1: best of three timings of at least ``seconds`` / 3 each (a bound wants the fastest)."""
    threads = _jit.get_num_threads()
    work = arena.aligned_zeros(threads * _TILE_STRIDE, np.float32)
    work[:] = np.random.default_rng(0).standard_normal(work.size).astype(np.float32) * 0.01
    flops_per_call = 2 * gemm.MR * gemm.NR * _TILE_KC * threads
    _tile_calls(work, 1)
    calls = 1000
    while True:
        elapsed = _timed(_tile_calls, work, calls)
        if elapsed >= seconds / 3:
            break
        calls *= 2
    best = min(elapsed, *(_timed(_tile_calls, work, calls) for _ in range(2)))
    return flops_per_call * calls / best / 1e9


# ------------------------------------------------------- where the host placed the threads
# (NOTES section 66: this VM's slow spells; ``table.py``'s ``slow`` column, ``run``'s note)

SHARED_RATIO = 1.4      # core_sharing above this: the two threads share one core's arithmetic
FAR_REGION = 1.5        # region_us above this times the fastest seen: lines pass slowly between the cores


def core_sharing(calls=200, tries=3):
    """How much fastbp's first two threads slow each other's arithmetic: the time of ``calls``
    register tiles on each of two threads at once (each over its own L1-resident panels) over
    their time on one thread, fastest of ``tries`` each.  ~1 when the threads run on separate
    cores; ~2 when they share one core, as when a VM's host runs its two vCPUs on one core's
    hyperthreads (benchmarks/NOTES.md section 66).  NaN with fewer than two threads."""
    calls, tries = check_positive_int("calls", calls), check_positive_int("tries", tries)
    if _jit.get_num_threads() < 2:
        return float("nan")
    work = _two_panels()
    one = min(_timed(_tile_calls, work[:_TILE_STRIDE], calls) for _ in range(tries))
    two = min(_timed(_tile_calls, work, calls) for _ in range(tries))
    return two / one


def region_us(regions=2000, tries=3):
    """µs of one empty two-thread parallel region (a fork and a join: cache lines handed between
    the threads), fastest mean of ``tries`` compiled loops of ``regions``.  ~1.1 µs on this VM
    when its vCPUs sit on nearby cores, ~2.2 in its slow spells, which halve W4's step while the
    cores' arithmetic keeps its speed (NOTES section 66).  NaN with fewer than two threads."""
    regions, tries = check_positive_int("regions", regions), check_positive_int("tries", tries)
    if _jit.get_num_threads() < 2:
        return float("nan")
    work = _two_panels()
    _empty_regions(work, 1)
    return min(_timed(_empty_regions, work, regions) for _ in range(tries)) / regions * 1e6


def placement():
    """``(core_sharing(), region_us())``: where the host has put fastbp's first two threads now."""
    return core_sharing(), region_us()


def badly_placed(probe, fastest_region):
    """Whether a ``placement()`` reading shows the threads sharing a core or far apart, against
    the fastest region time seen in the same run."""
    sharing, region = probe
    return sharing > SHARED_RATIO or region > FAR_REGION * fastest_region


def placement_notes(placed):
    """Notes for ``run``: the workloads whose row had a badly placed probe before or after it."""
    regions = [probe[1] for pair in placed.values() for probe in pair]
    slow = [w for w, pair in placed.items() if any(badly_placed(p, min(regions)) for p in pair)]
    if not slow:
        return []
    return [f"the host placed fastbp's two threads badly around {', '.join(slow)} (sharing one core, or "
            "far apart: benchmarks/NOTES.md section 66); two-thread numbers there can read up to 2x low, "
            "so run again"]


def _two_panels():
    work = arena.aligned_zeros(2 * _TILE_STRIDE, np.float32)
    work[:] = 0.01
    _tile_calls(work, 1)
    return work


@jit
def _empty_regions(work, n):
    for _ in range(n):
        _tile_calls(work, 0)


def _timed(f, *args):
    t0 = time.perf_counter()
    f(*args)
    return time.perf_counter() - t0
