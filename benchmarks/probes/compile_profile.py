"""pytest plugin: where the test suite's Numba compile time goes (NOTES section 36).

    FASTBP_CACHE_DIR=$(mktemp -d) PYTHONPATH=benchmarks/probes python -m pytest -p compile_profile

With an empty cache every kernel compiles; at the end this prints, per jitted function,
the compile time of its top-level compiles (those not nested in another compile, so
the column sums to the process's compile time) and how many signatures it was compiled
for over all levels.  A function compiled for several signatures is the first thing to
look at: a bare constant argument is typed as a literal and compiles the callee again.
Compiles in subprocesses (the tests that run ``python -c``) are not seen.
"""
import collections
import time

import fastbp._jit  # noqa: F401  (configures Numba, cache folder and SLP, before Numba is first imported)
from numba.core import event  # noqa: E402

_starts = []
_records = []   # (function, signature, seconds, depth)


class _Listener(event.Listener):
    def on_start(self, ev):
        _starts.append(time.perf_counter())

    def on_end(self, ev):
        seconds = time.perf_counter() - _starts.pop()
        data = ev.data or {}
        func = getattr(data.get("dispatcher"), "py_func", None)
        name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
        _records.append((name, str(data.get("args")), seconds, len(_starts)))


event.register("numba:compile", _Listener())


def pytest_terminal_summary(terminalreporter):
    top = collections.defaultdict(float)
    signatures = collections.defaultdict(set)
    for name, sig, seconds, depth in _records:
        signatures[name].add(sig)
        if depth == 0:
            top[name] += seconds
    write = terminalreporter.write_line
    write(f"Numba compile time in this process: {sum(top.values()):.1f} s (top-level compiles)")
    write(f"{'top-level s':>11} {'signatures':>10}  function")
    for name in sorted(signatures, key=lambda n: (-top[n], -len(signatures[n])))[:30]:
        write(f"{top[name]:11.1f} {len(signatures[name]):10d}  {name}")
