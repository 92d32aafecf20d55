"""fastbp.optim: the torch-like optimizer classes and clip_grad_norm_."""
import io

import numpy as np
import pytest

from fastbp import optim
from fastbp.arena import ParameterArena
from fastbp.kernels import codes
from fastbp.kernels.optim import optimizer_step
from tests.reference import optim as ref


def make_arena(size=37, dtype=np.float64, seed=0):
    arena = ParameterArena(dtype)
    arena.reserve("w", (size - size // 3,))
    arena.reserve("b", (size // 3,))
    arena.allocate()
    arena.params[:] = np.random.default_rng(seed).standard_normal(size)
    return arena


def fill_grads(arena, rng):
    arena.grads[:] = rng.standard_normal(arena.size)
    return arena.grads.copy()


CONFIGS = [
    (optim.SGD, ref.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    (optim.SGD, ref.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    (optim.RMSprop, ref.RMSprop, dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
    (optim.Adam, ref.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    (optim.AdamW, ref.AdamW, dict(lr=0.01, weight_decay=0.1)),
]
CONFIG_IDS = ["sgd", "sgd-nesterov-max", "rmsprop", "adam", "adamw"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cls, reference_class, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_step_matches_reference(cls, reference_class, kwargs, dtype):
    arena = make_arena(dtype=dtype)
    opt = cls(arena, **kwargs)
    reference = reference_class(arena.params.astype(np.float64), **{
        k: (v if isinstance(v, (bool, tuple)) else float(dtype(v))) for k, v in kwargs.items()})
    rng = np.random.default_rng(1)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for t in range(1, 11):
        g = fill_grads(arena, rng)
        opt.step()
        assert opt.step_count == t
        assert np.array_equal(arena.grads, g), "step() modified the gradients"
        np.testing.assert_allclose(arena.params, reference.step(g), rtol=rtol, atol=rtol)


def test_defaults_are_torchs():
    arena = make_arena()
    assert optim.SGD(arena).param_groups[0] == dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                                                     nesterov=False, maximize=False)
    assert dict(optim.RMSprop(arena).param_groups[0]) == dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                                                               momentum=0.0, centered=False)
    assert dict(optim.Adam(arena).param_groups[0]) == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                                            weight_decay=0.0)
    assert optim.AdamW(arena).weight_decay == 1e-2
    np.testing.assert_array_equal(optim.Adam(arena).hyper, [1e-3, 0.9, 0.999, 1e-8, 0.0])
    np.testing.assert_array_equal(optim.SGD(arena, momentum=0.9, nesterov=True).hyper,
                                  [1e-3, 0.9, 0.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("cls, code, rows", [(optim.SGD, codes.SGD, 1), (optim.RMSprop, codes.RMSPROP, 3),
                                             (optim.Adam, codes.ADAM, 2), (optim.AdamW, codes.ADAMW, 2)])
def test_kernel_view(cls, code, rows):
    arena = make_arena(dtype=np.float32)
    opt = cls(arena)
    assert opt.code == code and opt.arena is arena
    assert opt.state.shape == (rows, arena.size) and opt.state.dtype == np.float32
    assert opt.state.flags.c_contiguous
    assert opt.hyper.dtype == np.float32 and opt.hyper.ndim == 1


@pytest.mark.parametrize("cls, kwargs, name", [
    (optim.SGD, dict(lr=-0.1), "lr"),
    (optim.SGD, dict(lr=float("nan")), "lr"),
    (optim.SGD, dict(momentum=-0.5), "momentum"),
    (optim.SGD, dict(weight_decay=-1), "weight_decay"),
    (optim.SGD, dict(nesterov=True), "nesterov"),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "nesterov"),
    (optim.RMSprop, dict(lr=-1), "lr"),
    (optim.RMSprop, dict(alpha=-0.1), "alpha"),
    (optim.RMSprop, dict(eps=-1e-8), "eps"),
    (optim.RMSprop, dict(momentum=-0.1), "momentum"),
    (optim.RMSprop, dict(weight_decay=-0.1), "weight_decay"),
    (optim.Adam, dict(lr=-1e-3), "lr"),
    (optim.Adam, dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    (optim.Adam, dict(betas=(0.9, -0.1)), r"betas\[1\]"),
    (optim.Adam, dict(eps=-1.0), "eps"),
    (optim.Adam, dict(weight_decay=-0.1), "weight_decay"),
    (optim.AdamW, dict(betas=(0.9, 1.5)), r"betas\[1\]"),
    (optim.AdamW, dict(weight_decay=-0.01), "weight_decay"),
    (optim.SGD, dict(lr=float("inf")), "lr must be finite"),
    (optim.SGD, dict(momentum=float("inf")), "momentum must be finite"),
    (optim.RMSprop, dict(eps=float("inf")), "eps must be finite"),
    (optim.Adam, dict(weight_decay=float("inf")), "weight_decay must be finite"),
])
def test_bad_hyper_parameters_raise_value_error(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(make_arena(), **kwargs)


def test_bad_types():
    for not_an_arena in (np.zeros(3), [np.zeros(3)], None):
        with pytest.raises(TypeError, match="ParameterArena"):
            optim.Adam(not_an_arena)
        with pytest.raises(TypeError, match="ParameterArena"):
            optim.clip_grad_norm_(not_an_arena, 1.0)
    with pytest.raises(TypeError, match="lr"):
        optim.SGD(make_arena(), lr="fast")
    with pytest.raises(TypeError, match="betas"):
        optim.Adam(make_arena(), betas=0.9)
    # numeric strings parsed as numbers before (float("0.1")); torch raises on them too
    with pytest.raises(TypeError, match="lr must be a real number, got '0.1'"):
        optim.SGD(make_arena(), lr="0.1")
    with pytest.raises(TypeError, match="momentum must be a real number"):
        optim.RMSprop(make_arena(), momentum="0.9")
    with pytest.raises(TypeError, match="betas must be a pair of real numbers"):
        optim.Adam(make_arena(), betas=("0.9", 0.999))
    assert optim.Adam(make_arena(), betas=np.array([0.8, 0.9], np.float32)).param_groups[0]["betas"] == (
        pytest.approx(0.8), pytest.approx(0.9))
    unallocated = ParameterArena(np.float32)
    unallocated.reserve("w", (3,))
    with pytest.raises(ValueError, match="allocated"):
        optim.SGD(unallocated)


def test_lr_change_takes_effect_and_hyper_is_updated_in_place():
    arena = make_arena()
    opt = optim.Adam(arena, lr=0.01)
    hyper = opt.hyper
    reference = ref.Adam(arena.params, lr=0.01)
    rng = np.random.default_rng(2)
    for t in range(8):
        if t == 3:
            opt.lr = 1e-3
            reference.lr = 1e-3
        if t == 5:
            opt.param_groups[0]["lr"] = 0.05         # torch-style schedulers write here
            reference.lr = 0.05
        g = fill_grads(arena, rng)
        opt.step()
        np.testing.assert_allclose(arena.params, reference.step(g), rtol=1e-12)
    assert opt.hyper is hyper and hyper[0] == 0.05 and opt.lr == 0.05
    opt.betas = (0.5, 0.6)
    np.testing.assert_array_equal(hyper[1:3], [0.5, 0.6])


def test_invalid_change_is_rejected_and_leaves_the_optimizer_unchanged():
    opt = optim.SGD(make_arena(), lr=0.1, momentum=0.9, nesterov=True)
    before = opt.hyper.copy()
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    with pytest.raises(ValueError, match="nesterov"):
        opt.momentum = 0.0
    with pytest.raises(ValueError, match="nesterov"):
        opt.param_groups[0]["dampening"] = 0.5
    with pytest.raises(ValueError, match="lr must be finite"):
        opt.lr = float("inf")
    assert opt.lr == 0.1 and opt.momentum == 0.9 and opt.dampening == 0.0
    np.testing.assert_array_equal(opt.hyper, before)


@pytest.mark.parametrize("cls, kwargs, name", [
    (optim.SGD, dict(lr=1e39), "lr"),
    (optim.Adam, dict(lr=1e39), "lr"),
    (optim.AdamW, dict(eps=1e300), "eps"),
    (optim.RMSprop, dict(weight_decay=-np.finfo(np.float64).min), "weight_decay"),
])
def test_hyper_parameters_must_be_finite_in_the_parameters_dtype(cls, kwargs, name):
    """1e39 is a float64 but no float32: float32 parameters would become Inf/NaN at the first step."""
    with pytest.raises(ValueError, match=f"{name} must be finite in float32"):
        cls(make_arena(dtype=np.float32), **kwargs)
    opt = cls(make_arena(dtype=np.float64), **kwargs)
    assert np.isfinite(opt.hyper).all()


def test_param_groups_keeps_extra_keys():
    opt = optim.SGD(make_arena())
    group = opt.param_groups[0]
    group.setdefault("initial_lr", group["lr"])
    assert group["initial_lr"] == 1e-3 and "initial_lr" in dict(group)
    assert len(opt.hyper) == 6


def roundtrip_npz(d):
    buffer = io.BytesIO()
    np.savez(buffer, **d)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("cls, reference_class, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_round_trip_continues_identically(cls, reference_class, kwargs):
    arena = make_arena(dtype=np.float32)
    opt = cls(arena, **kwargs)
    rng = np.random.default_rng(3)
    for _ in range(3):
        fill_grads(arena, rng)
        opt.step()
    saved = roundtrip_npz(opt.state_dict())
    saved_params = arena.params.copy()

    clone_arena = make_arena(dtype=np.float32, seed=99)
    clone_arena.params[:] = saved_params
    clone = cls(clone_arena)                    # default hyper-parameters: load must restore them
    state = clone.state
    clone.load_state_dict(saved)
    assert clone.state is state and clone.step_count == 3
    assert dict(clone.param_groups[0]) == dict(opt.param_groups[0])
    np.testing.assert_array_equal(clone.hyper, opt.hyper)
    for _ in range(4):
        g = fill_grads(arena, rng)
        clone_arena.grads[:] = g
        opt.step()
        clone.step()
    np.testing.assert_array_equal(clone_arena.params, arena.params)
    np.testing.assert_array_equal(clone.state, opt.state)


def test_state_dict_is_a_copy_and_checks_what_it_loads():
    arena = make_arena()
    opt = optim.Adam(arena)
    fill_grads(arena, np.random.default_rng(4))
    opt.step()
    d = opt.state_dict()
    assert set(d) == {"code", "step_count", "state", "lr", "betas", "eps", "weight_decay"}
    assert all(isinstance(v, (np.ndarray, int, float, bool)) for v in d.values())
    state = d["state"].copy()
    opt.step()
    np.testing.assert_array_equal(d["state"], state)
    with pytest.raises(ValueError, match="code"):
        optim.AdamW(make_arena()).load_state_dict(d)
    with pytest.raises(ValueError, match="shape"):
        optim.Adam(make_arena(size=10)).load_state_dict(d)


def test_advance_lets_a_fused_loop_run_the_kernel_itself():
    arena_a, arena_b = make_arena(), make_arena()
    a = optim.RMSprop(arena_a, momentum=0.9, centered=True)
    b = optim.RMSprop(arena_b, momentum=0.9, centered=True)
    rng = np.random.default_rng(5)
    for _ in range(4):
        arena_b.grads[:] = fill_grads(arena_a, rng)
        a.step()
        t = b.advance()
        optimizer_step(b.code, arena_b.params, arena_b.grads, b.state, b.hyper, t)
    assert a.step_count == b.step_count == 4
    np.testing.assert_array_equal(arena_a.params, arena_b.params)
    assert b.advance(3) == 7 and b.step_count == 7
    with pytest.raises(ValueError, match="n"):
        b.advance(-1)


def test_zero_grad_and_closure():
    arena = make_arena()
    opt = optim.SGD(arena, lr=0.5)
    arena.grads[:] = 1.0
    params = arena.params.copy()
    assert opt.step(closure=lambda: 42.0) == 42.0
    np.testing.assert_allclose(arena.params, params - 0.5)
    opt.zero_grad()
    assert not arena.grads.any()
    assert repr(opt).startswith("SGD(lr=0.5, momentum=0.0")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("norm_type", [2.0, float("inf"), "inf", 1])
@pytest.mark.parametrize("clips", [True, False], ids=["clip", "noclip"])
def test_clip_grad_norm_(clips, norm_type, dtype):
    arena = make_arena(size=1001, dtype=dtype)
    arena.grads[:] = np.random.default_rng(6).standard_normal(arena.size) * 2
    p = float(norm_type)
    norm = ref.total_norm(arena.grads, p)
    max_norm = norm / 3 if clips else norm * 2
    expected, expected_total = ref.clip_grad_norm(arena.grads, max_norm, p)
    total = optim.clip_grad_norm_(arena, max_norm, norm_type=norm_type)
    assert type(total) is float
    np.testing.assert_allclose(total, expected_total, rtol=1e-12)
    np.testing.assert_allclose(arena.grads, expected, rtol=1e-14 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("kwargs, name", [(dict(max_norm=-1.0), "max_norm"),
                                          (dict(max_norm=1.0, norm_type=0.0), "norm_type"),
                                          (dict(max_norm=1.0, norm_type=-2.0), "norm_type")])
def test_clip_grad_norm_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        optim.clip_grad_norm_(make_arena(), **kwargs)


# --------------------------------------------------------------------------- torch, when available

TORCH_CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.5)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name, kwargs", TORCH_CONFIGS)
def test_matches_torch(name, kwargs, dtype):
    torch = pytest.importorskip("torch")
    arena = make_arena(size=1000, dtype=dtype)
    weight = torch.nn.Parameter(torch.from_numpy(arena.params.copy()))
    torch_opt = getattr(torch.optim, name)([weight], **kwargs)
    opt = getattr(optim, name)(arena, **kwargs)
    rng = np.random.default_rng(7)
    rtol = 1e-13 if dtype == np.float64 else 1e-5   # measured: ~1e-15 and ~1e-6 (torch 2.13)
    for t in range(10):
        g = fill_grads(arena, rng)
        weight.grad = torch.from_numpy(g.copy())
        torch_opt.step()
        opt.step()
        np.testing.assert_allclose(arena.params, weight.detach().numpy(), rtol=rtol, atol=rtol,
                                   err_msg=f"step {t + 1}")


@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    arena = make_arena(size=1000)
    arena.grads[:] = np.random.default_rng(8).standard_normal(arena.size)
    weight = torch.nn.Parameter(torch.zeros(arena.size, dtype=torch.float64))
    weight.grad = torch.from_numpy(arena.grads.copy())
    expected = float(torch.nn.utils.clip_grad_norm_([weight], 2.0, norm_type=norm_type))
    total = optim.clip_grad_norm_(arena, 2.0, norm_type=norm_type)
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    np.testing.assert_allclose(arena.grads, weight.grad.numpy(), rtol=1e-12)
