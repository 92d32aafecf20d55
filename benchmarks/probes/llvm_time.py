"""Where a cold compile of W1's first training step goes, per Numba code library (NOTES 56-57).

    PYTHONPATH=. python benchmarks/probes/llvm_time.py [TOP]

Runs ``cold_start.py``'s child (W1's first ``train_step``) against an empty cache folder
with Numba's ``CPUCodeLibrary`` stages wrapped in timers: LLVM's full-module optimization
(``_optimize_final_module``, which re-optimizes every callee module linked in) and the
machine-code emission (``_finalize_final_module``).  Prints the totals, the number of
libraries and the TOP libraries by optimization plus emission time.  Numba's own typing and
lowering is the rest of the wall time.
"""
import collections
import os
import sys
import tempfile
import time

os.environ["FASTBP_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastbp-llvm-time-")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # benchmarks/
import fastbp._jit  # noqa: E402,F401  (configures Numba and the cache folder first)
from numba.core import codegen  # noqa: E402

from cold_start import CHILD  # noqa: E402

_seconds = collections.defaultdict(lambda: [0.0, 0.0])   # library name -> [optimize, emit]


def _timed(method, slot):
    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            _seconds[self.name][slot] += time.perf_counter() - start
    return wrapper


codegen.CPUCodeLibrary._optimize_final_module = _timed(codegen.CPUCodeLibrary._optimize_final_module, 0)
codegen.CPUCodeLibrary._finalize_final_module = _timed(codegen.CPUCodeLibrary._finalize_final_module, 1)

start = time.perf_counter()
exec(CHILD)
total = time.perf_counter() - start
optimize = sum(s[0] for s in _seconds.values())
emit = sum(s[1] for s in _seconds.values())
print(f"\nwall {total:.1f} s: LLVM optimize {optimize:.1f} s, emit {emit:.1f} s, "
      f"Numba's own {total - optimize - emit:.1f} s; {len(_seconds)} libraries")
top = int(sys.argv[1]) if len(sys.argv) > 1 else 25
for name, (o, e) in sorted(_seconds.items(), key=lambda kv: -sum(kv[1]))[:top]:
    print(f"  {o + e:6.2f} s (opt {o:5.2f}, emit {e:5.2f})  {name[:110]}")
