"""Plain numpy (float64) BatchNorm1d: textbook formulas, written independently of the kernels.

Training mode normalises with the batch mean and the biased batch variance;
the running statistics follow torch (``(1 - momentum) * running + momentum *
stat`` with the unbiased variance); the backward pass is the classic chain-rule
derivation through the mean and the variance (not the kernels' closed form).
"""
import numpy as np


def _affine(gamma, beta, n):
    g = np.ones(n) if gamma is None or len(gamma) == 0 else np.asarray(gamma, np.float64)
    b = np.zeros(n) if beta is None or len(beta) == 0 else np.asarray(beta, np.float64)
    return g, b


def batchnorm_train(X, gamma, beta, eps):
    """dict(mean, var (biased), invstd, xhat, y) of a training-mode forward."""
    X = np.asarray(X, np.float64)
    g, b = _affine(gamma, beta, X.shape[1])
    mean = X.mean(axis=0)
    var = ((X - mean) ** 2).mean(axis=0)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (X - mean) * invstd
    return {"mean": mean, "var": var, "invstd": invstd, "xhat": xhat, "y": g * xhat + b}


def running_update(running_mean, running_var, mean, var, momentum, batch):
    """torch's running-statistics update (unbiased variance); returns new arrays."""
    rm = np.asarray(running_mean, np.float64)
    rv = np.asarray(running_var, np.float64)
    unbiased = var * batch / (batch - 1)
    return (1 - momentum) * rm + momentum * mean, (1 - momentum) * rv + momentum * unbiased


def batchnorm_eval(X, gamma, beta, eps, running_mean, running_var):
    X = np.asarray(X, np.float64)
    g, b = _affine(gamma, beta, X.shape[1])
    rm = np.asarray(running_mean, np.float64)
    rv = np.asarray(running_var, np.float64)
    return g * (X - rm) / np.sqrt(rv + eps) + b


def batchnorm_backward(G, X, gamma, eps):
    """(dX, dgamma, dbeta) of L with dL/dY = G, through the batch mean and variance."""
    X = np.asarray(X, np.float64)
    G = np.asarray(G, np.float64)
    B, n = X.shape
    g, _ = _affine(gamma, None, n)
    mean = X.mean(axis=0)
    xc = X - mean
    var = (xc ** 2).mean(axis=0)
    std_inv = 1.0 / np.sqrt(var + eps)
    xhat = xc * std_inv
    dxhat = G * g
    dvar = np.sum(dxhat * xc, axis=0) * -0.5 * std_inv ** 3
    dmean = np.sum(-dxhat * std_inv, axis=0) + dvar * np.mean(-2.0 * xc, axis=0)
    dX = dxhat * std_inv + dvar * 2.0 * xc / B + dmean / B
    return dX, np.sum(G * xhat, axis=0), np.sum(G, axis=0)
