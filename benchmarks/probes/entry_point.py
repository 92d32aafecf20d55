"""What Numba's typing of the arguments costs per call: ``model.train_step`` (W3) and
batch-1 ``model.predict`` (W1) with ``program.train_step`` / ``program.predict`` called
through their dispatchers, against the same calls through the compiled overload's
``entry_point`` (the wrapper that unboxes and calls, without typing the arguments or
choosing an overload).  Both forms alternate round by round in one process; µs medians
and the per-round ratio (NOTES section 52).

    PYTHONPATH=. python benchmarks/probes/entry_point.py [ROUNDS]

Not a design to build as is: the entry point does not check what it is given.  Numba's
array unboxing (``NRT_adapt_ndarray_from_python``) checks only that the object is an
ndarray, so an array of another dtype or ndim than the overload's is read as if it had
them (a wrong ndim writes past the native array struct).
"""
import statistics
import sys

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp.kernels import program as P

from stepped_model import stepped_model  # benchmarks/probes (the script folder is on sys.path)
from timing import median_us


def entry_of(dispatcher):
    """The compiled wrapper of a dispatcher's only overload."""
    if len(dispatcher.overloads) != 1:
        raise RuntimeError(f"expected one overload, got {dispatcher.signatures}")
    return next(iter(dispatcher.overloads.values())).entry_point


def main(rounds=21):
    fb.set_num_threads(2)
    s = stepped_model(fb, bench, "W3")
    m1 = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
    x1 = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
    o1 = np.empty((1, 10), np.float32)
    calls = {"step": lambda: s.model.train_step(s.x, s.y, s.loss, s.opt),
             "predict": lambda: m1.predict(x1, batch_size=1, out=o1)}
    for _ in range(100):
        for call in calls.values():
            call()
    forms = {"dispatcher": (P.train_step, P.predict)}
    forms["entry"] = tuple(entry_of(d) for d in forms["dispatcher"])
    times = {(c, f): [] for c in calls for f in forms}
    try:
        for r in range(rounds):
            for form in (forms if r % 2 == 0 else reversed(list(forms))):
                P.train_step, P.predict = forms[form]
                for c, call in calls.items():
                    times[c, form].append(median_us(call, 2000, 1))   # one round's mean
    finally:
        P.train_step, P.predict = forms["dispatcher"]
    for c in calls:
        d, e = times[c, "dispatcher"], times[c, "entry"]
        ratio = statistics.median(a / b for a, b in zip(d, e))
        print(f"{c:8s} dispatcher {statistics.median(d):7.2f} µs  entry {statistics.median(e):7.2f} µs  "
              f"dispatcher/entry per round {ratio:.3f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
