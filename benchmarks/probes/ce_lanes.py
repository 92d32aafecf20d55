"""Softmax cross-entropy with the batch's rows as vector lanes (candidate) against
``losses.cross_entropy_loss`` (the row loops of section 47): each row's maximum and
exponential sum are chains of C dependent operations; with the logits transposed into
the float64 scratch (class-major), one vector of rows steps through the classes, so the
chains of 8 rows run side by side.  Each row's sums keep their order (class 0 first),
so the same bits; checked below on every shape, label smoothing on and off.

    PYTHONPATH=. python benchmarks/probes/ce_lanes.py

One thread, µs per call, medians of 7 rounds of 2,000 calls in a compiled loop.
"""
import math

import numpy as np

from fastbp._jit import jit
from fastbp.kernels import losses
from fastbp.kernels.activations import fast_exp

# benchmarks/probes (the script folder is on sys.path)
from ce_loss import kernels_us, smoothing_terms, vector_scratch as library


@jit
def lanes_scratch_size(rows, classes):
    return rows * (classes + 4)


@jit(error_model="numpy")
def ce_lanes(P, labels, label_smoothing, dP, scratch):
    B, C = P.shape
    n = B * C
    S = scratch
    E = S[:n]                      # class-major: E[j * B + i] for row i, class j
    rmax = S[n:n + B]
    gap_label = S[n + B:n + 2 * B]
    gap_sums = S[n + 2 * B:n + 3 * B]
    sums = S[n + 3 * B:n + 4 * B]
    for i in range(B):
        for j in range(C):
            E[j * B + i] = np.float64(P[i, j])
    for i in range(B):
        rmax[i] = E[i]
        gap_sums[i] = 0.0
        sums[i] = 0.0
    for j in range(1, C):
        e = E[j * B:(j + 1) * B]
        for i in range(B):
            rmax[i] = max(rmax[i], e[i])
    for j in range(C):
        e = E[j * B:(j + 1) * B]
        for i in range(B):
            d = e[i] - rmax[i]
            e[i] = d
            gap_sums[i] -= d
    for i in range(B):
        gap_label[i] = -E[labels[i] * B + i]
    for k in range(n):
        E[k] = fast_exp(E[k])
    for j in range(C):
        e = E[j * B:(j + 1) * B]
        for i in range(B):
            sums[i] += e[i]
    on, off, q_label, inv_b, tiny = smoothing_terms(label_smoothing, B, C, dP)
    total = 0.0
    for i in range(B):
        se = sums[i]
        ls = math.log(se)
        total += on * (gap_label[i] + ls) + off * (gap_sums[i] + C * ls)
        inv_se = 1.0 / se
        for j in range(C):
            dP[i, j] = losses._flush((E[j * B + i] * inv_se - off) * inv_b, tiny)
        y = labels[i]
        dP[i, y] = losses._flush((E[y * B + i] * inv_se - q_label) * inv_b, tiny)
    return total * inv_b


def main():
    kernels = {"library": library, "lanes": ce_lanes}
    print("B x C, dtype: library  lanes  (µs; same bits?)")
    for B, C in ((32, 10), (128, 10), (256, 10), (1, 10), (7, 3), (33, 17), (64, 100)):
        for dt in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            P = (rng.standard_normal((B, C)) * 3).astype(dt)
            labels = rng.integers(0, C, B)
            S = np.empty(lanes_scratch_size(B, C))
            same = True
            for eps in (0.0, 0.1):
                outs = []
                for f in kernels.values():
                    dP = np.empty_like(P)
                    outs.append((f(P, labels, eps, dP, S), dP))
                same &= outs[0][0] == outs[1][0] and np.array_equal(outs[0][1], outs[1][1])
            dP = np.empty_like(P)
            us = kernels_us(kernels, P, labels, dP, S)
            print(f"{B}x{C} {dt.__name__}: " + "  ".join(f"{us[name]:.2f}" for name in kernels) + f"  {same}")


if __name__ == "__main__":
    main()
