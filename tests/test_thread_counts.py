"""Bitwise-identical results at more threads than this machine's cores (issue 3, point 4).

The products take other paths above two threads (the parallel path instead of the column
halves and the backward pair), which the rest of the suite never runs on a two-core
machine: Numba allows at most NUMBA_NUM_THREADS threads, the core count by default.  So a
fresh process with NUMBA_NUM_THREADS=16 trains the same models at 1, 3, 4 and 16 threads
(at 16, the parallel path cuts W4's products into smaller tasks), and switches the thread
count between steps of one model.  Its predictions of 1, 3 and 8 rows run the chain in one
parallel region whose threads meet between layers (``program._forward_region``).
"""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import numpy as np
    import fastbp as fb

    def train(widths, batch, dtype, threads_per_step):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((4 * batch, widths[0])).astype(dtype)
        y = rng.integers(0, widths[-1], 4 * batch)
        model = fb.MLP(widths, dtype=dtype, seed=0)
        opt = fb.optim.Adam(model.parameters(), lr=1e-3)
        for i, threads in enumerate(threads_per_step):
            fb.set_num_threads(threads)
            model.train_step(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch],
                             "cross_entropy", opt)
        predicted = model.predict(x)
        # a few rows: one parallel region for the whole chain above one thread (_forward_region)
        few = [model.predict(x[:rows], batch_size=rows).ravel() for rows in (1, 3, 8)]
        model.fit(x, y, optimizer=opt, epochs=1, batch_size=batch, seed=3)
        return np.concatenate([model.parameters().params, predicted.ravel(), *few])

    # products above the parallel threshold (W2-like, odd sizes), W1's shape, and W4's, whose
    # 64-row products are split into more tasks at 16 threads than at 4 (gemm._task_panels)
    for widths, batch, dtype in [([300, 1030, 517, 10], 97, np.float32),
                                 ([784, 256, 256, 10], 128, np.float32),
                                 ([256, 256, 256, 10], 64, np.float32)]:
        one = train(widths, batch, dtype, [1, 1, 1, 1])
        for threads_per_step in ([3, 3, 3, 3], [4, 4, 4, 4], [4, 1, 2, 3], [16, 16, 9, 16]):
            same = np.array_equal(one, train(widths, batch, dtype, threads_per_step))
            print(widths, batch, np.dtype(dtype).name, threads_per_step, same)
""")


def test_training_and_predict_are_bitwise_identical_at_three_to_sixteen_threads():
    env = dict(os.environ, NUMBA_NUM_THREADS="16")
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 12, r.stdout
    assert all(line.endswith("True") for line in lines), r.stdout
