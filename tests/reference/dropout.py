"""The dropout hash of fastbp.kernels.dropout, transcribed twice: NumPy uint64 arrays, Python ints.

splitmix64's output function ``mix64``; ``key = mix64(mix64(seed + G) ^ stream)``;
element ``index`` draws ``mix64(key + (index + 1) * G)``; ``u = (x >> 11) / 2**53``;
kept iff ``u >= p``.  Element (i, j) of a (B, n) batch has index ``i * n + j``.
"""
import numpy as np

MASK64 = (1 << 64) - 1
G = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB


# ---------------------------------------------------------------- Python ints

def mix64_int(z):
    z &= MASK64
    z = ((z ^ (z >> 30)) * M1) & MASK64
    z = ((z ^ (z >> 27)) * M2) & MASK64
    return z ^ (z >> 31)


def stream_key_int(seed, stream):
    return mix64_int(mix64_int((seed + G) & MASK64) ^ (stream & MASK64))


def uniform_int(seed, stream, index):
    x = mix64_int((stream_key_int(seed, stream) + (index + 1) * G) & MASK64)
    return (x >> 11) / 2.0 ** 53


# ---------------------------------------------------------------- NumPy uint64

def mix64(z):
    z = np.asarray(z, np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(M2)
    return z ^ (z >> np.uint64(31))


def keep_mask(shape, p, seed, stream):
    """Boolean keep mask of a (B, n) batch (p in the array dtype, compared in float64)."""
    B, n = shape
    key = np.uint64(stream_key_int(seed, stream))
    index = np.arange(B * n, dtype=np.uint64).reshape(B, n)
    x = mix64(key + (index + np.uint64(1)) * np.uint64(G))
    threshold = np.uint64(np.ceil(np.float64(p) * 2.0 ** 53))
    return (x >> np.uint64(11)) >= threshold


def uniforms(shape, seed, stream):
    B, n = shape
    key = np.uint64(stream_key_int(seed, stream))
    index = np.arange(B * n, dtype=np.uint64).reshape(B, n)
    x = mix64(key + (index + np.uint64(1)) * np.uint64(G))
    return (x >> np.uint64(11)).astype(np.float64) / 2.0 ** 53


def dropout(X, p, seed, stream):
    """where(kept, X * (1 / (1 - p)), 0) with the scale computed in X's dtype."""
    X = np.asarray(X)
    t = X.dtype.type
    if p == 0:
        return X.copy()
    scale = t(1) / (t(1) - t(p))
    return np.where(keep_mask(X.shape, t(p), seed, stream), X * scale, t(0))
