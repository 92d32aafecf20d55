"""Every op against central differences (reverse and forward mode), with broadcasting; torch conventions."""
import math

import numpy as np
import pytest

import fastbp.autograd as ag
from fastbp.autograd import _kernels, gradcheck, tensor

rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


def distinct(*shape):
    """Values far apart from each other (no ties, no kinks within eps)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.37 - 0.3 * n).reshape(shape)


CASES = [
    # arithmetic, broadcasting both ways and with scalars
    ("add (3,1)+(1,4)", lambda a, b: a + b, (r(3, 1), r(1, 4))),
    ("add (4,)+(3,4)", lambda a, b: a + b, (r(4), r(3, 4))),
    ("add 0-d+(3,4)", lambda a, b: a + b, (np.array(1.3), r(3, 4))),
    ("add scalar", lambda a: 2.5 + a + 1, (r(2, 3),)),
    ("sub (3,1)-(1,4)", lambda a, b: a - b, (r(3, 1), r(1, 4))),
    ("rsub scalar", lambda a: 1.0 - a, (r(3),)),
    ("mul (2,3,1)*(3,4)", lambda a, b: a * b, (r(2, 3, 1), r(3, 4))),
    ("mul scalar", lambda a: 3.0 * a * 2, (r(3),)),
    ("div (3,1)/(1,4)", lambda a, b: a / b, (r(3, 1), pos(1, 4))),
    ("rdiv scalar", lambda a: 2.0 / a, (pos(4),)),
    ("div scalar", lambda a: a / 4.0, (r(4),)),
    ("neg", lambda a: -a, (r(2, 3),)),
    ("pow int", lambda a: a ** 3, (r(5),)),
    ("pow frac", lambda a: a ** 2.5, (pos(5),)),
    ("pow zero", lambda a: a ** 0, (r(3),)),
    ("rpow", lambda a: 2.0 ** a, (r(5),)),
    ("pow tensor (3,1)**(1,4)", lambda a, b: a ** b, (pos(3, 1), r(1, 4))),
    ("matmul 2d@2d", lambda a, b: a @ b, (r(3, 4), r(4, 5))),
    ("matmul 1d@2d", lambda a, b: a @ b, (r(4), r(4, 5))),
    ("matmul 2d@1d", lambda a, b: a @ b, (r(3, 4), r(4))),
    ("matmul 1d@1d", lambda a, b: a @ b, (r(4), r(4))),
    ("matmul batched", lambda a, b: a @ b, (r(2, 3, 4), r(2, 4, 5))),
    ("matmul batch-broadcast", lambda a, b: a @ b, (r(2, 1, 3, 4), r(3, 4, 2))),
    ("matmul batched@2d", lambda a, b: ag.matmul(a, b), (r(2, 3, 4), r(4, 5))),
    ("matmul 1d@batched", lambda a, b: a @ b, (r(4), r(2, 4, 3))),
    ("matmul batched@1d", lambda a, b: a @ b, (r(2, 3, 4), r(4))),
    # reductions
    ("sum all", lambda a: a.sum(), (r(2, 3, 4),)),
    ("sum axis 1", lambda a: a.sum(axis=1), (r(2, 3, 4),)),
    ("sum axis -1 keepdims", lambda a: ag.sum(a, axis=-1, keepdims=True), (r(2, 3, 4),)),
    ("sum axes (0,2)", lambda a: a.sum(axis=(0, 2)), (r(2, 3, 4),)),
    ("sum 0-d", lambda a: a.sum(), (np.array(0.7),)),
    ("mean all", lambda a: a.mean(), (r(2, 3, 4),)),
    ("mean axis 0 keepdims", lambda a: a.mean(axis=0, keepdims=True), (r(2, 3, 4),)),
    ("mean axes (1,2)", lambda a: ag.mean(a, axis=(1, 2)), (r(2, 3, 4),)),
    ("max all", lambda a: a.max(), (distinct(2, 3, 4),)),
    ("max axis 1", lambda a: a.max(axis=1), (distinct(2, 3, 4),)),
    ("max axes (0,2) keepdims", lambda a: ag.max(a, axis=(0, 2), keepdims=True), (distinct(2, 3, 4),)),
    ("min axis -1", lambda a: a.min(axis=-1), (distinct(3, 4),)),
    ("min all keepdims", lambda a: ag.min(a, keepdims=True), (distinct(3, 4),)),
    # elementwise
    ("exp", lambda a: a.exp(), (r(3, 4),)),
    ("log", lambda a: ag.log(a), (pos(3, 4),)),
    ("sqrt", lambda a: a.sqrt(), (pos(3, 4),)),
    ("abs", lambda a: abs(a), (distinct(3, 4),)),
    ("tanh", lambda a: a.tanh(), (r(3, 4),)),
    ("sigmoid", lambda a: ag.sigmoid(a), (r(3, 4) * 3,)),
    ("relu", lambda a: a.relu(), (distinct(3, 4),)),
    ("leaky_relu", lambda a: ag.leaky_relu(a, 0.2), (distinct(3, 4),)),
    ("leaky_relu default", lambda a: a.leaky_relu(), (distinct(3, 4),)),
    ("elu", lambda a: ag.elu(a, alpha=0.7), (distinct(3, 4),)),
    ("gelu", lambda a: a.gelu(), (r(3, 4) * 2,)),
    ("gelu tanh", lambda a: ag.gelu(a, approximate="tanh"), (r(3, 4) * 2,)),
    ("silu", lambda a: ag.silu(a), (r(3, 4) * 2,)),
    ("softplus", lambda a: a.softplus(), (r(3, 4) * 3,)),
    ("softplus beta threshold", lambda a: ag.softplus(a, beta=2.0, threshold=3.0), (distinct(3, 4) / 2,)),
    ("1-D activation (numpy path)", lambda a: a.gelu() + a.silu() + a.elu(), (r(7),)),
    ("3-D activation (numpy path)", lambda a: a.tanh() * a.softplus(), (r(2, 2, 3),)),
    ("maximum (3,1),(1,4)", lambda a, b: ag.maximum(a, b), (r(3, 1), r(1, 4))),
    ("minimum (4,),(3,4)", lambda a, b: ag.minimum(a, b), (r(4), r(3, 4))),
    ("maximum scalar", lambda a: ag.maximum(a, 0.123), (distinct(3, 4),)),
    # shapes and indexing
    ("reshape", lambda a: a.reshape(3, 8) * np.arange(24.0).reshape(3, 8), (r(2, 3, 4),)),
    ("reshape tuple", lambda a: ag.reshape(a, (4, -1)), (r(2, 3, 4),)),
    ("flatten", lambda a: a.flatten(), (r(2, 3),)),
    ("transpose swap", lambda a: a.transpose(0, 2) * np.arange(24.0).reshape(4, 3, 2), (r(2, 3, 4),)),
    ("transpose all", lambda a: ag.transpose(a) @ np.ones(2), (r(2, 3, 4),)),
    (".T", lambda a: a.T @ np.arange(3.0), (r(3, 4),)),
    ("permute", lambda a: a.permute(1, 2, 0) * np.arange(24.0).reshape(3, 4, 2), (r(2, 3, 4),)),
    ("getitem int", lambda a: a[1], (r(3, 4),)),
    ("getitem slice", lambda a: a[1:, ::2], (r(3, 4),)),
    ("getitem negative step", lambda a: a[::-1, -1], (r(3, 4),)),
    ("getitem repeated array", lambda a: a[np.array([0, 2, 0, 0])] * np.arange(16.0).reshape(4, 4),
     (r(3, 4),)),
    ("getitem pair of arrays", lambda a: a[np.array([0, 2, 2]), np.array([1, 1, 3])], (r(3, 4),)),
    ("getitem bool mask", lambda a: a[np.array([True, False, True])], (r(3, 4),)),
    ("getitem ellipsis None", lambda a: a[..., None, 1:3], (r(2, 3, 4),)),
    ("getitem tensor index", lambda a: a[tensor(np.array([2, 0]))], (r(3, 4),)),
    ("concatenate axis 0", lambda a, b: ag.concatenate([a, b], axis=0), (r(2, 3), r(4, 3))),
    ("concatenate axis 1 const", lambda a: ag.concatenate([a, np.ones((2, 1)), a], axis=1), (r(2, 3),)),
    ("stack axis 0", lambda a, b: ag.stack([a, b]), (r(2, 3), r(2, 3))),
    ("stack axis -1", lambda a, b: ag.stack([a, b, a], axis=-1), (r(2, 3), r(2, 3))),
    # softmax
    ("softmax", lambda a: a.softmax() * np.arange(12.0).reshape(3, 4), (r(3, 4),)),
    ("softmax axis 0", lambda a: ag.softmax(a, axis=0) * np.arange(12.0).reshape(3, 4), (r(3, 4),)),
    ("log_softmax", lambda a: a.log_softmax() * np.arange(12.0).reshape(3, 4), (r(3, 4),)),
    ("log_softmax axis 0 3-D", lambda a: ag.log_softmax(a, axis=0), (r(2, 3, 2),)),
    # losses (input and target both differentiable where torch allows it)
    ("mse_loss", lambda a, b: ag.mse_loss(a, b), (r(4, 3), r(4, 3))),
    ("mse_loss broadcast target", lambda a, b: ag.mse_loss(a, b), (r(4, 3), r(3))),
    ("mse_loss 1-D", lambda a, b: ag.mse_loss(a, b), (r(5), r(5))),
    ("l1_loss", lambda a, b: ag.l1_loss(a, b), (distinct(4, 3), r(4, 3) * 0.01)),
    ("huber_loss", lambda a, b: ag.huber_loss(a, b), (r(4, 3) * 2, r(4, 3))),
    ("huber_loss delta", lambda a, b: ag.huber_loss(a, b, delta=0.5), (r(5) * 2, r(5))),
    ("cross_entropy", lambda a, y: ag.cross_entropy(a, y), (r(4, 5), np.array([0, 4, 2, 4]))),
    ("cross_entropy smoothing", lambda a, y: ag.cross_entropy(a, y, label_smoothing=0.1),
     (r(4, 5), np.array([1, 1, 3, 0]))),
    ("cross_entropy 1-D", lambda a: ag.cross_entropy(a, np.array(2)), (r(5),)),
    ("bce_with_logits", ag.binary_cross_entropy_with_logits, (r(4, 3) * 3, rng.random((4, 3)))),
    ("bce_with_logits 1-D", ag.binary_cross_entropy_with_logits, (r(6) * 3, rng.random(6))),
]


@pytest.mark.parametrize("name,f,inputs", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(name, f, inputs):
    assert gradcheck(f, inputs, check_forward_ad=True)


@pytest.mark.parametrize("enabled", [True, False])
def test_kernel_and_numpy_paths_agree(enabled, monkeypatch):
    """2-D float arrays take the engine kernels (when present); both paths pass gradcheck and agree."""
    x = r(5, 4) * 2
    labels = np.array([0, 3, 1, 1, 2])
    t = rng.random((5, 4))
    fns = [
        lambda a: a.relu(), lambda a: a.leaky_relu(0.1), lambda a: a.elu(0.5), lambda a: a.gelu(),
        lambda a: a.gelu("tanh"), lambda a: a.silu(), lambda a: a.sigmoid(), lambda a: a.tanh(),
        lambda a: a.softplus(), lambda a: ag.mse_loss(a, t.astype(a.dtype)),
        lambda a: ag.l1_loss(a, t.astype(a.dtype)), lambda a: ag.huber_loss(a, t.astype(a.dtype), 0.7),
        lambda a: ag.cross_entropy(a, labels, 0.2),
        lambda a: ag.binary_cross_entropy_with_logits(a, t.astype(a.dtype)),
    ]
    results = {}
    for flag in (True, False):
        monkeypatch.setattr(_kernels, "ENABLED", flag)
        for i, fn in enumerate(fns):
            for dtype in (np.float64, np.float32):
                xt = tensor(x.astype(dtype), requires_grad=True)
                y = fn(xt)
                assert y.dtype == dtype
                y.sum().backward()
                results[flag, i, dtype] = (y.data, xt.grad)
        if flag == enabled:
            for fn in fns:
                assert gradcheck(fn, (x,))
    for (flag, i, dtype), (v, g) in results.items():
        if flag:
            v2, g2 = results[False, i, dtype]
            tol = 1e-12 if dtype == np.float64 else 1e-5
            np.testing.assert_allclose(v, v2, rtol=tol, atol=tol)
            np.testing.assert_allclose(g, g2, rtol=tol, atol=tol)


def _grad_at(f, value):
    x = tensor(np.array(value, dtype=np.float64), requires_grad=True)
    f(x).sum().backward()
    return x.grad


def test_torch_conventions_at_kinks():
    zero = [0.0]
    assert _grad_at(lambda x: x.relu(), zero)[0] == 0.0
    assert _grad_at(lambda x: x.abs(), zero)[0] == 0.0
    assert _grad_at(lambda x: x.leaky_relu(0.1), zero)[0] == pytest.approx(0.1)
    assert _grad_at(lambda x: x.elu(0.5), zero)[0] == pytest.approx(0.5)
    assert _grad_at(lambda x: x ** 0, zero)[0] == 0.0
    assert _grad_at(lambda x: x.softplus(), [25.0])[0] == 1.0


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("mode", ["tape", "dual"])
def test_scalar_powers_follow_torch_at_signed_zeros(mode):
    """torch computes x ** 0.5 by sqrt and x ** -0.5 by 1 / sqrt: (-0.0) ** 0.5 is -0.0 and the
    derivative of x ** 0.5 there is -inf (numpy's power gave +0.0 and +inf)."""
    x = np.array([-0.0, 0.0, 4.0])
    cases = [(0.5, [-0.0, 0.0, 2.0], [-np.inf, np.inf, 0.25]),
             (-0.5, [-np.inf, np.inf, 0.5], [-np.inf, -np.inf, -0.0625]),
             (1.5, [0.0, 0.0, 8.0], [-0.0, 0.0, 3.0])]
    for b, value, deriv in cases:
        if mode == "tape":
            t = tensor(x, requires_grad=True)
            y = t ** b
            y.sum().backward()
            got_value, got_deriv = y.data, t.grad
        else:
            d = ag.Dual(x, np.ones(3)) ** b
            got_value, got_deriv = d.primal, d.tangent
        for got, want in ((got_value, value), (got_deriv, deriv)):
            np.testing.assert_array_equal(got[2:], want[2:])
            np.testing.assert_array_equal(np.signbit(got[:2]), np.signbit(want[:2]), err_msg=f"b={b}")
            np.testing.assert_array_equal(np.isinf(got[:2]), np.isinf(want[:2]), err_msg=f"b={b}")


def test_max_splits_ties_equally():
    np.testing.assert_allclose(_grad_at(lambda x: x.max(), [1.0, 3.0, 3.0]), [0.0, 0.5, 0.5])
    np.testing.assert_allclose(_grad_at(lambda x: x.min(axis=1), [[1.0, 1.0, 1.0], [0.0, 2.0, 3.0]]),
                               [[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    a = tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = tensor([2.0, 2.0, 2.0], requires_grad=True)
    ag.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(b.grad, [1.0, 0.5, 0.0])
    # forward mode averages the tangents of ties the same way
    _, t = ag.jvp(lambda x: x.max(), np.array([1.0, 3.0, 3.0]), np.array([5.0, 2.0, 4.0]))
    assert t == pytest.approx(3.0)


def test_activation_values():
    x = np.linspace(-4, 4, 17)
    erf = np.vectorize(math.erf)
    sig = 1 / (1 + np.exp(-x))
    checks = {
        "relu": (ag.relu(x), np.maximum(x, 0)),
        "leaky_relu": (ag.leaky_relu(x), np.where(x > 0, x, 0.01 * x)),
        "elu": (ag.elu(x), np.where(x > 0, x, np.exp(x) - 1)),
        "gelu": (ag.gelu(x), 0.5 * x * (1 + erf(x / math.sqrt(2)))),
        "gelu_tanh": (ag.gelu(x, "tanh"),
                      0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
        "silu": (ag.silu(x), x * sig),
        "sigmoid": (ag.sigmoid(x), sig),
        "softplus": (ag.softplus(x), np.log1p(np.exp(x))),
        "softplus beta": (ag.softplus(x, beta=2.0, threshold=4.0),
                          np.where(2 * x > 4, x, np.log1p(np.exp(2 * x)) / 2)),
    }
    for name, (got, want) in checks.items():
        np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-14, err_msg=name)
    big = ag.sigmoid(np.array([-800.0, 800.0]))
    np.testing.assert_array_equal(big.data, [0.0, 1.0])


def test_softmax_is_stable():
    x = tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1000.0, -1000.0]], requires_grad=True)
    s = x.softmax()
    ls = x.log_softmax()
    assert np.isfinite(s.data).all() and np.isfinite(ls.data).all()
    np.testing.assert_allclose(s.data.sum(axis=1), [1.0, 1.0])
    np.testing.assert_allclose(ls.data[1], np.log([1 / 3] * 3))
    ls.sum().backward()
    assert np.isfinite(x.grad).all()


@pytest.mark.parametrize("shape, axis", [((3, 0), 1), ((0, 3), 0), ((0, 3), 1), ((2, 0, 4), 1)])
def test_softmax_over_an_empty_axis_is_empty(shape, axis):
    """torch returns an empty tensor; np.max over the empty axis raised instead."""
    x = tensor(np.zeros(shape), requires_grad=True)
    for f in (ag.softmax, ag.log_softmax):
        y = f(x, axis=axis)
        assert y.shape == shape
        y.sum().backward()
        assert x.grad.shape == shape
        d = f(ag.Dual(np.zeros(shape), np.ones(shape)), axis=axis)
        assert d.primal.shape == shape and d.tangent.shape == shape


def test_loss_values():
    logits = r(4, 5)
    labels = np.array([0, 4, 2, 4])
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    want = -lp[np.arange(4), labels].mean()
    assert ag.cross_entropy(logits, labels).item() == pytest.approx(want, rel=1e-12)
    eps = 0.2
    q = np.full((4, 5), eps / 5)
    q[np.arange(4), labels] += 1 - eps
    assert ag.cross_entropy(logits, labels, eps).item() == pytest.approx(-(q * lp).sum(1).mean(), rel=1e-12)
    x, t = r(3, 2) * 3, rng.random((3, 2))
    bce = -(t * np.log(1 / (1 + np.exp(-x))) + (1 - t) * np.log(1 - 1 / (1 + np.exp(-x)))).mean()
    assert ag.binary_cross_entropy_with_logits(x, t).item() == pytest.approx(bce, rel=1e-12)
    d = np.array([0.2, -3.0, 1.5])
    assert ag.huber_loss(d, np.zeros(3)).item() == pytest.approx((0.02 + 2.5 + 1.0) / 3)
    assert ag.l1_loss(d, np.zeros(3)).item() == pytest.approx(4.7 / 3)
    assert ag.mse_loss(d, np.zeros(3)).item() == pytest.approx((0.04 + 9 + 2.25) / 3)
    assert ag.mse_loss(d, np.zeros(3)).shape == ()


def test_cross_entropy_rejects_bad_labels():
    with pytest.raises(IndexError):
        ag.cross_entropy(r(2, 3), np.array([0, 3]))
    with pytest.raises(TypeError):
        ag.cross_entropy(r(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(ValueError):
        ag.cross_entropy(r(2, 3), np.array([0, 1, 2]))


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan")])
def test_huber_loss_rejects_a_delta_that_is_not_positive(delta):
    with pytest.raises(ValueError, match="delta > 0"):
        ag.huber_loss(r(3), r(3), delta=delta)


def test_astype_casts_gradient_back():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x.float()
    assert y.dtype == np.float32
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_cross_entropy_labels_as_tensor():
    x = tensor(r(3, 4), requires_grad=True)
    loss = ag.cross_entropy(x, tensor(np.array([3, 0, 1])))
    loss.backward()
    np.testing.assert_allclose(x.grad.sum(axis=1), 0.0, atol=1e-15)
