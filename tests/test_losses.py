"""The loss classes: value and gradient from one kernel call, validated targets, names."""
import numpy as np
import pytest

import fastbp as fb
from fastbp.losses import get_loss
from tests.reference import losses as ref


def test_values_and_gradients_match_the_numpy_reference():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((7, 3))
    T = rng.standard_normal((7, 3))
    B = rng.integers(0, 2, (7, 3)).astype(np.float64)
    labels = rng.integers(0, 3, 7)
    cases = [(fb.MSELoss(), T, ref.mse(P, T)), (fb.L1Loss(), T, ref.l1(P, T)),
             (fb.HuberLoss(0.7), T, ref.huber(P, T, 0.7)), (fb.BCEWithLogitsLoss(), B, ref.bce_with_logits(P, B)),
             (fb.CrossEntropyLoss(label_smoothing=0.2), labels, ref.cross_entropy(P, labels, 0.2))]
    for loss, target, (want_value, want_grad) in cases:
        value, grad = loss(P, target)
        assert isinstance(value, float)
        np.testing.assert_allclose(value, want_value, rtol=1e-12)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-14)


def test_one_dimensional_regression_targets_for_one_output():
    P = np.array([[1.0], [2.0]])
    assert fb.MSELoss()(P, np.array([0.0, 0.0]))[0] == 2.5


def test_get_loss_by_name():
    assert isinstance(get_loss("cross_entropy"), fb.CrossEntropyLoss)
    assert isinstance(get_loss("huber"), fb.HuberLoss)
    with pytest.raises(ValueError, match="loss must be"):
        get_loss("hinge")


def test_typed_param_follows_the_dtype_it_is_asked_for():
    """``Loss.typed_param`` caches the numpy scalar; a loss shared by float32 and float64
    models must still hand each its own dtype's value."""
    loss = fb.HuberLoss(0.7)
    for dtype in (np.float32, np.float64, np.float32):
        value = loss.typed_param(np.dtype(dtype))
        assert type(value) is dtype and value == dtype(0.7)
