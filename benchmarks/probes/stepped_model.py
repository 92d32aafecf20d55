"""A workload's MLP after one training step, with the batch, loss and optimizer the probes
hand to its raw compiled calls (``step_sequence.py``, ``hugepages.py``, ``calls_ab.py``)."""
from types import SimpleNamespace

import numpy as np


def stepped_model(fb, bench, name):
    """``fb``/``bench``: fastbp and its ``bench`` module (a renamed copy, in ``calls_ab.py``)."""
    _, widths, batch = bench.WORKLOADS[name]
    model = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0)
    opt = fb.optim.Adam(model.parameters(), lr=1e-3)
    loss = fb.CrossEntropyLoss()
    x, y = bench.make_batch(widths, batch)
    model.train_step(x, y, loss, opt)
    T, labels = loss.prepare_target(y, model.out_features, model.dtype, n_rows=batch, strict=True, name="yb")
    return SimpleNamespace(model=model, opt=opt, loss=loss, x=x, y=y, T=T, labels=labels, widths=widths,
                           batch=batch)


def raw_calls(s, fb, P, losses, optim):
    """The compiled pieces of ``s``'s training step, called raw (no Python checks): ``step(code)``
    (the whole step with optimizer ``code``, -1 for none), ``forward``, ``loss_grad``, ``backward``
    and ``optimizer`` (with subnormals flushed, as in the step: the raw ``optimizer_step`` runs
    without flush-to-zero and read 710 µs on W4 against 455 with it, NOTES section 44).
    ``P``/``losses``/``optim``: fastbp.kernels' program, losses and optim modules."""
    m, opt, loss, batch = s.model, s.opt, s.loss, s.batch
    flush = fb.get_flush_denormal()
    lay, cap, ws = m._layout, m.capacity, m._ws
    out = P.slab(ws, lay[P.L_OUTPUT], cap, batch, lay[P.L_WIDTH])
    dout = P.slab(ws, lay[P.L_GRAD0], cap, batch, lay[P.L_WIDTH])
    param = m.dtype.type(loss.param)
    count = [opt.step_count]

    def step(code):
        def run():
            count[0] += 1
            P.train_step(m._program, m._consts, m.arena.params, m.arena.grads, m.state.params, ws, cap, lay,
                         m._work, m._segments, m._dropout_seed, m._step, loss.code, param, s.x, s.T, s.labels,
                         code, opt.state, opt.hyper, count[0], flush)
        return run

    def forward():
        P.forward(m._program, m._consts, m.arena.params, m.state.params, ws, cap, batch, m._work, True,
                  m._dropout_seed, m._step, m._segments, flush)

    def loss_grad():
        losses.loss_value_and_grad(loss.code, out, s.T, s.labels, param, dout)

    def backward():
        P.backward(m._program, m._consts, m.arena.params, m.arena.grads, m.state.params, ws, cap, batch, lay,
                   m._work, True, False, m._dropout_seed, m._step, m._segments, flush)

    def optimizer():
        count[0] += 1
        optim.optimizer_step_call(opt.code, m.arena.params, m.arena.grads, opt.state, opt.hyper, count[0], flush)

    return SimpleNamespace(step=step, forward=forward, loss_grad=loss_grad, backward=backward, optimizer=optimizer)
