"""fastbp.kernels.losses against tests/reference/losses.py (and torch, if installed)."""
import warnings

import numba
import numpy as np
import pytest

from fastbp.kernels import codes
from fastbp.kernels import losses as K
from tests.reference import losses as ref

DTYPES = [np.float64, np.float32]
SHAPES = [(1, 1), (1, 257), (7, 3), (7, 17), (129, 129), (129, 257)]
ELEMENTWISE = ["mse", "l1", "huber", "bce"]
CODE = {"mse": codes.MSE, "l1": codes.L1, "huber": codes.HUBER, "bce": codes.BCE_WITH_LOGITS,
        "ce": codes.CROSS_ENTROPY}
HUBER_DELTAS = [1.0, 0.5, 2.0]
SMOOTHINGS = [0.0, 0.1, 0.3]


def make(shape, dtype, seed=0):
    """Predictions (~N(0, 2)), targets in [0, 1] (valid for BCE too) and labels."""
    rng = np.random.default_rng(seed)
    P = (rng.standard_normal(shape) * 2.0).astype(dtype)
    T = rng.uniform(0.0, 1.0, shape).astype(dtype)
    labels = rng.integers(0, shape[1], shape[0]).astype(np.int64)
    return P, T, labels


def run_kernel(name, P, T, labels, param):
    """(loss, dP) from the named kernel, param already in P's dtype."""
    dP = np.full_like(P, np.nan)
    if name == "mse":
        loss = K.mse_loss(P, T, dP)
    elif name == "l1":
        loss = K.l1_loss(P, T, dP)
    elif name == "huber":
        loss = K.huber_loss(P, T, param, dP)
    elif name == "bce":
        loss = K.bce_with_logits_loss(P, T, dP)
    else:
        loss = K.cross_entropy_loss(P, labels, param, dP)
    return loss, dP


def run_reference(name, P, T, labels, param):
    if name == "mse":
        return ref.mse(P, T)
    if name == "l1":
        return ref.l1(P, T)
    if name == "huber":
        return ref.huber(P, T, float(param))
    if name == "bce":
        return ref.bce_with_logits(P, T)
    return ref.cross_entropy(P, labels, float(param))


def check(name, dtype, loss, dP, want_loss, want_dP):
    """The loss is float64 math on the (possibly float32) inputs: float64-accurate either way.
    dP is rounded once to the dtype; its absolute error is bounded by the gradient's scale."""
    assert isinstance(loss, float)
    assert loss == pytest.approx(want_loss, rel=1e-12, abs=1e-15)
    assert dP.dtype == dtype
    eps = np.finfo(dtype).eps
    scale = np.abs(want_dP).max()
    np.testing.assert_allclose(dP, want_dP, rtol=4 * eps, atol=4 * eps * scale)


CASES = ([(name, None) for name in ("mse", "l1", "bce")]
         + [("huber", d) for d in HUBER_DELTAS] + [("ce", e) for e in SMOOTHINGS])
CASE_IDS = [name if p is None else f"{name}-{p}" for name, p in CASES]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_matches_reference(dtype, case, shape):
    name, param = case
    P, T, labels = make(shape, dtype)
    p = dtype(param or 0.0)
    loss, dP = run_kernel(name, P, T, labels, p)
    check(name, dtype, loss, dP, *run_reference(name, P, T, labels, p))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_dispatcher_matches_kernels(dtype, case):
    name, param = case
    P, T, labels = make((7, 17), dtype, seed=1)
    p = dtype(param or 0.0)
    loss, dP = run_kernel(name, P, T, labels, p)
    if name == "ce":
        T = np.empty((0, 0), dtype)                  # CE never reads T
    else:
        labels = np.empty(0, np.int64)               # the others never read labels
    dP2 = np.empty_like(P)
    loss2 = K.loss_value_and_grad(CODE[name], P, T, labels, p, dP2)
    assert loss2 == loss
    np.testing.assert_array_equal(dP2, dP)


def test_unknown_code_gives_nan():
    P, T, labels = make((2, 3), np.float64)
    assert np.isnan(K.loss_value_and_grad(99, P, T, labels, 0.0, np.empty_like(P)))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradient_matches_central_differences(case):
    """float64: dP equals (L(P + h e_k) - L(P - h e_k)) / 2h for every element k."""
    name, param = case
    P, T, labels = make((7, 5), np.float64, seed=2)
    d = P - T
    d[np.abs(d) < 1e-3] = 0.5                                   # l1's kink at 0
    if name == "huber":
        near = np.abs(np.abs(d) - param) < 1e-3                 # huber's switch at |d| = delta
        d[near] += 0.1
    P = T + d
    p = float(param or 0.0)
    _, dP = run_kernel(name, P, T, labels, p)
    h = 1e-6
    numeric = np.empty_like(P)
    for k in np.ndindex(P.shape):
        Pp, Pm = P.copy(), P.copy()
        Pp[k] += h
        Pm[k] -= h
        numeric[k] = (run_kernel(name, Pp, T, labels, p)[0] - run_kernel(name, Pm, T, labels, p)[0]) / (2 * h)
    np.testing.assert_allclose(dP, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_dP_may_alias_P(dtype, case):
    name, param = case
    P, T, labels = make((7, 17), dtype, seed=3)
    p = dtype(param or 0.0)
    loss, dP = run_kernel(name, P, T, labels, p)
    fn = {"mse": lambda X: K.mse_loss(X, T, X), "l1": lambda X: K.l1_loss(X, T, X),
          "huber": lambda X: K.huber_loss(X, T, p, X), "bce": lambda X: K.bce_with_logits_loss(X, T, X),
          "ce": lambda X: K.cross_entropy_loss(X, labels, p, X)}[name]
    X = P.copy()
    assert fn(X) == loss
    np.testing.assert_array_equal(X, dP)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_extreme_inputs_are_finite_and_warning_free(dtype, case):
    name, param = case
    P = np.array([[100.0, -100.0, 1e4, -1e4, 0.0],
                  [-1e4, 1e4, -100.0, 100.0, 3.0],
                  [1e4, 1e4, -1e4, -1e4, 1e4]], dtype=dtype)
    T = np.array([[1.0, 0.0, 0.0, 1.0, 0.5]] * 3, dtype=dtype)
    labels = np.array([1, 2, 0], dtype=np.int64)
    p = dtype(param or 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dP = run_kernel(name, P, T, labels, p)
        want_loss, want_dP = run_reference(name, P, T, labels, p)
    assert np.isfinite(loss) and np.isfinite(dP).all()
    check(name, dtype, loss, dP, want_loss, want_dP)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_nan_propagates(dtype, case):
    name, param = case
    P, T, labels = make((3, 4), dtype, seed=4)
    P[1, 2] = np.nan
    loss, dP = run_kernel(name, P, T, labels, dtype(param or 0.0))
    assert np.isnan(loss)
    if name == "ce":
        assert np.isnan(dP[1]).all() and np.isfinite(dP[[0, 2]]).all()   # the softmax spreads NaN over a row
    else:
        assert np.isnan(dP[1, 2]) and np.isfinite(np.delete(dP.ravel(), 1 * 4 + 2)).all()


def test_l1_gradient_of_zero_difference_is_zero():
    P = np.array([[1.0, 2.0, 3.0]])
    dP = np.empty_like(P)
    assert K.l1_loss(P, P.copy(), dP) == 0.0
    np.testing.assert_array_equal(dP, 0.0)


def test_cross_entropy_label_entry_keeps_precision_in_float32():
    """A confident correct row: p_y - 1 ~ -1e-6 must not be lost to float32 rounding of p_y."""
    P = np.array([[14.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    labels = np.array([0], dtype=np.int64)
    dP = np.empty_like(P)
    K.cross_entropy_loss(P, labels, np.float32(0.0), dP)
    _, want = ref.cross_entropy(P, labels)
    np.testing.assert_allclose(dP, want, rtol=2 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("shape", [(1, 1), (7, 17), (129, 257)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_cross_entropy_scratch_gives_the_same_bits(dtype, shape):
    """The float64 scratch (exact, longer, a float32 buffer's float64 view as the fused step
    passes, or too short and so replaced) changes nothing; its old contents do not matter."""
    P, _, labels = make(shape, dtype, seed=7)
    p = dtype(0.1)
    want_loss, want_dP = run_kernel("ce", P, None, labels, p)
    need = K.scratch_size(*shape)
    work32 = np.full(2 * need + 6, np.nan, np.float32)
    for scratch in (np.full(need, np.nan), np.full(need + 5, 1e300), work32[:2 * need].view(np.float64),
                    np.full(need - 1, np.nan)):
        dP = np.full_like(P, np.nan)
        assert K.cross_entropy_loss(P, labels, p, dP, scratch) == want_loss
        np.testing.assert_array_equal(dP, want_dP)
        dP = np.full_like(P, np.nan)
        assert K.loss_value_and_grad(codes.CROSS_ENTROPY, P, np.empty((0, 0), dtype), labels, p, dP,
                                     scratch) == want_loss
        np.testing.assert_array_equal(dP, want_dP)


@numba.njit   # not cached: Numba's cache would not notice edits to the kernels it calls
def step(P, T, no_T, labels, no_labels, dP):
    return (K.loss_value_and_grad(codes.CROSS_ENTROPY, P, no_T, labels, 0.1, dP)
            + K.loss_value_and_grad(codes.MSE, P, T, no_labels, 0.0, dP))


def test_kernels_are_callable_from_njit():
    P, T, labels = make((4, 3), np.float64, seed=5)
    dP = np.empty_like(P)
    total = step(P, T, np.empty((0, 0)), labels, np.empty(0, np.int64), dP)
    want = ref.cross_entropy(P, labels, 0.1)[0] + ref.mse(P, T)[0]
    assert total == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(dP, ref.mse(P, T)[1], rtol=1e-14)


# ------------------------------------------------------------------ torch, if installed

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_matches_torch_float64(case):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    name, param = case
    P, T, labels = make((7, 17), np.float64, seed=6)
    P[0, :4] = [100.0, -100.0, 1e4, -1e4]
    module = {"mse": lambda: nn.MSELoss(), "l1": lambda: nn.L1Loss(),
              "huber": lambda: nn.HuberLoss(delta=param), "bce": lambda: nn.BCEWithLogitsLoss(),
              "ce": lambda: nn.CrossEntropyLoss(label_smoothing=param)}[name]()
    Pt = torch.tensor(P, requires_grad=True)
    target = torch.tensor(labels) if name == "ce" else torch.tensor(T)
    lt = module(Pt, target)
    lt.backward()
    loss, dP = run_kernel(name, P, T, labels, float(param or 0.0))
    assert loss == pytest.approx(lt.item(), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(dP, Pt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype, gap", [(np.float32, 100.0), (np.float64, 710.0)], ids=["f32", "f64"])
def test_probability_gradients_below_the_smallest_normal_are_zero(dtype, gap):
    """Gradients that would be subnormal are flushed to 0 (they slow the backward pass);
    everything else still matches the reference."""
    tiny = np.finfo(dtype).tiny
    P = np.array([[0.0, -gap, 1.0], [2.0, 0.0, -gap]], dtype)
    labels = np.array([0, 1], np.int64)
    dP = np.empty_like(P)
    value = K.cross_entropy_loss(P, labels, 0.0, dP)
    want_value, want = ref.cross_entropy(P.astype(np.float64), labels, 0.0)
    assert value == pytest.approx(want_value, rel=1e-12)
    assert dP[0, 1] == 0 and dP[1, 2] == 0                       # softmax ~ exp(-gap) / B
    normal = np.abs(want) >= tiny
    np.testing.assert_allclose(dP[normal], want[normal], rtol=10 * np.finfo(dtype).eps)
    X = np.array([[-gap, 3.0]], dtype)
    T = np.array([[0.0, 1.0]], dtype)
    dX = np.empty_like(X)
    K.bce_with_logits_loss(X, T, dX)
    assert dX[0, 0] == 0                                          # sigmoid(-gap) / N
    assert not ((dP != 0) & (np.abs(dP) < tiny)).any() and not ((dX != 0) & (np.abs(dX) < tiny)).any()
