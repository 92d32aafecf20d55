"""Whole models against torch 2.13, when it is installed: the same layers, weights, batches,
loss and optimizer, a few ``train_step``s (or a ``fit`` epoch), then the parameters, BatchNorm's
running statistics and an eval-mode ``predict`` compared in float64.  The kernels have their
own references; this checks that the model API composes them with PyTorch's semantics (the
order of a Sequential, BatchNorm's batch statistics and momentum, mean reductions, label
smoothing, each optimizer's rule over the whole arena)."""
import numpy as np
import pytest

import fastbp as fb

TOL = 1e-11     # relative (and absolute, near zero); measured: at most 9e-14 over these cases (torch 2.13)

# (widths, activations between the Linears, BatchNorm1d before each activation, bias (on the
#  Linears that no BatchNorm1d follows: see ``_pair``), rows, loss (name, kwargs), optimizer (name, kwargs))
CASES = {
    "relu_gelu-ce-adam": ([7, 13, 9, 5], [("ReLU", {}), ("GELU", {})], False, True, 9,
                          ("CrossEntropyLoss", {}), ("Adam", dict(lr=0.01))),
    "bn-gelu-ce_smoothing-adamw": ([6, 11, 8, 4], [("GELU", dict(approximate="tanh")), ("Sigmoid", {})], True, True,
                                   10, ("CrossEntropyLoss", dict(label_smoothing=0.2)),
                                   ("AdamW", dict(lr=0.01, weight_decay=0.1))),
    "leaky_elu-mse-sgd_nesterov": ([5, 9, 7, 3], [("LeakyReLU", dict(negative_slope=0.1)), ("ELU", dict(alpha=0.7))],
                                   False, True, 6, ("MSELoss", {}),
                                   ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01))),
    "tanh_softplus-huber-rmsprop_centered": ([8, 10, 6, 2], [("Tanh", {}), ("Softplus", {})], False, True, 7,
                                             ("HuberLoss", dict(delta=0.5)),
                                             ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True))),
    "nobias_bn-silu-l1-sgd_dampening": ([4, 12, 3], [("SiLU", {})], True, False, 5, ("L1Loss", {}),
                                        ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1))),
    "identity-bce-rmsprop_batch1": ([3, 5, 2], [("Identity", {})], False, True, 1, ("BCEWithLogitsLoss", {}),
                                    ("RMSprop", dict(lr=0.01, weight_decay=0.01))),
}


def _targets(loss, rows, n_out, rng):
    if loss == "CrossEntropyLoss":
        return rng.integers(0, n_out, rows)
    if loss == "BCEWithLogitsLoss":
        return rng.uniform(0.0, 1.0, (rows, n_out))
    return rng.standard_normal((rows, n_out)) * 2.0


def _pair(torch, widths, acts, bn, bias):
    """The same network in both frameworks, torch's weights copied from fastbp's initialization
    and BatchNorm's affine parameters set away from 1 and 0.  A Linear followed by BatchNorm1d
    has no bias: BatchNorm removes it, so its gradient is zero up to rounding, and Adam's or
    RMSprop's normalization turns that rounding into steps of up to lr (measured: 1e-10 apart)."""
    ours, theirs = [], []
    rng = np.random.default_rng(3)
    for i in range(len(widths) - 1):
        hidden = i < len(widths) - 2
        with_bias = bias and not (bn and hidden)
        ours.append(fb.Linear(widths[i], widths[i + 1], bias=with_bias))
        theirs.append(torch.nn.Linear(widths[i], widths[i + 1], bias=with_bias))
        if hidden:
            if bn:
                ours.append(fb.BatchNorm1d(widths[i + 1], eps=1e-4, momentum=0.2))
                theirs.append(torch.nn.BatchNorm1d(widths[i + 1], eps=1e-4, momentum=0.2))
            name, kwargs = acts[i]
            ours.append(getattr(fb, name)(**kwargs))
            theirs.append(getattr(torch.nn, name)(**kwargs))
    model = fb.Sequential(*ours, dtype=np.float64, seed=1)
    for a, b in zip(ours, theirs):
        if isinstance(a, fb.BatchNorm1d):
            a.weight[...] = rng.uniform(0.5, 1.5, a.num_features)
            a.bias[...] = rng.uniform(-0.2, 0.2, a.num_features)
        if isinstance(a, (fb.Linear, fb.BatchNorm1d)):
            b.weight.data = torch.tensor(np.array(a.weight))
            if a.bias is not None:
                b.bias.data = torch.tensor(np.array(a.bias))
    return model, torch.nn.Sequential(*theirs).double(), ours, theirs


def _assert_same(ours, theirs, model, net, torch, x):
    for a, b in zip(ours, theirs):
        for name in ("weight", "bias"):
            if getattr(a, name, None) is not None:
                np.testing.assert_allclose(getattr(a, name), getattr(b, name).detach().numpy(), rtol=TOL, atol=TOL,
                                           err_msg=f"{a!r}.{name}")
        if isinstance(a, fb.BatchNorm1d):
            np.testing.assert_allclose(a.running_mean, b.running_mean.numpy(), rtol=TOL, atol=TOL)
            np.testing.assert_allclose(a.running_var, b.running_var.numpy(), rtol=TOL, atol=TOL)
    model.eval()
    net.eval()
    np.testing.assert_allclose(model.predict(x), net(torch.tensor(x)).detach().numpy(), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("case", CASES)
def test_train_steps_match_torch(case):
    torch = pytest.importorskip("torch")
    widths, acts, bn, bias, rows, (loss_name, loss_kw), (opt_name, opt_kw) = CASES[case]
    model, net, ours, theirs = _pair(torch, widths, acts, bn, bias)
    loss, their_loss = getattr(fb, loss_name)(**loss_kw), getattr(torch.nn, loss_name)(**loss_kw)
    opt = getattr(fb.optim, opt_name)(model.parameters(), **opt_kw)
    their_opt = getattr(torch.optim, opt_name)(net.parameters(), **opt_kw)
    rng = np.random.default_rng(0)
    for step in range(4):
        x = rng.standard_normal((rows, widths[0]))
        y = _targets(loss_name, rows, widths[-1], rng)
        value = model.train_step(x, y, loss, opt)
        their_opt.zero_grad()
        their_value = their_loss(net(torch.tensor(x)), torch.tensor(y))
        their_value.backward()
        their_opt.step()
        assert value == pytest.approx(their_value.item(), rel=1e-12, abs=1e-14), f"loss at step {step + 1}"
    _assert_same(ours, theirs, model, net, torch, rng.standard_normal((5, widths[0])))


def test_fit_epoch_matches_torch_loop():
    """``fit`` without shuffling is torch's loop over consecutive batches, the last one short."""
    torch = pytest.importorskip("torch")
    model, net, ours, theirs = _pair(torch, [6, 10, 4], [("ReLU", {})], True, True)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((23, 6)), rng.integers(0, 4, 23)
    model.fit(X, y, loss=fb.CrossEntropyLoss(), optimizer=fb.optim.Adam(model.parameters(), lr=0.01),
              epochs=2, batch_size=8, shuffle=False)
    their_opt, their_loss = torch.optim.Adam(net.parameters(), lr=0.01), torch.nn.CrossEntropyLoss()
    for _ in range(2):
        for start in range(0, 23, 8):
            their_opt.zero_grad()
            their_loss(net(torch.tensor(X[start:start + 8])), torch.tensor(y[start:start + 8])).backward()
            their_opt.step()
    _assert_same(ours, theirs, model, net, torch, X[:5])
