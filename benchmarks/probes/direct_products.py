"""The serial path's two forms at one thread: ``_gemm_direct`` (operands read in place) against
``_gemm_packed`` (A and B packed per k block), on the backward products (``tn`` dW = Dᵀ A,
``nn`` dA = D W) of W4, W1 and W2 layers (NOTES section 46).

    PYTHONPATH=. python benchmarks/probes/direct_products.py

Both forms are called directly, with the strides ``own_tn``/``own_nn`` pass, inside
compiled loops; µs per product, medians of 7 rounds, three runs each; and whether the
two forms give the same bits (they must).  Rows above ``gemm.DIRECT_MAX_B_BYTES`` show
why the direct form is capped.
"""
import numpy as np

import fastbp as fb
from fastbp._jit import jit
from fastbp.kernels import gemm

from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)


@jit
def run(reps, direct, m, n, k, A, ars, acs, B, brs, C, work):
    ep = gemm._no_epilogue(C.reshape(m, n))
    one = np.int64(1)
    for _ in range(reps):
        if direct:
            gemm._gemm_direct(m, n, k, A, ars, acs, B, brs, C, n, work, ep)
        else:
            gemm._gemm_packed(m, n, k, A, ars, acs, B, brs, one, C, n, work, ep)


def main():
    fb.set_num_threads(1)
    rng = np.random.default_rng(0)
    one = np.int64(1)
    # (label, batch M, in K, out N) of a layer
    for label, M, K, N in (("W4", 64, 256, 256), ("W1 layer 2", 128, 256, 256), ("W1 layer 1", 128, 784, 256),
                           ("W2", 256, 1024, 1024)):
        D = rng.standard_normal((M, N)).astype(np.float32).reshape(-1)
        A = rng.standard_normal((M, K)).astype(np.float32).reshape(-1)
        W = rng.standard_normal((N, K)).astype(np.float32).reshape(-1)
        work = np.empty(gemm.work_size(M, N, K), np.float32)
        # tn: (m, n, k) = (N, K, M), A-operand Dᵀ (ars 1, acs N), B = A (brs K); nn: (M, K, N), D (ars N), B = W
        for name, (m, n, k, X, ars, acs, Y, brs) in (("tn", (N, K, M, D, one, N, A, K)),
                                                     ("nn", (M, K, N, D, N, one, W, K))):
            if k > gemm.KC:
                continue    # more than one k block: the direct form does not apply
            outs = [np.full(m * n, np.nan, np.float32) for _ in range(2)]
            reps = max(2, int(2e7 / (2 * m * n * k)))
            times = {True: [], False: []}
            for _ in range(3):
                for direct in (True, False):
                    out = outs[0 if direct else 1]
                    run(1, direct, m, n, k, X, ars, acs, Y, brs, out, work)
                    times[direct].append(median_us(lambda: run(reps, direct, m, n, k, X, ars, acs, Y, brs, out, work),
                                                   1, 7) / reps)
            B_bytes = k * n * 4
            same = outs[0].tobytes() == outs[1].tobytes()
            print(f"{label:11s} {name} {m}x{n}x{k} (B {B_bytes // 1024} KiB, direct "
                  f"{'on' if gemm._direct(k, n, 1, 4) else 'off'}): direct "
                  + " / ".join(f"{t:.1f}" for t in times[True]) + " µs, packed "
                  + " / ".join(f"{t:.1f}" for t in times[False]) + f" µs; same bits: {same}")


if __name__ == "__main__":
    main()
