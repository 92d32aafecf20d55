"""Numba kernels: pure functions over arrays and scalars, ``out`` last, in place.

Conventions (every module here follows them):

* Arrays are C-contiguous, float32 or float64; all float arrays of one call
  share a dtype, and float scalars are passed already cast to that dtype, so
  float32 math stays float32.  Integer labels are int64.
* Kernels allocate nothing that could be passed in; they write ``out`` and
  return nothing, or return a scalar (a loss, a norm) as float64.
* Results never depend on the thread count: ``prange`` only over independent
  output blocks, every reduction in a fixed order.
* Nothing here validates user input; ``fastbp.validation`` does that first.

Modules: ``gemm`` (the three dense-layer products), ``activations`` (bias +
activation forward, derivative times incoming gradient), ``losses`` (mean loss
and its gradient in one pass), ``reductions`` (column sums, sums of squares),
``optim`` (optimizer updates and gradient clipping over flat buffers),
``program`` (runs a model's layer program: forward, backward, train step), ``views``
(reshaped views of C-contiguous arrays without Numba's reshape helper call).
"""
