import time
import numpy as np
import fastbp as fb
from fastbp import bench

fb.set_num_threads(2)
_, widths, batch = bench.WORKLOADS["W2"]
model = fb.MLP(widths, activation="relu", dtype=np.float32, seed=0)
opt = fb.optim.Adam(model.parameters(), lr=bench.LR)
loss = fb.CrossEntropyLoss()
x, y = bench.make_batch(widths, batch)
tiny = np.finfo(np.float32).tiny


def den(a):
    a = np.asarray(a).ravel()
    return int(np.sum((np.abs(a) < tiny) & (a != 0)))


for _blk in range(8):
    t = time.perf_counter()
    for _ in range(20):
        value = model.train_step(x, y, loss, opt)
    dt = (time.perf_counter() - t) / 20
    print(
        f"{batch / dt:,.0f}/s loss {value:.2e} denormals: ws {den(model._ws)} grads {den(model.arena.grads)} "
        f"params {den(model.arena.params)} opt {den(opt.state)} work {den(model._work)}"
    )
