"""Tape semantics: the seed example, dtypes, accumulation, freeing, no_grad, detach, errors."""
import numpy as np
import pytest

from fastbp.autograd import Tensor, custom_op, enable_grad, is_grad_enabled, no_grad, set_grad_enabled, tensor


def test_seed_example():
    x = tensor([2.0], requires_grad=True)
    y = x ** 3 + 2 * x
    y.backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_array_equal(x.grad, np.array([14.0]))
    assert x.grad.dtype == np.float64


def test_tensor_dtypes():
    assert tensor(1.5).dtype == np.float64
    assert tensor([1, 2]).dtype == np.float64
    assert tensor(np.ones(3, np.float32)).dtype == np.float32
    assert tensor(np.arange(3)).dtype == np.int64
    assert tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert tensor([True, False]).dtype == np.bool_
    a = np.ones(3)
    t = tensor(a)
    a[0] = 5.0
    assert t.data[0] == 1.0          # tensor() copies


def test_float32_stays_float32():
    x = tensor(np.array([[0.5, -1.0]], np.float32), requires_grad=True)
    y = (x * 2.0 + 1.0).exp().sigmoid().gelu() / 3.0 - x ** 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_requires_grad_on_integers_raises():
    with pytest.raises(RuntimeError, match="floating-point"):
        tensor([1, 2], dtype=np.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        tensor(np.arange(3)).requires_grad_()


def test_non_differentiable_results_raise():
    x = tensor([1.0, 3.0, 2.0], requires_grad=True)
    am = x.argmax()
    assert am.dtype == np.int64 and not am.requires_grad
    with pytest.raises(RuntimeError, match="not differentiable"):
        am.backward()
    cmp = x > 1.5
    assert cmp.dtype == np.bool_ and not cmp.requires_grad
    with pytest.raises(RuntimeError, match="not differentiable"):
        cmp.sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        tensor([1.0]).backward()


def test_backward_needs_gradient_for_non_scalars():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()
    with pytest.raises(RuntimeError, match="shape"):
        y.backward(np.ones(3))
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 40.0])


def test_long_chain_is_iterative():
    x = tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001 ** 10_000, rtol=1e-10)


def test_reuse_accumulates_and_zero_grad():
    x = tensor([3.0], requires_grad=True)
    y = x * x + x            # x used three times
    y.backward()
    np.testing.assert_allclose(x.grad, [7.0])
    (x * 2).backward()      # accumulates across calls
    np.testing.assert_allclose(x.grad, [9.0])
    x.zero_grad()
    assert x.grad is None
    (x * 2).backward()
    np.testing.assert_allclose(x.grad, [2.0])
    x.grad = None
    (x * 5).backward()
    np.testing.assert_allclose(x.grad, [5.0])


def test_diamond_graph():
    x = tensor([1.5], requires_grad=True)
    a = x.exp()
    b = a * a
    c = a + b
    d = c * b
    d.backward()
    e = np.exp(1.5)
    # d = (e + e^2) e^2 = e^3 + e^4
    np.testing.assert_allclose(x.grad, [3 * e ** 3 + 4 * e ** 4])


def test_graph_freed_after_backward():
    x = tensor([2.0], requires_grad=True)
    y = (x * x).exp()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = y * 3                 # new op on a freed graph: backward reaches the freed node
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        z.backward()


def test_retain_graph():
    x = tensor([2.0], requires_grad=True)
    y = (x * x).exp()
    y.backward(retain_graph=True)
    g = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * g)
    with pytest.raises(RuntimeError):
        y.backward()


def test_no_grad_context_and_decorator():
    x = tensor([1.0], requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
        with enable_grad():
            z = x * 2
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad

    @no_grad()
    def f(t):
        return t * 3

    @no_grad
    def g(t):
        return t * 3

    assert not f(x).requires_grad and not g(x).requires_grad
    assert is_grad_enabled()
    with set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert is_grad_enabled()


def test_detach():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    (x * d).sum().backward()             # d is a constant
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_leaf_and_grad_fn_and_retain_grad():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    assert x.is_leaf and not y.is_leaf and y.grad_fn == "mul"
    y.retain_grad()
    y.sum().backward()
    np.testing.assert_allclose(y.grad, [1.0, 1.0])
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


def test_only_leaves_receive_grad():
    x = tensor([1.0], requires_grad=True)
    y = x * 2
    (y * y).backward()
    assert y.grad is None


def test_numpy_interop():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x + np.ones(2)      # ndarray on the left defers to Tensor
    assert isinstance(y, Tensor) and y.requires_grad
    (np.eye(2) @ y).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])
    with pytest.raises(RuntimeError, match="requires grad"):
        x.numpy()
    np.testing.assert_allclose(np.asarray(x.detach()), [1.0, 2.0])
    assert float(tensor(2.5)) == 2.5 and tensor([[7.0]]).item() == 7.0
    assert "requires_grad=True" in repr(x)


def test_grad_only_flows_to_inputs_that_require_it():
    x = tensor([1.0, 2.0], requires_grad=True)
    c = tensor([5.0, 6.0])
    (x * c).sum().backward()
    assert c.grad is None


def test_custom_op_shape_is_checked():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = custom_op(x.data * 2, (x,), lambda g: (np.ones(3),), "bad_shape")
    with pytest.raises(RuntimeError, match="bad_shape"):
        y.sum().backward()
