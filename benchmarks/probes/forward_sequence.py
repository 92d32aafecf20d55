"""W1's three forward products (bias + ReLU epilogue) timed one call at a time: in sequence
(layer 1, 2, 3, 1, ...) against each repeated alone, interleaved round by round; µs medians
(NOTES section 43).  A layer run after another reads the half of its input that the other
core wrote (the halves path splits each product's columns).

    PYTHONPATH=. python benchmarks/probes/forward_sequence.py [THREADS]
"""
import sys
import time

import numpy as np

import fastbp as fb
from fastbp.kernels import gemm
from fastbp.kernels.codes import RELU


def main():
    fb.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    widths, batch = [784, 256, 256, 10], 128
    m = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0)
    m._ensure_capacity(batch)   # m._work is sized for batches up to the capacity (1 when new)
    Ws = [layer.weight for layer in m.layers if hasattr(layer, "weight")]
    bs = [layer.bias for layer in m.layers if hasattr(layer, "weight")]
    rng = np.random.default_rng(0)
    acts = [rng.standard_normal((batch, w)).astype(np.float32) for w in widths]
    Zs = [np.empty((batch, w), np.float32) for w in widths[1:]]

    def layer(i):
        gemm.matmul_nt_bias_act(acts[i], Ws[i], bs[i], RELU, np.float32(0), m._work, Zs[i], acts[i + 1])

    for i in range(3):
        layer(i)
    seq = {i: [] for i in range(3)}
    alone = {i: [] for i in range(3)}
    for _ in range(20):
        for _ in range(20):
            for i in range(3):
                t = time.perf_counter()
                layer(i)
                seq[i].append(time.perf_counter() - t)
        for i in range(3):
            for _ in range(20):
                t = time.perf_counter()
                layer(i)
                alone[i].append(time.perf_counter() - t)
    for i in range(3):
        print(f"layer {i + 1} {widths[i]}->{widths[i + 1]}: in sequence {np.median(seq[i]) * 1e6:.1f} µs  "
              f"alone {np.median(alone[i]) * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
