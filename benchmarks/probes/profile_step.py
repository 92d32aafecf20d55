"""Where a workload's training step spends its time, by function, from ``perf`` samples of
``model.train_step`` in a loop (NOTES section 66).

    PYTHONPATH=. python benchmarks/probes/profile_step.py [THREADS] [WORKLOAD] [SECONDS] [TOP] [HZ]

Needs ``perf`` (linux-perf) and ``kernel.perf_event_paranoid`` <= 2 (user-space samples of
this process).  Numba's code is named through ``perf_map.write``.  On 2 vCPUs ``perf`` takes CPU
time from the step's threads: W1's two-thread step read 1,797 µs at 10 kHz and 1,450 at 1 kHz
against 1,470-1,520 unsampled (W3, one thread: 26.4 against ~22 µs at 10 kHz); use ~1 kHz for
two-thread steps.  libgomp's share is the waiting thread's spin.  Prints the share of samples
by library and the top functions (Numba names shortened to module.function), over all threads.
"""
import os
import re
import subprocess
import sys
import time

import fastbp as fb
from fastbp import bench

import perf_map  # benchmarks/probes (the script folder is on sys.path)
from stepped_model import stepped_model

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
name = sys.argv[2] if len(sys.argv) > 2 else "W3"
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
hz = sys.argv[5] if len(sys.argv) > 5 else "10000"
fb.set_num_threads(threads)
s = stepped_model(fb, bench, name)
m, opt, loss = s.model, s.opt, s.loss


def steps(n):
    t = time.perf_counter()
    for _ in range(n):
        m.train_step(s.x, s.y, loss, opt)
    return (time.perf_counter() - t) / n


n = max(1, int(0.2 / steps(20)))
steps(n)
perf_map.write()
data = f"/tmp/profile_step_{os.getpid()}.data"
rec = subprocess.Popen(["perf", "record", "-q", "-F", hz, "-e", "cpu-clock", "-p", str(os.getpid()),
                        "-o", data, "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
times = []
while rec.poll() is None:
    times.append(steps(n))
err = rec.stderr.read().decode()
if rec.returncode:
    sys.exit(f"perf record failed: {err.strip()}")
times.sort()
print(f"{name}, {threads} thread(s): {times[len(times) // 2] * 1e6:.1f} µs a step while sampled "
      f"(median of {len(times)} blocks of {n})")


def report(key):
    out = subprocess.run(["perf", "report", "-i", data, "--sort", key, "--stdio"], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.strip() and not line.startswith("#"):
            share, rest = line.split(None, 1)
            yield float(share.rstrip("%")), rest.strip()


def short(sym):
    """'fastbp.kernels.optim._adam' for Numba's mangled '_ZN6fastbp7kernels5optim5_adamB4v467...'."""
    sym = sym.replace("[.] ", "").replace("[k] ", "")
    prefix = "cfunc " if sym.startswith("cfunc.") else ""
    mangled = re.search(r"_ZN(.*)", sym)
    if not mangled:
        return sym[:70]
    rest, parts = mangled.group(1), []
    while rest and rest[0].isdigit():
        length = int(re.match(r"\d+", rest).group())
        rest = rest[len(str(length)):]
        parts.append(rest[:length])
        rest = rest[length:]
    return prefix + ".".join(parts).replace("_3clocals_3e", "<locals>").replace("_3clambda_3e", "<lambda>")


print("\nby library")
for share, dso in list(report("dso"))[:8]:
    print(f"  {share:6.2f}%  {dso}")
print("\nby function")
for share, sym in list(report("sym"))[:top]:
    print(f"  {share:6.2f}%  {short(sym)}")
os.remove(data)
