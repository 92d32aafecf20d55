"""After warm-up, training steps and predict calls allocate nothing that scales with the work.

Runs in a subprocess because Numba's NRT allocation counters exist only when
NUMBA_NRT_STATS=1 is set before Numba is imported.  What is checked:

* inside compiled code a step allocates nothing: an epoch of 32 batches in
  ``fit`` makes exactly as many NRT allocations as an epoch of 8 (the per-call
  constant is Numba boxing the call's array arguments, not the steps);
* a call from Python (``train_step``, ``predict(out=...)``) makes the same small
  number of NRT allocations at batch 256 as at 1024 (argument boxing only), and
  ``predict`` at 1 and 8 rows (one parallel region at two threads) as at 256;
* no NumPy buffer is allocated: with tracemalloc on, the traced-memory
  high-water mark rises less than 2 KiB over a call (Python's own small
  objects), while the smallest batch-sized array here is 8 KiB;
* the workspace is reused, not re-allocated.
"""
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import tracemalloc
    import numpy as np
    import fastbp as fb
    from numba.core.runtime import rtsys

    def nrt():
        return rtsys.get_allocation_stats().alloc

    def per_call(call, model):
        for _ in range(3):
            call()                                   # warm-up: compile, size the workspace
        ws = model._ws
        before = nrt()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(10):
            call()
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        assert model._ws is ws
        assert peak < 2048, peak
        allocs = nrt() - before
        assert allocs % 10 == 0, allocs
        return allocs // 10

    rng = np.random.default_rng(0)
    for kw in (dict(), dict(batchnorm=True, dropout=0.2)):
        model = fb.MLP([64, 96, 48, 10], activation="gelu", seed=0, **kw)
        opt = fb.optim.Adam(model.parameters(), lr=1e-3)
        loss, mse = fb.CrossEntropyLoss(), fb.MSELoss()
        X = rng.standard_normal((1024, 64)).astype(np.float32)
        y = rng.integers(0, 10, 1024)
        T = rng.standard_normal((1024, 10)).astype(np.float32)
        for checkpoint in (None, 2):
            model.set_checkpoint(checkpoint, batch_size=1024)
            counts = {}
            for rows in (256, 1024):
                x, yb, t = X[:rows], y[:rows], T[:rows]
                out = np.empty((rows, 10), np.float32)
                counts[rows] = (per_call(lambda: model.train_step(x, yb, loss, opt), model),
                                per_call(lambda: model.train_step(x, t, mse, opt), model),
                                per_call(lambda: model.predict(x, batch_size=rows, out=out), model))
            print(kw, checkpoint, counts)
            assert counts[256] == counts[1024], counts
            # a whole epoch in compiled code: allocations do not grow with the number of steps
            epoch = {}
            for batch in (128, 32):
                model.fit(X, y, optimizer=opt, batch_size=batch, epochs=1)
                before = nrt()
                model.fit(X, y, optimizer=opt, batch_size=batch, epochs=1)
                epoch[1024 // batch] = nrt() - before
            print("fit epoch allocations by steps per epoch:", epoch)
            assert epoch[8] == epoch[32], epoch
    # a few rows at two threads run predict's one parallel region (program._forward_region),
    # its counters in the work buffer: the same allocations as a batch of 256
    w1 = fb.MLP([784, 256, 256, 10], seed=0).eval()
    Xw = rng.standard_normal((256, 784)).astype(np.float32)
    outs = {rows: np.empty((rows, 10), np.float32) for rows in (1, 8, 256)}
    few = {rows: per_call(lambda: w1.predict(Xw[:rows], batch_size=rows, out=outs[rows]), w1)
           for rows in (256, 1, 8)}
    print("predict by rows:", few)
    assert few[1] == few[8] == few[256], few
    print("OK")
""")


def test_steady_state_allocates_nothing():
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK")
