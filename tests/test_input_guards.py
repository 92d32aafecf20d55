"""Bad state and unusual input found by fuzzing the public API (session 17): each is refused
with a TypeError/ValueError naming what is wrong, before anything is written."""
import json

import numpy as np
import pytest

import fastbp as fb
from fastbp import model as model_module

rng = np.random.default_rng(0)
X = rng.standard_normal((10, 4)).astype(np.float32)
Y = np.arange(10) % 3


def _snapshot(model, opt=None):
    return (model.arena.params.copy(), model.state.params.copy(), None if opt is None else opt.state.copy(),
            None if opt is None else opt.step_count, model._step)


def _assert_same(before, model, opt=None):
    after = _snapshot(model, opt)
    for a, b in zip(before, after):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b


def test_a_failed_workspace_allocation_keeps_the_model_usable(monkeypatch):
    model = fb.MLP([4, 8, 3], seed=0)
    want = model.predict(X)
    real = model_module.aligned_zeros

    def no_memory(n, dtype):
        if n > 10 ** 6:
            raise MemoryError("test")
        return real(n, dtype)

    monkeypatch.setattr(model_module, "aligned_zeros", no_memory)
    with pytest.raises(MemoryError):
        model.set_checkpoint(None, 10 ** 6)
    with pytest.raises(MemoryError):
        model.predict(np.zeros((10 ** 6, 4), np.float32), batch_size=10 ** 6)
    np.testing.assert_array_equal(model.predict(X), want)
    assert model.checkpoint_plan is None
    model.train_step(X, Y, "cross_entropy", fb.optim.SGD(model.parameters(), lr=0.1))


def test_predict_refuses_an_out_that_overlaps_x_but_accepts_x_itself():
    model = fb.Sequential(fb.Linear(4, 4), seed=0)
    A = rng.standard_normal((600, 4)).astype(np.float32)
    want = model.predict(A.copy())
    with pytest.raises(ValueError, match="out overlaps X"):
        model.predict(A[:-1], out=A[1:])
    np.testing.assert_array_equal(model.predict(A, out=A), want)


def test_fit_checks_callback_and_batchnorm_batches_before_training():
    model = fb.MLP([4, 8, 3], seed=0, batchnorm=True)
    opt = fb.optim.Adam(model.parameters())
    before = _snapshot(model, opt)
    with pytest.raises(TypeError, match="callback must be callable"):
        model.fit(X, Y, optimizer=opt, callback=3)
    with pytest.raises(ValueError, match="a batch of 1 row occurs"):
        model.fit(X[:9], Y[:9], optimizer=opt, batch_size=4, checkpoint="sqrt")
    assert model.checkpoint_plan is None
    _assert_same(before, model, opt)


def test_model_load_state_dict_checks_everything_before_writing():
    model = fb.MLP([4, 8, 3], seed=0, batchnorm=True)
    model.fit(X, Y, batch_size=5)
    before = _snapshot(model)
    good = model.state_dict()
    cases = [({"state": np.full(good["state"].shape, "a")}, TypeError, r"state_dict\['state'\] must hold real"),
             ({"params": np.where(np.arange(good["params"].size) == 3, np.nan, good["params"])}, ValueError,
              r"state_dict\['params'\] contains NaN"),
             ({"params": good["params"].astype(np.float64) * 1e39}, ValueError, "beyond the range of float32"),
             ({"params": good["params"].astype(complex)}, TypeError, "real numbers"),
             ({"state": -np.abs(good["state"]) - 1}, ValueError, "negative running_var"),
             ({"params": good["params"][:-1]}, ValueError, "has shape")]
    for change, exc, match in cases:
        bad = {**good, "params": good["params"] * 2, **change}
        with pytest.raises(exc, match=match):
            model.load_state_dict(bad)
        _assert_same(before, model)
    with pytest.raises(ValueError, match="has no 'state' entry"):
        model.load_state_dict({"params": good["params"]})


def test_optimizer_load_state_dict_checks_everything_before_writing():
    model = fb.MLP([4, 8, 3], seed=0)
    opt = fb.optim.Adam(model.parameters(), lr=1e-3)
    model.train_step(X, Y, "cross_entropy", opt)
    good = opt.state_dict()
    for change, exc, match in [({"state": np.full(opt.state.shape, "a")}, TypeError, "real numbers"),
                               ({"state": np.full(opt.state.shape, np.nan)}, ValueError, "NaN"),
                               ({"step_count": 2 ** 64}, ValueError, r"must be in \[0, 2\*\*62\]"),
                               ({"step_count": 2.7}, TypeError, "step_count'\\] must be an int")]:
        with pytest.raises(exc, match=match):
            opt.load_state_dict(dict(good, lr=0.5, **change))
        assert opt.lr == 1e-3 and opt.step_count == 1
    with pytest.raises(ValueError, match="has no 'code' entry"):
        opt.load_state_dict({k: v for k, v in good.items() if k != "code"})


def test_step_counts_are_ints_far_from_int64s_end():
    model = fb.MLP([4, 8, 3], seed=0)
    opt = fb.optim.Adam(model.parameters())
    for n, exc in [(1.7, TypeError), ("x", TypeError), (-1, ValueError), (2 ** 63, ValueError)]:
        with pytest.raises(exc, match="n must"):
            opt.advance(n)
    assert opt.step_count == 0
    before = _snapshot(model, opt)
    for count, exc in [(2 ** 63 - 2, ValueError), (2.5, TypeError)]:
        opt.step_count = count
        with pytest.raises(exc, match=r"optimizer.step_count \+ 1 must"):
            model.train_step(X, Y, "cross_entropy", opt)
        with pytest.raises(exc, match=r"step_count \+ 1 must"):
            opt.step()
    opt.step_count = 2 ** 62 - 1
    with pytest.raises(ValueError, match="after fit"):
        model.fit(X, Y, optimizer=opt, batch_size=4)
    opt.step_count = 0
    _assert_same(before, model, opt)
    opt.step_count = np.int64(4)            # numpy integers are fine
    model.train_step(X, Y, "cross_entropy", opt)
    assert opt.step_count == 5


def test_masked_arrays_are_refused_by_the_convenience_api_too():
    model = fb.MLP([4, 8, 3], seed=0)
    Xm = np.ma.masked_array(X, mask=X > 1)
    for call in (lambda: model.predict(Xm), lambda: model.evaluate(Xm, Y), lambda: model.fit(Xm, Y),
                 lambda: model.fit(X, np.ma.masked_array(Y))):
        with pytest.raises(TypeError, match="masked array"):
            call()


@pytest.mark.parametrize("loss", [fb.MSELoss(), fb.BCEWithLogitsLoss(), fb.L1Loss()])
def test_losses_refuse_predictions_without_columns(loss):
    empty = np.zeros((4, 0), np.float32)
    with pytest.raises(ValueError, match=r"pred is empty \(shape \(4, 0\)\)"):
        loss(empty, empty)


def test_a_failed_build_leaves_its_layers_free():
    first = fb.Linear(4, 3)
    with pytest.raises(ValueError, match="not finite in float32"):
        fb.Sequential(first, fb.LeakyReLU(1e39))
    assert fb.Sequential(first, fb.ReLU()).out_features == 3


def test_constants_that_underflow_in_the_models_dtype_are_refused():
    with pytest.raises(ValueError, match="BatchNorm1d.*1e-50 underflows to zero in float32"):
        fb.Sequential(fb.Linear(4, 4), fb.BatchNorm1d(4, eps=1e-50), fb.Linear(4, 3))
    with pytest.raises(ValueError, match="underflows to zero in float64"):   # a subnormal: flushed in the kernels
        fb.Sequential(fb.Linear(4, 4), fb.BatchNorm1d(4, eps=1e-320), fb.Linear(4, 3), dtype=np.float64)
    fb.Sequential(fb.Linear(4, 4), fb.BatchNorm1d(4, eps=1e-300), fb.Linear(4, 3), dtype=np.float64)
    with pytest.raises(ValueError, match="delta must be > 0"):
        fb.HuberLoss(1e-50)


def test_small_argument_conventions():
    assert fb.MLP([4, 3], dtype=None).dtype == np.float32          # None is the default, as in Keras
    assert fb.Linear(4, 3, bias=np.True_).has_bias
    with pytest.raises(ValueError, match="seed must be None"):
        fb.MLP([4, 3], seed=-1)
    with pytest.raises(TypeError, match="seed must be None"):
        fb.MLP([4, 8, 3], seed=0).fit(X, Y, seed="x")


def _saved(tmp_path, model, **changes):
    model.save(tmp_path / "m.npz")
    contents = dict(np.load(tmp_path / "m.npz"))
    for key, value in changes.items():
        if value is None:
            del contents[key]
        else:
            contents[key] = value
    np.savez(tmp_path / "bad.npz", **contents)
    return tmp_path / "bad.npz"


def test_load_turns_every_malformed_file_into_a_value_error(tmp_path):
    model = fb.MLP([4, 8, 3], seed=0, batchnorm=True)
    deep = json.dumps(model.config())
    wide = json.loads(deep)
    wide["layers"][0]["out_features"] = 2 ** 40
    nan = model.arena.params.copy()
    nan[0] = np.nan
    state = model.state.params.copy()
    state[:] = -1
    for changes, match in [({"version": None}, "no 'version'"), ({"version": np.array("1")}, "'version' must be"),
                           ({"architecture": np.array("[" * 100000 + "]" * 100000)}, "bad architecture"),
                           ({"architecture": np.array(json.dumps(wide))}, "do not fit the architecture"),
                           ({"params": nan}, "contains NaN"), ({"state": state}, "negative running_var"),
                           ({"step": np.array(np.iinfo(np.int64).max)}, "'step' must be an int in")]:
        with pytest.raises(ValueError, match=match):
            fb.load(_saved(tmp_path, model, **changes))
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        fb.load(tmp_path / "array.npy")
    raw = bytearray((tmp_path / "m.npz").read_bytes())
    raw[raw.find(b"PK\x01\x02") + 6] = 91          # "version needed to extract": zipfile raises NotImplementedError
    (tmp_path / "zip.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="is not a fastbp model file"):
        fb.load(tmp_path / "zip.npz")
