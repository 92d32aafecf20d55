"""Where a W4 step goes: the whole step against its pieces, and the products against numpy's.

    PYTHONPATH=. python benchmarks/probes/w4_pieces.py [THREADS] [WORKLOAD] [SETTLE]

Times, in one process, interleaved over rounds (median µs of each piece's mean):
the whole `model.train_step`; `model.forward`; `model.backward`; `opt.step()`; the
step's layer products alone, called in the step's order on the model's own weights
(forward `X Wᵀ` with bias + ReLU, backward `dW = Dᵀ A` and `dA = D W`); and the same
products through numpy (OpenBLAS sgemm, same threads).  "products at numpy's speed +
the rest" is what a step would take if every product ran like numpy's sgemm.  Compare
with JAX from ``table.py`` run right after: JAX timed in this process (after Numba's
threads have run) is 20-30% slower than in its own (NOTES section 32).
"""
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp.kernels import gemm

from layer_products import layer_products
from timing import median_us

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
name = sys.argv[2] if len(sys.argv) > 2 else "W4"
# seconds of sleep before each piece: numpy's OpenBLAS threads spin after its calls and slow
# whatever fastbp piece comes next in this process (NOTES section 37); 0 reproduces the old probe
settle = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
fb.set_num_threads(threads)
_, widths, batch = bench.WORKLOADS[name]
model = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0)
opt = fb.optim.Adam(model.parameters(), lr=1e-3)
loss = fb.CrossEntropyLoss()
x, y = bench.make_batch(widths, batch)

work = np.empty(gemm.work_size(batch, max(widths), max(widths)), np.float32)
forward_products, backward_products, numpy_forward, numpy_backward = layer_products(model, widths, batch, work)


out = model.forward(x)
_, dout = loss(out, y)
pieces = {
    "train_step": lambda: model.train_step(x, y, loss, opt),
    "model.forward": lambda: model.forward(x),
    "model.backward": lambda: model.backward(dout),
    "opt.step": opt.step,
    "forward products (fastbp)": forward_products,
    "backward products (fastbp)": backward_products,
    "forward products (numpy)": numpy_forward,
    "backward products (numpy)": numpy_backward,
}
for f in pieces.values():
    for _ in range(5):
        f()
rounds = 5
results = {k: [] for k in pieces}
for _ in range(rounds):
    for k, f in pieces.items():
        time.sleep(settle)
        results[k].append(median_us(f, 20, rounds=3))
med = {k: float(np.median(v)) for k, v in results.items()}
print(f"{name}, {threads} threads, batch {batch}; median of {rounds} interleaved rounds, µs; settle {settle} s")
for k, v in med.items():
    print(f"  {k:30s} {v:9.1f}   (range {min(results[k]):.1f}-{max(results[k]):.1f})")
rest = med["train_step"] - med["forward products (fastbp)"] - med["backward products (fastbp)"]
ideal = med["forward products (numpy)"] + med["backward products (numpy)"] + rest
print(f"  step minus fastbp's products   {rest:9.1f}")
print(f"  products at numpy's speed + the rest {ideal:9.1f}  -> {batch / ideal * 1e6:,.0f} samples/s"
      f" (step now {batch / med['train_step'] * 1e6:,.0f})")
print(f"  numpy's products alone allow at most "
      f"{batch / (med['forward products (numpy)'] + med['backward products (numpy)']) * 1e6:,.0f} samples/s")
