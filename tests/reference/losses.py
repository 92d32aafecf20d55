"""Plain numpy (float64) losses with reduction='mean' and their gradients.

Written from the torch.nn documentation (MSELoss, L1Loss, HuberLoss,
BCEWithLogitsLoss, CrossEntropyLoss with label_smoothing), one whole-array
expression per line.  Each function returns ``(loss, dloss/dP)``.
"""
import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def mse(P, T):
    P, T = _f64(P), _f64(T)
    d = P - T
    return np.mean(d ** 2), 2.0 * d / d.size


def l1(P, T):
    P, T = _f64(P), _f64(T)
    d = P - T
    return np.mean(np.abs(d)), np.sign(d) / d.size


def huber(P, T, delta):
    P, T = _f64(P), _f64(T)
    d = P - T
    quadratic = np.abs(d) < delta
    loss = np.where(quadratic, 0.5 * d ** 2, delta * (np.abs(d) - 0.5 * delta))
    return np.mean(loss), np.clip(d, -delta, delta) / d.size


def bce_with_logits(P, T):
    x, t = _f64(P), _f64(T)
    loss = np.logaddexp(0.0, x) - x * t          # -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]
    return np.mean(loss), (sigmoid(x) - t) / x.size


def cross_entropy(P, labels, label_smoothing=0.0):
    x = _f64(P)
    B, C = x.shape
    shifted = x - x.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    target = np.full((B, C), label_smoothing / C)
    target[np.arange(B), labels] += 1.0 - label_smoothing
    loss = -(target * log_softmax).sum(axis=1).mean()
    return loss, (np.exp(log_softmax) - target) / B
