"""BatchNorm1d over a (B, n) batch, with ``torch.nn.BatchNorm1d`` semantics.

Training forward: per feature ``j`` the batch mean ``mu`` and the *biased*
variance ``var`` (two passes: the mean, then the sum of squared deviations
from it, both accumulated in float64 in row order), ``invstd = 1/sqrt(var +
eps)`` (float64, then rounded to the array dtype), ``Xhat = (X - mu) * invstd``
(kept for backward) and ``Y = gamma * Xhat + beta``.  The running statistics
follow torch: ``running = (1 - momentum) * running + momentum * batch_stat``
with the *unbiased* variance ``var * B / (B - 1)`` (the update is computed in
float64 and rounded once).  Training mode needs ``B >= 2`` (torch raises for
``B == 1``; here the running variance would become NaN) -- the layer checks it.

Eval forward: ``Y = gamma * (X - running_mean) / sqrt(running_var + eps) +
beta``, evaluated as ``(X - running_mean) * scale + beta`` with the
per-feature ``scale = gamma / sqrt(running_var + eps)`` computed in float64 and
rounded once.  With ``track_running_stats=False`` torch uses batch statistics
in eval mode too: call ``batchnorm_forward_train`` with ``update_running=False``.

Backward (training mode, batch statistics):
``dbeta = sum_b G``, ``dgamma = sum_b G * Xhat`` (float64 sums) and
``dX = gamma * invstd * (G - dbeta / B - Xhat * dgamma / B)``, which is
``(gamma * invstd / B) * (B * G - dbeta - Xhat * dgamma)`` without forming
``B * G``.  ``out`` may be ``G`` itself.

Conventions: arrays C-contiguous, all of one dtype; ``gamma``/``beta`` of shape
(0,) mean ``affine=False`` (gamma = 1, beta = 0); ``running_mean``/``running_var``
of shape (0,) mean ``track_running_stats=False``.  Float scalars come in the array dtype; the
elementwise math stays in the array dtype, the reductions and the per-feature
constants are float64.

Layout and threads: features are processed in groups of ``FEATURE_GROUP``
columns, and a group's reductions in chunks of ``CHUNK`` columns whose 16
float64 accumulators LLVM keeps in registers across the rows.  Per-feature
accumulators and constants live in small fixed-size *stack* buffers
(``alloca``: no heap, no NRT), so the kernels allocate nothing, and the
constants of the elementwise passes cannot alias an output (which lets LLVM
vectorize those passes without runtime alias checks).  Each feature is
reduced by one thread in row order, so results are bitwise independent of the
thread count.  ``prange`` runs over the groups when
``B * n >= PARALLEL_MIN_ELEMENTS`` and there are at least two groups; a batch
with at most ``FEATURE_GROUP`` features always runs on one thread.

Compiling: the per-group work (``_train_group``, ``_eval_group``, ``_backward_group``,
``_backward_eval``) is reached through ``linked.LazyTable`` callbacks, compiled only by
``link(dtype)``, which ``compiler.assign_slots`` calls for every program with a BatchNorm
op.  So the training step of a model without one carries none of their code (NOTES 59);
the kernels below raise ``RuntimeError`` if called before ``link``.
"""
import math

import numpy as np
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .._jit import jit, jit_parallel, prange
from . import fpenv, linked
from .linked import data_address

PARALLEL_MIN_ELEMENTS = 1 << 15
"""Kernels ``prange`` over feature groups only from this many elements (B * n) on."""

FEATURE_GROUP = 128
"""Features per group: the unit of work of one thread, and the group buffers' length."""

CHUNK = 16
"""Features reduced together, with their accumulators in registers."""

_KW = {"error_model": "numpy"}   # no ZeroDivisionError checks: they block vectorization


def _make_stack_ptr(size):
    @intrinsic
    def stack_ptr(typingctx, like):
        """Pointer to ``size`` uninitialised values of ``like``'s float type on the stack."""
        if not isinstance(like, types.Float):
            return None
        sig = types.CPointer(like)(like)

        def codegen(context, builder, signature, args):
            n = context.get_constant(types.intp, size)
            return cgutils.alloca_once(builder, context.get_value_type(like), size=n)
        return sig, codegen
    return stack_ptr


_group_ptr = _make_stack_ptr(FEATURE_GROUP)
_chunk_ptr = _make_stack_ptr(CHUNK)


@jit(inline="always")
def _group_buffer(like):
    """A (FEATURE_GROUP,) array of ``like``'s type on the caller's stack (valid until it returns)."""
    return carray(_group_ptr(like), FEATURE_GROUP)


@jit(inline="always")
def _chunk_buffer(like):
    """A (CHUNK,) array of ``like``'s type on the caller's stack; constant-indexed after
    unrolling, so LLVM promotes it to registers."""
    return carray(_chunk_ptr(like), CHUNK)


# ------------------------------------------------------------------ reductions

@jit
def _chunk_at(k, w):
    """(start, width) of the chunk that begins at column ``k`` of a ``w``-wide group: a ragged
    last chunk of a group at least CHUNK wide is moved back to end at ``w`` and made full,
    so it runs the register-resident loop (float32, 128 rows, 111 or 127 features: forward
    1.28-1.31x, backward 1.17-1.19x; NOTES 72).  Its columns that the chunk before already covered are summed
    again in the same row order, so they are rewritten with the same bits."""
    if k + CHUNK <= w:
        return k, CHUNK
    if w >= CHUNK:
        return w - CHUNK, CHUNK
    return k, w - k


# Each writes float64 per-feature results for columns [j, j + w) of a group into
# buffers at [k0, k0 + w), w <= CHUNK; every feature is summed in row order.

@jit(**_KW)
def _col_sums(X, j, w, out, k0):
    """out[k0 + k] = sum_i X[i, j + k]."""
    B = X.shape[0]
    if w == CHUNK:
        r = _chunk_buffer(0.0)
        for k in range(CHUNK):
            r[k] = 0.0
        for i in range(B):
            x = X[i, j:j + CHUNK]
            for k in range(CHUNK):
                r[k] += np.float64(x[k])
        for k in range(CHUNK):
            out[k0 + k] = r[k]
    else:
        o = out[k0:k0 + w]
        for k in range(w):
            o[k] = 0.0
        for i in range(B):
            x = X[i, j:j + w]
            for k in range(w):
                o[k] += np.float64(x[k])


@jit(**_KW)
def _col_sqdev(X, j, w, mu, out, k0):
    """out[k0 + k] = sum_i (X[i, j + k] - mu[k0 + k])**2."""
    B = X.shape[0]
    if w == CHUNK:
        m = _chunk_buffer(0.0)
        r = _chunk_buffer(0.0)
        for k in range(CHUNK):
            m[k] = mu[k0 + k]
            r[k] = 0.0
        for i in range(B):
            x = X[i, j:j + CHUNK]
            for k in range(CHUNK):
                d = np.float64(x[k]) - m[k]
                r[k] += d * d
        for k in range(CHUNK):
            out[k0 + k] = r[k]
    else:
        m = mu[k0:k0 + w]
        o = out[k0:k0 + w]
        for k in range(w):
            o[k] = 0.0
        for i in range(B):
            x = X[i, j:j + w]
            for k in range(w):
                d = np.float64(x[k]) - m[k]
                o[k] += d * d


@jit(**_KW)
def _col_sum_dot(G, H, j, w, s, t, k0):
    """s[k0 + k] = sum_i G[i, j + k];  t[k0 + k] = sum_i G[i, j + k] * H[i, j + k]."""
    B = G.shape[0]
    if w == CHUNK:
        rs = _chunk_buffer(0.0)
        rt = _chunk_buffer(0.0)
        for k in range(CHUNK):
            rs[k] = 0.0
            rt[k] = 0.0
        for i in range(B):
            g = G[i, j:j + CHUNK]
            h = H[i, j:j + CHUNK]
            for k in range(CHUNK):
                gk = np.float64(g[k])
                rs[k] += gk
                rt[k] += gk * np.float64(h[k])
        for k in range(CHUNK):
            s[k0 + k] = rs[k]
            t[k0 + k] = rt[k]
    else:
        so = s[k0:k0 + w]
        to = t[k0:k0 + w]
        for k in range(w):
            so[k] = 0.0
            to[k] = 0.0
        for i in range(B):
            g = G[i, j:j + w]
            h = H[i, j:j + w]
            for k in range(w):
                gk = np.float64(g[k])
                so[k] += gk
                to[k] += gk * np.float64(h[k])


# ------------------------------------------------------------ training forward

@jit(**_KW)
def _train_group(X, gamma, beta, eps, momentum, running_mean, running_var, update,
                 mean_out, invstd_out, Xhat, Y, c0, c1):
    """Features [c0, c1) (at most FEATURE_GROUP): statistics, running update, Xhat and Y."""
    B = X.shape[0]
    w = c1 - c0
    fB = np.float64(B)
    mu = _group_buffer(0.0)
    acc = _group_buffer(0.0)
    for start in range(0, w, CHUNK):
        k0, cw = _chunk_at(start, w)
        _col_sums(X, c0 + k0, cw, acc, k0)
        for k in range(k0, k0 + cw):
            mu[k] = acc[k] / fB
        _col_sqdev(X, c0 + k0, cw, mu, acc, k0)
    t = Y.dtype.type
    m_ = _group_buffer(t(0.0))
    s_ = _group_buffer(t(0.0))
    e = np.float64(eps)
    for k in range(w):
        j = c0 + k
        var = acc[k] / fB
        m_[k] = t(mu[k])
        s_[k] = t(1.0 / math.sqrt(var + e))
        mean_out[j] = m_[k]
        invstd_out[j] = s_[k]
        if update:
            m = np.float64(momentum)
            unbiased = var * (fB / (fB - 1.0))
            running_mean[j] = running_mean.dtype.type((1.0 - m) * np.float64(running_mean[j]) + m * mu[k])
            running_var[j] = running_var.dtype.type((1.0 - m) * np.float64(running_var[j]) + m * unbiased)
    if gamma.shape[0] != 0:
        g_ = _group_buffer(t(0.0))
        b_ = _group_buffer(t(0.0))
        for k in range(w):
            g_[k] = gamma[c0 + k]
            b_[k] = beta[c0 + k]
        for i in range(B):
            x = X[i, c0:c1]
            xh = Xhat[i, c0:c1]
            y = Y[i, c0:c1]
            for k in range(w):
                h = (x[k] - m_[k]) * s_[k]
                xh[k] = h
                y[k] = g_[k] * h + b_[k]
    else:
        for i in range(B):
            x = X[i, c0:c1]
            xh = Xhat[i, c0:c1]
            y = Y[i, c0:c1]
            for k in range(w):
                h = (x[k] - m_[k]) * s_[k]
                xh[k] = h
                y[k] = h


@jit_parallel(**_KW)
def batchnorm_forward_train(X, gamma, beta, eps, momentum, running_mean, running_var, update_running,
                            mean_out, invstd_out, Xhat, Y):
    """Training-mode BatchNorm1d forward with batch statistics.

    X (B, n), B >= 2; gamma, beta (n,) or (0,) for affine=False; eps,
    momentum in X's dtype; running_mean, running_var (n,) updated in place
    when ``update_running`` (bool), or (0,) for track_running_stats=False
    (never touched).  Writes mean_out, invstd_out (n,), Xhat = (X - mean) *
    invstd (B, n; kept for backward) and Y = gamma * Xhat + beta (B, n).
    Xhat and Y must be distinct arrays, and distinct from X.
    """
    _check_linked(Y)
    B = X.shape[0]
    n = X.shape[1]
    update = update_running and running_mean.shape[0] != 0
    n_groups = (n + FEATURE_GROUP - 1) // FEATURE_GROUP
    if B * n >= PARALLEL_MIN_ELEMENTS and n_groups > 1:
        bits = fpenv.current()
        for t in prange(n_groups):
            old = fpenv.adopt(bits)
            c0 = np.int64(t) * FEATURE_GROUP
            _train_group_linked(X, gamma, beta, eps, momentum, running_mean, running_var, update,
                                mean_out, invstd_out, Xhat, Y, c0, min(c0 + FEATURE_GROUP, n))
            fpenv.leave(old)
    else:
        for t in range(n_groups):
            c0 = np.int64(t) * FEATURE_GROUP
            _train_group_linked(X, gamma, beta, eps, momentum, running_mean, running_var, update,
                                mean_out, invstd_out, Xhat, Y, c0, min(c0 + FEATURE_GROUP, n))


# ---------------------------------------------------------------- eval forward

@jit(**_KW)
def _eval_group(X, gamma, beta, eps, running_mean, running_var, Y, c0, c1):
    B = X.shape[0]
    w = c1 - c0
    t = Y.dtype.type
    shift = _group_buffer(t(0.0))
    scale = _group_buffer(t(0.0))
    offset = _group_buffer(t(0.0))
    e = np.float64(eps)
    affine = gamma.shape[0] != 0
    for k in range(w):
        j = c0 + k
        s = 1.0 / math.sqrt(np.float64(running_var[j]) + e)
        shift[k] = t(running_mean[j])
        if affine:
            scale[k] = t(np.float64(gamma[j]) * s)
            offset[k] = t(beta[j])
        else:
            scale[k] = t(s)
            offset[k] = t(0.0)
    for i in range(B):
        x = X[i, c0:c1]
        y = Y[i, c0:c1]
        for k in range(w):
            y[k] = (x[k] - shift[k]) * scale[k] + offset[k]


@jit_parallel(**_KW)
def batchnorm_forward_eval(X, gamma, beta, eps, running_mean, running_var, Y):
    """Eval-mode forward: Y = gamma * (X - running_mean) / sqrt(running_var + eps) + beta.

    gamma, beta (n,) or (0,) for affine=False; eps in X's dtype; Y may be X.
    """
    _check_linked(Y)
    B = X.shape[0]
    n = X.shape[1]
    n_groups = (n + FEATURE_GROUP - 1) // FEATURE_GROUP
    if B * n >= PARALLEL_MIN_ELEMENTS and n_groups > 1:
        bits = fpenv.current()
        for t in prange(n_groups):
            old = fpenv.adopt(bits)
            c0 = np.int64(t) * FEATURE_GROUP
            _eval_group_linked(X, gamma, beta, eps, running_mean, running_var, Y, c0, min(c0 + FEATURE_GROUP, n))
            fpenv.leave(old)
    else:
        for t in range(n_groups):
            c0 = np.int64(t) * FEATURE_GROUP
            _eval_group_linked(X, gamma, beta, eps, running_mean, running_var, Y, c0, min(c0 + FEATURE_GROUP, n))


# -------------------------------------------------------------------- backward

@jit(**_KW)
def _backward_group(G, Xhat, gamma, invstd, dgamma, dbeta, out, c0, c1):
    B = G.shape[0]
    w = c1 - c0
    fB = np.float64(B)
    s = _group_buffer(0.0)
    d = _group_buffer(0.0)
    for start in range(0, w, CHUNK):
        k0, cw = _chunk_at(start, w)
        _col_sum_dot(G, Xhat, c0 + k0, cw, s, d, k0)
    t = out.dtype.type
    scale = _group_buffer(t(0.0))
    mean_g = _group_buffer(t(0.0))
    mean_gh = _group_buffer(t(0.0))
    affine = gamma.shape[0] != 0
    for k in range(w):
        j = c0 + k
        a = np.float64(invstd[j])
        if affine:
            a *= np.float64(gamma[j])
        scale[k] = t(a)
        mean_g[k] = t(s[k] / fB)
        mean_gh[k] = t(d[k] / fB)
        if dgamma.shape[0] != 0:
            dgamma[j] = dgamma.dtype.type(d[k])
        if dbeta.shape[0] != 0:
            dbeta[j] = dbeta.dtype.type(s[k])
    # every sum of the group is taken before out (which may be G) is written
    for i in range(B):
        gr = G[i, c0:c1]
        hr = Xhat[i, c0:c1]
        o = out[i, c0:c1]
        for k in range(w):
            o[k] = scale[k] * (gr[k] - mean_g[k] - hr[k] * mean_gh[k])


@jit_parallel(**_KW)
def batchnorm_backward(G, Xhat, gamma, invstd, dgamma, dbeta, out):
    """Training-mode BatchNorm1d backward.

    G = dL/dY (B, n); Xhat and invstd from ``batchnorm_forward_train``; gamma
    (n,) or (0,).  dgamma = sum_b G * Xhat and dbeta = sum_b G are overwritten
    (n,), or skipped when of shape (0,) (affine=False).  out = dL/dX (B, n);
    ``out`` may be ``G``.
    """
    _check_linked(out)
    B = G.shape[0]
    n = G.shape[1]
    n_groups = (n + FEATURE_GROUP - 1) // FEATURE_GROUP
    if B * n >= PARALLEL_MIN_ELEMENTS and n_groups > 1:
        bits = fpenv.current()
        for t in prange(n_groups):
            old = fpenv.adopt(bits)
            c0 = np.int64(t) * FEATURE_GROUP
            _backward_group_linked(G, Xhat, gamma, invstd, dgamma, dbeta, out, c0, min(c0 + FEATURE_GROUP, n))
            fpenv.leave(old)
    else:
        for t in range(n_groups):
            c0 = np.int64(t) * FEATURE_GROUP
            _backward_group_linked(G, Xhat, gamma, invstd, dgamma, dbeta, out, c0, min(c0 + FEATURE_GROUP, n))


@jit(**_KW)
def batchnorm_backward_eval(G, X, gamma, eps, running_mean, running_var, dgamma, dbeta, out):
    """Eval-mode backward (running statistics are constants): Y = γ·(X − rm)/√(rv + ε) + β.

    dβ = Σ_b G, dγ = Σ_b G·(X − rm)/√(rv + ε), out = G·γ/√(rv + ε).  Column sums in
    float64 in row order (thread-count independent); out may alias G.  Serial:
    backward through frozen statistics is a fine-tuning path, not the hot one.
    """
    _check_linked(out)
    _backward_eval_linked(G, X, gamma, eps, running_mean, running_var, dgamma, dbeta, out)


@jit(**_KW)
def _backward_eval(G, X, gamma, eps, running_mean, running_var, dgamma, dbeta, out):
    B = X.shape[0]
    n = X.shape[1]
    for j in range(n):
        invstd = 1.0 / np.sqrt(np.float64(running_var[j]) + np.float64(eps))
        g = np.float64(gamma[j]) if gamma.shape[0] > 0 else 1.0
        sum_g = 0.0
        sum_gx = 0.0
        for i in range(B):
            gi = np.float64(G[i, j])
            sum_g += gi
            sum_gx += gi * (np.float64(X[i, j]) - np.float64(running_mean[j])) * invstd
        scale = X.dtype.type(g * invstd)
        for i in range(B):
            out[i, j] = G[i, j] * scale
        if dgamma.shape[0] > 0:
            dgamma[j] = sum_gx
            dbeta[j] = sum_g


# ------------------------------------------------------------- linked leaves
# Each leaf runs as a C callback of ``_LINKED`` (``linked.DtypeTables``); arrays cross as
# address and shape, float scalars as float64 (the leaves widen them to float64 first anyway).

def _train_leaf(x, rows, n, gamma, beta, n_affine, eps, momentum, rm, rv, n_running, update,
                mean, invstd, xhat, y, c0, c1):
    _train_group(carray(x, (rows, n)), carray(gamma, n_affine), carray(beta, n_affine), eps, momentum,
                 carray(rm, n_running), carray(rv, n_running), update != 0, carray(mean, n), carray(invstd, n),
                 carray(xhat, (rows, n)), carray(y, (rows, n)), c0, c1)


def _eval_leaf(x, rows, n, gamma, beta, n_affine, eps, rm, rv, y, c0, c1):
    _eval_group(carray(x, (rows, n)), carray(gamma, n_affine), carray(beta, n_affine), eps, carray(rm, n),
                carray(rv, n), carray(y, (rows, n)), c0, c1)


def _backward_leaf(g, rows, n, xhat, gamma, n_affine, invstd, dgamma, n_dgamma, dbeta, n_dbeta, out, c0, c1):
    _backward_group(carray(g, (rows, n)), carray(xhat, (rows, n)), carray(gamma, n_affine), carray(invstd, n),
                    carray(dgamma, n_dgamma), carray(dbeta, n_dbeta), carray(out, (rows, n)), c0, c1)


def _backward_eval_leaf(g, rows, n, x, gamma, n_affine, eps, rm, rv, dgamma, dbeta, n_dgamma, out):
    _backward_eval(carray(g, (rows, n)), carray(x, (rows, n)), carray(gamma, n_affine), eps, carray(rm, n),
                   carray(rv, n), carray(dgamma, n_dgamma), carray(dbeta, n_dgamma), carray(out, (rows, n)))


def _leaves(dtype):
    i, f, p = types.int64, types.float64, types.CPointer(dtype)
    return (("train_group", (p, i, i, p, p, i, f, f, p, p, i, i, p, p, p, p, i, i), _train_leaf),
            ("eval_group", (p, i, i, p, p, i, f, p, p, p, i, i), _eval_leaf),
            ("backward_group", (p, i, i, p, p, i, p, p, i, p, i, p, i, i), _backward_leaf),
            ("backward_eval", (p, i, i, p, p, i, f, p, p, p, p, i, p), _backward_eval_leaf))


_LINKED = linked.DtypeTables("batchnorm", _leaves, "BatchNorm's kernels are not linked for this dtype: "
                             "call fastbp.kernels.norm.link(dtype) first")
_check_linked = _LINKED.check
link = _LINKED.link


def _train_group_linked(X, gamma, beta, eps, momentum, running_mean, running_var, update, mean_out,
                        invstd_out, Xhat, Y, c0, c1):
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_train_group_linked, inline="always")
def _train_group_linked_overload(X, gamma, beta, eps, momentum, running_mean, running_var, update, mean_out,
                                 invstd_out, Xhat, Y, c0, c1):
    if not linked.same_dtype(X, gamma, beta, running_mean, running_var, mean_out, invstd_out, Xhat, Y):
        return None
    call = _LINKED.calls(X.dtype)[0]

    def impl(X, gamma, beta, eps, momentum, running_mean, running_var, update, mean_out, invstd_out, Xhat, Y,
             c0, c1):
        call(data_address(X), X.shape[0], X.shape[1], data_address(gamma), data_address(beta), gamma.size,
             np.float64(eps), np.float64(momentum), data_address(running_mean), data_address(running_var),
             running_mean.size, np.int64(update), data_address(mean_out), data_address(invstd_out),
             data_address(Xhat), data_address(Y), c0, c1)
    return impl


def _eval_group_linked(X, gamma, beta, eps, running_mean, running_var, Y, c0, c1):
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_eval_group_linked, inline="always")
def _eval_group_linked_overload(X, gamma, beta, eps, running_mean, running_var, Y, c0, c1):
    if not linked.same_dtype(X, gamma, beta, running_mean, running_var, Y):
        return None
    call = _LINKED.calls(X.dtype)[1]

    def impl(X, gamma, beta, eps, running_mean, running_var, Y, c0, c1):
        call(data_address(X), X.shape[0], X.shape[1], data_address(gamma), data_address(beta), gamma.size,
             np.float64(eps), data_address(running_mean), data_address(running_var), data_address(Y), c0, c1)
    return impl


def _backward_group_linked(G, Xhat, gamma, invstd, dgamma, dbeta, out, c0, c1):
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_backward_group_linked, inline="always")
def _backward_group_linked_overload(G, Xhat, gamma, invstd, dgamma, dbeta, out, c0, c1):
    if not linked.same_dtype(G, Xhat, gamma, invstd, dgamma, dbeta, out):
        return None
    call = _LINKED.calls(G.dtype)[2]

    def impl(G, Xhat, gamma, invstd, dgamma, dbeta, out, c0, c1):
        call(data_address(G), G.shape[0], G.shape[1], data_address(Xhat), data_address(gamma), gamma.size,
             data_address(invstd), data_address(dgamma), dgamma.size, data_address(dbeta), dbeta.size,
             data_address(out), c0, c1)
    return impl


def _backward_eval_linked(G, X, gamma, eps, running_mean, running_var, dgamma, dbeta, out):
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_backward_eval_linked, inline="always")
def _backward_eval_linked_overload(G, X, gamma, eps, running_mean, running_var, dgamma, dbeta, out):
    if not linked.same_dtype(G, X, gamma, running_mean, running_var, dgamma, dbeta, out):
        return None
    call = _LINKED.calls(G.dtype)[3]

    def impl(G, X, gamma, eps, running_mean, running_var, dgamma, dbeta, out):
        call(data_address(G), G.shape[0], G.shape[1], data_address(X), data_address(gamma), gamma.size,
             np.float64(eps), data_address(running_mean), data_address(running_var), data_address(dgamma),
             data_address(dbeta), dgamma.size, data_address(out))
    return impl
