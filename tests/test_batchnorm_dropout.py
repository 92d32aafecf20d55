"""BatchNorm1d and Dropout inside models: references, central differences, state, modes."""
import numpy as np
import pytest

import fastbp as fb
from fastbp.kernels.program import MAX_OPS
from tests.fused_step import step_fused_and_split
from tests.reference import dropout as ref_dropout
from tests.reference import norm as ref_norm
from tests.reference.numeric import central_difference

P_DROP = 0.3


def make(dtype=np.float64, seed=0, **kw):
    kw.setdefault("batchnorm", True)
    kw.setdefault("dropout", P_DROP)
    return fb.MLP([6, 9, 5], activation="tanh", dtype=dtype, seed=seed, **kw)


def reference_forward(model, x, step):
    """Linear → BatchNorm1d → Tanh → Dropout → Linear, in float64 numpy."""
    lin0, bn, _, _, lin1 = model.layers
    z0 = x @ lin0.weight.T.astype(np.float64) + lin0.bias
    stats = ref_norm.batchnorm_train(z0, bn.weight, bn.bias, bn.eps)
    a1 = np.tanh(stats["y"])
    mask = ref_dropout.keep_mask(a1.shape, P_DROP, model._dropout_seed, step * MAX_OPS + 2)
    a2 = np.where(mask, a1 / (1 - P_DROP), 0.0)
    return a2 @ lin1.weight.T.astype(np.float64) + lin1.bias, stats, mask


def test_training_forward_and_running_stats_match_reference():
    model = make()
    x = np.random.default_rng(0).standard_normal((7, 6))
    bn = model.layers[1]
    rm0, rv0 = bn.running_mean.copy(), bn.running_var.copy()
    step = model._step
    out = model.forward(x)
    want, stats, mask = reference_forward(model, x, step)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    rm, rv = ref_norm.running_update(rm0, rv0, stats["mean"], stats["var"], bn.momentum, 7)
    np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bn.running_var, rv, rtol=1e-12)
    assert 0 < mask.mean() < 1


def test_eval_mode_uses_running_stats_and_no_dropout():
    model = make()
    rng = np.random.default_rng(1)
    for _ in range(3):
        model.forward(rng.standard_normal((16, 6)))
    model.eval()
    x = rng.standard_normal((5, 6))
    lin0, bn, _, _, lin1 = model.layers
    z0 = x @ lin0.weight.T + lin0.bias
    a1 = np.tanh(ref_norm.batchnorm_eval(z0, bn.weight, bn.bias, bn.eps, bn.running_mean, bn.running_var))
    want = a1 @ lin1.weight.T + lin1.bias
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-12, atol=1e-13)
    before = bn.running_mean.copy()
    model.forward(x)
    np.testing.assert_array_equal(bn.running_mean, before)        # eval never updates statistics
    model.forward(x[:1])                                           # batch of 1 is fine in eval mode
    model.train()
    with pytest.raises(ValueError, match="BatchNorm1d needs more than 1 value"):
        model.forward(x[:1])


def test_central_differences_through_batchnorm_and_dropout():
    """Every parameter and input gradient of L = Σ out ⊙ R, with the dropout mask held fixed."""
    model = make(seed=3)
    rng = np.random.default_rng(2)
    x, R = rng.standard_normal((8, 6)), rng.standard_normal((8, 5))
    step = model._step

    def loss_at():
        model._step = step                      # the same dropout mask every evaluation
        return np.sum(model.forward(x) * R)

    loss_at()
    dx = model.backward(R)
    np.testing.assert_allclose(model.parameters().grads, central_difference(loss_at, model.parameters().params),
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(dx, central_difference(loss_at, x), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_step_equals_layer_by_layer(dtype):
    rng = np.random.default_rng(4)
    fused, split = make(dtype), make(dtype)
    opt_f, opt_s = fb.optim.AdamW(fused.parameters(), lr=1e-2), fb.optim.AdamW(split.parameters(), lr=1e-2)
    for _ in range(4):
        x = rng.standard_normal((12, 6)).astype(dtype)
        step_fused_and_split(fused, split, opt_f, opt_s, fb.CrossEntropyLoss(), x, rng.integers(0, 5, 12))


def test_dropout_is_reproducible_from_the_seed_and_differs_per_step():
    x = np.ones((32, 6))
    a, b = make(seed=5), make(seed=5)
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x))          # the next step draws a new mask
    assert not np.array_equal(first, make(seed=6).forward(x))


def test_save_load_keeps_running_stats(tmp_path):
    model = make()
    rng = np.random.default_rng(7)
    model.fit(rng.standard_normal((64, 6)), rng.integers(0, 5, 64), epochs=2, batch_size=16)
    assert not np.allclose(model.layers[1].running_mean, 0)
    model.save(tmp_path / "bn.npz")
    loaded = fb.load(tmp_path / "bn.npz")
    np.testing.assert_array_equal(loaded.state.params, model.state.params)
    np.testing.assert_array_equal(loaded.layers[1].running_var, model.layers[1].running_var)
    X = rng.standard_normal((9, 6))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_affine_false_and_untracked_stats():
    model = fb.Sequential(fb.Linear(4, 6), fb.BatchNorm1d(6, affine=False, track_running_stats=False),
                          fb.ReLU(), fb.Linear(6, 2), dtype=np.float64, seed=0)
    bn = model.layers[1]
    assert bn.weight is None and bn.running_mean is None
    x = np.random.default_rng(8).standard_normal((10, 4))
    z0 = x @ model.layers[0].weight.T + model.layers[0].bias
    a = np.maximum(ref_norm.batchnorm_train(z0, None, None, bn.eps)["y"], 0)
    want = a @ model.layers[3].weight.T + model.layers[3].bias
    np.testing.assert_allclose(model.eval().forward(x), want, rtol=1e-12, atol=1e-13)   # batch stats in eval


def test_fit_rejects_a_final_batch_of_one_with_batchnorm():
    model = make()
    with pytest.raises(ValueError, match="batch of 1 row"):
        model.fit(np.ones((33, 6)), np.zeros(33, int), batch_size=16)


def test_fit_on_one_row_with_batchnorm_says_so():
    """One row cannot be fixed by any batch_size: the message said "change batch_size"."""
    with pytest.raises(ValueError, match="X has 1 row: BatchNorm1d cannot normalise a single sample"):
        make().fit(np.ones((1, 6)), np.zeros(1, int), batch_size=4)


def test_fit_rejects_batch_size_one_with_batchnorm():
    """n % 1 == 0: the final-batch rule alone let batch_size=1 through, and every step then
    normalised one row (running_var NaN, predictions NaN)."""
    model = make()
    before, state = model.parameters().params.copy(), model.state.params.copy()
    with pytest.raises(ValueError, match="batch of 1 row"):
        model.fit(np.ones((8, 6)), np.zeros(8, int), batch_size=1)
    np.testing.assert_array_equal(model.parameters().params, before)
    np.testing.assert_array_equal(model.state.params, state)


@pytest.mark.parametrize("kw", [{"dropout": 0.0}, {"batchnorm": False}])
def test_train_step_in_eval_mode_is_rejected(kw):
    """The fused step always trains in training mode; in eval mode a model whose layers
    depend on the mode raises instead (a 1-row batch made running_var NaN, a larger one
    updated the running statistics torch's eval mode would keep)."""
    model = make(**kw).eval()
    opt = fb.optim.SGD(model.parameters(), lr=0.1)
    before, state = model.parameters().params.copy(), model.state.params.copy()
    x = np.random.default_rng(2).standard_normal((4, 6))
    for rows in (1, 4):
        with pytest.raises(ValueError, match="call model.train"):
            model.train_step(x[:rows], np.zeros(rows, int), fb.CrossEntropyLoss(), opt)
    np.testing.assert_array_equal(model.parameters().params, before)
    np.testing.assert_array_equal(model.state.params, state)
    assert opt.step_count == 0
    model.train().train_step(x, np.zeros(4, int), fb.CrossEntropyLoss(), opt)
    assert opt.step_count == 1


def test_train_step_in_eval_mode_is_fine_without_mode_dependent_layers():
    model = fb.MLP([6, 9, 5], dtype=np.float64, seed=0).eval()
    opt = fb.optim.SGD(model.parameters(), lr=0.1)
    model.train_step(np.ones((3, 6)), np.zeros(3, int), fb.CrossEntropyLoss(), opt)
    assert opt.step_count == 1


def test_untracked_batchnorm_predicts_all_rows_in_one_pass():
    """Without running statistics BatchNorm1d normalises by the batch in eval mode too, so
    predict must not split X into chunks with statistics of their own (257 rows in
    chunks of 256 gave a last row equal to beta); one row raises, as in torch."""
    model = fb.Sequential(fb.Linear(4, 3), fb.BatchNorm1d(3, track_running_stats=False), fb.Tanh(),
                          fb.Linear(3, 2), dtype=np.float64, seed=0).eval()
    X = np.random.default_rng(4).standard_normal((257, 4))
    lin0, bn, _, lin1 = model.layers
    z0 = X @ lin0.weight.T + lin0.bias
    want = np.tanh(ref_norm.batchnorm_train(z0, bn.weight, bn.bias, bn.eps)["y"]) @ lin1.weight.T + lin1.bias
    for batch_size in (256, 16, 1000):
        np.testing.assert_allclose(model.predict(X, batch_size=batch_size), want, rtol=1e-12, atol=1e-13)
    assert model.evaluate(X, np.zeros(257, int))["loss"] > 0
    for call in (lambda: model.predict(X[:1]), lambda: model.forward(X[:1]),
                 lambda: model.train().predict(X[:1])):
        with pytest.raises(ValueError, match="track_running_stats=False"):
            call()
    before = model.parameters().params.copy()
    with pytest.raises(ValueError, match=r"validation_data\[0\] has 1 row"):      # before any epoch runs
        model.fit(X, np.zeros(257, int), batch_size=16, validation_data=(X[:1], np.zeros(1, int)))
    np.testing.assert_array_equal(model.parameters().params, before)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: fb.Dropout(1.0), ValueError, r"p must be in \[0, 1\)"),
    (lambda: fb.Dropout(-0.1), ValueError, "p must be >= 0"),
    (lambda: fb.BatchNorm1d(0), ValueError, "num_features must be >= 1"),
    (lambda: fb.BatchNorm1d(4, momentum=2), ValueError, "momentum must be <= 1"),
    (lambda: fb.BatchNorm1d(4, eps=0), ValueError, "eps must be > 0"),
    (lambda: fb.BatchNorm1d(4, affine=1), TypeError, "affine must be a bool"),
    (lambda: fb.Sequential(fb.Linear(4, 3), fb.BatchNorm1d(4)), ValueError, "receives 3 features"),
    (lambda: fb.MLP([4, 3, 2], batchnorm="yes"), TypeError, "batchnorm must be a bool"),
])
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_gradient_norm_diagnostics():
    X, y = fb.data.load_digits()
    model = fb.MLP([64, 32, 32, 10], activation="sigmoid", batchnorm=True, seed=0)
    norms = fb.diagnostics.gradient_norms(model, X[:128], y[:128])
    assert len(norms) == 5 and all(v > 0 for v in norms.values())       # 3 Linear + 2 BatchNorm1d
    history = model.fit(X, y, epochs=2, batch_size=64, track_grad_norms=True)
    assert len(history["grad_norms"]) == 2 and list(history["grad_norms"][0]) == list(norms)
    # the diagnostic agrees with a direct computation from the gradient views
    norms = fb.diagnostics.gradient_norms(model, X[:128], y[:128])
    lin = model.layers[0]
    want = np.sqrt(np.sum(lin.weight_grad.astype(np.float64) ** 2) + np.sum(lin.bias_grad.astype(np.float64) ** 2))
    assert abs(next(iter(norms.values())) - want) < 1e-5 * want


def test_eval_mode_central_differences():
    """Backward after an eval-mode forward: running statistics are constants, dropout is the identity."""
    model = make(seed=9)
    rng = np.random.default_rng(10)
    for _ in range(3):
        model.forward(rng.standard_normal((16, 6)))          # non-trivial running statistics
    model.eval()
    x, R = rng.standard_normal((5, 6)), rng.standard_normal((5, 5))
    model.forward(x)
    dx = model.backward(R)

    def loss():
        return np.sum(model.forward(x) * R)

    np.testing.assert_allclose(model.parameters().grads, central_difference(loss, model.parameters().params),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dx, central_difference(loss, x), rtol=1e-6, atol=1e-9)
