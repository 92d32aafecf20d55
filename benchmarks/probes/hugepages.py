"""One model's raw compiled step on its own buffers against copies of them in hugepage-backed
memory (one 2 MiB-aligned numpy allocation of at least 8 MiB, which numpy madvises
MADV_HUGEPAGE), in alternating rounds (NOTES section 43).

    PYTHONPATH=. python benchmarks/probes/hugepages.py W1|W2|W3|W4
"""
import statistics
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp.kernels import program as P
from stepped_model import stepped_model  # benchmarks/probes (the script folder is on sys.path)


def hugepage_copies(arrays):
    """Copies of ``arrays`` (a dict) laid out page by page in one 2 MiB-aligned allocation."""
    total = sum(a.nbytes + 4096 for a in arrays.values())
    big = np.zeros(max(total, 8 << 20) + (2 << 20), np.uint8)
    off = (-big.ctypes.data) % (2 << 20)
    copies = {}
    for k, a in arrays.items():
        v = big[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
        v[...] = a
        copies[k] = v
        off += (a.nbytes + 4095) // 4096 * 4096
    return copies, total


def main():
    fb.set_num_threads(2)
    name = sys.argv[1] if len(sys.argv) > 1 else "W1"
    s = stepped_model(fb, bench, name)
    m, opt, loss, x, T, labels, batch = s.model, s.opt, s.loss, s.x, s.T, s.labels, s.batch
    flush = fb.get_flush_denormal()
    orig = dict(params=m.arena.params, grads=m.arena.grads, state=m.state.params, ws=m._ws, work=m._work,
                opt=opt.state)
    huge, total = hugepage_copies(orig)
    step = [opt.step_count]

    def run(b):
        step[0] += 1
        P.train_step(m._program, m._consts, b["params"], b["grads"], b["state"], b["ws"], m.capacity, m._layout,
                     b["work"], m._segments, m._dropout_seed, m._step, loss.code, m.dtype.type(loss.param), x, T,
                     labels, opt.code, b["opt"], opt.hyper, step[0], flush)

    for _ in range(20):
        run(orig)
        run(huge)
    n = max(10, int(0.3 / 1.5e-3 * (128 / batch)))
    times = {"orig": [], "huge": []}
    for r in range(21):
        for k in (("orig", "huge") if r % 2 == 0 else ("huge", "orig")):
            b = orig if k == "orig" else huge
            t = time.perf_counter()
            for _ in range(n):
                run(b)
            times[k].append((time.perf_counter() - t) / n * 1e6)
    o, h = statistics.median(times["orig"]), statistics.median(times["huge"])
    won = np.mean([a < b for a, b in zip(times["huge"], times["orig"])])
    print(f"{name}: orig {o:.1f} µs  huge {h:.1f} µs  orig/huge {o / h:.3f}  huge faster in {won:.2f} of rounds; "
          f"buffers {total / 2**20:.1f} MiB")
    print("AnonHugePages:", open("/proc/meminfo").read().split("AnonHugePages:")[1].split("\n")[0].strip())


if __name__ == "__main__":
    main()
