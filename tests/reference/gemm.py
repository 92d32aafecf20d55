"""NumPy references for fastbp.kernels.gemm (computed in float64)."""
import numpy as np


def matmul_nt(A, W):
    """A @ W.T in float64."""
    return np.asarray(A, np.float64) @ np.asarray(W, np.float64).T


def matmul_tn(D, A):
    """D.T @ A in float64."""
    return np.asarray(D, np.float64).T @ np.asarray(A, np.float64)


def matmul_nn(D, W):
    """D @ W in float64."""
    return np.asarray(D, np.float64) @ np.asarray(W, np.float64)
