"""Runs a model's layer program: forward, backward, a whole training step, an epoch.

A layer program is an int64 table, one row per op (columns ``C_*``), and a
float table of per-op constants (columns ``K_*``).  Every activation lives in
one flat workspace ``ws``: a slot at per-sample offset ``s`` holds ``cap``
rows of ``width`` values starting at ``s * cap``, so a batch of ``rows <= cap``
samples uses the first rows of each slot.  ``layout`` names the special slots
(``L_*``).  ``state`` holds model state that is not trained (BatchNorm's running
statistics and its last batch statistics).

With the program, the parameter arena, the workspace and the batch, a training
step is one compiled call: no Python between layers, no allocation.

Flags and counters passed between these functions are wrapped (``np.bool_(True)``,
``np.int64(0)``): Numba types a bare constant as a literal and compiles the callee
once more for each literal value, which cost the test suite a minute of compiling.
"""
import numpy as np

from numba.extending import overload

from .._jit import jit, jit_parallel, prange
from . import activations, atomics, dropout, fpenv, gemm, losses, norm, optim, reductions
from .views import borrow, c_view
from .codes import BCE_WITH_LOGITS, CROSS_ENTROPY, IDENTITY, RELU

# op codes
OP_DENSE = 0       # Z = X Wᵀ + b,             A = σ(Z)
OP_ACT = 1         # A = σ(X)                  (Z is X itself)
OP_BATCHNORM = 2   # H = (X − μ)/σ, Z = γH + β, A = σ(Z)
OP_DROPOUT = 3     # A = X ⊙ mask / (1 − p)    (mask from seed, step, op)

# program columns: op, activation, widths, parameter offsets, workspace slots, state offset, flags
C_OP, C_ACT, C_IN, C_OUT, C_W, C_B, C_X, C_Z, C_A, C_H, C_S, C_FLAGS = range(12)
N_COLS = 12
FLAG_TRACK_RUNNING = 1

# constant columns
K_ALPHA, K_EPS, K_MOMENTUM, K_P = range(4)
N_CONSTS = 4

# layout entries
L_INPUT, L_OUTPUT, L_GRAD0, L_GRAD1, L_WIDTH = range(5)
N_LAYOUT = 5

# train_step's status: its input checks run in the compiled call (a W3 step spent ~3 µs of
# ~58 dispatching them from Python, NOTES section 41)
STEP_OK, STEP_BAD_LABELS, STEP_NONFINITE_INPUT = 0, 1, 2

# dropout streams: one per (step, op)
MAX_OPS = 1 << 12


@jit
def slab(ws, slot, cap, rows, width):
    """Rows ``[0, rows)`` of a workspace slot as a C-contiguous (rows, width) array."""
    start = slot * cap
    return c_view(ws[start:start + rows * width], (rows, width))


INPUT_SLOT = 0      # the compiler places the program's input at per-sample offset 0 (``layout[L_INPUT]``)


@jit(inline="always")
def _rows_of(ws, slot, cap, rows, width, X0):
    """``slab`` of a slot, or the input rows ``X0`` for the input slot.  No op writes the
    input slot, so a training step reads its batch where the caller holds it instead of
    staging a copy (W1: ~30 µs of a ~900 µs step, NOTES section 69)."""
    if slot == INPUT_SLOT:
        return c_view(X0, (rows, width))       # the shape and strides computed as slab's are
    return slab(ws, slot, cap, rows, width)


@jit
def _input_rows(prog, ws, cap, rows):
    """The input slot's first ``rows`` rows (where a batch is staged; a program has an op)."""
    return slab(ws, INPUT_SLOT, cap, rows, prog[0, C_IN])


def _chunk_rows(X, start, rows, prog, ws, cap):
    """Rows ``[start, start + rows)`` of X as a forward pass's input rows: X's own rows where
    X is writable (``predict`` reads them in place: W1 at 64-256-row chunks 7-12% faster,
    NOTES section 69), else a copy staged in the input slot (a read-only X, which may be a
    whole data set, is not copied at once, and ``_rows_of`` needs writable rows).  Compiled
    callers get the overload below; this body serves plain Python."""
    return X[start:start + rows]


@overload(_chunk_rows)
def _chunk_rows_impl(X, start, rows, prog, ws, cap):
    if X.mutable:
        return lambda X, start, rows, prog, ws, cap: X[start:start + rows]

    def staged(X, start, rows, prog, ws, cap):
        X0 = _input_rows(prog, ws, cap, rows)
        _copy_rows(X[start:start + rows], X0)
        return X0
    return staged


@jit
def _copy_rows(src, dst):
    """``dst[...] = src`` for two arrays of one (rows, width) shape, as a loop: Numba's
    broadcasting assignment compiles its shape-error message (str and repr of integers),
    ~2.5 s of every cold compile for a shape check the callers make true (NOTES 38)."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] = src[i, j]


@jit
def _vec(buf, offset, n):
    """``buf[offset:offset+n]``, or an empty view when ``offset < 0``."""
    if offset < 0:
        return buf[0:0]
    return buf[offset:offset + n]


@jit
def _bn_state(prog, state, i, n):
    """(running_mean, running_var, batch_mean, batch_invstd) of BatchNorm op ``i``."""
    s = prog[i, C_S]
    if prog[i, C_FLAGS] & FLAG_TRACK_RUNNING:
        rm = state[s:s + n]
        rv = state[s + n:s + 2 * n]
    else:
        rm = state[0:0]
        rv = state[0:0]
    return rm, rv, state[s + 2 * n:s + 3 * n], state[s + 3 * n:s + 4 * n]


# ``forward_ops``, ``backward_ops`` and ``checked_step`` are inlined into their callers at
# Numba IR level (no library of their own to re-optimize the GEMM core: NOTES section 56);
# ``forward_from`` and ``backward_from`` are not: typing them inlined cost more than it saved.
@jit(inline="always")
def forward_ops(prog, consts, params, state, ws, cap, rows, work, training, update_running, seed, step,
                first, stop, X0):
    """Run ops ``[first, stop)`` on ``rows`` samples whose input is already in place (the
    program's input is ``X0``, see ``_rows_of``).

    ``training`` selects batch statistics and dropout; ``update_running`` lets
    BatchNorm update its running statistics (off when recomputing a segment).
    """
    params, state, ws, work = borrow(params), borrow(state), borrow(ws), borrow(work)
    for i in range(first, stop):
        op = prog[i, C_OP]
        n_in = prog[i, C_IN]
        n_out = prog[i, C_OUT]
        X = _rows_of(ws, prog[i, C_X], cap, rows, n_in, X0)
        Z = _rows_of(ws, prog[i, C_Z], cap, rows, n_out, X0)     # OP_ACT and dropout: Z is X
        A = slab(ws, prog[i, C_A], cap, rows, n_out)
        bias = params[0:0]
        if op == OP_DENSE:
            # the bias and activation run as the product's epilogue (NOTES section 25)
            w = prog[i, C_W]
            gemm.matmul_nt_bias_act(X, c_view(params[w:w + n_out * n_in], (n_out, n_in)),
                                    _vec(params, prog[i, C_B], n_out), prog[i, C_ACT], consts[i, K_ALPHA],
                                    work, Z, A)
            continue
        elif op == OP_BATCHNORM:
            gamma = _vec(params, prog[i, C_W], n_out)
            beta = _vec(params, prog[i, C_B], n_out)
            rm, rv, mean, invstd = _bn_state(prog, state, i, n_out)
            eps = consts[i, K_EPS]
            if training or rm.shape[0] == 0:
                H = slab(ws, prog[i, C_H], cap, rows, n_out)
                norm.batchnorm_forward_train(X, gamma, beta, eps, consts[i, K_MOMENTUM], rm, rv,
                                             training and update_running, mean, invstd, H, Z)
            else:
                norm.batchnorm_forward_eval(X, gamma, beta, eps, rm, rv, Z)
        elif op == OP_DROPOUT:
            if training:
                dropout.dropout_forward(X, consts[i, K_P], seed, step * MAX_OPS + i, A)
            else:
                _copy_rows(X, A)
            continue
        activations.bias_act_forward(Z, bias, prog[i, C_ACT], consts[i, K_ALPHA], A)


@jit(inline="always")
def backward_ops(prog, consts, params, grads, state, ws, cap, rows, work, training, need_dx, seed, step,
                 first, stop, g_cur, g_next, X0):
    """Backpropagate through ops ``[first, stop)`` in reverse; ∂L/∂(output of op stop−1) is in slot ``g_cur``.

    δ = g ⊙ σ'(z); ∂W = δᵀ a; ∂b = Σ δ; g ← δ W.  Overwrites the gradients of
    these ops; returns the (current, spare) gradient slots.  The input gradient
    of op 0 is computed only when ``need_dx``.  ``training`` must be the mode of
    the forward pass: eval mode backpropagates through BatchNorm's running
    statistics (constants) and through dropout as the identity.  The program's input is ``X0``.
    """
    params, grads, state, ws, work = borrow(params), borrow(grads), borrow(state), borrow(ws), borrow(work)
    for i in range(stop - 1, first - 1, -1):
        op = prog[i, C_OP]
        n_in = prog[i, C_IN]
        n_out = prog[i, C_OUT]
        act = prog[i, C_ACT]
        G = slab(ws, g_cur, cap, rows, n_out)
        b = prog[i, C_B]
        fused = op == OP_DENSE and act == RELU and b >= 0
        if fused:
            # δ and the bias gradient in one pass over G (NOTES section 43)
            activations.relu_backward_bias_grad(G, slab(ws, prog[i, C_Z], cap, rows, n_out), grads[b:b + n_out])
        elif act != IDENTITY:
            Z = _rows_of(ws, prog[i, C_Z], cap, rows, n_out, X0)
            A = slab(ws, prog[i, C_A], cap, rows, n_out)
            activations.act_backward(G, Z, A, act, consts[i, K_ALPHA], G)
        if op == OP_DENSE:
            w = prog[i, C_W]
            if b >= 0 and not fused:
                reductions.column_sums(G, grads[b:b + n_out])
            X = _rows_of(ws, prog[i, C_X], cap, rows, n_in, X0)
            dW = c_view(grads[w:w + n_out * n_in], (n_out, n_in))
            if i > 0 or need_dx:
                W = c_view(params[w:w + n_out * n_in], (n_out, n_in))
                gemm.backward_grads(G, X, W, work, dW, slab(ws, g_next, cap, rows, n_in))
                g_cur, g_next = g_next, g_cur
            else:
                gemm.weight_grad(G, X, work, dW)
        elif op == OP_BATCHNORM:
            rm, rv, mean, invstd = _bn_state(prog, state, i, n_out)
            gamma = _vec(params, prog[i, C_W], n_out)
            dgamma = _vec(grads, prog[i, C_W], n_out)
            dbeta = _vec(grads, prog[i, C_B], n_out)
            if training or rm.shape[0] == 0:
                H = slab(ws, prog[i, C_H], cap, rows, n_out)
                norm.batchnorm_backward(G, H, gamma, invstd, dgamma, dbeta, G)
            else:
                X = _rows_of(ws, prog[i, C_X], cap, rows, n_in, X0)
                norm.batchnorm_backward_eval(G, X, gamma, consts[i, K_EPS], rm, rv, dgamma, dbeta, G)
        elif op == OP_DROPOUT and training:
            dropout.dropout_backward(G, consts[i, K_P], seed, step * MAX_OPS + i, G)
    return g_cur, g_next


@jit
def forward(prog, consts, params, state, ws, cap, rows, work, training, seed, step, segments, flush):
    """``forward_from`` of the batch staged in the input slot (``model.forward``)."""
    forward_from(prog, consts, params, state, ws, cap, rows, work, training, seed, step, segments, flush,
                 _input_rows(prog, ws, cap, rows))


@jit
def forward_from(prog, consts, params, state, ws, cap, rows, work, training, seed, step, segments, flush, X0):
    """Run the whole program on the input rows ``X0``, segment after segment (``segments``
    holds the op boundaries).

    With checkpointing, segments share scratch slots, so afterwards only segment
    boundaries (and the last segment) are still in the workspace.  ``flush``:
    subnormals are flushed to zero during the call (``fpenv``; so in every entry point).
    A few rows through dense layers only run in one parallel region (``_forward_region``,
    the same bits).
    """
    old = fpenv.enter(flush)
    if _region_fits(prog, rows, work):
        # a few rows through dense layers only (either mode, any segments): one parallel region
        _forward_region(prog, consts, params, ws, cap, rows, _counters(work, prog, rows), X0)
    else:
        for k in range(segments.shape[0] - 1):
            forward_ops(prog, consts, params, state, ws, cap, rows, work, training, np.bool_(True), seed, step,
                        segments[k], segments[k + 1], X0)
    fpenv.leave(old)


@jit
def backward(prog, consts, params, grads, state, ws, cap, rows, layout, work, training, need_dx, seed, step,
             segments, flush):
    """``backward_from`` of a forward pass of the batch staged in the input slot."""
    return backward_from(prog, consts, params, grads, state, ws, cap, rows, layout, work, training, need_dx, seed,
                         step, segments, flush, _input_rows(prog, ws, cap, rows))


@jit
def backward_from(prog, consts, params, grads, state, ws, cap, rows, layout, work, training, need_dx, seed, step,
                  segments, flush, X0):
    """Backpropagate ∂L/∂output (in slot ``layout[L_GRAD0]``) through every op of a forward
    pass of the input rows ``X0``.

    Every segment but the last is first recomputed from its stored input, with
    the same dropout masks and batch statistics and without updating running
    statistics, so the gradients are bitwise those of an unsegmented run.
    Overwrites every gradient; returns the slot that holds ∂L/∂input (valid
    when ``need_dx``).
    """
    old = fpenv.enter(flush)
    g_cur = layout[L_GRAD0]
    g_next = layout[L_GRAD1]
    last = segments.shape[0] - 2
    for k in range(last, -1, -1):
        if k < last:
            forward_ops(prog, consts, params, state, ws, cap, rows, work, training, np.bool_(False), seed, step,
                        segments[k], segments[k + 1], X0)
        g_cur, g_next = backward_ops(prog, consts, params, grads, state, ws, cap, rows, work, training, need_dx,
                                     seed, step, segments[k], segments[k + 1], g_cur, g_next, X0)
    fpenv.leave(old)
    return g_cur


@jit
def train_step(prog, consts, params, grads, state, ws, cap, layout, work, segments, seed, step,
               loss_code, loss_param, X, T, labels, opt_code, opt_state, hyper, opt_step, flush):
    """Forward, loss, backward and optimizer update of the batch ``X`` (C-contiguous, at most
    ``cap`` rows); returns ``(mean loss, STEP_OK)`` (no metric: ``train_epoch`` computes
    fit's, and ``model.train_step`` returns the loss only).

    The inputs are checked first, with nothing written when they fail: labels outside
    ``[0, n_out)`` return ``STEP_BAD_LABELS``, a NaN or Inf in ``X`` ``STEP_NONFINITE_INPUT``.
    X is read in place, not staged in the workspace (``_rows_of``), so it must not change
    during the call, and it must be writable: ``_rows_of`` gives X and the workspace's slots
    one array type, and a read-only X would make it read-only where ops write their slots.
    """
    if labels.shape[0] > 0:
        lo, hi = reductions.int_range(labels)
        if lo < 0 or hi >= layout[L_WIDTH]:
            return np.nan, STEP_BAD_LABELS
    if not reductions.all_finite(c_view(X, (X.size,))):
        return np.nan, STEP_NONFINITE_INPUT
    loss, _ = checked_step(prog, consts, params, grads, state, ws, cap, X.shape[0], layout, work, segments,
                           seed, step, loss_code, loss_param, T, labels, opt_code, opt_state, hyper, opt_step,
                           flush, X, False)
    return loss, STEP_OK


@jit(inline="always")
def checked_step(prog, consts, params, grads, state, ws, cap, rows, layout, work, segments, seed, step,
                 loss_code, loss_param, T, labels, opt_code, opt_state, hyper, opt_step, flush, X0, with_metric):
    """``train_step`` of the ``rows`` input rows ``X0`` (checked, as are the targets);
    returns the mean loss and, ``with_metric`` (a constant at each call), the metric sum, else 0."""
    params, grads, ws, work, opt_state = borrow(params), borrow(grads), borrow(ws), borrow(work), borrow(opt_state)
    X0 = borrow(X0)
    old = fpenv.enter(flush)
    forward_from(prog, consts, params, state, ws, cap, rows, work, np.bool_(True), seed, step, segments, flush, X0)
    n_out = layout[L_WIDTH]
    P = slab(ws, layout[L_OUTPUT], cap, rows, n_out)
    dP = slab(ws, layout[L_GRAD0], cap, rows, n_out)
    # the GEMM's work buffer is free between the passes: the loss's float64 scratch lives there
    loss = losses.loss_value_and_grad(loss_code, P, T, labels, loss_param, dP,
                                      float64_scratch(work, losses.scratch_size(rows, n_out)))
    metric = metric_sum(loss_code, P, T, labels) if with_metric else 0.0
    backward_from(prog, consts, params, grads, state, ws, cap, rows, layout, work, np.bool_(True), np.bool_(False),
                  seed, step, segments, flush, X0)
    if gemm._num_threads() == 2 and params.shape[0] >= optim.PARALLEL_MIN_SIZE and \
            _op_params(prog) == params.shape[0]:
        _owned_update(prog, opt_code, params, grads, opt_state, hyper, opt_step)
    else:
        optim.optimizer_step(opt_code, params, grads, opt_state, hyper, opt_step)
    fpenv.leave(old)
    return loss, metric


@jit
def _weight_row(prog, i):
    """Parameters per output of op i's weight: a dense layer's inputs, BatchNorm's γ one."""
    return prog[i, C_IN] if prog[i, C_OP] == OP_DENSE else 1


@jit
def _op_params(prog):
    """How many parameters the ops hold: a dense layer's weight and bias, BatchNorm's γ and β."""
    total = 0
    for i in range(prog.shape[0]):
        if prog[i, C_W] >= 0:
            total += prog[i, C_OUT] * _weight_row(prog, i)
        if prog[i, C_B] >= 0:
            total += prog[i, C_OUT]
    return total


@jit_parallel
def _owned_update(prog, code, params, grads, state, hyper, step):
    """``optim.optimizer_step`` at two threads, thread t updating in every op the rows of W
    and entries of b, γ and β whose outputs it owns in the forward halves (``gemm._split_at``):
    the W it writes is the W it reads next, and the dW rows are those it wrote where the
    backward products ran in owned halves (``gemm.weight_grad``, ``gemm._grads_owned``;
    the side-by-side pair writes a layer's whole dW on thread 0).  NOTES section 67.  The
    ops must hold every parameter (``_op_params``).  An element-wise rule, so the same
    bits as any other split."""
    bits = fpenv.current()
    for t in prange(2):
        old = fpenv.adopt(bits)
        _owned_rows(prog, code, params, grads, state, hyper, step, t)
        fpenv.leave(old)


@jit
def _owned_rows(prog, code, params, grads, state, hyper, step, t):
    """Thread t's part of ``_owned_update``: in every op, the rows of W and the entries of b,
    γ and β whose outputs its forward halves own (``gemm._split_at``)."""
    for i in range(prog.shape[0]):
        n_out = prog[i, C_OUT]
        n0 = gemm._split_at(n_out)
        r0, r1 = (0, n0) if t == 0 else (n0, n_out)
        for at, size in ((prog[i, C_W], _weight_row(prog, i)), (prog[i, C_B], 1)):
            if at >= 0 and r1 > r0:
                optim._update_range_linked(code, params, grads, state, hyper, step, np.int64(at + r0 * size),
                                           np.int64(at + r1 * size))


@jit
def float64_scratch(work, n):
    """The first ``n`` float64s of ``work`` (float32 or float64), or fewer if it is shorter."""
    return work[:n * (8 // work.itemsize)].view(np.float64)


@jit
def metric_sum(loss_code, P, T, labels):
    """Sum over the batch of fit's metric: correct predictions (classification) or |error| (regression)."""
    total = 0.0
    if loss_code == CROSS_ENTROPY:
        for i in range(P.shape[0]):
            best = 0
            for j in range(1, P.shape[1]):
                if P[i, j] > P[i, best]:
                    best = j
            total += best == labels[i]
    elif loss_code == BCE_WITH_LOGITS:
        for i in range(P.shape[0]):
            for j in range(P.shape[1]):
                total += (P[i, j] > 0) == (T[i, j] > 0.5)
    else:
        for i in range(P.shape[0]):
            for j in range(P.shape[1]):
                total += abs(P[i, j] - T[i, j])
    return total


@jit
def layer_grad_norms(prog, grads, out):
    """out[i] = ‖gradient of op i's parameters‖₂ (weights and bias together; 0 for ops without)."""
    for i in range(prog.shape[0]):
        n_in = prog[i, C_IN]
        n_out = prog[i, C_OUT]
        w = prog[i, C_W]
        b = prog[i, C_B]
        total = 0.0
        if w >= 0:
            size = n_out * n_in if prog[i, C_OP] == OP_DENSE else n_out
            total += reductions.sum_of_squares(grads[w:w + size])
        if b >= 0:
            total += reductions.sum_of_squares(grads[b:b + n_out])
        out[i] = total ** 0.5


@jit
def gather_rows(src, order, start, stop, out):
    """out[i] = src[order[start + i]] for the rows of one batch."""
    for i in range(stop - start):
        r = order[start + i]
        for j in range(src.shape[1]):
            out[i, j] = src[r, j]


@jit
def train_epoch(prog, consts, params, grads, state, ws, cap, layout, work, segments, seed, step0,
                X, T, labels, order, batch_size, loss_code, loss_param,
                opt_code, opt_state, hyper, opt_step0, T_batch, labels_batch, batch_losses, batch_metrics,
                grad_norms, flush):
    """Every batch of one epoch (``order`` is the shuffled row index).

    Each batch's mean loss goes to ``batch_losses`` and its metric sum (see
    ``metric_sum``, computed before the update) to ``batch_metrics``; when
    ``grad_norms`` has a row per batch, each op's gradient norm goes there.

    Batch ``k`` runs as model step ``step0 + k`` and optimizer step ``opt_step0 + k + 1``.
    """
    old = fpenv.enter(flush)
    n = order.shape[0]
    for k in range(batch_losses.shape[0]):
        start = k * batch_size
        stop = min(n, start + batch_size)
        rows = stop - start
        X0 = _input_rows(prog, ws, cap, rows)
        gather_rows(X, order, start, stop, X0)
        if labels.shape[0] > 0:
            for i in range(rows):
                labels_batch[i] = labels[order[start + i]]
            Tb = T_batch[:0]
        else:
            gather_rows(T, order, start, stop, T_batch)
            Tb = T_batch[:rows]
        batch_losses[k], batch_metrics[k] = checked_step(prog, consts, params, grads, state, ws, cap, rows, layout,
                                                         work, segments, seed, step0 + k, loss_code, loss_param, Tb,
                                                         labels_batch[:rows], opt_code, opt_state, hyper,
                                                         opt_step0 + k + 1, flush, X0, True)
        if grad_norms.shape[0] > 0:
            layer_grad_norms(prog, grads, grad_norms[k])
    fpenv.leave(old)


@jit
def predict(prog, consts, params, state, ws, cap, layout, work, segments, X, out, flush):
    """Eval-mode forward pass over all rows of X in chunks of ``cap``; outputs into ``out``.

    Returns False, with nothing computed and ``out`` untouched, when X holds a NaN or
    Inf: the input check runs in this call, not in a dispatch of its own (batch-1
    latency, NOTES section 37).  X must be C-contiguous; a writable X is read in place
    (``_chunk_rows``), and a chunk's outputs are written after its forward pass, so
    ``out`` may be X itself but must not overlap it otherwise.
    """
    if not reductions.all_finite(c_view(X, (X.size,))):
        return False
    ws, X, out = borrow(ws), borrow(X), borrow(out)
    old = fpenv.enter(flush)
    n = X.shape[0]
    n_out = out.shape[1]
    for start in range(0, n, cap):
        rows = min(cap, n - start)
        forward_from(prog, consts, params, state, ws, cap, rows, work, np.bool_(False), np.int64(0), np.int64(0),
                     segments, flush, _chunk_rows(X, start, rows, prog, ws, cap))
        _copy_rows(slab(ws, layout[L_OUTPUT], cap, rows, n_out), out[start:start + rows])
    fpenv.leave(old)
    return True


# ---------------------------------------------------------------- a few rows in one region
# At a few rows every dense layer's product runs as dots (``gemm._dots_rows``), memory-bound
# on reading W.  Layer by layer (``forward_ops``) only layers from ``gemm.GEMV_PAR_FLOPS`` get
# a parallel region of their own (an empty region costs ~1.1 µs); here the whole chain runs in
# one, the threads meeting between layers through atomic counters, so every layer is split
# (W1 at batch 1: 12-15% faster where the two vCPUs sit close, 5-9% slower where they sit
# far apart, NOTES section 68).  Each counter has a 64-byte line of its own, so that a
# thread's claim does not pull the line of another's (a first version with all of a layer's
# counters on one line measured alike).
LINE = 16               # int32s in a 64-byte line
MAX_BLOCKS = 15         # a layer's outputs in at most this many blocks: 16 lines of counters an op
REGION_SPLIT_FLOPS = 65536   # layers of 2*rows*n_out*n_in from here are split between the threads
SPINS_BEFORE_YIELD = 2000    # a waiting thread then yields its CPU at every check (oversubscribed runs)


@jit
def _region_fits(prog, rows, work):
    """Whether ``forward`` runs ``rows`` rows through ``_forward_region``: every op a dense
    layer (its bias and activation in the epilogue), at most ``gemm.DOTS_MAX_ROWS`` rows
    and no layer that BLAS takes at this many (the dot path for every layer, so the same
    bits as layer by layer), two or more threads, a layer that ``forward_ops`` would split
    too, and room in ``work`` for the counters."""
    if rows > gemm.DOTS_MAX_ROWS or gemm._num_threads() < 2:
        return False
    if prog.shape[0] * (MAX_BLOCKS + 1) * LINE * 4 > work.size * work.itemsize:
        return False
    big = False
    for i in range(prog.shape[0]):
        if prog[i, C_OP] != OP_DENSE or prog[i, C_IN] == 0 or prog[i, C_OUT] == 0:
            return False
        if gemm.BLAS_SMALL and gemm._rows_to_blas(rows, prog[i, C_OUT], prog[i, C_IN]):
            return False        # BLAS runs it layer by layer: the region's dots would give other bits
        big = big or 2.0 * rows * prog[i, C_OUT] * prog[i, C_IN] >= gemm.GEMV_PAR_FLOPS
    return big


@jit
def _counters(work, prog, rows):
    """The first bytes of ``work`` as one group of ``MAX_BLOCKS + 1`` lines of int32 counters
    per op (the done count, then one claim per block, each at the start of its line), with
    the counters ``_forward_region`` will use for ``rows`` rows zeroed (not the whole lines:
    a 16-op program would otherwise clear 16 KB a call)."""
    n = prog.shape[0] * (MAX_BLOCKS + 1) * LINE
    counters = work[:gemm._cdiv(n * 4, work.itemsize)].view(np.int32)[:n]
    threads = gemm._num_threads()
    for i in range(prog.shape[0]):
        done = _done_at(i)
        counters[done] = 0
        for b in range(_region_blocks(rows, prog[i, C_OUT], prog[i, C_IN], threads)):
            counters[done + (1 + b) * LINE] = 0
    return counters


@jit
def _region_blocks(rows, n_out, n_in, threads):
    """How many blocks of outputs ``_forward_region`` splits a layer into: one a thread (at
    most ``MAX_BLOCKS``, at most one per group of four outputs), one for small layers."""
    if 2.0 * rows * n_out * n_in < REGION_SPLIT_FLOPS:
        return 1
    return min(threads, MAX_BLOCKS, gemm._cdiv(n_out, 4))


@jit
def _block_start(b, blocks, n_out):
    """First output of block ``b`` of ``blocks``: a multiple of 4, so the dots' groups of four
    outputs start where ``forward_ops``'s do (the same bits); ``n_out`` for ``b == blocks``."""
    if b == blocks:
        return n_out
    return b * gemm._cdiv(n_out, 4) // blocks * 4


@jit
def _wait_for(counters, pos, count):
    """Spin until ``counters[pos]`` reaches ``count`` (pausing; yielding after a while)."""
    spins = 0
    while atomics.load_acquire(counters, pos) < count:
        spins += 1
        if spins < SPINS_BEFORE_YIELD:
            atomics.spin_pause()
        else:
            atomics.yield_cpu()


@jit
def _region_layer(prog, consts, params, ws, cap, rows, counters, i, t, threads, X0):
    """Dense op ``i`` in ``_forward_region`` on thread ``t``: claim this thread's block of
    outputs (so each thread reads the same rows of W call after call) and compute it with
    its bias and activation, then any block still unclaimed.  A claimed block is always
    finished without waiting for anything, and thread 0 claims whatever is left of every
    layer, so no thread waits forever however the runtime maps iterations to threads."""
    n_in = prog[i, C_IN]
    n_out = prog[i, C_OUT]
    w = prog[i, C_W]
    # every view before any claim: a view that raised after a claim would leave a block
    # that the other threads wait for forever
    X = c_view(_rows_of(ws, prog[i, C_X], cap, rows, n_in, X0), (rows * n_in,))
    Z = slab(ws, prog[i, C_Z], cap, rows, n_out)
    z = c_view(Z, (rows * n_out,))
    A = slab(ws, prog[i, C_A], cap, rows, n_out)
    W = params[w:w + n_out * n_in]
    bias = _vec(params, prog[i, C_B], n_out)
    blocks = _region_blocks(rows, n_out, n_in, threads)
    done = _done_at(i)
    for s in range(blocks):
        b = (t + s) % blocks
        claim = done + (1 + b) * LINE
        if (s > 0 or t >= blocks) and atomics.load_acquire(counters, claim) != 0:
            continue            # claimed already: a read, not a write that would pull the line here
        if atomics.fetch_add(counters, claim, 1) == 0:
            j0 = _block_start(b, blocks, n_out)
            j1 = _block_start(b + 1, blocks, n_out)
            gemm._dots_rows(X, n_in, rows, W, n_in, n_in, z, n_out, j0, j1)
            activations.bias_act_block(Z, bias, prog[i, C_ACT], consts[i, K_ALPHA], A, np.int64(0), rows, j0, j1)
            atomics.fetch_add(counters, done, 1)


@jit
def _done_at(i):
    """Where op ``i``'s done count is among the counters (its claims follow, a line each)."""
    return i * (MAX_BLOCKS + 1) * LINE


@jit
def _last_op_with_block(prog, rows, t, threads):
    """The last op in which thread ``t`` has a block of its own (every op for thread 0): a
    thread leaves the region after it, since any later block is thread 0's to claim; W1's
    second thread then skips the 10-output layer and the waits before it (NOTES section 68)."""
    last = 0
    for i in range(prog.shape[0]):
        if t == 0 or _region_blocks(rows, prog[i, C_OUT], prog[i, C_IN], threads) > t:
            last = i
    return last


@jit_parallel
def _forward_region(prog, consts, params, ws, cap, rows, counters, X0):
    """``forward_from`` of a program ``_region_fits`` accepts (dense layers only: the same in either
    mode) in one parallel region, with ``counters`` zeroed (``_counters``); the same bits as
    ``forward_ops`` layer by layer.  Before each op a thread waits until every block of the
    op before is done."""
    threads = gemm._num_threads()
    bits = fpenv.current()
    for t in prange(threads):
        old = fpenv.adopt(bits)
        for i in range(_last_op_with_block(prog, rows, np.int64(t), threads) + 1):
            if i > 0:
                _wait_for(counters, _done_at(i - 1),
                          _region_blocks(rows, prog[i - 1, C_OUT], prog[i - 1, C_IN], threads))
            _region_layer(prog, consts, params, ws, cap, rows, counters, i, np.int64(t), threads, X0)
        fpenv.leave(old)
