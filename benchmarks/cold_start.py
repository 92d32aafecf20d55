"""Time to the first W1 training step in fresh processes, with a cold and a warm kernel cache.

    python benchmarks/cold_start.py [--runs 3] [--cold]

Each run is a new interpreter: import fastbp, build W1 (784-256-256-10, float32),
one Adam train_step at batch 128.  ``--cold`` first runs once with an empty cache
directory (FASTBP_CACHE_DIR pointed at a fresh temporary folder), which compiles
every kernel the step needs; the warm runs then reuse that folder.

It first prints what moves the numbers: whether SciPy is installed (Numba imports
scipy.linalg on its first compile or cache load when it is: ~0.15-0.27 s here) and
whether PYTHONDONTWRITEBYTECODE is set (then an editable install recompiles fastbp's
sources at every import: ~0.1 s; an installed package has its .pyc files).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import time
t0 = time.perf_counter()
import numpy as np
import fastbp as fb
t1 = time.perf_counter()
model = fb.MLP([784, 256, 256, 10], activation="relu", seed=0)
opt = fb.optim.Adam(model.parameters(), lr=1e-3)
x = np.random.default_rng(0).standard_normal((128, 784)).astype(np.float32)
y = np.arange(128) % 10
model.train_step(x, y, fb.CrossEntropyLoss(), opt)
t2 = time.perf_counter()
print(f"import {t1 - t0:.2f} s, first train_step {t2 - t1:.2f} s", end="")
"""


def run(env):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return f"{out.stdout}, process total {time.perf_counter() - start:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="start from an empty cache (compiles: minutes)")
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    probe = "import importlib.util as u; print(u.find_spec('scipy') is not None)"
    scipy = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    print(f"{sys.executable}: SciPy installed {scipy}, PYTHONDONTWRITEBYTECODE "
          f"{'set' if env.get('PYTHONDONTWRITEBYTECODE') else 'unset'}")
    if args.cold:
        env["FASTBP_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastbp-cold-")
        print("cold:", run(env))
    for i in range(args.runs):
        print(f"warm {i + 1}:", run(env))


if __name__ == "__main__":
    main()
