"""Name Numba's compiled code for ``perf``: writes ``/tmp/perf-<pid>.map`` (the file ``perf report``
reads for JIT code) with every symbol Numba's execution engine has loaded in this process, from
the cache or freshly compiled (NOTES section 66).

    import perf_map; ...warm up...; perf_map.write()      # then, from another shell:
    perf record -F 10000 -e cpu-clock -p PID -- sleep 5; perf report --sort sym --stdio

``profile_step.py`` does this for a workload's training step.  Sizes are the gaps to the next
symbol (the engine does not keep them), so a function's tail may be counted as its data.
"""
import os

from numba.core.registry import cpu_target


def write():
    """Write the map; returns the number of functions named."""
    engine = cpu_target.target_context.codegen()._engine
    entries = {}
    for name in engine._defined_symbols:
        addr = engine.get_function_address(name)
        if addr:
            entries[addr] = name
    addrs = sorted(entries)
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as fh:
        for a, nxt in zip(addrs, addrs[1:] + [addrs[-1] + 4096]):
            fh.write(f"{a:x} {min(nxt - a, 1 << 16):x} {entries[a]}\n")
    return len(addrs)
