"""Softmax cross-entropy kernel: libm's exp row by row (the kernel before session 20, copied
below) against ``losses.cross_entropy_loss`` (one vectorized exp loop over the batch, float64
scratch), with and without a preallocated scratch.  One thread, µs per call, medians of 7
rounds of 2,000 calls in a compiled loop, interleaved (NOTES section 47).

    PYTHONPATH=. python benchmarks/probes/ce_loss.py
"""
import math

import numpy as np

from fastbp._jit import jit
from fastbp.kernels import losses

from timing import interleaved_us  # benchmarks/probes (the script folder is on sys.path)


@jit
def smoothing_terms(label_smoothing, B, C, dP):
    """``losses.cross_entropy_loss``'s constants: the label's extra weight, every class's weight,
    the label's total weight, 1/B and the smallest normal number of dP's dtype."""
    eps = np.float64(label_smoothing)
    return 1.0 - eps, eps / C, 1.0 - eps * ((C - 1) / C), 1.0 / B, np.float64(np.finfo(dP.dtype).tiny)


@jit(error_model="numpy")
def libm_rows(P, labels, label_smoothing, dP, scratch):
    """The session-19 kernel: one libm exp per element, e stored in dP's dtype then normalized."""
    B, C = P.shape
    on, off, q_label, inv_b, tiny = smoothing_terms(label_smoothing, B, C, dP)
    total = 0.0
    for i in range(B):
        m = np.float64(P[i, 0])
        for j in range(1, C):
            m = max(m, np.float64(P[i, j]))
        y = labels[i]
        gap_y = m - np.float64(P[i, y])
        se = 0.0
        gaps = 0.0
        for j in range(C):
            gap = m - np.float64(P[i, j])
            e = math.exp(-gap)
            se += e
            gaps += gap
            dP[i, j] = e
        ls = math.log(se)
        total += on * (gap_y + ls) + off * (gaps + C * ls)
        inv_se = 1.0 / se
        for j in range(C):
            dP[i, j] = losses._flush((np.float64(dP[i, j]) * inv_se - off) * inv_b, tiny)
        dP[i, y] = losses._flush((math.exp(-gap_y) * inv_se - q_label) * inv_b, tiny)
    return total * inv_b


@jit
def vector_scratch(P, labels, label_smoothing, dP, scratch):
    return losses.cross_entropy_loss(P, labels, label_smoothing, dP, scratch)


@jit
def vector_alloc(P, labels, label_smoothing, dP, scratch):
    return losses.cross_entropy_loss(P, labels, label_smoothing, dP)


@jit
def repeat(f, P, labels, dP, scratch, n):
    s = 0.0
    for _ in range(n):
        s += f(P, labels, 0.0, dP, scratch)
    return s


def kernels_us(kernels, P, labels, dP, S, n=2000):
    """Median µs a call of each kernel (name -> compiled function), rounds interleaved."""
    return interleaved_us({name: (lambda f=f: repeat(f, P, labels, dP, S, n)) for name, f in kernels.items()}, n)


def main():
    kernels = {"libm rows": libm_rows, "vector, scratch": vector_scratch, "vector, allocated": vector_alloc}
    print("B x C, dtype: " + "  ".join(kernels) + "  (µs)")
    for B, C in ((32, 10), (128, 10), (256, 10), (64, 100)):
        for dt in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            P = (rng.standard_normal((B, C)) * 3).astype(dt)
            labels = rng.integers(0, C, B)
            dP = np.empty_like(P)
            S = np.empty(losses.scratch_size(B, C))
            us = kernels_us(kernels, P, labels, dP, S)
            print(f"{B}x{C} {dt.__name__}: " + "  ".join(f"{us[name]:.2f}" for name in kernels))


if __name__ == "__main__":
    main()
