"""NRT_incref/NRT_decref call sites per compiled function under ``program.train_step`` and
``program.predict`` (W1, float32), from the LLVM IR (NOTES section 42).  Refcount calls are
atomic; in a hot loop they cost ~10-30 ns each.  Needs a cold compile (IR inspection is off
for cached code):

    FASTBP_CACHE=0 PYTHONPATH=. python benchmarks/probes/nrt_scan.py
"""
import re

import numpy as np

import fastbp as fb
from fastbp.kernels import program as P
from fastbp import bench
m = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0)
opt = fb.optim.Adam(m.parameters(), lr=1e-3)
loss = fb.CrossEntropyLoss()
x, y = bench.make_batch([784, 256, 256, 10], 128)
m.train_step(x, y, loss, opt)
seen = {}
for disp in (P.train_step, P.predict):
    for ir in disp.inspect_llvm().values():
        for fm in re.finditer(r"define [^@]*@\"?([\w.$]+)\"?\((.*?)\n\}", ir, re.S):
            name, body = fm.group(1), fm.group(2)
            n_inc = body.count("@NRT_incref(")
            n_dec = body.count("@NRT_decref(")
            if n_inc or n_dec:
                short = re.sub(r"B\d+v\d+B.*", "", name)
                seen[short] = max(seen.get(short, (0, 0)), (n_inc, n_dec))
for k, v in sorted(seen.items(), key=lambda kv: -kv[1][0]):
    print(v, k[-90:])
