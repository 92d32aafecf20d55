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
