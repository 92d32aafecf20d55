"""Gradient checkpointing: exact accounting, optimal plans, bitwise-identical training."""
import itertools

import numpy as np
import pytest

import fastbp as fb
from fastbp import checkpoint as C
from fastbp.compiler import assign_slots


def deep_model(widths=(20, 24, 16, 24, 12, 30, 8, 10), seed=0, **kw):
    return fb.MLP(list(widths), activation="tanh", dtype=np.float64, seed=seed, **kw)


def test_activation_bytes_match_the_allocated_workspace():
    model = deep_model(batchnorm=True, dropout=0.2)
    for batch in (1, 7, 33):
        per_op, total = model.activation_bytes(batch)
        fresh = deep_model(batchnorm=True, dropout=0.2)
        fresh._ensure_capacity(batch)
        assert total == fresh.workspace_bytes == sum(per_op.values())
        assert per_op["input"] == 20 * batch * 8
    assert any("BatchNorm1d" in key for key in per_op)


def brute_force(model, max_units):
    """Least (recompute, units) over all 2^(n-1) segmentations within ``max_units``, and the least units."""
    ops, n = model._ops, len(model._ops)
    best, least = None, None
    for cuts in itertools.product([0, 1], repeat=n - 1):
        segments = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        lay = assign_slots(ops, model.in_features, model.out_features, segments, model.dtype)
        least = lay.per_sample if least is None else min(least, lay.per_sample)
        if lay.per_sample > max_units:
            continue
        cost = sum(ops[i].flops for a, b in zip(segments[:-2], segments[1:-1]) for i in range(a, b))
        key = (cost, lay.per_sample)
        if best is None or key < best:
            best = key
    return best, least


@pytest.mark.parametrize("seed", range(6))
def test_planner_is_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(3, 40, size=rng.integers(4, 6))]
    model = fb.MLP(widths, activation="relu", dtype=np.float64, seed=0,
                   batchnorm=bool(seed % 2), dropout=0.1 if seed % 3 == 0 else 0.0)
    n = len(model._ops)
    assert n <= 13
    full = assign_slots(model._ops, model.in_features, model.out_features, [0, n], model.dtype).per_sample
    tightest = C.min_units(model._ops, model.in_features)
    assert tightest == brute_force(model, full)[1]
    for max_units in np.linspace(tightest, full, 7).astype(int):
        segments = C.optimal_segments(model._ops, model.in_features, int(max_units))
        want = brute_force(model, max_units)[0]
        assert (segments is None) == (want is None)
        lay = assign_slots(model._ops, model.in_features, model.out_features, segments, model.dtype)
        cost = sum(model._ops[i].flops for a, b in zip(segments[:-2], segments[1:-1]) for i in range(a, b))
        assert lay.per_sample <= max_units
        assert (cost, lay.per_sample) == want
    assert C.optimal_segments(model._ops, model.in_features, tightest - 1) is None


def train(model, X, y, checkpoint, steps_per_epoch=4, epochs=2):
    opt = fb.optim.Adam(model.parameters(), lr=1e-2)
    model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=len(X) // steps_per_epoch, seed=3,
              checkpoint=checkpoint)
    return model


@pytest.mark.parametrize("checkpoint", ["sqrt", 3, ("budget", 0.5), ("budget", 0.75)])
def test_checkpointed_training_is_bitwise_identical(checkpoint):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 20))
    y = rng.integers(0, 10, 64)
    kw = dict(batchnorm=True, dropout=0.25)
    reference = train(deep_model(**kw), X, y, None)
    model = deep_model(**kw)
    if isinstance(checkpoint, tuple):
        checkpoint = int(model.activation_bytes(16)[1] * checkpoint[1])
    train(model, X, y, checkpoint)
    plan = model.checkpoint_plan
    assert plan.n_segments > 1 and plan.recompute_flops > 0
    assert model.workspace_bytes == plan.peak_bytes < plan.unplanned_bytes
    if isinstance(checkpoint, int) and checkpoint > 100:
        assert plan.peak_bytes <= checkpoint
    np.testing.assert_array_equal(model.parameters().params, reference.parameters().params)
    np.testing.assert_array_equal(model.state.params, reference.state.params)   # running stats once per step
    # the layer-by-layer API recomputes segments too
    x = X[:16].copy()
    model.train(), reference.train()
    out, out_ref = model.forward(x), reference.forward(x)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(model.backward(out), reference.backward(out_ref))
    np.testing.assert_array_equal(model.parameters().grads, reference.parameters().grads)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_auto_plans_no_checkpointing_when_everything_fits():
    model = deep_model()
    plan = C.plan(model, 32, "auto")
    assert plan.n_segments == 1 and plan.recompute_flops == 0
    assert plan.peak_bytes == plan.unplanned_bytes


def test_run_that_only_fits_with_checkpointing_trains_to_completion():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((96, 20))
    y = rng.integers(0, 10, 96)
    model = deep_model((20,) + (32,) * 12 + (10,))
    unplanned = model.activation_bytes(32)[1]
    budget = (C.min_bytes(model, 32) + unplanned) // 2
    assert budget < unplanned
    with pytest.raises(MemoryError):
        C.plan(model, 32, C.min_bytes(model, 32) - 1)
    history = model.fit(X, y, optimizer=fb.optim.Adam(model.parameters()), epochs=3, batch_size=32,
                        checkpoint=budget)
    assert len(history["loss"]) == 3 and np.isfinite(history["loss"]).all()
    assert model.workspace_bytes <= budget


def test_impossible_budget_fails_before_training_with_numbers():
    model = deep_model()
    params = model.parameters().params.copy()
    need = C.min_bytes(model, 32)
    with pytest.raises(MemoryError, match=f"needs at least {need:,} bytes.*budget is {need - 1:,} bytes"):
        model.fit(np.ones((64, 20)), np.zeros(64, int), batch_size=32, checkpoint=need - 1)
    np.testing.assert_array_equal(model.parameters().params, params)
    assert C.plan(model, 32, need).peak_bytes == need


@pytest.mark.parametrize("bad, exc", [("most", TypeError), (True, TypeError), (-5, ValueError), (2.5, TypeError)])
def test_bad_checkpoint_arguments(bad, exc):
    model = deep_model()
    with pytest.raises(exc, match="checkpoint|memory_budget"):
        model.set_checkpoint(bad, batch_size=8)


def test_uniform_segments():
    assert C.uniform_segments(10, 3) == [0, 3, 7, 10]
    assert C.uniform_segments(4, 9) == [0, 1, 2, 3, 4]
    assert C.uniform_segments(5, 1) == [0, 5]


def hand_made_plan(segments):
    return C.Plan(segments=segments, batch_size=16, peak_bytes=0, unplanned_bytes=0, recompute_flops=0,
                  step_flops=1, stored=[])


def small_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((16, 4)), rng.integers(0, 3, 16)


@pytest.mark.parametrize("segments, exc, match", [
    ([0, 2, 1, 3], ValueError, r"plan\.segments must start at 0, increase strictly and end at the number of ops "
                               r"\(3\); got \[0, 2, 1, 3\]$"),
    ([1, 3], ValueError, r"start at 0.*got \[1, 3\]$"),
    ([3], ValueError, r"start at 0.*got \[3\]$"),
    ([2, 0, 3], ValueError, r"increase strictly.*got \[2, 0, 3\]$"),
    ([0, 5, 3], ValueError, r"increase strictly.*got \[0, 5, 3\]$"),
    ([0, 1, 1, 3], ValueError, r"increase strictly.*got \[0, 1, 1, 3\]$"),
    ([], ValueError, r"plan\.segments must start at 0.*got \[\]$"),
    ([0, 2, 5], ValueError, r"end at the number of ops \(3\); got \[0, 2, 5\] \(a plan made for another model\?\)"),
    ([0, 1.5, 3], TypeError, r"plan\.segments must hold ints \(op boundaries\), got 1\.5"),
    ([0, True, 3], TypeError, r"plan\.segments must hold ints \(op boundaries\), got True"),
    ("03", TypeError, r"plan\.segments must be a list of ints \(op boundaries\), got str"),
    (3, TypeError, r"plan\.segments must be a list of ints \(op boundaries\), got int"),
])
def test_bad_hand_made_plan_fails_before_anything_runs(segments, exc, match):
    X, y = small_data()
    model = deep_model((4, 8, 8, 3))
    assert len(model._ops) == 3
    before = model.set_checkpoint(2, batch_size=16)
    params, state = model.parameters().params.copy(), model.state.params.copy()
    out, workspace = model.predict(X), model.workspace_bytes
    with pytest.raises(exc, match=match):
        model.set_checkpoint(hand_made_plan(segments), batch_size=16)
    with pytest.raises(exc, match=match):
        model.fit(X, y, optimizer=fb.optim.SGD(model.parameters(), lr=0.1), epochs=1, batch_size=16,
                  checkpoint=hand_made_plan(segments))
    assert model.checkpoint_plan is before and model.workspace_bytes == workspace
    np.testing.assert_array_equal(model._segments, before.segments)
    np.testing.assert_array_equal(model.parameters().params, params)
    np.testing.assert_array_equal(model.state.params, state)
    np.testing.assert_array_equal(model.predict(X), out)


@pytest.mark.parametrize("segments", [[0, 2, 3], (0, 1, 3), np.array([0, 1, 2, 3])])
def test_valid_hand_made_plan_matches_the_default(segments):
    X, y = small_data()
    reference, model = deep_model((4, 8, 8, 3)), deep_model((4, 8, 8, 3))
    plan = hand_made_plan(segments)
    assert model.set_checkpoint(plan, batch_size=16) is plan
    np.testing.assert_array_equal(model._segments, segments)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    for m in (model, reference):
        m.fit(X, y, optimizer=fb.optim.SGD(m.parameters(), lr=0.1), epochs=2, batch_size=8, seed=1, shuffle=False)
    np.testing.assert_array_equal(model.parameters().params, reference.parameters().params)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def relu_stack(activation, dtype, batchnorm, widths=(13, 40, 33, 7)):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(fb.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers += [fb.BatchNorm1d(n_out)] if batchnorm else []
            layers.append(activation())
    return fb.Sequential(*layers, dtype=dtype, seed=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_relu_layers_keep_only_their_output_and_train_as_with_both(dtype, batchnorm):
    """A layer fused with ReLU keeps one slot (its output, written over the product in place:
    relu'(z) = relu'(relu(z))), as LeakyReLU(0) does, whose output keeps the sign of zeros
    (``assert_array_equal`` takes -0.0 == 0.0): training both gives equal results; a
    LeakyReLU with a negative slope keeps z and its output apart."""
    relu = relu_stack(fb.ReLU, dtype, batchnorm)
    leaky = relu_stack(lambda: fb.LeakyReLU(0.0), dtype, batchnorm)
    segmented = relu_stack(fb.ReLU, dtype, batchnorm)    # a ReLU output as a stored segment boundary
    negative = relu_stack(lambda: fb.LeakyReLU(-0.5), dtype, batchnorm)
    relu_ops, leaky_ops = relu.activation_bytes(5)[0], leaky.activation_bytes(5)[0]
    negative_ops = negative.activation_bytes(5)[0]
    item = np.dtype(dtype).itemsize
    fused = [(r, k, n) for r, k, n in zip(relu_ops, leaky_ops, negative_ops) if "ReLU" in r]
    assert len(fused) == 2 and all("LeakyReLU" in k and "LeakyReLU" in n for _, k, n in fused)
    for width, (r, k, n) in zip((40, 33), fused):
        assert leaky_ops[k] == relu_ops[r]
        assert negative_ops[n] - relu_ops[r] == width * 5 * item
    rng = np.random.default_rng(1)
    X = rng.standard_normal((48, 13)).astype(dtype)
    X[X[:, 0] > 1.2, 0] = 0.0      # some zero inputs (LeakyReLU(0)'s -0.0 comes from every z < 0)
    y = rng.integers(0, 7, 48)
    for model, checkpoint in ((relu, None), (leaky, None), (segmented, 2)):
        opt = fb.optim.Adam(model.parameters(), lr=1e-2)
        model.fit(X, y, optimizer=opt, epochs=2, batch_size=12, seed=5, checkpoint=checkpoint)
    assert segmented.checkpoint_plan.n_segments == 2
    np.testing.assert_array_equal(relu.parameters().params, leaky.parameters().params)
    np.testing.assert_array_equal(segmented.parameters().params, relu.parameters().params)
    assert_same_passes(relu, leaky, X[:9])


def assert_same_passes(model, reference, X):
    """Training-mode forward, backward and parameter gradients of two models agree bit for bit."""
    model.train(), reference.train()
    out, out_ref = model.forward(X), reference.forward(X)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(model.backward(out), reference.backward(out_ref))
    np.testing.assert_array_equal(model.parameters().grads, reference.parameters().grads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope, batchnorm", [(0.1, False), (-0.3, False), (0.1, True)])
def test_a_fused_leaky_relu_trains_bit_for_bit_as_a_separate_one(dtype, slope, batchnorm):
    """LeakyReLU fused into its Linear (or BatchNorm1d) layer (one slot, computed in place, its
    derivative read from the output where the slope is >= 0) gives exactly the numbers of the
    same activation as an op of its own after it (an Identity in between stops the fusion),
    through training, the forward pass and backward; with a negative slope the fused layer
    keeps z."""
    def stack(separate):
        # no bias before a LeakyReLU: X's zero rows below reach it as z = 0 exactly
        layers = [fb.Linear(13, 40, bias=batchnorm)] + ([fb.BatchNorm1d(40)] if batchnorm else [])
        layers += ([fb.Identity()] if separate else []) + [fb.LeakyReLU(slope), fb.Linear(40, 7)]
        return fb.Sequential(*layers, dtype=dtype, seed=3)
    fused, separate = stack(False), stack(True)
    fused_name = "BatchNorm1d" if batchnorm else "Linear"
    assert any("LeakyReLU" in name and fused_name in name for name in fused.activation_bytes(4)[0])
    rng = np.random.default_rng(2)
    X = rng.standard_normal((48, 13)).astype(dtype)
    X[X[:, 0] > 1.0, :] = 0.0       # zero rows: leaky(0) and its derivative at 0 (the slope), without BatchNorm1d
    y = rng.integers(0, 7, 48)
    for model in (fused, separate):
        model.fit(X, y, optimizer=fb.optim.Adam(model.parameters(), lr=1e-2), epochs=2, batch_size=12, seed=5)
    np.testing.assert_array_equal(fused.parameters().params, separate.parameters().params)
    assert_same_passes(fused, separate, X[:9])


@pytest.mark.parametrize("activation, slots", [(fb.ReLU, 1), (fb.Sigmoid, 1), (fb.Tanh, 1), (fb.GELU, 2),
                                               (fb.LeakyReLU, 1), (lambda: fb.LeakyReLU(-0.1), 2),
                                               (fb.Identity, 1)])
def test_a_layer_keeps_its_pre_activation_only_where_backward_reads_it(activation, slots):
    """ReLU's, sigmoid's, tanh's and a LeakyReLU's with a slope >= 0 derivatives come from the
    output (``activations.keeps_output_only``), so those layers keep one slot; GELU's and a
    negative slope's read z and keep two."""
    model = relu_stack(activation, np.float32, batchnorm=False)
    per_op = model.activation_bytes(3)[0]
    hidden = [bytes_ for name, bytes_ in per_op.items() if name.startswith(("0:", "1:"))]
    assert hidden == [slots * 40 * 3 * 4, slots * 33 * 3 * 4], per_op
