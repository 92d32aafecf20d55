"""W1 inference latency by batch size: ``model.predict`` against numpy (x @ W.T chains) and
PyTorch (``no_grad``), 2 threads each, µs medians of 9 rounds of 100 calls (NOTES section 60).

    PYTHONPATH=. python benchmarks/probes/predict_by_batch.py

Each framework is timed after a 0.2 s pause (numpy's OpenBLAS threads spin after its calls).
"""
import time

import numpy as np
import torch

import fastbp as fb


def median_us(f, n=100, rounds=9):
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            f()
        ts.append((time.perf_counter() - t) / n * 1e6)
    return float(np.median(ts))


def main():
    fb.set_num_threads(2)
    torch.set_num_threads(2)
    model = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0)
    model.eval()
    rng = np.random.default_rng(0)
    shapes = [(256, 784), (256, 256), (10, 256)]
    layers = [(rng.standard_normal(s).astype(np.float32) * 0.05, np.zeros(s[0], np.float32)) for s in shapes]

    def numpy_forward(x):
        for i, (W, b) in enumerate(layers):
            x = x @ W.T + b
            if i < len(layers) - 1:
                x = np.maximum(x, 0)
        return x

    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
    print("batch  fastbp   numpy   torch  (µs)")
    for batch in (1, 2, 4, 8, 9, 12, 16, 24, 32, 64, 128):
        x = rng.standard_normal((batch, 784)).astype(np.float32)
        xt = torch.from_numpy(x)
        model.predict(x)
        numpy_forward(x)
        with torch.no_grad():
            net(xt)
            t_torch = median_us(lambda: net(xt))
        time.sleep(0.2)
        t_fastbp = median_us(lambda: model.predict(x))
        time.sleep(0.2)
        t_numpy = median_us(lambda: numpy_forward(x))
        time.sleep(0.2)
        print(f"{batch:5d} {t_fastbp:7.1f} {t_numpy:7.1f} {t_torch:7.1f}", flush=True)


if __name__ == "__main__":
    main()
