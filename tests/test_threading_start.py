"""When Numba's threading layer starts: not at import, always before cached code loads.

Starting it loads the system's libgomp, and a PyTorch imported afterwards binds to that
copy and runs several times slower (benchmarks/NOTES.md section 30), so ``import fastbp``
must not start it.  But a cached function compiled against cached parallel callees does
not start it when it loads (Numba drops the callees' reload hooks), and then crashes on
an unresolved ``allocate_sched`` or segfaults (NOTES section 25), so fastbp's decorators
start it before any of their functions loads from the cache.
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOY_MODULE = textwrap.dedent("""
    from fastbp._jit import jit, jit_parallel, prange

    @jit_parallel
    def callee(x):
        for i in prange(x.shape[0]):
            x[i] += 1.0

    @jit
    def caller(x):
        callee(x)
        return x.sum()
""")


def _run(code, env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_import_does_not_start_the_threading_layer_and_a_model_step_does():
    r = _run("""
        import numpy as np
        import fastbp as fb, numba.np.ufunc.parallel as parallel
        print(parallel._is_initialized)
        model = fb.MLP([5, 3, 2], dtype=np.float64, seed=0)
        model.predict(np.zeros((4, 5)))
        print(parallel._is_initialized)
    """, dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["False", "True"], r.stdout


def test_cached_caller_of_cached_parallel_callee_loads_in_a_fresh_process(tmp_path):
    (tmp_path / "toy_threads.py").write_text(TOY_MODULE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    call = "import numpy as np, toy_threads as t; print(t.{}(np.zeros(100)))"
    # 1: compile and cache the parallel callee.  2: load it, compile and cache the caller
    # (its cached library loses the callee's reload hook).  3: a fresh process loads the
    # caller first.
    for step, code in enumerate([call.format("callee"), call.format("caller"), call.format("caller")]):
        r = _run(code, env)
        assert r.returncode == 0, (step, r.returncode, r.stderr[-3000:])
    assert r.stdout.strip() == "100.0"
    # The same load with fastbp's start disabled crashes: the test above can fail.
    r = _run("import fastbp._jit as j; j._launch_threads = lambda: None; " + call.format("caller"), env)
    assert r.returncode != 0


@pytest.mark.skipif(importlib.util.find_spec("torch") is None or not os.path.exists("/proc/self/maps"),
                    reason="needs torch and /proc/self/maps")
def test_fastbp_bench_imports_torch_before_the_threading_layer_starts():
    # torch imported first loads its own libgomp (torch/lib); imported after Numba's pool it
    # binds to the system's copy and trains ~6x slower (NOTES sections 30 and 55)
    r = _run("""
        from fastbp import cli
        status = cli.main(["bench", "--workload", "W3", "--against", "torch", "--repeats", "1",
                           "--seconds", "0.01", "--threads", "1"])
        maps = open("/proc/self/maps").read()
        print(status, any("gomp" in line and "torch" in line for line in maps.splitlines()))
    """, dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-2:] == ["0", "True"], r.stdout[-3000:]
