"""fb.data: the bundled digits and the train/test split."""
import numpy as np
import pytest

import fastbp as fb


def test_load_digits_dtypes():
    X, y = fb.data.load_digits(dtype=np.float64)
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.dtype == np.int64
    assert 0 <= X.min() and X.max() <= 1
    raw, _ = fb.data.load_digits(dtype=np.int64, scale=False)
    np.testing.assert_array_equal(raw / 16, X)
    with pytest.raises(TypeError, match="dtype must be a floating-point dtype with scale=True"):
        fb.data.load_digits(dtype=np.int64)


def test_split_is_a_reproducible_partition():
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    Xtr, Xte, ytr, yte = fb.data.train_test_split(X, y, test_size=0.3, seed=1)
    assert len(Xte) == 3 and len(Xtr) == 7
    np.testing.assert_array_equal(np.sort(np.concatenate([ytr, yte])), y)
    np.testing.assert_array_equal(Xtr[:, 0] // 2, ytr)
    again = fb.data.train_test_split(X, y, test_size=0.3, seed=1)
    np.testing.assert_array_equal(again[0], Xtr)


@pytest.mark.parametrize("X, y, test_size, match", [
    (np.zeros((5, 2)), np.arange(7), 0.4, "X has 5 rows but y has 7"),    # extra labels were dropped
    (np.zeros((2, 2)), np.arange(2), 0.9, "leaves no training rows"),      # the training part was empty
    (np.zeros((1, 2)), np.arange(1), 0.2, "leaves no training rows"),
    (np.zeros((4, 2)), np.arange(4), 1.0, r"test_size must be in \(0, 1\)"),
])
def test_split_rejects(X, y, test_size, match):
    with pytest.raises(ValueError, match=match):
        fb.data.train_test_split(X, y, test_size=test_size)
