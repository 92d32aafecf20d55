"""Leaf kernels compiled once and called by symbol (``fastbp/kernels/linked.py``).

The risk is at link time: a cached kernel that calls a linked leaf is rebuilt in a fresh
process, and its machine code needs the leaf's symbol bound first (unbound, the process
crashes: SIGSEGV in the test below).  And the point is that callers do not carry the
leaves' code: the GEMM's callers declare the leaves and define none of them.
"""
import os
import re
import textwrap

import numba
import numpy as np
import pytest
from numba import types

from fastbp.kernels import gemm, linked
from tests.test_threading_start import ROOT, _run

TOY_MODULE = textwrap.dedent("""
    from numba import carray, types
    from numba.extending import overload
    from fastbp._jit import jit
    from fastbp.kernels import linked

    def _double_leaf(x, n):
        a = carray(x, (n,))
        for i in range(n):
            a[i] *= 2.0

    double = linked.c_function("test_toy_double", (types.CPointer(types.float64), types.int64), _double_leaf)

    def call_double(a):
        raise NotImplementedError

    @overload(call_double, inline="always")
    def _call_double(a):
        linked.bind(double)
        return lambda a: double(linked.data_address(a), a.size)

    @jit
    def caller(x):
        call_double(x)
        return x.sum()
""")


def test_a_cached_caller_of_a_linked_leaf_loads_in_a_fresh_process(tmp_path):
    (tmp_path / "toy_linked.py").write_text(TOY_MODULE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    call = "import numpy as np, toy_linked as t; print(t.caller(np.arange(5.0)), t.caller.stats.cache_hits)"
    compiled = _run(call, env)        # compiles the leaf and the caller, caches both
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    loaded = _run(call, env)          # rebuilds the cached caller: the leaf must be bound first
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert compiled.stdout.split()[0] == loaded.stdout.split()[0] == "20.0"
    assert "Counter()" in compiled.stdout and "Counter()" not in loaded.stdout   # a real cache load
    # Without the binding before a rebuild the same load fails: the test above can fail.
    r = _run(call.replace("print(", "import fastbp._jit as j; j._rebuild_listeners.clear(); print("), env)
    assert r.returncode != 0


def test_a_callback_that_fails_to_compile_stays_unbound():
    def broken(x):
        return no_such_function(x)  # noqa: F821  (a typing error when the callback compiles)

    function = linked.c_function("test_broken", (types.int64,), broken)
    try:
        for _ in range(2):      # the second bind compiles again: the failure left it unbound
            with pytest.raises(numba.core.errors.TypingError):
                linked.bind(function)
            assert function.symbol in linked._unbound
    finally:
        linked._unbound.pop(function.symbol, None)


def test_data_address_is_the_first_element():
    a = np.arange(7.0)
    assert numba.njit(lambda x: linked.data_address(x))(a) == a.ctypes.data
    assert numba.njit(lambda x: linked.data_address(x[2:]))(a) == a.ctypes.data + 16


def test_the_gemm_calls_its_leaves_by_symbol_and_carries_none_of_them():
    @numba.njit
    def product(A, W, work, out):
        gemm.own_nt(A, W, work, out, gemm._no_epilogue(out), np.int64(gemm.PATH_SERIAL))

    M, N, K = 7, 20, 9
    rng = np.random.default_rng(0)
    A, W = rng.standard_normal((M, K)), rng.standard_normal((N, K))
    out = np.empty((M, N))
    product(A, W, np.empty(gemm.work_size(M, N, K)), out)
    np.testing.assert_allclose(out, A @ W.T, rtol=1e-12, atol=1e-12)
    ir = product.inspect_llvm(product.signatures[0])
    for leaf in ("compute_task", "pack_task", "pack_b_block"):
        assert re.search(rf"declare [^\n]*@fastbp_{leaf}_float64\(", ir), leaf
    defined = re.findall(r"^define [^\n]*@(\S+)\(", ir, flags=re.M)
    leaves = r"_compute_task|_pack_task|_pack_b_block|_pack\d|ukr_|tile_out"
    assert not [name for name in defined if re.search(leaves, name)], defined
