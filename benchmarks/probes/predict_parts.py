"""W1 batch 1: ``model.predict``, the raw ``program.predict``, ``program.forward`` alone and
``chain_region.chain`` (the three products and epilogues, nothing else), interleaved in one
process, µs medians (NOTES section 43).

    PYTHONPATH=. python benchmarks/probes/predict_parts.py
"""
import numpy as np

import fastbp as fb
from fastbp.kernels import program as P
from chain_region import chain  # benchmarks/probes (the script folder is on sys.path)
from gemv_chain import w1_operands
from timing import median_us


def main():
    fb.set_num_threads(2)
    m = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
    out = np.empty((1, 10), np.float32)
    common = (m._program, m._consts, m.arena.params, m.state.params, m._ws, m.capacity)
    Ws, bs, xx, h1, h2, o3 = w1_operands()
    calls = {
        "predict": lambda: m.predict(x, batch_size=1, out=out),
        "raw": lambda: P.predict(*common, m._layout, m._work, m._segments, x, out, True),
        "forward": lambda: P.forward(*common, 1, m._work, False, 0, 0, m._segments, True),
        "chain": lambda: chain(xx, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2], h1, h2, o3),
    }
    for call in calls.values():
        call()
    for _ in range(4):
        print("  ".join(f"{k} {median_us(f, 2000):6.2f}" for k, f in calls.items()))


if __name__ == "__main__":
    main()
