"""Bad input gets a TypeError/ValueError naming the argument, before any kernel runs,
and leaves the model exactly as it was."""
import numpy as np
import pytest

import fastbp as fb

rng = np.random.default_rng(0)
X32 = rng.standard_normal((6, 4)).astype(np.float32)
Y = np.array([0, 1, 2, 0, 1, 2])
NAN = X32.copy()
NAN[2, 1] = np.nan
INF = X32.copy()
INF[0, 0] = np.inf


@pytest.fixture
def model():
    return fb.MLP([4, 5, 3], activation="relu", dtype=np.float32, seed=0)


def assert_unchanged(call, exc, match, model, opt=None):
    params, grads = model.parameters().params.copy(), model.parameters().grads.copy()
    state = None if opt is None else opt.state.copy()
    with pytest.raises(exc, match=match):
        call()
    np.testing.assert_array_equal(model.parameters().params, params)
    np.testing.assert_array_equal(model.parameters().grads, grads)
    if opt is not None:
        np.testing.assert_array_equal(opt.state, state)
        assert opt.step_count == 0


CASES = [
    # (description, callable(model, opt), exception, message)
    ("forward list", lambda m, o: m.forward(X32.tolist()), TypeError, "x must be a numpy.ndarray"),
    ("forward float64", lambda m, o: m.forward(X32.astype(np.float64)), TypeError, "x must have dtype float32"),
    ("forward 1-D", lambda m, o: m.forward(X32[0]), ValueError, "x must be 2-D"),
    ("forward width", lambda m, o: m.forward(X32[:, :3].copy()), ValueError, "x must have 4 columns"),
    ("forward empty", lambda m, o: m.forward(X32[:0]), ValueError, "x is empty"),
    ("forward NaN", lambda m, o: m.forward(NAN), ValueError, "x contains NaN or Inf"),
    ("forward Inf", lambda m, o: m.forward(INF), ValueError, "x contains NaN or Inf"),
    ("forward strided", lambda m, o: m.forward(np.asfortranarray(X32)), ValueError, "x must be C-contiguous"),
    ("backward first", lambda m, o: m.backward(np.ones((6, 3), np.float32)), RuntimeError, "forward pass"),
    ("train_step labels range", lambda m, o: m.train_step(X32, Y + 1, fb.CrossEntropyLoss(), o),
     ValueError, r"yb must be class indices in \[0, 3\)"),
    ("train_step negative label", lambda m, o: m.train_step(X32, Y - 1, fb.CrossEntropyLoss(), o),
     ValueError, "yb must be class indices"),
    ("train_step float labels", lambda m, o: m.train_step(X32, Y.astype(np.float32), fb.CrossEntropyLoss(), o),
     TypeError, "yb must hold integer class labels"),
    ("train_step label rows", lambda m, o: m.train_step(X32, Y[:5], fb.CrossEntropyLoss(), o),
     ValueError, "yb has 5 labels"),
    ("train_step NaN x", lambda m, o: m.train_step(NAN, Y, fb.CrossEntropyLoss(), o), ValueError, "xb contains NaN"),
    ("train_step mse shape", lambda m, o: m.train_step(X32, np.ones((6, 2), np.float32), fb.MSELoss(), o),
     ValueError, "yb must have 3 columns"),
    ("train_step mse NaN", lambda m, o: m.train_step(X32, np.full((6, 3), np.nan, np.float32), fb.MSELoss(), o),
     ValueError, "yb contains NaN"),
    ("train_step mse dtype", lambda m, o: m.train_step(X32, np.ones((6, 3)), fb.MSELoss(), o),
     TypeError, "yb must have dtype float32"),
    ("train_step bce range", lambda m, o: m.train_step(X32, np.full((6, 3), 2, np.float32), fb.BCEWithLogitsLoss(), o),
     ValueError, r"lie in \[0, 1\]"),
    ("train_step bad loss", lambda m, o: m.train_step(X32, Y, "hinge", o), ValueError, "loss must be"),
    ("train_step bad optimizer", lambda m, o: m.train_step(X32, Y, fb.CrossEntropyLoss(), "adam"),
     TypeError, "optimizer must be"),
    ("fit y rows", lambda m, o: m.fit(X32, Y[:4], optimizer=o), ValueError, "X has 6 rows but y has 4"),
    ("fit strings", lambda m, o: m.fit(np.array([["a"] * 4] * 6), Y, optimizer=o), TypeError,
     "X must hold real numbers"),
    ("fit NaN", lambda m, o: m.fit(NAN, Y, optimizer=o), ValueError, "X contains NaN"),
    ("fit labels range", lambda m, o: m.fit(X32, Y * 5, optimizer=o), ValueError, "class indices"),
    ("fit epochs", lambda m, o: m.fit(X32, Y, optimizer=o, epochs=0), ValueError, "epochs must be >= 1"),
    ("fit batch_size", lambda m, o: m.fit(X32, Y, optimizer=o, batch_size=2.5), TypeError, "batch_size must be an int"),
    ("fit validation", lambda m, o: m.fit(X32, Y, optimizer=o, validation_data=X32), TypeError, "validation_data"),
    ("fit validation width", lambda m, o: m.fit(X32, Y, optimizer=o, validation_data=(X32[:, :2], Y)),
     ValueError, r"validation_data\[0\] must have 4 columns"),
    ("fit empty", lambda m, o: m.fit(X32[:0], Y[:0], optimizer=o), ValueError, "X is empty"),
    ("predict width", lambda m, o: m.predict(np.ones((2, 5))), ValueError, "X must have 4 columns"),
    ("predict complex", lambda m, o: m.predict(np.ones((2, 4), complex)), TypeError, "X must hold real numbers"),
    ("predict NaN", lambda m, o: m.predict(NAN), ValueError, "X contains NaN or Inf"),
    ("predict Inf float64", lambda m, o: m.predict(INF.astype(np.float64)), ValueError, "X contains NaN or Inf"),
    ("predict NaN list", lambda m, o: m.predict(NAN.tolist()), ValueError, "X contains NaN or Inf"),
    ("predict overflow", lambda m, o: m.predict(np.full((2, 4), 1e39)), ValueError,
     "X holds values beyond the range of float32"),
    ("fit overflow", lambda m, o: m.fit(np.full((6, 4), -1e39), Y, optimizer=o), ValueError,
     "X holds values beyond the range of float32"),
    ("fit mse target overflow", lambda m, o: m.fit(X32, np.full((6, 3), 1e40), loss="mse", optimizer=o),
     ValueError, "y holds values beyond the range of float32"),
    ("fit validation labels", lambda m, o: m.fit(X32, Y, optimizer=o, validation_data=(X32, Y + 5)),
     ValueError, r"validation_data\[1\] must be class indices"),
    ("evaluate labels", lambda m, o: m.evaluate(X32, Y + 3), ValueError, "class indices"),
]


@pytest.mark.parametrize("desc, call, exc, match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_and_model_unchanged(model, desc, call, exc, match):
    opt = fb.optim.Adam(model.parameters())
    assert_unchanged(lambda: call(model, opt), exc, match, model, opt)


def test_backward_checks_after_forward(model):
    model.forward(X32)
    assert_unchanged(lambda: model.backward(np.ones((5, 3), np.float32)), ValueError, "dout has 5 rows",
                     model)
    assert_unchanged(lambda: model.backward(np.ones((6, 3))), TypeError, "dout must have dtype float32", model)
    assert_unchanged(lambda: model.backward(np.full((6, 3), np.nan, np.float32)), ValueError,
                     "dout contains NaN", model)


def test_non_finite_forward_leaves_no_forward_pass_to_backpropagate(model):
    """The input slot is overwritten while staging: backward must then refuse, not use it."""
    model.forward(X32)
    assert_unchanged(lambda: model.forward(NAN), ValueError, "x contains NaN or Inf", model)
    assert_unchanged(lambda: model.backward(np.ones((6, 3), np.float32)), RuntimeError, "forward pass", model)


def test_a_refused_train_step_leaves_the_last_forward_pass(model):
    """The compiled step checks the labels and xb before it writes anything (xb is read in
    place, not staged in the workspace): a step refused for its labels or for a NaN in xb
    leaves the last forward pass to backpropagate."""
    opt = fb.optim.SGD(model.parameters(), lr=0.1)
    dout = np.ones((6, 3), np.float32)
    model.forward(X32)
    model.backward(dout)
    want = model.parameters().grads.copy()
    model.forward(X32)
    assert_unchanged(lambda: model.train_step(X32[::-1].copy(), Y + 1, fb.CrossEntropyLoss(), opt), ValueError,
                     r"yb must be class indices in \[0, 3\), got values in \[1, 3\]", model, opt)
    assert_unchanged(lambda: model.train_step(NAN, Y, fb.CrossEntropyLoss(), opt), ValueError,
                     "xb contains NaN or Inf", model, opt)
    model.backward(dout)
    np.testing.assert_array_equal(model.parameters().grads, want)


def test_optimizer_of_another_model_is_rejected(model):
    other = fb.MLP([4, 5, 3], dtype=np.float32, seed=1)
    opt = fb.optim.SGD(other.parameters(), lr=0.1)
    assert_unchanged(lambda: model.train_step(X32, Y, fb.CrossEntropyLoss(), opt), ValueError,
                     "another model", model)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: fb.MLP([4]), ValueError, "sizes must be"),
    (lambda: fb.MLP([4, 0, 3]), ValueError, "out_features must be >= 1"),
    (lambda: fb.MLP([4, 3], activation="swish"), ValueError, "activation must be one of"),
    (lambda: fb.MLP([4, 3], dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (lambda: fb.Sequential(fb.Linear(4, 3), fb.Linear(5, 2)), ValueError, "receives 3 features"),
    (lambda: fb.Sequential(fb.ReLU()), ValueError, "at least one Linear"),
    (lambda: fb.Sequential(fb.Linear(4, 3), "relu"), TypeError, r"layers\[1\] must be a fastbp layer"),
    (lambda: fb.Linear(4, 3, init="orthogonal"), ValueError, "init must be one of"),
    (lambda: fb.GELU(approximate="fast"), ValueError, "approximate must be"),
    (lambda: fb.CrossEntropyLoss(label_smoothing=1.5), ValueError, "label_smoothing must be <= 1"),
    (lambda: fb.HuberLoss(delta=0), ValueError, "delta must be > 0"),
    (lambda: fb.Sequential(fb.Linear(4, 5), fb.LeakyReLU(1e39), fb.Linear(5, 3)), ValueError,
     r"Linear\(4→5\) \+ LeakyReLU: its constant 1e\+39 is not finite in float32"),
    (lambda: fb.Sequential(fb.Linear(4, 5), fb.ReLU(), fb.ELU(-1e39)), ValueError, "ELU: its constant -1e.39 is not"),
])
def test_bad_construction(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_a_layer_object_belongs_to_one_model_and_one_position():
    """Layers hold views into their model's arena: reusing one left the first model (or
    position) reading the other's buffer, and Sequential(l, act, l) silently made two
    weight matrices where torch would tie one."""
    lin = fb.Linear(4, 4)
    fb.Sequential(lin, fb.ReLU(), fb.Linear(4, 2))
    with pytest.raises(ValueError, match=r"layers\[0\] .* already belongs to another model"):
        fb.Sequential(lin, fb.ReLU(), fb.Linear(4, 2))
    shared = fb.Linear(4, 4)
    with pytest.raises(ValueError, match=r"layers\[2\] is the same Linear object as layers\[0\]"):
        fb.Sequential(shared, fb.Tanh(), shared)
    relu = fb.ReLU()                               # parameter-free layers may repeat
    fb.Sequential(fb.Linear(4, 4), relu, fb.Linear(4, 4), relu)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_ndarray_subclasses_on_the_strict_paths():
    """np.matrix reached the compiled code (its reshape(-1) stays 2-D) and failed with a
    Numba typing error; subclasses are now read as plain arrays, masked arrays refused."""
    model = fb.MLP([4, 5, 3], dtype=np.float64, seed=0)
    opt = fb.optim.SGD(model.parameters(), lr=0.1)
    x = rng.standard_normal((6, 4))
    want = model.forward(x)
    np.testing.assert_array_equal(model.forward(np.matrix(x)), want)
    np.testing.assert_array_equal(model.backward(np.matrix(np.ones((6, 3)))), model.backward(np.ones((6, 3))))
    value, grad = fb.MSELoss()(np.matrix(want), np.zeros((6, 3)))
    plain_value, plain_grad = fb.MSELoss()(want, np.zeros((6, 3)))
    assert value == plain_value
    np.testing.assert_array_equal(grad, plain_grad)
    model.train_step(np.matrix(x), Y, fb.CrossEntropyLoss(), opt)
    assert opt.step_count == 1
    out = np.matrix(np.zeros((6, 3)))
    model.predict(x, out=out)
    np.testing.assert_array_equal(np.asarray(out), model.predict(x))
    masked = np.ma.masked_array(x, mask=x > 1)
    assert_unchanged(lambda: model.forward(masked), TypeError, "x must be a numpy.ndarray, got a masked array",
                     model, opt=None)


def test_a_large_constant_fits_a_float64_model():
    model = fb.Sequential(fb.Linear(4, 5), fb.LeakyReLU(1e39), fb.Linear(5, 3), dtype=np.float64)
    assert np.isfinite(model.predict(X32)).all()


def test_loss_call_validates():
    loss = fb.CrossEntropyLoss()
    with pytest.raises(TypeError, match="pred must be a numpy.ndarray"):
        loss([[1.0, 2.0]], np.array([0]))
    with pytest.raises(TypeError, match="pred must have dtype"):
        loss(np.ones((1, 2), np.int64), np.array([0]))
    with pytest.raises(ValueError, match="pred contains NaN"):
        loss(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="class indices"):
        loss(np.ones((1, 2)), np.array([2]))


def test_load_rejects_non_models(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, a=np.arange(3))
    with pytest.raises(ValueError, match="not a fastbp model file"):
        fb.load(bad)
    text = tmp_path / "t.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a fastbp model file"):
        fb.load(text)
    pickled = tmp_path / "p.npz"
    np.savez(pickled, format=np.array("fastbp-model"), version=np.array(1),
             architecture=np.array([{"evil": 1}], dtype=object), params=np.zeros(3))
    with pytest.raises(ValueError, match="not a fastbp model file"):
        fb.load(pickled)
    with pytest.raises(FileNotFoundError):
        fb.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("architecture", ['{"layers": 5}', '{"layers": [{"type": "Conv2d"}], "dtype": "float32"}',
                                          '{"layers": [{"type": "Linear"}], "dtype": "float32"}', '[1, 2]',
                                          '{"layers": [{"type": "Linear", "in_features": 4, "out_features": 3}]}'])
def test_load_rejects_malformed_architectures(tmp_path, architecture):
    path = tmp_path / "m.npz"
    np.savez(path, format=np.array("fastbp-model"), version=np.array(1), architecture=np.array(architecture),
             params=np.zeros(15, np.float32))
    with pytest.raises(ValueError, match="not a fastbp model file"):
        fb.load(path)


@pytest.mark.parametrize("batch_size", [1, 4, 256])
def test_predict_with_a_bad_row_leaves_out_untouched(model, batch_size):
    """The compiled predict checks all of X before its first chunk: no partial output."""
    out = np.full((6, 3), 7.0, np.float32)
    bad = X32.copy()
    bad[5, 3] = np.nan                      # in the last chunk at batch_size 1 and 4
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        model.predict(bad, batch_size=batch_size, out=out)
    np.testing.assert_array_equal(out, 7.0)
    expected = model.predict(X32, batch_size=batch_size)
    np.testing.assert_array_equal(model.predict(X32, batch_size=batch_size, out=out), expected)
