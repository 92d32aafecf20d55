"""``few_rows.py`` for wide inputs (k up to 100,000), where four rows of W no longer fit L1:
dots serial / dots parallel / packed tiles, µs, 2 threads (NOTES section 60).

    PYTHONPATH=. python benchmarks/probes/few_rows_wide.py
"""
import numpy as np

import fastbp as fb
from fastbp.kernels import gemm

from few_rows import dots, interleaved_us, tiles  # benchmarks/probes (the script folder is on sys.path)


def main():
    fb.set_num_threads(2)
    rng = np.random.default_rng(0)
    for n, k in ((64, 20000), (64, 100000), (256, 8192), (256, 20000), (10, 100000)):
        W = rng.standard_normal((n, k)).astype(np.float32)
        for m in (1, 2, 4, 8):
            A = rng.standard_normal((m, k)).astype(np.float32)
            work = np.empty(gemm.work_size(m, n, k), np.float32)
            outs = [np.zeros((m, n), np.float32) for _ in range(3)]
            halves = n > gemm.NR and 2 * m * n * k >= gemm.PAR_FLOPS
            path = np.int64(gemm.PATH_HALVES if halves else gemm.PATH_SERIAL)
            reps = 10
            calls = [lambda: dots(reps, A, W, outs[0], False), lambda: dots(reps, A, W, outs[1], True),
                     lambda: tiles(reps, A, W, work, outs[2], path)]
            print(f"{m}x{n}x{k}: " + " / ".join(f"{t:7.0f}" for t in interleaved_us(calls, reps)), flush=True)


if __name__ == "__main__":
    main()
