"""W1's first training step: the functions Numba compiled more than once (one entry per signature,
inclusive seconds) and the slowest compiles (NOTES section 38).  Run with an empty cache:

    FASTBP_CACHE_DIR=$(mktemp -d) PYTHONPATH=. python benchmarks/probes/compile_signatures.py
"""
import collections
import time

import fastbp._jit  # noqa: F401  (configures Numba before Numba is imported: NOTES 36)
from numba.core import event

starts, records = [], []   # records: (module.qualname, signature, inclusive s, nesting depth)


class Listener(event.Listener):
    def on_start(self, ev):
        starts.append(time.perf_counter())

    def on_end(self, ev):
        seconds = time.perf_counter() - starts.pop()
        data = ev.data or {}
        f = getattr(data.get("dispatcher"), "py_func", None)
        name = getattr(f, "__module__", "?") + "." + getattr(f, "__qualname__", "?")
        records.append((name, str(data.get("args")), seconds, len(starts)))


event.register("numba:compile", Listener())

import numpy as np  # noqa: E402
import fastbp as fb  # noqa: E402

t0 = time.perf_counter()
model = fb.MLP([784, 256, 256, 10], activation="relu", seed=0)
opt = fb.optim.Adam(model.parameters(), lr=1e-3)
x = np.random.default_rng(0).standard_normal((128, 784)).astype(np.float32)
y = np.arange(128) % 10
model.train_step(x, y, fb.CrossEntropyLoss(), opt)
print("first step", round(time.perf_counter() - t0, 1), "s")
print("compiled more than once (inclusive s per signature):")
for name, n in collections.Counter(r[0] for r in records).most_common():
    if n > 1:
        print(f"  {n} {name} {[round(r[2], 1) for r in records if r[0] == name]}")
print("slowest (inclusive s, call depth):")
for name, _sig, seconds, depth in sorted(records, key=lambda r: -r[2])[:12]:
    print(f"  {seconds:6.1f} d{depth} {name}")
