"""BatchNorm's training kernels per column at one thread, float32: widths that fill the
16-column chunks (96, 112, 128) against ragged ones (ns a column; median of 9 rounds of 2,000
calls; NOTES section 72).

    PYTHONPATH=. python benchmarks/probes/bn_ragged.py
"""
import numpy as np

import fastbp as fb
from fastbp.kernels import norm

from timing import median_us  # benchmarks/probes (the script folder is on sys.path)

DT = np.float32


def per_column_ns(fn, n):
    fn()
    return median_us(fn, 2000) * 1e3 / n


def kernels(B, n):
    """The forward (batch statistics, running update) and backward calls at (B, n)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, n)).astype(DT)
    G = rng.standard_normal((B, n)).astype(DT)
    gamma, beta = np.ones(n, DT), np.zeros(n, DT)
    running_mean, running_var = np.zeros(n, DT), np.ones(n, DT)
    mean, invstd, dgamma, dbeta = (np.empty(n, DT) for _ in range(4))
    Xhat, Y, dX = (np.empty_like(X) for _ in range(3))

    def forward():
        norm.batchnorm_forward_train(X, gamma, beta, DT(1e-5), DT(0.1), running_mean, running_var, True,
                                     mean, invstd, Xhat, Y)

    def backward():
        norm.batchnorm_backward(G, Xhat, gamma, invstd, dgamma, dbeta, dX)

    return forward, backward


def main():
    fb.set_num_threads(1)
    norm.link(np.dtype(DT))
    for B in (32, 128):
        for n in (96, 100, 111, 112, 127, 128):
            forward, backward = kernels(B, n)
            print(f"B={B:4d} n={n:4d}  forward {per_column_ns(forward, n):6.2f} ns/col  "
                  f"backward {per_column_ns(backward, n):6.2f} ns/col")


if __name__ == "__main__":
    main()
