"""Whole training steps with the model's buffers on 64-byte boundaries (as built, NOTES 41)
against the same model with every buffer moved 16 bytes off (where numpy's large arrays
start: mmap'd malloc chunks, 16 bytes past a page).  One process, alternating
rounds (which one runs first alternates too).

    PYTHONPATH=. python benchmarks/probes/buffer_alignment.py [THREADS] [W1,W2,W4] [ROUNDS]

The compiled step reads only the buffers passed to it (arena, optimizer state,
workspace, packing scratch), so the moved model is the same model, byte for byte.
"""
import statistics
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench


def moved(a, offset=16):
    """A copy of ``a`` whose data starts ``offset`` bytes past a 64-byte boundary."""
    raw = np.empty(a.nbytes + 128, np.uint8)
    start = -raw.ctypes.data % 64 + offset
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def model_and_step(widths, batch, misalign):
    model = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0)
    opt = fb.optim.Adam(model.parameters(), lr=1e-3)
    loss = fb.CrossEntropyLoss()
    x, y = bench.make_batch(widths, batch)
    model.train_step(x, y, loss, opt)                   # sizes the workspace
    if misalign:
        model.arena.params = moved(model.arena.params)
        model.arena.grads = moved(model.arena.grads)
        model._ws = moved(model._ws)
        model._work = moved(model._work)
        opt.state = moved(opt.state)
    return lambda: model.train_step(x, y, loss, opt)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else ["W1", "W2", "W4"]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 11
    fb.set_num_threads(threads)
    print(f"{threads} thread(s), {rounds} alternating rounds; ms a step (median), aligned / moved 16 B")
    for name in names:
        _, widths, batch = bench.WORKLOADS[name]
        steps = {m: model_and_step(widths, batch, m) for m in (False, True)}
        for f in steps.values():
            for _ in range(3):
                f()
        reps = max(3, int(0.3 / 0.002 * 128 / batch / (sum(a * b for a, b in zip(widths, widths[1:])) / 269e3)))
        ts = {m: [] for m in steps}
        for r in range(rounds):
            for m in (False, True) if r % 2 == 0 else (True, False):   # neither always runs first
                f = steps[m]
                t = time.perf_counter()
                for _ in range(reps):
                    f()
                ts[m].append((time.perf_counter() - t) / reps * 1e3)
        a, b = statistics.median(ts[False]), statistics.median(ts[True])
        won = np.mean([x < y for x, y in zip(ts[False], ts[True])])
        print(f"  {name}: aligned {a:.3f} ms, moved {b:.3f} ms: aligned x{b / a:.3f} faster, "
              f"won {won:.2f} of rounds ({reps} steps a round)")


if __name__ == "__main__":
    main()
