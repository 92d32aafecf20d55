"""Optional: values and gradients against PyTorch itself (skipped when torch is not installed)."""
import numpy as np
import pytest

import fastbp.autograd as ag

torch = pytest.importorskip("torch")
F = torch.nn.functional

X = np.array([[-25.0, -2.5, -1.0, 0.0], [0.3, 1.0, 2.0, 25.0]])   # kinks and the softplus threshold

UNARY = [
    ("relu", lambda a: a.relu(), F.relu),
    ("leaky_relu", lambda a: ag.leaky_relu(a, 0.2), lambda t: F.leaky_relu(t, 0.2)),
    ("elu", lambda a: ag.elu(a, 0.7), lambda t: F.elu(t, 0.7)),
    ("gelu", lambda a: a.gelu(), F.gelu),
    ("gelu_tanh", lambda a: a.gelu("tanh"), lambda t: F.gelu(t, approximate="tanh")),
    ("silu", lambda a: a.silu(), F.silu),
    ("sigmoid", lambda a: a.sigmoid(), torch.sigmoid),
    ("tanh", lambda a: a.tanh(), torch.tanh),
    ("softplus", lambda a: a.softplus(), F.softplus),
    ("softplus beta", lambda a: ag.softplus(a, 2.0, 3.0), lambda t: F.softplus(t, beta=2.0, threshold=3.0)),
    ("abs", lambda a: abs(a), torch.abs),
    ("max", lambda a: a.max(), torch.max),
    ("amax axis", lambda a: a.abs().max(axis=1), lambda t: torch.amax(t.abs(), dim=1)),
    ("softmax", lambda a: a.softmax() * 3.0, lambda t: torch.softmax(t, -1) * 3.0),
    ("log_softmax", lambda a: a.log_softmax(axis=0) ** 2, lambda t: torch.log_softmax(t, 0) ** 2),
    ("maximum", lambda a: ag.maximum(a, 0.0), lambda t: torch.maximum(t, torch.zeros_like(t))),
    ("pow 2 and 3", lambda a: a ** 2 + a ** 3, lambda t: t ** 2 + t ** 3),
    ("pow 0.5 of |x| + 1", lambda a: (abs(a) + 1.0) ** 0.5, lambda t: (t.abs() + 1.0) ** 0.5),
]


@pytest.mark.parametrize("name,ours,theirs", UNARY, ids=[u[0] for u in UNARY])
def test_unary_matches_torch(name, ours, theirs):
    a = ag.tensor(X, requires_grad=True)
    t = torch.tensor(X, requires_grad=True)
    ya, yt = ours(a), theirs(t)
    ya.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(ya.data, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_pow_at_signed_zeros_matches_torch():
    x = np.array([-0.0, 0.0, 4.0])
    for b in (0.5, -0.5, 1.5, 2, -1, -2):
        a, t = ag.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ya, yt = a ** b, t ** b
        ya.sum().backward()
        yt.sum().backward()
        for ours, theirs in ((ya.data, yt.detach().numpy()), (a.grad, t.grad.numpy())):
            np.testing.assert_allclose(ours, theirs, rtol=1e-15, err_msg=f"b={b}")
            finite_or_inf = ~np.isnan(theirs)
            np.testing.assert_array_equal(np.signbit(ours)[finite_or_inf], np.signbit(theirs)[finite_or_inf],
                                          err_msg=f"b={b}")


def test_losses_match_torch():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)) * 2, rng.standard_normal((4, 3))
    p = rng.random((4, 3))
    labels = np.array([0, 2, 1, 2])
    pairs = [
        (lambda a, b: ag.mse_loss(a, b), F.mse_loss, y),
        (lambda a, b: ag.l1_loss(a, b), F.l1_loss, y),
        (lambda a, b: ag.huber_loss(a, b, 0.7), lambda a, b: F.huber_loss(a, b, delta=0.7), y),
        (lambda a, b: ag.binary_cross_entropy_with_logits(a, b), F.binary_cross_entropy_with_logits, p),
    ]
    for ours, theirs, target in pairs:
        a, b = ag.tensor(x, requires_grad=True), ag.tensor(target, requires_grad=True)
        ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(target, requires_grad=True)
        la, lt = ours(a, b), theirs(ta, tb)
        la.backward()
        lt.backward()
        assert la.item() == pytest.approx(lt.item(), rel=1e-12)
        np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-12, atol=1e-15)
    a, ta = ag.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    la = ag.cross_entropy(a, labels, label_smoothing=0.1)
    lt = F.cross_entropy(ta, torch.tensor(labels), label_smoothing=0.1)
    la.backward()
    lt.backward()
    assert la.item() == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-12, atol=1e-15)
