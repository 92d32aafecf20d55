"""act_backward (ReLU, float32, 2 threads) out of place and in place (out is G), bias_act_forward,
and numpy's G * (Z > 0), in µs (NOTES section 21).
PYTHONPATH=. python benchmarks/probes/act_backward_alias.py"""
import numpy as np

import fastbp as fb
from fastbp.kernels import activations as K
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

fb.set_num_threads(2)
rng = np.random.default_rng(0)
zero = np.float32(0)
for shape in [(64, 256), (128, 256), (256, 1024)]:
    Z = rng.standard_normal(shape, dtype=np.float32)
    G = rng.standard_normal(shape, dtype=np.float32)
    out, A = np.empty_like(G), np.empty_like(Z)
    b = np.zeros(shape[1], np.float32)
    K.act_backward(G, Z, Z, 1, zero, out)
    K.bias_act_forward(Z, b, 1, zero, A)
    print(shape, f"act_backward {median_us(lambda: K.act_backward(G, Z, Z, 1, zero, out), 2000):.2f} µs",
          f"in-place {median_us(lambda: K.act_backward(G, Z, Z, 1, zero, G), 2000):.2f}",
          f"bias_act {median_us(lambda: K.bias_act_forward(Z, b, 1, zero, A), 2000):.2f}",
          f"numpy {median_us(lambda: np.multiply(G, Z > 0, out=out), 2000):.2f}")
