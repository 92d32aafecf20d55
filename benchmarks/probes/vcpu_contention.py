"""Do the two vCPUs slow each other down?  The same kernel pinned to CPU 0 alone, CPU 1
alone, and on both at once (two processes started at a barrier), with the steal time
that /proc/stat counted meanwhile.

    PYTHONPATH=. python benchmarks/probes/vcpu_contention.py [ROUNDS]

Kernels: `fma` (a vectorized multiply-add over 16 KB, L1-resident: the core's arithmetic),
`l2` (a float32 sum over 512 KB: the core's own L2), `l3` (a sum over 6 MB a process: both
fit the shared 32 MB L3), `dram` (48 MB a process).  If the slow state of the machine
(NOTES sections 47-49) is the host running both vCPUs on one physical core or under
contention, `both` reads up to 2x `alone`.
"""
import multiprocessing as mp
import os
import sys
import time

import numpy as np

FR = {"contract", "nsz", "reassoc", "arcp"}
KERNELS = {"fma": 4096, "l2": 128 * 1024, "l3": 1536 * 1024,      # float32 elements
           "dram": 12 * 1024 * 1024}
REPEATS = {"fma": 2000, "l2": 40, "l3": 4, "dram": 1}


def _kernels():
    from numba import njit

    @njit(fastmath=FR)
    def fma(a, reps):
        for _ in range(reps):
            for i in range(a.shape[0]):
                a[i] = a[i] * np.float32(0.999) + np.float32(0.001)
        return a[0]

    @njit(fastmath=FR)
    def total(a, reps):
        s = np.float32(0)
        for _ in range(reps):
            for i in range(a.shape[0]):
                s += a[i]
        return s

    return {"fma": fma, "l2": total, "l3": total, "dram": total}


def _worker(cpu, name, rounds, barrier, out):
    os.sched_setaffinity(0, {cpu})
    kernel = _kernels()[name]
    a = np.ones(KERNELS[name], np.float32)
    kernel(a, 1)
    times = []
    barrier.wait()
    for _ in range(rounds):
        t = time.perf_counter()
        kernel(a, REPEATS[name])
        times.append(time.perf_counter() - t)
    out.put((cpu, float(np.median(times)) * 1e6))


def _steal():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8])   # "cpu" line: user nice system idle iowait irq softirq steal


def run(cpus, name, rounds):
    barrier, out = mp.Barrier(len(cpus)), mp.Queue()
    procs = [mp.Process(target=_worker, args=(c, name, rounds, barrier, out)) for c in cpus]
    steal = _steal()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    result = dict(out.get() for _ in cpus)
    return result, _steal() - steal


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(time.strftime("%H:%M:%S UTC", time.gmtime()), f"rounds {rounds}, medians in µs")
    for name in KERNELS:
        alone0, s0 = run([0], name, rounds)
        alone1, s1 = run([1], name, rounds)
        both, s2 = run([0, 1], name, rounds)
        print(f"{name:4s} alone cpu0 {alone0[0]:8.1f}  cpu1 {alone1[1]:8.1f}   both "
              f"{both[0]:8.1f} {both[1]:8.1f}   ratio {both[0] / alone0[0]:.2f} "
              f"{both[1] / alone1[1]:.2f}   steal jiffies {s0} {s1} {s2}")


if __name__ == "__main__":
    main()
