"""fastbp.kernels.activations against tests/reference/activations.py (and torch, if installed)."""
import math
import warnings

import numba
import numpy as np
import pytest

from fastbp.kernels import activations as K
from fastbp.kernels import codes
from tests.reference import activations as ref

DTYPES = [np.float64, np.float32]
ACTS = sorted(codes.ACTIVATION_CODES.items(), key=lambda kv: kv[1])
ACT_IDS = [name for name, _ in ACTS]
ACT_CODES = [code for _, code in ACTS]
ALPHA = {codes.LEAKY_RELU: 0.01, codes.ELU: 0.7}     # ELU with alpha != 1 has a kink at 0 in its derivative
SHAPES = [(1, 1), (1, 257), (7, 3), (7, 17), (129, 129), (129, 257)]
LARGE = (129, 257)
assert LARGE[0] * LARGE[1] >= K.PARALLEL_MIN_ELEMENTS > 129 * 129   # (129, 257) takes the prange path


def alpha_of(act, dtype):
    return dtype(ALPHA.get(act, 0.0))


def assert_close(got, want, x, dtype, factor=8):
    """|got - want| <= c eps (|want| + 1 + |x|): the elementwise formulas' rounding, with an absolute
    part that grows with |x| where they cancel (x * cdf(x), 1 - tanh^2) and covers results near 0."""
    eps = np.finfo(dtype).eps
    x = np.asarray(x, dtype=np.float64)
    err = np.abs(np.asarray(got, dtype=np.float64) - want)
    bound = factor * eps * (np.abs(want) + 1.0 + np.abs(x))
    bad = ~(err <= bound)
    assert not bad.any(), (f"{bad.sum()} of {bad.size} out of tolerance; worst at x="
                           f"{x[bad][np.argmax(err[bad] / bound[bad])]}")


def inputs(shape, dtype, seed=0):
    """Normal(0, 3) values plus the points where branches switch."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3.0
    special = np.array([0.0, -0.0, 1e-4, -1e-4, 19.5, 20.0, 20.5, -25.0, 8.0, -8.0])
    flat = x.reshape(-1)
    flat[:min(flat.size, special.size)] = special[:flat.size]
    return x.astype(dtype)


def forward(Z0, act, alpha, bias=None):
    dtype = Z0.dtype
    Z = Z0.copy()
    A = np.empty_like(Z)
    K.bias_act_forward(Z, np.empty(0, dtype) if bias is None else bias, act, alpha, A)
    return Z, A


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_bias_act_forward_matches_reference(dtype, act, shape):
    rng = np.random.default_rng(1)
    Z0 = inputs(shape, dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    alpha = alpha_of(act, dtype)
    Z, A = forward(Z0, act, alpha, bias)
    np.testing.assert_array_equal(Z, Z0 + bias)                 # the pre-activation is kept, exactly
    assert A.dtype == dtype
    assert_close(A, ref.forward(Z.astype(np.float64), act, float(alpha)), Z, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_act_backward_matches_reference(dtype, act, shape):
    rng = np.random.default_rng(2)
    alpha = alpha_of(act, dtype)
    Z, A = forward(inputs(shape, dtype), act, alpha)
    G = rng.standard_normal(shape).astype(dtype)
    out = np.full_like(G, np.nan)
    K.act_backward(G, Z, A, act, alpha, out)
    assert out.dtype == dtype
    want = G.astype(np.float64) * ref.derivative(Z.astype(np.float64), act, float(alpha))
    # one more rounding (the product with G) than the derivative itself
    assert_close(out, want, Z * G.astype(np.float64), dtype, factor=12)


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_act_backward_matches_central_differences(act):
    """float64: the kernel's derivative equals (f(x + h) - f(x - h)) / 2h of the kernel's forward."""
    dtype = np.float64
    x = inputs((7, 17), dtype, seed=3)
    x[0, :10] = [-30.0, 19.0, 21.0, 6.0, -6.0, 1e-2, -1e-2, 0.5, -0.5, 3.0]   # saturation, both sides
    x[np.abs(x) < 1e-3] = 0.5                        # of softplus's threshold; away from the kinks at 0
    alpha = alpha_of(act, dtype)
    h = 1e-6
    _, up = forward(x + h, act, alpha)
    _, down = forward(x - h, act, alpha)
    numeric = (up - down) / (2 * h)
    Z, A = forward(x, act, alpha)
    out = np.empty_like(x)
    K.act_backward(np.ones_like(x), Z, A, act, alpha, out)
    np.testing.assert_allclose(out, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(7, 17), LARGE], ids=["serial", "parallel"])
@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_in_place_aliasing(dtype, act, shape):
    """A is Z (in-place activation) and out is G give the same values as separate arrays."""
    rng = np.random.default_rng(4)
    alpha = alpha_of(act, dtype)
    Z0 = inputs(shape, dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    Z, A = forward(Z0, act, alpha, bias)
    Zi = Z0.copy()
    K.bias_act_forward(Zi, bias, act, alpha, Zi)
    np.testing.assert_array_equal(Zi, A)

    G = rng.standard_normal(shape).astype(dtype)
    out = np.empty_like(G)
    K.act_backward(G, Z, A, act, alpha, out)
    K.act_backward(G, Z, A, act, alpha, G)
    np.testing.assert_array_equal(G, out)


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_parallel_path_equals_row_by_row(dtype, act):
    """The prange path computes exactly what the serial path computes for each row."""
    rng = np.random.default_rng(5)
    alpha = alpha_of(act, dtype)
    Z0 = inputs(LARGE, dtype)
    bias = rng.standard_normal(LARGE[1]).astype(dtype)
    G = rng.standard_normal(LARGE).astype(dtype)
    Z, A = forward(Z0, act, alpha, bias)
    out = np.empty_like(G)
    K.act_backward(G, Z, A, act, alpha, out)
    for i in (0, 64, 128):
        Zr, Ar = forward(Z0[i:i + 1], act, alpha, bias)
        np.testing.assert_array_equal(Ar[0], A[i])
        outr = np.empty_like(Zr)
        K.act_backward(G[i:i + 1], Zr, Ar, act, alpha, outr)
        np.testing.assert_array_equal(outr[0], out[i])


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_extreme_inputs_are_finite_and_warning_free(dtype, act):
    x = np.array([[100.0, -100.0, 1e4, -1e4, 0.0, 30.0, -30.0, 88.0, -88.0, 710.0, -710.0]], dtype=dtype)
    alpha = alpha_of(act, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z, A = forward(x, act, alpha)
        out = np.empty_like(x)
        K.act_backward(np.ones_like(x), Z, A, act, alpha, out)
        want_a = ref.forward(x.astype(np.float64), act, float(alpha))
        want_d = ref.derivative(x.astype(np.float64), act, float(alpha))
    assert np.isfinite(A).all() and np.isfinite(out).all()
    assert_close(A, want_a, x, dtype)
    assert_close(out, want_d, x, dtype)


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_nan_propagates(dtype, act):
    alpha = alpha_of(act, dtype)
    x = np.array([[np.nan, 1.0, -1.0]], dtype=dtype)
    Z, A = forward(x, act, alpha)
    assert np.isnan(A[0, 0]) and np.isfinite(A[0, 1:]).all()
    G = np.array([[1.0, np.nan, 1.0]], dtype=dtype)
    out = np.empty_like(G)
    K.act_backward(G, Z, A, act, alpha, out)
    assert np.isnan(out[0, 1]) and np.isfinite(out[0, 2])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_scalar_helpers_match_the_array_kernels(dtype):
    """act_scalar / act_grad_scalar give, bit for bit, what the array kernels give in the same
    dtype (so float32 helpers really compute in float32), and match the reference."""
    x = np.array([[-25.0, -3.0, -0.5, 0.0, 0.25, 2.0, 19.0, 21.0, 100.0]], dtype=dtype)
    for act in ACT_CODES:
        alpha = alpha_of(act, dtype)
        Z, A = forward(x, act, alpha)
        out = np.empty_like(x)
        K.act_backward(np.ones_like(x), Z, A, act, alpha, out)
        y = np.array([K.act_scalar(v, act, alpha) for v in x[0]])
        d = np.array([K.act_grad_scalar(v, act, alpha) for v in x[0]])
        np.testing.assert_array_equal(y.astype(dtype), A[0])
        np.testing.assert_array_equal(d.astype(dtype), out[0])
        assert_close(y, ref.forward(x[0].astype(np.float64), act, float(alpha)), x[0], dtype)
        assert_close(d, ref.derivative(x[0].astype(np.float64), act, float(alpha)), x[0], dtype)


@numba.njit   # not cached: Numba's cache would not notice edits to the kernels it calls
def layer(Z, bias, act, alpha, A, G, out):
    K.bias_act_forward(Z, bias, act, alpha, A)
    K.act_backward(G, Z, A, act, alpha, out)
    return K.act_scalar(Z[0, 0], act, alpha) + K.act_grad_scalar(Z[0, 0], act, alpha)


def test_kernels_are_callable_from_njit():
    Z0 = inputs((3, 5), np.float64)
    bias = np.linspace(-1, 1, 5)
    Z, A = Z0.copy(), np.empty_like(Z0)
    G, out = np.ones_like(Z0), np.empty_like(Z0)
    s = layer(Z, bias, codes.SILU, 0.0, A, G, out)
    want_z = Z0 + bias
    np.testing.assert_array_equal(Z, want_z)
    assert_close(A, ref.forward(want_z, codes.SILU), want_z, np.float64)
    assert_close(out, ref.derivative(want_z, codes.SILU), want_z, np.float64)
    assert s == pytest.approx(A[0, 0] + out[0, 0], rel=1e-15)


# ------------------------------------------- the vectorizable exp, expm1, log1p, erf

@numba.njit(error_model="numpy")   # not cached: a cache would not see kernel edits
def elementary(which, x, out):
    """Apply one of the activations module's inline elementary functions elementwise."""
    for i in range(x.size):
        v = x[i]
        if which == 0:
            out[i] = K.fast_exp(v)
        elif which == 1:
            out[i] = K.fast_expm1(v)
        elif which == 2:
            out[i] = K.fast_log1p_unit(v)
        else:
            out[i] = K._erf(v)


def sweep(dtype):
    rng = np.random.default_rng(8)
    x = np.concatenate([np.linspace(-800.0, 800.0, 200_001), rng.standard_normal(20_000) * 3,
                        rng.standard_normal(2_000) * 1e-6, [0.0, -0.0, np.inf, -np.inf, np.nan]])
    return x.astype(dtype)


def assert_ulps(got, want, dtype, ulps):
    """Relative error within ``ulps`` eps where the result is a normal number; subnormal results
    within one subnormal step; NaN, inf and 0 exactly."""
    info = np.finfo(dtype)
    got64 = got.astype(np.float64)
    normal = np.isfinite(want) & (np.abs(want) >= info.tiny) & (np.abs(want) <= info.max)
    rel = np.abs(got64[normal] - want[normal]) / np.abs(want[normal])
    assert rel.max() <= ulps * info.eps, rel.max() / info.eps
    sub = np.isfinite(want) & (np.abs(want) < info.tiny)
    assert (np.abs(got64[sub] - want[sub]) <= info.smallest_subnormal).all()
    rest = ~(normal | sub)                                 # NaN, and overflow to +-inf
    rounded = want[rest].astype(dtype)
    np.testing.assert_array_equal(got[rest], rounded)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_fast_exp_and_expm1_accuracy(dtype):
    x = sweep(dtype)
    x64 = x.astype(np.float64)
    ulps = 1.5 if dtype == np.float32 else 3.0      # float64 is checked against numpy's own ~1 ulp exp
    with np.errstate(over="ignore"):
        for which, fn in ((0, np.exp), (1, np.expm1)):
            out = np.empty_like(x)
            elementary(which, x, out)
            assert_ulps(out, fn(x64), dtype, ulps)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_fast_log1p_unit_accuracy(dtype):
    z = np.concatenate([np.linspace(0.0, 1.0, 100_001), np.geomspace(1e-30, 1e-3, 1000), [np.nan]]).astype(dtype)
    out = np.empty_like(z)
    elementary(2, z, out)
    assert_ulps(out, np.log1p(z.astype(np.float64)), dtype, 2.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_erf_accuracy(dtype):
    """erf (exact GELU): float32 within 1.5 ulp, relatively and of 1 absolutely; float64 is libm's."""
    x = np.concatenate([np.linspace(-12.0, 12.0, 240_001), np.geomspace(1e-30, 1.0, 2000),
                        [np.inf, -np.inf, np.nan]]).astype(dtype)
    out = np.empty_like(x)
    elementary(3, x, out)
    want = np.array([math.erf(v) for v in x.astype(np.float64)])
    if dtype == np.float64:
        np.testing.assert_array_equal(out, want)
        return
    eps = np.finfo(dtype).eps
    finite = np.isfinite(x)
    err = np.abs(out[finite].astype(np.float64) - want[finite])
    assert (err <= 1.5 * eps * np.minimum(np.abs(want[finite]), 1.0)).all()
    np.testing.assert_array_equal(out[~finite], want[~finite].astype(dtype))


# ------------------------------------------------------------------ torch, if installed

TORCH_FUNCS = {
    codes.IDENTITY: lambda t, F, x, a: x,
    codes.RELU: lambda t, F, x, a: F.relu(x),
    codes.LEAKY_RELU: lambda t, F, x, a: F.leaky_relu(x, negative_slope=a),
    codes.ELU: lambda t, F, x, a: F.elu(x, alpha=a),
    codes.GELU: lambda t, F, x, a: F.gelu(x),
    codes.GELU_TANH: lambda t, F, x, a: F.gelu(x, approximate="tanh"),
    codes.SILU: lambda t, F, x, a: F.silu(x),
    codes.SIGMOID: lambda t, F, x, a: t.sigmoid(x),
    codes.TANH: lambda t, F, x, a: t.tanh(x),
    codes.SOFTPLUS: lambda t, F, x, a: F.softplus(x, beta=1.0, threshold=20.0),
}


@pytest.mark.parametrize("act", ACT_CODES, ids=ACT_IDS)
def test_matches_torch_float64(act):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = inputs((7, 17), np.float64, seed=6)
    x[0, :6] = [0.0, 100.0, -100.0, 1e4, -1e4, 20.0]
    alpha = alpha_of(act, np.float64)
    G = np.random.default_rng(7).standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = TORCH_FUNCS[act](torch, F, xt, float(alpha))
    yt.backward(torch.tensor(G))
    Z, A = forward(x, act, alpha)
    out = np.empty_like(x)
    K.act_backward(G, Z, A, act, alpha, out)
    assert_close(A, yt.detach().numpy(), x, np.float64)
    grad = xt.grad.numpy() if xt.grad is not None else G
    assert_close(out, grad, x * G, np.float64, factor=12)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_relu_backward_bias_grad_matches_reference_and_the_two_kernels(dtype, shape):
    """One pass gives G * relu'(Z) and its column sums: close to the float64 reference, and
    bit for bit what ``act_backward`` then ``reductions.column_sums`` give (the backward pass
    takes either, so a model's gradients must not depend on which)."""
    from fastbp.kernels import reductions
    rng = np.random.default_rng(7)
    Z, A = forward(inputs(shape, dtype), codes.RELU, dtype(0))
    G0 = rng.standard_normal(shape).astype(dtype)
    G = G0.copy()
    db = np.full(shape[1], np.nan, dtype)
    K.relu_backward_bias_grad(G, Z, db)

    want = G0.astype(np.float64) * (Z > 0)
    np.testing.assert_array_equal(G, want.astype(dtype))      # a product with 0 or 1 is exact
    sums = want.sum(axis=0)
    bound = shape[0] * np.finfo(dtype).eps * np.abs(want).sum(axis=0) + np.finfo(dtype).tiny
    assert (np.abs(db - sums) <= bound).all()

    G2 = G0.copy()
    K.act_backward(G2, Z, A, codes.RELU, dtype(0), G2)
    db2 = np.empty_like(db)
    reductions.column_sums(G2, db2)
    assert G.tobytes() == G2.tobytes() and db.tobytes() == db2.tobytes()


def test_relu_backward_bias_grad_propagates_nan():
    Z = np.array([[np.nan, 1.0, -1.0], [1.0, 2.0, 3.0]])
    G = np.array([[1.0, 1.0, np.inf], [1.0, np.nan, 1.0]])
    db = np.empty(3)
    K.relu_backward_bias_grad(G, Z, db)
    # relu'(NaN) = 1 (NaN <= 0 is false), as in act_backward; inf * 0 = NaN
    assert G[0, 0] == 1.0 and np.isnan(G[0, 2]) and np.isnan(G[1, 1])
    assert db[0] == 2.0 and np.isnan(db[1]) and np.isnan(db[2])
