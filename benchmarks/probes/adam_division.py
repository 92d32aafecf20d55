"""Adam's float32 element update as built (``sqrt(v) * (1 / sqrt(bc2))``) against torch's
operation order (``sqrt(v) / sqrt(bc2)``, one division more), NOTES section 41.
Compiled loops, one thread, ns a parameter, three rounds each:

    PYTHONPATH=. python benchmarks/probes/adam_division.py
"""
import math
import os
import sys

import numpy as np

from fastbp._jit import jit
from fastbp.kernels import optim

sys.path.insert(0, os.path.dirname(__file__))
from timing import median_us  # noqa: E402


@jit(error_model="numpy")
def adam_torch_order(params, grads, exp_avg, exp_avg_sq, hyper, step):
    """Adam (no weight decay) with torch's two divisions: the rule before section 41."""
    T = params.dtype.type
    lr = np.float64(hyper[0])
    beta1 = hyper[1]
    beta2 = hyper[2]
    eps = hyper[3]
    t = np.float64(step)
    step_size = T(lr / (1.0 - math.pow(np.float64(beta1), t)))
    bias_correction2_sqrt = T(math.sqrt(1.0 - math.pow(np.float64(beta2), t)))
    for i in range(params.shape[0]):
        m = beta1 * exp_avg[i] + (T(1.0) - beta1) * grads[i]
        v = beta2 * exp_avg_sq[i] + (T(1.0) - beta2) * grads[i] * grads[i]
        exp_avg[i] = m
        exp_avg_sq[i] = v
        params[i] = params[i] - step_size * (m / (math.sqrt(v) / bias_correction2_sqrt + eps))


@jit
def loop(variant, reps, p, g, m, s, hyper):
    for k in range(reps):
        if variant == 0:
            adam_torch_order(p, g, m, s, hyper, np.int64(k + 1))
        else:
            optim._adam(p, g, m, s, hyper, np.int64(k + 1), False)


def main():
    rng = np.random.default_rng(0)
    hyper = np.array([1e-3, 0.9, 0.999, 1e-8, 0], np.float32)
    for n in (9000, 270000):
        p = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        bufs = [(p.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)) for _ in range(2)]
        for v in (0, 1):
            loop(v, 3, bufs[v][0], g, bufs[v][1], bufs[v][2], hyper)
        print(f"{n} parameters: after 3 steps {np.mean(bufs[0][0] != bufs[1][0]):.2%} differ, "
              f"by at most {np.max(np.abs(bufs[0][0] - bufs[1][0])):.2e}")
        for _ in range(3):
            print("  " + "  ".join(
                f"{name} {median_us(lambda: loop(v, 20, p, g, *bufs[v][1:], hyper), 5, 5) / 20 / n * 1e3:.3f} ns"
                for v, name in ((0, "torch order"), (1, "built"))))


if __name__ == "__main__":
    main()
