"""W1 at batch 1 (784-256-256-10, float32): the whole chain in ONE parallel region, the
threads meeting between layers by claiming chunks of outputs and waiting for the layer's
chunks to be done, against gemv_chain.py's best (layer 1 in its own region, 2 and 3 serial).

A waiting thread only ever waits for a chunk another thread has claimed and is computing
(a chunk never waits), so it cannot deadlock, whichever way the runtime maps the prange
iterations to threads (both on one thread: the first claims everything).

    PYTHONPATH=. python benchmarks/probes/chain_region.py THREADS
"""
import sys

import numba
import numpy as np

from fastbp._jit import jit, jit_parallel
from fastbp.kernels import gemm
from fastbp.kernels.atomics import fetch_add, load_acquire, spin_pause
from gemv_chain import w1_operands  # benchmarks/probes/gemv_chain.py (the script folder is on sys.path)
from timing import median_us  # benchmarks/probes/timing.py


@jit
def _zero(flags):
    for i in range(flags.shape[0]):
        flags[i] = 0


@jit
def _relu_bias(z, b, j0, j1):
    zero = z.dtype.type(0)
    for j in range(j0, j1):
        v = z[j] + b[j]
        z[j] = v if v > zero else zero


@jit
def _layer(a, W, b, z, flags, base, nch, rows, t, nthreads):
    """Chunks of ``rows`` outputs: this thread's static share first, then any unclaimed."""
    n = z.shape[0]
    k = a.shape[0]
    per = (nch + nthreads - 1) // nthreads
    for s in range(nch):
        c = (t * per + s) % nch
        if fetch_add(flags, base + c, 1) == 0:
            j0 = c * rows
            j1 = min(n, j0 + rows)
            gemm._dots_rows(a, k, 1, W, k, k, z, 0, j0, j1)
            _relu_bias(z, b, j0, j1)
            fetch_add(flags, base + nch, 1)
    while load_acquire(flags, base + nch) < nch:
        spin_pause()


@jit_parallel
def region(x, W1, b1, W2, b2, W3, b3, h1, h2, out, flags):
    _zero(flags)  # not flags[:] = 0: in a parallel function that is a parallel loop of its own
    nt = numba.get_num_threads()
    for t in numba.prange(nt):
        _layer(x, W1, b1, h1, flags, 0, 4, 64, t, nt)
        _layer(h1, W2, b2, h2, flags, 8, 4, 64, t, nt)
        _layer(h2, W3, b3, out, flags, 16, 1, 64, t, nt)


@jit
def chain(x, W1, b1, W2, b2, W3, b3, h1, h2, out):
    # k and n at run time, as in the product: a constant k changes the reduction's bits
    gemm._dots_parallel(x, x.shape[0], 1, W1, x.shape[0], x.shape[0], h1, h1.shape[0])
    _relu_bias(h1, b1, 0, h1.shape[0])
    gemm._dots_serial(h1, h1.shape[0], 1, W2, h1.shape[0], h1.shape[0], h2, h2.shape[0])
    _relu_bias(h2, b2, 0, h2.shape[0])
    gemm._dots_serial(h2, h2.shape[0], 1, W3, h2.shape[0], h2.shape[0], out, out.shape[0])
    _relu_bias(out, b3, 0, out.shape[0])


def main():
    numba.set_num_threads(int(sys.argv[1]))
    Ws, bs, x, h1, h2, out = w1_operands()
    flags = np.zeros(32, np.int32)
    args = (x, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2], h1, h2, out)
    chain(*args)
    ref = out.copy()
    region(*args, flags)
    assert out.tobytes() == ref.tobytes()
    for _ in range(4):
        a = median_us(lambda: chain(*args), 3000)
        b = median_us(lambda: region(*args, flags), 3000)
        print(f"{sys.argv[1]} thr  par,ser,ser {a:6.2f}  one region {b:6.2f}  ratio {a / b:.3f}")
        assert out.tobytes() == ref.tobytes()


if __name__ == "__main__":
    main()
