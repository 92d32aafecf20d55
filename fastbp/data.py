"""Datasets shipped with fastbp and simple splitting."""
import os

import numpy as np

_DATA_DIR = os.path.join(os.path.dirname(__file__), "data")


def load_digits(dtype=np.float32, scale=True):
    """The 8×8 handwritten digits (1,797 samples, 64 features, 10 classes).

    A copy of the UCI "Optical Recognition of Handwritten Digits" test set as
    bundled with scikit-learn (CC BY 4.0).  With ``scale`` the pixels (0..16)
    are divided by 16.  Returns ``(X, y)`` with ``y`` int64.
    """
    dtype = np.dtype(dtype)
    if scale and dtype.kind != "f":
        raise TypeError(f"dtype must be a floating-point dtype with scale=True (pixels / 16), got {dtype}")
    with np.load(os.path.join(_DATA_DIR, "digits.npz"), allow_pickle=False) as f:
        X = f["X"].astype(dtype)
        y = f["y"].astype(np.int64)
    if scale:
        X /= 16
    return X, y


def train_test_split(X, y, test_size=0.2, seed=0):
    """A shuffled split ``(X_train, X_test, y_train, y_test)``, reproducible from ``seed``.

    Both parts get at least one row (``round(n * test_size)`` rows for the test part);
    X and y must have the same number of rows."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}")
    n_test = max(1, int(round(n * test_size)))
    if n_test >= n:
        raise ValueError(f"test_size={test_size} of {n} rows leaves no training rows")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
