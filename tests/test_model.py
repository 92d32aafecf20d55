"""Sequential/MLP against the plain-numpy network reference and central differences."""
import numba
import numpy as np
import pytest

import fastbp as fb
from fastbp.kernels import program as P
from fastbp.layers import ACTIVATIONS
from tests.fused_step import step_fused_and_split
from tests.reference import network as ref
from tests.reference.numeric import central_difference

ACTS = ["identity", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "softplus"]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}


def make(sizes, act="tanh", dtype=np.float64, seed=0, **kw):
    return fb.MLP(sizes, activation=act, dtype=dtype, seed=seed, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("batch", [1, 7, 129])
def test_forward_and_backward_match_reference(dtype, act, batch):
    rng = np.random.default_rng(1)
    model = make([13, 17, 9, 5], act, dtype)
    x = rng.standard_normal((batch, 13)).astype(dtype)
    dout = rng.standard_normal((batch, 5)).astype(dtype)
    out = model.forward(x)
    dx = model.backward(dout)
    ops = ref.dense_ops(model)
    want, cache = ref.forward(ops, x)
    grads, want_dx = ref.backward(ops, cache, dout)
    np.testing.assert_allclose(out, want, **TOL[dtype])
    np.testing.assert_allclose(dx, want_dx, **TOL[dtype])
    linears = [layer for layer in model.layers if isinstance(layer, fb.Linear)]
    for layer, (dW, db) in zip(linears, grads):
        np.testing.assert_allclose(layer.weight_grad, dW, **TOL[dtype])
        np.testing.assert_allclose(layer.bias_grad, db, **TOL[dtype])


def test_standalone_activations_and_no_bias():
    """Activations not fused to a Linear (first layer, two in a row) and bias=False."""
    rng = np.random.default_rng(2)
    model = fb.Sequential(fb.Tanh(), fb.Linear(6, 8, bias=False), fb.ReLU(), fb.ELU(0.5),
                          fb.Linear(8, 3), fb.Identity(), dtype=np.float64, seed=3)
    x = rng.standard_normal((11, 6))
    dout = rng.standard_normal((11, 3))
    out, dx = model.forward(x), model.backward(dout)
    ops = ref.dense_ops(model)
    want, cache = ref.forward(ops, x)
    grads, want_dx = ref.backward(ops, cache, dout)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-13)
    assert model.layers[1].bias is None and model.layers[1].bias_grad is None
    np.testing.assert_allclose(model.layers[1].weight_grad, grads[1][0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("act", ACTS)
def test_three_layer_network_central_differences(act):
    """Every parameter gradient and the input gradient of a 3-layer net, float64."""
    rng = np.random.default_rng(4)
    model = make([5, 7, 6, 3], act, np.float64, seed=5)
    x = rng.standard_normal((4, 5))
    R = rng.standard_normal((4, 3))          # L = Σ out ⊙ R, so ∂L/∂out = R
    model.forward(x)
    dx = model.backward(R)

    def loss():
        return np.sum(model.predict(x) * R)

    np.testing.assert_allclose(model.parameters().grads, central_difference(loss, model.parameters().params),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, central_difference(loss, x), rtol=1e-6, atol=1e-8)


def test_weights_are_arena_views_and_pytorch_init():
    model = make([784, 256, 10], "relu", np.float32, seed=0)
    arena = model.parameters()
    lin = model.layers[0]
    assert lin.weight.shape == (256, 784) and lin.bias.shape == (256,)
    for view in (lin.weight, lin.bias):
        assert np.shares_memory(view, arena.params)
    for view in (lin.weight_grad, lin.bias_grad):
        assert np.shares_memory(view, arena.grads)
    bound = 1 / np.sqrt(784)
    assert np.abs(lin.weight).max() <= bound and np.abs(lin.weight).max() > 0.95 * bound
    assert np.abs(lin.bias).max() <= bound
    assert arena.params.size == 784 * 256 + 256 + 256 * 10 + 10


@pytest.mark.parametrize("init", ["kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal"])
def test_other_inits(init):
    model = fb.MLP([400, 300, 10], init=init, dtype=np.float64, seed=0)
    w = model.layers[0].weight
    want_std = {"kaiming_uniform": np.sqrt(2 / 400), "kaiming_normal": np.sqrt(2 / 400),
                "xavier_uniform": np.sqrt(2 / 700), "xavier_normal": np.sqrt(2 / 700)}[init]
    assert abs(w.std() / want_std - 1) < 0.02
    assert not model.layers[0].bias.any()


def test_same_seed_same_model_and_mlp_equals_sequential():
    a = make([10, 20, 3], "relu", np.float32, seed=7)
    b = fb.Sequential(fb.Linear(10, 20), fb.ReLU(), fb.Linear(20, 3), dtype=np.float32, seed=7)
    np.testing.assert_array_equal(a.parameters().params, b.parameters().params)
    c = make([10, 20, 3], "relu", np.float32, seed=8)
    assert not np.array_equal(a.parameters().params, c.parameters().params)


@pytest.mark.parametrize("loss_fn, target_kind", [
    (fb.CrossEntropyLoss(label_smoothing=0.1), "labels"), (fb.MSELoss(), "float"),
    (fb.HuberLoss(0.5), "float"), (fb.L1Loss(), "float"), (fb.BCEWithLogitsLoss(), "binary")])
@pytest.mark.parametrize("opt_name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_train_step_is_forward_loss_backward_step(loss_fn, target_kind, opt_name):
    """The fused step gives bitwise the same parameters as the separate calls."""
    rng = np.random.default_rng(6)
    kwargs = {"SGD": dict(lr=0.05, momentum=0.9, nesterov=True), "RMSprop": dict(lr=1e-3, momentum=0.5),
              "Adam": dict(lr=1e-3), "AdamW": dict(lr=1e-3)}[opt_name]
    fused, split = make([9, 12, 4], "gelu", np.float32, seed=1), make([9, 12, 4], "gelu", np.float32, seed=1)
    opt_f = getattr(fb.optim, opt_name)(fused.parameters(), **kwargs)
    opt_s = getattr(fb.optim, opt_name)(split.parameters(), **kwargs)
    for _ in range(3):
        x = rng.standard_normal((10, 9)).astype(np.float32)
        y = {"labels": rng.integers(0, 4, 10),
             "float": rng.standard_normal((10, 4)).astype(np.float32),
             "binary": rng.integers(0, 2, (10, 4)).astype(np.float32)}[target_kind]
        step_fused_and_split(fused, split, opt_f, opt_s, loss_fn, x, y)


@pytest.mark.parametrize("widths, segments, opt_name, opt_kw, model_kw", [
    ([600, 512, 600, 10], 1, "Adam", {}, {}), ([600, 512, 600, 10], 2, "Adam", {}, {}),
    ([600, 512, 600, 10], 1, "SGD", dict(momentum=0.9), {}),
    ([600, 512, 600, 10], 1, "RMSprop", dict(momentum=0.5), {}),
    ([600, 512, 600, 10], 1, "AdamW", {}, dict(batchnorm=True, dropout=0.2)),
    ([600, 512, 600, 10], 1, "Adam", {}, dict(bias=False)),
    ([256, 256, 256, 10], 1, "Adam", {}, {})])     # at two threads: gemm._grads_owned
def test_train_step_of_large_layers_is_the_separate_calls_bit_for_bit(widths, segments, opt_name, opt_kw,
                                                                      model_kw):
    """Layers large enough for the parallel update chunks (at two threads the fused step
    updates each thread's own rows: ``program._owned_update``; with BatchNorm's γ and β
    too), for every optimizer, also when the backward pass recomputes a checkpointed
    segment: the fused step is bitwise the separate calls."""
    from fastbp.kernels import optim as kernels_optim
    assert widths[0] * widths[1] >= kernels_optim.PARALLEL_MIN_SIZE
    rng = np.random.default_rng(2)
    fused, split = (make(widths, "relu", np.float32, seed=3, **model_kw) for _ in range(2))
    if segments > 1:
        fused.set_checkpoint(segments, batch_size=16)
    opt_f, opt_s = (getattr(fb.optim, opt_name)(m.parameters(), lr=1e-2, **opt_kw) for m in (fused, split))
    for _ in range(3):
        x = rng.standard_normal((16, widths[0])).astype(np.float32)
        step_fused_and_split(fused, split, opt_f, opt_s, fb.CrossEntropyLoss(), x, rng.integers(0, 10, 16))



FIRST_LAYERS = {"Linear": lambda: [], "Tanh": lambda: [fb.Tanh()], "Dropout": lambda: [fb.Dropout(0.25)],
                "BatchNorm1d": lambda: [fb.BatchNorm1d(250)]}


@pytest.mark.parametrize("first", sorted(FIRST_LAYERS))
@pytest.mark.parametrize("rows, segments", [(3, 1), (8, 1), (13, 1), (13, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_train_step_reads_the_batch_in_place(first, rows, segments, dtype):
    """``train_step`` reads xb where the caller holds it (``program._rows_of``) while
    ``forward`` stages x in the workspace: the same bits whatever reads the input first
    (a dense layer, also in the few-row region, an activation, dropout, BatchNorm), also when
    the backward pass recomputes the first segment; xb is left as it was, and a read-only xb
    gives the same step."""
    def make_model():
        return fb.Sequential(*FIRST_LAYERS[first](), fb.Linear(250, 200), fb.ReLU(), fb.Linear(200, 4),
                             dtype=dtype, seed=5)
    threads = fb.get_num_threads()
    fb.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        _train_in_place_and_staged(make_model, rows, segments, dtype)
        if first == "Linear" and rows <= 8 and fb.get_num_threads() == 2:
            m = make_model()
            m.predict(np.zeros((rows, 250), dtype), batch_size=rows)
            assert P._region_fits(m._program, np.int64(rows), m._work)      # the region read xb in place
    finally:
        fb.set_num_threads(threads)


@pytest.mark.parametrize("batch_size", [1, 5, 16, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_reads_a_writable_x_in_place_and_stages_a_read_only_one(batch_size, dtype):
    """``predict`` reads a writable X's chunks in place and stages a read-only X's chunk by
    chunk (``program._chunk_rows``): the same bits either way, close to a float64 numpy
    forward pass, X unchanged."""
    model = fb.Sequential(fb.Linear(250, 200), fb.ReLU(), fb.Linear(200, 3), dtype=dtype, seed=4)
    X = np.random.default_rng(batch_size).standard_normal((37, 250)).astype(dtype)
    X_before, X_readonly = X.copy(), X.copy()
    X_readonly.flags.writeable = False
    staged = model.predict(X_readonly, batch_size=batch_size)
    assert model.predict(X, batch_size=batch_size).tobytes() == staged.tobytes()
    np.testing.assert_array_equal(X, X_before)
    (W1, b1), (W2, b2) = [(layer.weight.astype(np.float64), layer.bias.astype(np.float64))
                          for layer in model.layers if hasattr(layer, "weight")]
    want = np.maximum(X.astype(np.float64) @ W1.T + b1, 0) @ W2.T + b2
    np.testing.assert_allclose(staged, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def _train_in_place_and_staged(make_model, rows, segments, dtype):
    rng = np.random.default_rng(rows)
    fused, split, readonly = make_model(), make_model(), make_model()
    for m in (fused, readonly):
        if segments > 1:
            m.set_checkpoint(segments, batch_size=rows)
    opt_f, opt_s, opt_r = (fb.optim.Adam(m.parameters(), lr=1e-2) for m in (fused, split, readonly))
    for _ in range(3):
        x = rng.standard_normal((rows, 250)).astype(dtype)
        y = rng.integers(0, 4, rows)
        x_before, x_readonly = x.copy(), x.copy()
        x_readonly.flags.writeable = False
        value_r = readonly.train_step(x_readonly, y, fb.CrossEntropyLoss(), opt_r)
        step_fused_and_split(fused, split, opt_f, opt_s, fb.CrossEntropyLoss(), x, y)
        assert np.isfinite(value_r)
        np.testing.assert_array_equal(readonly.parameters().params, fused.parameters().params)
        np.testing.assert_array_equal(readonly.state.params, fused.state.params)
        np.testing.assert_array_equal(opt_r.state, opt_f.state)
        np.testing.assert_array_equal(x, x_before)

def test_fit_reaches_95_percent_on_digits_and_views_survive(tmp_path):
    X, y = fb.data.load_digits()
    Xtr, Xte, ytr, yte = fb.data.train_test_split(X, y, test_size=0.2, seed=0)
    model = fb.MLP([64, 128, 64, 10], activation="relu", seed=0)
    lin = model.layers[0]
    w, params = lin.weight, model.parameters().params
    opt = fb.optim.Adam(model.parameters(), lr=1e-3)
    history = model.fit(Xtr, ytr, loss=fb.CrossEntropyLoss(), optimizer=opt, epochs=30, batch_size=32,
                        seed=0, validation_data=(Xte, yte))
    assert len(history["loss"]) == 30 and history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] >= 0.95
    assert model.evaluate(Xte, yte)["accuracy"] >= 0.95
    assert opt.step_count == 30 * -(-len(Xtr) // 32)
    assert np.shares_memory(lin.weight, model.parameters().params) and model.parameters().params is params
    np.testing.assert_array_equal(w, lin.weight)      # the old view sees the trained values
    path = tmp_path / "digits.npz"
    model.save(path)
    loaded = fb.load(path)
    np.testing.assert_array_equal(loaded.parameters().params, model.parameters().params)
    assert np.shares_memory(loaded.layers[0].weight, loaded.parameters().params)
    np.testing.assert_array_equal(loaded.predict(Xte), model.predict(Xte))


def _train_digits(threads, seed=0):
    previous = numba.get_num_threads()
    fb.set_num_threads(threads)
    try:
        X, y = fb.data.load_digits()
        model = fb.MLP([64, 300, 300, 10], activation="relu", seed=seed)
        model.fit(X, y, optimizer=fb.optim.Adam(model.parameters(), lr=1e-3), epochs=2, batch_size=256, seed=seed)
        return model.parameters().params.copy()
    finally:
        fb.set_num_threads(previous)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 threads")
def test_training_is_bitwise_deterministic_across_runs_and_thread_counts():
    one, two, again = _train_digits(1), _train_digits(2), _train_digits(2)
    np.testing.assert_array_equal(two, again)
    np.testing.assert_array_equal(one, two)


def test_predict_chunks_match_forward_and_eval_mode():
    """Chunked predict = one call: bit for bit on fastbp's own GEMM (each output element is
    computed the same way whatever the batch); to rounding where small products go to BLAS,
    whose AVX2 kernels round the rows of an odd-sized edge differently (OpenBLAS 0.3.31 on
    Zen 3: np.dot of a (7, 8) by (8, 16) matrix differs from the first 7 rows of a (1000, 8)
    by (8, 16) product in 11 of 112 elements; benchmarks/NOTES.md section 26)."""
    from fastbp.kernels import gemm
    rng = np.random.default_rng(3)
    model = make([8, 16, 3], "silu", np.float64)
    X = rng.standard_normal((1000, 8))
    chunked, whole = model.predict(X, batch_size=7), model.predict(X, batch_size=1000)
    if gemm.BLAS_SMALL:
        # two sums of the same 16 (then 8) terms in different orders: a few ulps of the largest
        np.testing.assert_allclose(chunked, whole, rtol=0, atol=16 * np.finfo(np.float64).eps * np.abs(whole).max())
    else:
        np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_allclose(model.predict(X[:5]), model.forward(X[:5]), rtol=1e-15)


def test_fit_regression_reports_mae_and_accepts_1d_targets():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1
    model = fb.MLP([3, 16, 1], activation="tanh", dtype=np.float64, seed=0)
    hist = model.fit(X, y, loss=fb.MSELoss(), optimizer=fb.optim.Adam(model.parameters(), lr=1e-2),
                     epochs=40, batch_size=20)
    assert hist["loss"][-1] < 0.1 * hist["loss"][0]
    assert "mae" in hist


def test_summary_and_repr():
    model = make([4, 3, 2], "relu", np.float32)
    text = model.summary(batch_size=8, print_fn=None)
    assert "total: 23 parameters" in text and "Linear" in text
    assert f"{model.activation_bytes(8)[1]:,} bytes of activations at batch 8" in text
    assert "ReLU" in repr(model)


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="n must be between"):
        fb.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an int"):
        fb.set_num_threads(1.5)
    with pytest.raises(TypeError, match="n must be an int"):
        fb.set_num_threads(np.True_)
    before = fb.get_num_threads()
    fb.set_num_threads(np.int64(1))          # numpy integers, as numba.set_num_threads takes them
    assert fb.get_num_threads() == 1
    fb.set_num_threads(before)


def test_activation_registry_covers_all_codes():
    assert set(ACTIVATIONS) | {"gelu_tanh"} == set(ACTS)


def test_optional_submodules_load_on_first_use():
    """``import fastbp`` leaves autograd, checkpointing (psutil) and the datasets for later;
    they and their names still resolve as attributes and in ``from fastbp import``."""
    import subprocess
    import sys
    code = ("import sys, fastbp as fb; "
            "lazy = ['fastbp.autograd', 'fastbp.checkpoint', 'fastbp.data', 'fastbp.diagnostics', 'psutil']; "
            "print(sorted(m for m in lazy if m in sys.modules)); "
            "from fastbp import tensor, no_grad; "
            "print(fb.checkpoint.Plan.__name__, fb.data.__name__, fb.diagnostics.__name__, tensor is fb.tensor)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "Plan fastbp.data fastbp.diagnostics True"]
    assert {"autograd", "checkpoint", "tensor", "no_grad"} <= set(dir(fb))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = fb.nothing
