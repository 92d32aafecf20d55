"""Mean losses and their gradients in one pass, with torch's definitions.

Each kernel returns the mean loss as a float64 and writes ``dP`` =
d(mean loss)/dP in P's dtype.  Per-element math runs in float64 (inputs are
upcast, ``dP`` is rounded once when stored) and the loss is accumulated in a
fixed serial order, so the value does not depend on the thread count and a
float32 model gets a float64-accurate loss.  Loss kernels are serial: the
output layer is small next to the products that precede it.  Cross-entropy's
exponentials are ``activations.fast_exp`` (float64, within ~2 ulp of libm's),
all of a batch's in one vectorized loop over a float64 scratch.

``dP`` may be the same array as ``P`` (every element of a row is read before
it is overwritten).  Labels are assumed valid (``fastbp.validation``).

The probability-based gradients (cross-entropy, BCE) store 0 for a value below
the smallest normal number of ``dP``'s dtype (1.2e-38 in float32), as XLA's
flush-to-zero would: a network trained towards zero loss otherwise fills its
backward pass with subnormal numbers, which this CPU handles 4-5x slower
(W2 fell from 6,200 to 1,300 samples/s; NOTES section 16).  The loss value is
unaffected.
"""
import math

import numpy as np

from fastbp._jit import jit
from fastbp.kernels.activations import fast_exp
from fastbp.kernels.codes import BCE_WITH_LOGITS, CROSS_ENTROPY, HUBER, L1, MSE

_KW = {"error_model": "numpy"}


@jit
def _flush(g, tiny):
    """g, or 0 when |g| is below ``tiny`` (the dtype's smallest normal number); NaN stays NaN."""
    return 0.0 if abs(g) < tiny else g


@jit(**_KW)
def mse_loss(P, T, dP):
    """mean((P - T)**2); dP = 2 (P - T) / N."""
    B, n = P.shape
    N = B * n
    scale = 2.0 / N
    s = 0.0
    for i in range(B):
        for j in range(n):
            d = np.float64(P[i, j]) - np.float64(T[i, j])
            s += d * d
            dP[i, j] = d * scale
    return s / N


@jit(**_KW)
def l1_loss(P, T, dP):
    """mean(|P - T|); dP = sign(P - T) / N with sign(0) = 0 (NaN stays NaN)."""
    B, n = P.shape
    N = B * n
    scale = 1.0 / N
    s = 0.0
    for i in range(B):
        for j in range(n):
            d = np.float64(P[i, j]) - np.float64(T[i, j])
            s += abs(d)
            if d > 0.0:
                g = scale
            elif d < 0.0:
                g = -scale
            else:
                g = d * 0.0    # 0 for d == 0, NaN for NaN
            dP[i, j] = g
    return s / N


@jit(**_KW)
def huber_loss(P, T, delta, dP):
    """torch.nn.HuberLoss(delta): 0.5 d**2 where |d| < delta, else delta (|d| - delta / 2)."""
    B, n = P.shape
    N = B * n
    scale = 1.0 / N
    dl = np.float64(delta)
    s = 0.0
    for i in range(B):
        for j in range(n):
            d = np.float64(P[i, j]) - np.float64(T[i, j])
            z = abs(d)
            if z < dl:
                s += 0.5 * d * d
            else:
                s += dl * (z - 0.5 * dl)
            # torch's backward: clamp d to [-delta, delta] (NaN passes through)
            if d < -dl:
                g = -dl
            elif d > dl:
                g = dl
            else:
                g = d
            dP[i, j] = g * scale
    return s / N


@jit(**_KW)
def bce_with_logits_loss(P, T, dP):
    """mean(max(x, 0) - x t + log1p(exp(-|x|))); dP = (sigmoid(x) - t) / N.  Stable for any x."""
    B, n = P.shape
    N = B * n
    scale = 1.0 / N
    tiny = np.float64(np.finfo(dP.dtype).tiny)
    s = 0.0
    for i in range(B):
        for j in range(n):
            x = np.float64(P[i, j])
            t = np.float64(T[i, j])
            e = math.exp(-abs(x))
            s += max(x, 0.0) - x * t + math.log1p(e)
            r = 1.0 / (1.0 + e)
            sig = r if x >= 0.0 else e * r
            dP[i, j] = _flush((sig - t) * scale, tiny)
    return s / N


@jit
def scratch_size(rows, classes):
    """float64 elements of the scratch ``cross_entropy_loss`` uses for a (rows, classes) P."""
    return rows * (classes + 2)


@jit(**_KW)
def _exp_inplace(S):
    """S = exp(S), one loop over all of S: ``fast_exp`` is inline IR, so LLVM vectorizes it
    (a row of 10 classes is too short to vectorize on its own, and libm's exp never does)."""
    for k in range(S.shape[0]):
        S[k] = fast_exp(S[k])


@jit(**_KW)
def cross_entropy_loss(P, labels, label_smoothing, dP, scratch=None):
    """Softmax cross-entropy of logits P (B, C) against int64 labels, mean over the batch.

    torch's label smoothing: the target is q = (1 - eps) onehot + eps / C, the
    row loss is sum_j q_j (lse - x_j) and the gradient (softmax - q) / B.  With
    m the row maximum, lse - x_j = (m - x_j) + log sum exp(x - m): a sum of
    non-negative terms, so a small loss keeps its precision under huge logits.

    Three passes: each row's maximum, label gap and gap sum (P is read only here, so
    dP may be P); the B*C exponentials in one vectorized loop; each row's sum, log and
    gradient.  ``scratch``: float64, at least ``scratch_size(B, C)`` long (the fused
    step passes part of the GEMM's work buffer); allocated when missing or too short.
    """
    B, C = P.shape
    n = B * C
    if scratch is None:
        S = np.empty(scratch_size(B, C))
    else:
        S = scratch if scratch.shape[0] >= scratch_size(B, C) else np.empty(scratch_size(B, C))
    E = S[:n]                           # x - m, then exp(x - m)
    gap_label = S[n:n + B]              # m - x_y
    gap_sums = S[n + B:n + 2 * B]       # sum_j (m - x_j)
    for i in range(B):
        m = np.float64(P[i, 0])
        for j in range(1, C):
            m = max(m, np.float64(P[i, j]))
        gaps = 0.0
        for j in range(C):
            d = np.float64(P[i, j]) - m
            E[i * C + j] = d
            gaps -= d
        gap_label[i] = m - np.float64(P[i, labels[i]])
        gap_sums[i] = gaps
    _exp_inplace(E)
    eps = np.float64(label_smoothing)
    on = 1.0 - eps                      # the label's extra weight
    off = eps / C                       # every class's weight
    q_label = 1.0 - eps * ((C - 1) / C)   # on + off, exactly 1 when eps = 0 or C = 1
    inv_b = 1.0 / B
    tiny = np.float64(np.finfo(dP.dtype).tiny)
    total = 0.0
    for i in range(B):
        e = E[i * C:(i + 1) * C]
        se = 0.0
        for j in range(C):
            se += e[j]
        ls = math.log(se)
        total += on * (gap_label[i] + ls) + off * (gap_sums[i] + C * ls)
        inv_se = 1.0 / se
        for j in range(C):
            dP[i, j] = _flush((e[j] * inv_se - off) * inv_b, tiny)
        # p_y - q_y cancels when p_y ~ 1: from the float64 exp, never from a rounded dP
        y = labels[i]
        dP[i, y] = _flush((e[y] * inv_se - q_label) * inv_b, tiny)
    return total * inv_b


@jit(**_KW)
def loss_value_and_grad(code, P, T, labels, param, dP, scratch=None):
    """Dispatch on a loss code (``codes.py``); ``param`` is delta (HUBER) or label_smoothing (CE);
    ``scratch`` goes to ``cross_entropy_loss``.

    CROSS_ENTROPY reads ``labels`` and ignores ``T`` (which may be a (0, 0)
    array); the other losses read ``T`` and ignore ``labels``.  Returns NaN
    for an unknown code.
    """
    if code == MSE:
        return mse_loss(P, T, dP)
    if code == L1:
        return l1_loss(P, T, dP)
    if code == HUBER:
        return huber_loss(P, T, param, dP)
    if code == CROSS_ENTROPY:
        return cross_entropy_loss(P, labels, param, dP, scratch)
    if code == BCE_WITH_LOGITS:
        return bce_with_logits_loss(P, T, dP)
    return np.nan
