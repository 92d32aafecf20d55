"""Optimizer updates and gradient clipping over the arena's flat buffers.

``optimizer_step(code, params, grads, state, hyper, step)`` updates ``params``
(and ``state``) in place in one pass; ``grads`` is only read.  ``params`` and
``grads`` are 1-D (P,), ``state`` is (rows, P) C-contiguous, ``hyper`` a 1-D
array of the params' dtype, ``step`` the 1-based count of this step (int64).
Flags are stored as 0/1 in ``hyper``.

==========  ===================================================  =====================================
code        hyper                                                state rows
==========  ===================================================  =====================================
SGD         [lr, momentum, dampening, weight_decay, nesterov,    1: momentum_buffer
            maximize]
RMSPROP     [lr, alpha, eps, weight_decay, momentum, centered]   3: square_avg, momentum_buffer,
                                                                 grad_avg
ADAM        [lr, beta1, beta2, eps, weight_decay]                2: exp_avg, exp_avg_sq
ADAMW       [lr, beta1, beta2, eps, weight_decay]                2: exp_avg, exp_avg_sq
==========  ===================================================  =====================================

The rules are torch.optim's (SGD, RMSprop, Adam without amsgrad, AdamW) in
torch's operation order, except that moving averages are written
``beta * m + (1 - beta) * g`` (torch uses ``lerp``) and Adam multiplies
``sqrt(v)`` by ``1 / sqrt(1 - beta2 ** step)`` where torch divides (a float32
Adam step is bound by the shared divide/sqrt unit: one division fewer made
it 1.1-1.5x faster, NOTES section 41); float64 results agree with torch 2.13
to ~1e-15, float32 ones within an ulp.  Float math stays in the array dtype;
only Adam's bias corrections (``1 - beta ** step``, and that reciprocal) and
AdamW's decay factor ``1 - lr * weight_decay`` are computed in float64 and
then cast.  SGD's
momentum buffer is initialised to the gradient when ``step == 1``.
RMSprop and Adam have no ``maximize`` flag.

Buffers of at least ``PARALLEL_MIN_SIZE`` values are updated in fixed chunks
of ``UPDATE_CHUNK`` under ``prange``; smaller ones in one serial loop (no
thread launch).  Each element's update is independent, so the result never
depends on the thread count.  Nothing is allocated.

``clip_grad_norm(grads, max_norm, norm_type)`` is
``torch.nn.utils.clip_grad_norm_`` over the flat gradient buffer.
"""
import math

import numpy as np
from numba import carray, types
from numba.extending import overload

from .._jit import FASTMATH_REDUCE, jit, jit_parallel, prange
from . import fpenv, linked
from .codes import ADAM, ADAMW, RMSPROP, SGD

PARALLEL_MIN_SIZE = 1 << 16   # buffers at least this long are updated in parallel
UPDATE_CHUNK = 1 << 14        # elements per prange chunk of an update
NORM_CHUNK = 4096             # elements per partial of a norm (fixed: deterministic sums)

STATE_ROWS = {SGD: 1, RMSPROP: 3, ADAM: 2, ADAMW: 2}
HYPER_SIZE = {SGD: 6, RMSPROP: 6, ADAM: 5, ADAMW: 5}


# --------------------------------------------------------------------------- updates
# error_model="numpy": Python's error model checks every float division for a
# zero divisor, and that branch keeps LLVM from vectorizing the loop.

@jit(error_model="numpy")
def _sgd(params, grads, momentum_buffer, hyper, step):
    T = params.dtype.type
    lr = hyper[0]
    momentum = hyper[1]
    keep = T(1.0) - hyper[2]          # 1 - dampening
    weight_decay = hyper[3]
    nesterov = hyper[4] != 0
    sign = T(-1.0) if hyper[5] != 0 else T(1.0)   # maximize: ascend the gradient
    has_decay = weight_decay != 0
    if momentum == 0:
        for i in range(params.shape[0]):
            g = sign * grads[i]
            if has_decay:
                g = g + weight_decay * params[i]
            params[i] = params[i] - lr * g
    else:
        first = step == 1
        for i in range(params.shape[0]):
            g = sign * grads[i]
            if has_decay:
                g = g + weight_decay * params[i]
            if first:
                b = g
            else:
                b = momentum * momentum_buffer[i] + keep * g
            momentum_buffer[i] = b
            if nesterov:
                g = g + momentum * b
            else:
                g = b
            params[i] = params[i] - lr * g


@jit(error_model="numpy")
def _rmsprop(params, grads, square_avg, momentum_buffer, grad_avg, hyper):
    T = params.dtype.type
    lr = hyper[0]
    alpha = hyper[1]
    one_minus_alpha = T(1.0) - alpha
    eps = hyper[2]
    weight_decay = hyper[3]
    momentum = hyper[4]
    centered = hyper[5] != 0
    has_decay = weight_decay != 0
    has_momentum = momentum > 0
    for i in range(params.shape[0]):
        g = grads[i]
        if has_decay:
            g = g + weight_decay * params[i]
        s = alpha * square_avg[i] + one_minus_alpha * g * g
        square_avg[i] = s
        if centered:
            a = alpha * grad_avg[i] + one_minus_alpha * g
            grad_avg[i] = a
            avg = math.sqrt(s - a * a) + eps
        else:
            avg = math.sqrt(s) + eps
        if has_momentum:
            b = momentum * momentum_buffer[i] + g / avg
            momentum_buffer[i] = b
            params[i] = params[i] - lr * b
        else:
            params[i] = params[i] - lr * (g / avg)


@jit(error_model="numpy")
def _adam(params, grads, exp_avg, exp_avg_sq, hyper, step, decoupled):
    T = params.dtype.type
    lr = np.float64(hyper[0])
    beta1 = hyper[1]
    beta2 = hyper[2]
    eps = hyper[3]
    weight_decay = hyper[4]
    t = np.float64(step)
    bias_correction1 = 1.0 - math.pow(np.float64(beta1), t)
    bias_correction2 = 1.0 - math.pow(np.float64(beta2), t)
    step_size = T(lr / bias_correction1)
    inv_bias_correction2_sqrt = T(1.0 / math.sqrt(bias_correction2))
    one_minus_beta1 = T(1.0) - beta1
    one_minus_beta2 = T(1.0) - beta2
    decay = T(1.0 - lr * np.float64(weight_decay))   # AdamW: p *= 1 - lr * wd
    has_l2 = weight_decay != 0 and not decoupled
    has_decoupled = weight_decay != 0 and decoupled
    for i in range(params.shape[0]):
        p = params[i]
        g = grads[i]
        if has_decoupled:
            p = p * decay
        elif has_l2:
            g = g + weight_decay * p
        m = beta1 * exp_avg[i] + one_minus_beta1 * g
        v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        denom = math.sqrt(v) * inv_bias_correction2_sqrt + eps
        params[i] = p - step_size * (m / denom)


@jit
def _update_range(code, params, grads, state, hyper, step, lo, hi):
    """The update of elements ``[lo, hi)``, serially.

    The element kernels get slices and loop from 0: with a loop start LLVM
    cannot prove non-negative, Numba's negative-index wraparound stops
    vectorization (6x slower).
    """
    p = params[lo:hi]
    g = grads[lo:hi]
    if code == SGD:
        _sgd(p, g, state[0, lo:hi], hyper, step)
    elif code == RMSPROP:
        _rmsprop(p, g, state[0, lo:hi], state[1, lo:hi], state[2, lo:hi], hyper)
    elif code == ADAM:
        _adam(p, g, state[0, lo:hi], state[1, lo:hi], hyper, step, False)
    elif code == ADAMW:
        _adam(p, g, state[0, lo:hi], state[1, lo:hi], hyper, step, True)


# ``_update_range`` runs as a callback compiled once per dtype and called by symbol
# (``linked.c_function``): linked into every entry point, its four rules were re-optimized in
# each (NOTES 59).
def _update_leaf(code, params, n, grads, state, state_rows, state_cols, hyper, n_hyper, step, lo, hi):
    _update_range(code, carray(params, n), carray(grads, n), carray(state, (state_rows, state_cols)),
                  carray(hyper, n_hyper), step, lo, hi)


def _link_update(dtype):
    i, p = types.int64, types.CPointer(dtype)
    return linked.c_function("update_range_" + str(dtype), (i, p, i, p, p, i, i, p, i, i, i, i), _update_leaf)


_UPDATE = {dtype: _link_update(dtype) for dtype in (types.float32, types.float64)}


def _update_range_linked(code, params, grads, state, hyper, step, lo, hi):
    """``_update_range`` through its callback (inside jitted code only)."""
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_update_range_linked, inline="always")
def _update_range_linked_overload(code, params, grads, state, hyper, step, lo, hi):
    if not linked.same_dtype(params, grads, state, hyper):
        return None
    call = _UPDATE[params.dtype]
    linked.bind(call)

    def impl(code, params, grads, state, hyper, step, lo, hi):
        call(code, linked.data_address(params), params.size, linked.data_address(grads),
             linked.data_address(state), state.shape[0], state.shape[1], linked.data_address(hyper), hyper.size,
             step, lo, hi)
    return impl


@jit_parallel
def optimizer_step(code, params, grads, state, hyper, step):
    """One optimizer update of every parameter, in place (layouts in the module docstring).

    Args:
        code: ``codes.SGD``, ``RMSPROP``, ``ADAM`` or ``ADAMW`` (anything else: no-op).
        params: (P,) parameters, updated in place.
        grads: (P,) gradients, read only.
        state: (rows, P) optimizer state of the code's row count, updated in place.
        hyper: the code's hyper-parameters, params' dtype.
        step: 1-based count of this step (int64).

    Arrays C-contiguous, of one dtype (chunks run as a C callback: ``_update_leaf``).
    """
    n = params.shape[0]
    if n < PARALLEL_MIN_SIZE:
        _update_range_linked(code, params, grads, state, hyper, step, np.int64(0), n)
        return
    n_chunks = (n + UPDATE_CHUNK - 1) // UPDATE_CHUNK
    bits = fpenv.current()
    for c in prange(n_chunks):
        old = fpenv.adopt(bits)
        lo = np.int64(c) * UPDATE_CHUNK   # prange indices are uint64: one _update_range signature
        hi = min(lo + UPDATE_CHUNK, n)
        _update_range_linked(code, params, grads, state, hyper, step, lo, hi)
        fpenv.leave(old)


@jit
def optimizer_step_call(code, params, grads, state, hyper, step, flush):
    """``optimizer_step`` as an entry point from Python: with subnormals flushed to zero
    when ``flush`` (``fpenv``), as inside ``program.train_step``, so ``opt.step()``
    updates exactly what a fused step would."""
    old = fpenv.enter(flush)
    optimizer_step(code, params, grads, state, hyper, step)
    fpenv.leave(old)


# --------------------------------------------------------------------------- norms and clipping
# (private on purpose: reductions.sum_of_squares may replace _sum_squares later)

@jit(fastmath=set(FASTMATH_REDUCE))
def _sum_squares(x):
    s = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        s += v * v
    return s


@jit(fastmath=set(FASTMATH_REDUCE))
def _sum_abs(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += abs(np.float64(x[i]))
    return s


@jit(fastmath=set(FASTMATH_REDUCE), error_model="numpy")
def _sum_abs_pow(x, p):
    s = 0.0
    for i in range(x.shape[0]):
        s += abs(np.float64(x[i])) ** p
    return s


@jit
def _max_abs(x):
    m = 0.0
    for i in range(x.shape[0]):
        a = abs(np.float64(x[i]))
        if a > m:
            m = a
        elif a != a:
            return a           # NaN wins, as in torch
    return m


@jit
def _chunk_term(x, lo, hi, norm_type):
    """Chunk ``[lo, hi)``'s share of a p-norm: Σ|x|^p, or max|x| for p = inf (slices: see _update_range)."""
    chunk = x[lo:hi]
    if norm_type == 2.0:
        return _sum_squares(chunk)
    if norm_type == np.inf:
        return _max_abs(chunk)
    if norm_type == 1.0:
        return _sum_abs(chunk)
    return _sum_abs_pow(chunk, norm_type)


@jit
def _combine(total, term, is_max):
    """Fold one chunk's term into the running total (sum, or NaN-propagating max)."""
    if not is_max:
        return total + term
    if total != total:
        return total
    if term != term or term > total:
        return term
    return total


@jit
def _finish_norm(total, norm_type):
    if norm_type == np.inf or norm_type == 1.0:
        return total
    if norm_type == 2.0:
        return math.sqrt(total)
    return total ** (1.0 / norm_type)


@jit
def _scale_serial(x, factor):
    for i in range(x.shape[0]):
        x[i] = x[i] * factor


@jit_parallel
def clip_grad_norm(grads, max_norm, norm_type):
    """Scale ``grads`` in place so their ``norm_type``-norm is at most ``max_norm``.

    torch.nn.utils.clip_grad_norm_ semantics: ``coef = max_norm / (total + 1e-6)``
    and grads are multiplied by ``coef`` (cast to their dtype) when ``coef < 1``.
    The norm is accumulated in float64 over fixed chunks of ``NORM_CHUNK``
    whose partials are added in chunk order, so it is the same for any thread
    count (and for the serial and parallel paths).  A NaN norm leaves grads
    untouched (torch would fill them with NaN).  Allocates one float64 per
    chunk on the parallel path (P >= PARALLEL_MIN_SIZE) only.

    Args:
        grads: 1-D gradient buffer.
        max_norm: float64, >= 0.
        norm_type: float64 p > 0, or inf (2.0, 1.0 and inf are the fast paths).

    Returns:
        The total norm before clipping, float64.
    """
    n = grads.shape[0]
    n_chunks = (n + NORM_CHUNK - 1) // NORM_CHUNK
    is_max = norm_type == np.inf
    total = 0.0
    if n < PARALLEL_MIN_SIZE:
        for c in range(n_chunks):
            lo = c * NORM_CHUNK
            total = _combine(total, _chunk_term(grads, lo, min(lo + NORM_CHUNK, n), norm_type), is_max)
    else:
        partials = np.empty(n_chunks, dtype=np.float64)
        bits = fpenv.current()
        for c in prange(n_chunks):
            old = fpenv.adopt(bits)
            lo = np.int64(c) * NORM_CHUNK   # int64 like the serial loop's: one _chunk_term signature
            partials[c] = _chunk_term(grads, lo, min(lo + NORM_CHUNK, n), norm_type)
            fpenv.leave(old)
        for c in range(n_chunks):
            total = _combine(total, partials[c], is_max)
    total = _finish_norm(total, norm_type)

    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        factor = grads.dtype.type(coef)
        if n < PARALLEL_MIN_SIZE:
            _scale_serial(grads, factor)
        else:
            n_scale = (n + UPDATE_CHUNK - 1) // UPDATE_CHUNK
            bits = fpenv.current()
            for c in prange(n_scale):
                old = fpenv.adopt(bits)
                lo = c * UPDATE_CHUNK
                _scale_serial(grads[lo:min(lo + UPDATE_CHUNK, n)], factor)
                fpenv.leave(old)
    return total
