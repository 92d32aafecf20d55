"""The backward pass's activation derivative and bias sums (NOTES section 43).  µs per
call, medians, interleaved in one process, float32.

1. ``act_backward`` as built (from 32K elements a prange over single rows) against its
   serial row loop and a prange over one block of rows per thread, ReLU and GELU.
2. Today's two calls for a ReLU layer (``act_backward``, then ``column_sums``) against
   ``relu_backward_bias_grad`` (one serial pass) and the same pass over column blocks in
   parallel.

    PYTHONPATH=. python benchmarks/probes/relu_bias_grad.py THREADS
"""
import sys

import numba
import numpy as np

from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import activations, fpenv, reductions
from fastbp.kernels.codes import GELU, RELU
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)


@jit
def act_serial(G, Z, act, out):
    activations._act_backward_rows(G, Z, Z, act, G.dtype.type(0), out, np.int64(0), np.int64(Z.shape[0]))


@jit_parallel
def act_blocks(G, Z, act, out):
    B = Z.shape[0]
    nt = numba.get_num_threads()
    per = (B + nt - 1) // nt
    bits = fpenv.current()
    for p in prange(nt):
        old = fpenv.adopt(bits)
        r0 = np.int64(p) * per
        activations._act_backward_rows(G, Z, Z, act, G.dtype.type(0), out, r0, min(B, r0 + per))
        fpenv.leave(old)


@jit
def act_built(G, Z, act, out):
    activations.act_backward(G, Z, Z, act, G.dtype.type(0), out)


@jit
def two_calls(G, Z, db):
    activations.act_backward(G, Z, Z, RELU, G.dtype.type(0), G)
    reductions.column_sums(G, db)


@jit
def fused_serial(G, Z, db):
    activations.relu_backward_bias_grad(G, Z, db)


@jit_parallel
def fused_column_blocks(G, Z, db):
    n = G.shape[1]
    nb = (n + 63) // 64
    for t in prange(nb):
        c0 = np.int64(t) * 64
        c1 = min(n, c0 + 64)
        activations.relu_backward_bias_grad(G[:, c0:c1], Z[:, c0:c1], db[c0:c1])


def compare(label, fs, args, calls):
    """Check every variant gives the first one's bits, then print three interleaved timings."""
    ref = None
    for f in fs.values():
        f(*args)
        got = b"".join(a.tobytes() for a in args if isinstance(a, np.ndarray))
        ref = got if ref is None else ref
        assert got == ref, label
    for _ in range(3):
        print(f"{sys.argv[1]} thr {label}  " + "  ".join(
            f"{k} {median_us(lambda f=f: f(*args), calls):8.2f}" for k, f in fs.items()))


def main():
    numba.set_num_threads(int(sys.argv[1]))
    rng = np.random.default_rng(0)
    for act, name in ((RELU, "relu"), (GELU, "gelu")):
        for rows, cols in ((128, 256), (256, 1024), (1024, 1024)):
            Z = rng.standard_normal((rows, cols)).astype(np.float32)
            G = rng.standard_normal((rows, cols)).astype(np.float32)
            compare(f"{name} {rows}x{cols}", {"built": act_built, "serial": act_serial, "blocks": act_blocks},
                    (G, Z, act, np.empty_like(G)), max(20, 1_000_000 // (rows * cols)))
    for rows, cols in ((32, 64), (64, 256), (128, 256), (256, 1024)):
        Z = rng.standard_normal((rows, cols)).astype(np.float32)
        # G is rewritten in place by every call: after the first, ReLU's mask leaves it as it is
        G = rng.standard_normal((rows, cols)).astype(np.float32) * (Z > 0)
        compare(f"relu+bias {rows}x{cols}",
                {"two calls": two_calls, "fused serial": fused_serial, "fused column blocks": fused_column_blocks},
                (G, Z, np.empty(cols, np.float32)), max(200, 2_000_000 // (rows * cols)))


if __name__ == "__main__":
    main()
