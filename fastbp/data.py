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
    with np.load(os.path.join(_DATA_DIR, "digits.npz"), allow_pickle=False) as f:
        X = f["X"].astype(dtype)
        y = f["y"].astype(np.int64)
    if scale:
        X /= 16
    return X, y


def train_test_split(X, y, test_size=0.2, seed=0):
    """A shuffled split ``(X_train, X_test, y_train, y_test)``, reproducible from ``seed``."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    n = len(X)
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_size)))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
