"""grad / value_and_grad / vjp (tape), jvp (dual numbers), jacobian in both modes, gradcheck itself."""
import numpy as np
import pytest

import fastbp.autograd as ag
from fastbp.autograd import Dual, GradcheckError, custom_op, gradcheck, jacobian, jvp, tensor, vjp

rng = np.random.default_rng(1)


def composite(x, W):
    """Many ops in one function of two inputs: x (4, 3), W (3, 3) -> (5, 3)."""
    h = ag.elu(x @ W, 0.8) + ag.gelu(x, approximate="tanh")
    s = h.softmax(axis=0)
    rows = ag.stack([h.max(axis=0), (h.T @ x).sum(axis=1) / 3.0])
    return ag.concatenate([s[1:3], (h ** 2).mean(axis=0, keepdims=True), rows.sigmoid() * x[0]], axis=0)


def mlp_loss(x, W1, b1, W2, labels):
    h = ag.silu(x @ W1.T + b1)
    return ag.cross_entropy(h @ W2.T, labels, label_smoothing=0.05) + ag.mse_loss(h, 0.5) * 0.1


X, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))


def test_grad_argnums():
    f = lambda x, w: ((x @ w).tanh() ** 2).sum()   # noqa: E731
    gx = ag.grad(f)(X, W)
    gw = ag.grad(f, argnums=1)(X, W)
    both = ag.grad(f, argnums=(0, 1))(X, W)
    t = np.tanh(X @ W)
    d = 2 * t * (1 - t ** 2)
    np.testing.assert_allclose(gx, d @ W.T)
    np.testing.assert_allclose(gw, X.T @ d)
    np.testing.assert_allclose(both[0], gx)
    np.testing.assert_allclose(both[1], gw)
    value, g = ag.value_and_grad(f)(X, W)
    assert value == pytest.approx((t ** 2).sum())
    np.testing.assert_allclose(g, gx)


def test_grad_scalar_inputs_and_errors():
    assert ag.grad(lambda x: x ** 3 + 2 * x)(2.0) == pytest.approx(14.0)
    with pytest.raises(ValueError, match="one-element"):
        ag.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(TypeError, match="Tensor"):
        ag.grad(lambda x: 3.0)(1.0)
    np.testing.assert_array_equal(ag.grad(lambda x, y: (y * 2).sum())(np.ones(2), tensor(np.ones(2))), 0.0)


def test_grad_leaves_other_tensors_alone():
    w = tensor([1.0, 2.0], requires_grad=True)
    g = ag.grad(lambda x: (x * w).sum())(np.array([3.0, 4.0]))
    np.testing.assert_allclose(g, [1.0, 2.0])
    assert w.grad is None


def test_vjp_reuses_graph_and_matches_jacobian():
    out, vjp_fn = vjp(composite, X, W)
    np.testing.assert_allclose(out, composite(tensor(X), tensor(W)).data)
    J = jacobian(composite, (X, W), mode="reverse")
    for _ in range(3):
        u = rng.standard_normal(out.shape)
        gx, gw = vjp_fn(u)
        np.testing.assert_allclose(gx, np.tensordot(u, J[0], axes=2), atol=1e-12)
        np.testing.assert_allclose(gw, np.tensordot(u, J[1], axes=2), atol=1e-12)


def test_jvp_matches_jacobian_and_vjp():
    tx, tw = rng.standard_normal(X.shape), rng.standard_normal(W.shape)
    out, t_out = jvp(composite, (X, W), (tx, tw))
    np.testing.assert_allclose(out, composite(tensor(X), tensor(W)).data)
    Jx, Jw = jacobian(composite, (X, W), mode="forward")
    np.testing.assert_allclose(t_out, np.tensordot(Jx, tx, axes=2) + np.tensordot(Jw, tw, axes=2), atol=1e-12)
    # <u, J t> == <J^T u, t>
    u = rng.standard_normal(out.shape)
    gx, gw = vjp(composite, X, W)[1](u)
    assert np.sum(u * t_out) == pytest.approx(np.sum(gx * tx) + np.sum(gw * tw), rel=1e-12)


def test_jvp_vjp_agree_on_an_mlp_loss():
    x = rng.standard_normal((6, 4))
    W1, b1, W2 = rng.standard_normal((5, 4)), rng.standard_normal(5), rng.standard_normal((3, 5))
    labels = np.array([0, 2, 1, 1, 0, 2])
    f = lambda *p: mlp_loss(*p, labels)   # noqa: E731
    params = (x, W1, b1, W2)
    tangents = tuple(rng.standard_normal(p.shape) for p in params)
    value, directional = jvp(f, params, tangents)
    grads = ag.grad(f, argnums=(0, 1, 2, 3))(*params)
    assert value == pytest.approx(f(*map(tensor, params)).item())
    assert directional == pytest.approx(sum(np.sum(g * t) for g, t in zip(grads, tangents)), rel=1e-12)
    assert gradcheck(f, params, check_forward_ad=True)


@pytest.mark.parametrize("f,x", [
    (composite, (X, W)),
    (lambda x: (x.reshape(2, 6).T @ x[:2]).log_softmax(axis=0), rng.standard_normal((4, 3))),
    (lambda x: ag.huber_loss(x.relu() * x.softplus(), x[::-1]) * x.sqrt(), rng.uniform(0.5, 2, (3,))),
    (lambda x: ag.binary_cross_entropy_with_logits(x, x.sigmoid().permute(1, 0).T),
     rng.standard_normal((2, 3))),
])
def test_forward_and_reverse_jacobians_agree(f, x):
    jf = jacobian(f, x, mode="forward")
    jr = jacobian(f, x, mode="reverse")
    for a, b in zip(jf if isinstance(x, tuple) else (jf,), jr if isinstance(x, tuple) else (jr,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_jacobian_shape_and_value():
    A = rng.standard_normal((2, 3))
    J = jacobian(lambda x: A @ x, np.ones(3))
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J, A)
    J = jacobian(lambda x: x * 2.0, np.ones((2, 2)), mode="reverse")
    assert J.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(J.reshape(4, 4), 2 * np.eye(4))
    with pytest.raises(ValueError, match="mode"):
        jacobian(lambda x: x, np.ones(2), mode="sideways")


def test_tuple_outputs():
    f = lambda x: (x * 2.0, x.exp().sum())   # noqa: E731
    (a, b), vjp_fn = vjp(f, np.array([0.0, 1.0]))
    np.testing.assert_allclose(vjp_fn((np.ones(2), np.array(1.0)))[0], [2.0 + 1.0, 2.0 + np.e])
    (pa, pb), (ta, tb) = jvp(f, np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    np.testing.assert_allclose(ta, [2.0, 0.0])
    assert tb == pytest.approx(1.0)


def test_dual_basics():
    d = Dual(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    y = (d * d + 3.0 * d).exp() - 1.0 / d
    p = np.array([1.0, 2.0])
    np.testing.assert_allclose(y.primal, np.exp(p * p + 3 * p) - 1 / p)
    np.testing.assert_allclose(y.tangent, [np.exp(4.0) * 5 + 1.0, 0.0])
    assert isinstance(np.ones(2) + d, Dual)
    with pytest.raises(ValueError, match="shape"):
        Dual(np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match="Dual"):
        d * tensor([1.0, 1.0], requires_grad=True)


def _square_with_wrong_backward(x):
    """x ** 2 whose backward forgets the factor 2."""
    return custom_op(x.data ** 2, (x,), lambda g: (g * x.data,), "bad_square")


def test_gradcheck_catches_a_wrong_backward():
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(GradcheckError, match="worst element") as info:
        gradcheck(_square_with_wrong_backward, (x,))
    message = str(info.value)
    assert "input 0" in message and "analytical 2.0" in message and "numerical 4.0" in message
    assert gradcheck(_square_with_wrong_backward, (x,), raise_exception=False) is False
    good = lambda t: custom_op(t.data ** 2, (t,), lambda g: (2 * g * t.data,), "good_square")  # noqa: E731
    assert gradcheck(good, (x,))


def test_gradcheck_inputs():
    x32 = rng.standard_normal(3).astype(np.float32)       # checked in float64
    assert gradcheck(lambda x: (x ** 3).sum(), (x32,))
    constant = tensor(rng.standard_normal(3))            # no requires_grad: a constant
    assert gradcheck(lambda x, c: x * c, (rng.standard_normal(3), constant))
    assert gradcheck(lambda x: x.exp(), rng.standard_normal(2))       # a bare array is one input
    with pytest.raises(ValueError, match="no differentiable"):
        gradcheck(lambda y: y * 1.0, (np.arange(3),))
