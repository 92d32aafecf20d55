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


LAZY_TOY_MODULE = textwrap.dedent("""
    from numba import carray, types
    from fastbp._jit import jit
    from fastbp.kernels import linked

    TABLE = linked.LazyTable("test_toy_lazy")

    def _scale_leaf(x, n, s):
        a = carray(x, (n,))
        for i in range(n):
            a[i] *= s

    scale = TABLE.function("scale", (types.CPointer(types.float64), types.int64, types.float64), _scale_leaf)
    ready = TABLE.ready

    @jit
    def caller(x, s):
        if not ready():
            raise RuntimeError("toy table not linked")
        scale(linked.data_address(x), x.size, s)
        return x.sum()
""")


def test_a_lazy_callback_is_compiled_only_by_link_and_called_through_the_table(tmp_path):
    (tmp_path / "toy_lazy.py").write_text(LAZY_TOY_MODULE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    call = """
        import numpy as np, toy_lazy as t
        try:
            t.caller(np.arange(5.0), 3.0)
        except RuntimeError as e:
            print("before link:", e, int(t.TABLE.addresses.any()))
        t.TABLE.link()
        print("linked:", t.caller(np.arange(5.0), 3.0), t.caller.stats.cache_hits)
    """
    compiled = _run(call, env)        # compiles the caller (and, at link, the callback)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    loaded = _run(call, env)          # the caller from the cache: it names the table, not the callback
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    for out in (compiled.stdout, loaded.stdout):
        assert "before link: toy table not linked 0" in out       # nothing compiled or loaded yet
        assert "linked: 30.0" in out
    assert "Counter()" in compiled.stdout and "Counter()" not in loaded.stdout   # a real cache load


def _assert_calls_out(driver, reference, work):
    """Every compiled signature of ``driver``, compiled again here (cached code cannot be
    inspected), has LLVM IR that matches ``reference`` and defines no function matching ``work``."""
    options = {k: v for k, v in driver.targetoptions.items() if k not in ("cache", "nopython")}
    fresh = numba.njit(**options)(driver.py_func)
    for signature in driver.signatures:
        fresh.compile(signature)
        ir = fresh.inspect_llvm(signature)
        assert re.search(reference, ir), driver.__name__
        defined = re.findall(r"^define [^\n]*@(\S+)\(", ir, flags=re.M)
        assert not [name for name in defined if re.search(work, name)], (driver.__name__, defined)


def test_batchnorm_and_dropout_kernels_carry_none_of_their_work():
    from fastbp.kernels import dropout, norm

    norm.link(np.float64)
    dropout.link(np.float64)
    rng = np.random.default_rng(0)
    X, G = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    v = [np.ones(3) for _ in range(6)]
    Xhat, Y = np.empty((4, 3)), np.empty((4, 3))
    norm.batchnorm_forward_train(X, v[0], v[1], 1e-5, 0.1, v[2], v[3], True, v[4], v[5], Xhat, Y)
    norm.batchnorm_forward_eval(X, v[0], v[1], 1e-5, v[2], v[3], Y)
    norm.batchnorm_backward(G, Xhat, v[0], v[5], v[1], v[2], Y)
    norm.batchnorm_backward_eval(G, X, v[0], 1e-5, v[2], v[3], v[4], v[5], Y)
    dropout.dropout_forward(X, 0.5, 1, 2, Y)
    drivers = ((norm.batchnorm_forward_train, r"_train_group|_col_sums|_col_sqdev", "batchnorm"),
               (norm.batchnorm_forward_eval, r"_eval_group", "batchnorm"),
               (norm.batchnorm_backward, r"_backward_group|_col_sum_dot", "batchnorm"),
               (norm.batchnorm_backward_eval, r"norm14_backward_eval", "batchnorm"),
               (dropout._apply, r"_mask_rows", "dropout"))
    for driver, work, table in drivers:
        _assert_calls_out(driver, rf"@\"?fastbp_table_{table}_float(32|64)\"? = external [^\n]*global", work)


def test_the_activation_and_optimizer_kernels_call_their_loops_by_symbol():
    from fastbp.kernels import activations, codes, optim

    rng = np.random.default_rng(0)
    Z, G, A = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), np.empty((5, 3))
    activations.bias_act_forward(Z, np.ones(3), np.int64(codes.GELU), 0.0, A)
    activations.act_backward(G, Z, A, np.int64(codes.GELU), 0.0, G)
    params, grads = rng.standard_normal(7), rng.standard_normal(7)
    optim.optimizer_step(np.int64(codes.ADAM), params, grads, np.zeros((2, 7)),
                         np.array([1e-3, 0.9, 0.999, 1e-8, 0.0]), np.int64(1))
    drivers = ((activations.bias_act_forward, "bias_act_rows", r"bias_act_block|_act_block|_gelu"),
               (activations.act_backward, "act_backward_rows", r"_act_backward_rows|_gelu_grad"),
               (optim.optimizer_step, "update_range", r"_update_range|_adam|_sgd|_rmsprop"))
    for driver, leaf, work in drivers:
        _assert_calls_out(driver, rf"declare [^\n]*@fastbp_{leaf}_float(32|64)\(", work)


def test_a_plain_model_links_no_batchnorm_or_dropout_callback():
    r = _run("""
        import numpy as np
        import fastbp as fb
        from fastbp.kernels import dropout, norm
        tables = [t for module in (norm, dropout) for t in module._LINKED.tables.values()]
        x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
        y = np.arange(16) % 3
        model = fb.MLP([8, 16, 3], seed=0)
        model.train_step(x, y, fb.CrossEntropyLoss(), fb.optim.Adam(model.parameters()))
        print("plain:", [int(t.addresses.any()) for t in tables])
        try:
            norm.batchnorm_forward_eval(x, x[0], x[0], np.float32(1e-5), x[0], x[0], x.copy())
        except RuntimeError as e:
            print("unlinked:", e)
        model = fb.Sequential(fb.Linear(8, 16), fb.BatchNorm1d(16), fb.ReLU(), fb.Dropout(0.5),
                              fb.Linear(16, 3), seed=0)
        model.train_step(x, y, fb.CrossEntropyLoss(), fb.optim.Adam(model.parameters()))
        print("batchnorm + dropout:", [int(t.linked) for t in tables])
    """, dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "plain: [0, 0, 0, 0]" in r.stdout, r.stdout
    assert "unlinked: BatchNorm's kernels are not linked for this dtype" in r.stdout, r.stdout
    # float32 of each module's (float32, float64) tables, every slot filled
    assert "batchnorm + dropout: [1, 0, 1, 0]" in r.stdout, r.stdout


def test_link_names_the_dtypes_it_takes():
    from fastbp.kernels import dropout, norm

    for module in (norm, dropout):
        with pytest.raises(ValueError, match="dtype must be float32 or float64, got float16"):
            module.link(np.float16)
