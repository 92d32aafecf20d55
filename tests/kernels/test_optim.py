"""fastbp.kernels.optim against the numpy transcriptions in tests/reference/optim.py."""
import numba
import numpy as np
import pytest

from fastbp.kernels import codes
from fastbp.kernels import optim as K
from tests.reference import optim as ref

STEPS = 10
LARGE = K.PARALLEL_MIN_SIZE + 3          # takes the chunked prange path
SIZES = [1, 7, 1000, LARGE]
DTYPES = [np.float64, np.float32]

# (reference class, code, keyword arguments in the reference's/torch's names)
CASES = {
    "sgd": (ref.SGD, codes.SGD, dict(lr=0.1)),
    "sgd-momentum": (ref.SGD, codes.SGD, dict(lr=0.05, momentum=0.9)),
    "sgd-dampening-wd": (ref.SGD, codes.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "sgd-nesterov-wd": (ref.SGD, codes.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.02, nesterov=True)),
    "sgd-maximize-wd": (ref.SGD, codes.SGD, dict(lr=0.1, weight_decay=0.1, maximize=True)),
    "sgd-maximize-nesterov": (ref.SGD, codes.SGD, dict(lr=0.05, momentum=0.5, nesterov=True, maximize=True)),
    "rmsprop": (ref.RMSprop, codes.RMSPROP, dict(lr=0.01)),
    "rmsprop-momentum-wd": (ref.RMSprop, codes.RMSPROP, dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
    "rmsprop-centered": (ref.RMSprop, codes.RMSPROP, dict(lr=0.01, alpha=0.9, centered=True)),
    "rmsprop-centered-momentum": (ref.RMSprop, codes.RMSPROP,
                                  dict(lr=0.005, alpha=0.95, eps=1e-6, momentum=0.5, centered=True)),
    "adam": (ref.Adam, codes.ADAM, dict(lr=1e-2)),
    "adam-wd": (ref.Adam, codes.ADAM, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adamw": (ref.AdamW, codes.ADAMW, dict(lr=1e-2, weight_decay=1e-2)),
    "adamw-strong": (ref.AdamW, codes.ADAMW, dict(lr=3e-2, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.5)),
}

LAYOUT = {
    codes.SGD: ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"),
    codes.RMSPROP: ("lr", "alpha", "eps", "weight_decay", "momentum", "centered"),
    codes.ADAM: ("lr", "beta1", "beta2", "eps", "weight_decay"),
    codes.ADAMW: ("lr", "beta1", "beta2", "eps", "weight_decay"),
}
DEFAULTS = dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
                alpha=0.99, eps=1e-8, centered=False, betas=(0.9, 0.999))


def pack(code, kwargs, dtype):
    """The kernel's hyper array, and the reference's kwargs rounded to that dtype."""
    values = dict(DEFAULTS, **kwargs)
    values["beta1"], values["beta2"] = values["betas"]
    hyper = np.array([float(values[name]) for name in LAYOUT[code]], dtype=dtype)
    rounded = {}
    for key, value in kwargs.items():
        if isinstance(value, bool):
            rounded[key] = value
        elif isinstance(value, tuple):
            rounded[key] = tuple(float(dtype(v)) for v in value)
        else:
            rounded[key] = float(dtype(value))
    return hyper, rounded


def tolerances(dtype):
    """(rtol, atol as a fraction of the values' scale, at least 1): near-zero entries of a
    trajectory carry the rounding of the O(1) values they were computed from."""
    return (1e-12, 1e-13) if dtype == np.float64 else (1e-5, 2e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference_step_by_step(case, size, dtype):
    reference_class, code, kwargs = CASES[case]
    hyper, rounded = pack(code, kwargs, dtype)
    rng = np.random.default_rng(size)
    params = rng.standard_normal(size).astype(dtype)
    grads = np.empty(size, dtype=dtype)
    state = np.zeros((K.STATE_ROWS[code], size), dtype=dtype)
    reference = reference_class(params, **rounded)
    rtol, atol = tolerances(dtype)
    for t in range(1, STEPS + 1):
        g = rng.standard_normal(size).astype(dtype)
        grads[:] = g
        K.optimizer_step(code, params, grads, state, hyper, t)
        expected = reference.step(g)
        np.testing.assert_allclose(params, expected, rtol=rtol, atol=atol * max(1.0, np.abs(expected).max()),
                                   err_msg=f"step {t}")
        assert np.array_equal(grads, g), "the step modified grads"
    expected_state = ref.state_rows(reference)
    scale = np.abs(expected_state).max(axis=1, keepdims=True) + 1e-30
    np.testing.assert_allclose(state / scale, expected_state / scale, rtol=10 * rtol, atol=10 * atol)


@pytest.mark.parametrize("code", [codes.SGD, codes.RMSPROP, codes.ADAM, codes.ADAMW])
def test_empty_buffer_is_a_no_op(code):
    empty = np.zeros(0)
    hyper = np.full(len(LAYOUT[code]), 0.5)
    K.optimizer_step(code, empty, empty, np.zeros((K.STATE_ROWS[code], 0)), hyper, 1)
    assert K.clip_grad_norm(empty, 1.0, 2.0) == 0.0


def _run(code, kwargs, size, dtype, steps=5):
    hyper, _ = pack(code, kwargs, dtype)
    rng = np.random.default_rng(1)
    params = rng.standard_normal(size).astype(dtype)
    state = np.zeros((K.STATE_ROWS[code], size), dtype=dtype)
    grads = np.empty(size, dtype=dtype)
    norms = []
    for t in range(1, steps + 1):
        grads[:] = rng.standard_normal(size)
        norms.append(K.clip_grad_norm(grads, 50.0, 2.0))
        K.optimizer_step(code, params, grads, state, hyper, t)
    return params, state, norms


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("case", ["sgd-nesterov-wd", "rmsprop-centered-momentum", "adam-wd", "adamw"])
def test_bitwise_identical_on_one_and_two_threads(case):
    _, code, kwargs = CASES[case]
    size = 3 * K.PARALLEL_MIN_SIZE + 11
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run(code, kwargs, size, np.float32)
        numba.set_num_threads(2)
        two = _run(code, kwargs, size, np.float32)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one[0], two[0])
    assert np.array_equal(one[1], two[1])
    assert one[2] == two[2]


@numba.njit
def fused_clip_and_step(code, params, grads, state, hyper, step, max_norm):
    total = K.clip_grad_norm(grads, max_norm, 2.0)
    K.optimizer_step(code, params, grads, state, hyper, step)
    return total


@pytest.mark.parametrize("size", [7, LARGE])
def test_callable_from_jitted_code(size):
    hyper, _ = pack(codes.ADAM, dict(lr=1e-2, weight_decay=0.1), np.float64)
    rng = np.random.default_rng(2)
    p1 = rng.standard_normal(size)
    g1 = rng.standard_normal(size)
    p2, g2 = p1.copy(), g1.copy()
    s1 = np.zeros((2, size))
    s2 = np.zeros((2, size))
    for t in (1, 2, 3):
        total1 = fused_clip_and_step(codes.ADAM, p1, g1, s1, hyper, t, 1.0)
        total2 = K.clip_grad_norm(g2, 1.0, 2.0)
        K.optimizer_step(codes.ADAM, p2, g2, s2, hyper, t)
        assert total1 == total2
    assert np.array_equal(p1, p2) and np.array_equal(s1, s2)


# --------------------------------------------------------------------------- clipping

@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("size", [1, 1000, LARGE])
@pytest.mark.parametrize("norm_type", [2.0, np.inf, 1.0, 3.0])
@pytest.mark.parametrize("clips", [True, False], ids=["clip", "noclip"])
def test_clip_grad_norm_matches_numpy(clips, norm_type, size, dtype):
    rng = np.random.default_rng(3)
    grads = (rng.standard_normal(size) * 3).astype(dtype)
    norm = ref.total_norm(grads, norm_type)
    max_norm = 0.5 * norm if clips else 2.0 * norm + 1.0
    expected, expected_total = ref.clip_grad_norm(grads, max_norm, norm_type)
    original = grads.copy()
    total = K.clip_grad_norm(grads, max_norm, norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, expected_total, rtol=1e-12)
    if clips:
        rtol = 1e-14 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(grads, expected, rtol=rtol)
        assert ref.total_norm(grads, norm_type) <= max_norm * (1 + 1e-6)
    else:
        assert np.array_equal(grads, original)


@pytest.mark.parametrize("norm_type", [2.0, np.inf])
@pytest.mark.parametrize("size", [10, LARGE])
def test_clip_grad_norm_nan_gives_nan_and_leaves_grads(norm_type, size):
    grads = np.ones(size, np.float32)
    grads[size // 2] = np.nan
    before = grads.copy()
    assert np.isnan(K.clip_grad_norm(grads, 1.0, norm_type))
    assert np.array_equal(grads, before, equal_nan=True)
