"""Subnormal floats flushed to zero inside fastbp's compiled calls only (fastbp/kernels/fpenv.py)."""
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import fastbp as fb
from fastbp.kernels import fpenv

pytestmark = pytest.mark.skipif(not fpenv.X86, reason="flush-to-zero is implemented for x86's MXCSR")

TINY = {np.float32: 1e-20, np.float64: 1e-160}   # TINY**2 * k is subnormal for small k
SUBNORMAL_INPUT = {np.float32: 1e-39, np.float64: 1e-310}

# (batch, out, in): gemv (batch 1), small products (BLAS path when SciPy is installed),
# the serial packed GEMM, and the parallel one (2*M*N*K above gemm.PAR_FLOPS)
SHAPES = [(1, 5, 3), (1, 300, 600), (4, 5, 3), (64, 70, 90), (200, 300, 257)]


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    previous = fb.get_num_threads()
    fb.set_num_threads(min(request.param, numba.config.NUMBA_NUM_THREADS))
    yield request.param
    fb.set_num_threads(previous)


@pytest.fixture(autouse=True)
def restore_flush_mode():
    before = fb.get_flush_denormal()
    yield
    fb.set_flush_denormal(before)


def _linear(n_in, n_out, dtype, weight):
    model = fb.Sequential(fb.Linear(n_in, n_out, bias=False), dtype=dtype).eval()
    model.layers[0].weight[...] = weight
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_tiny_products_flush_to_zero_only_when_on(shape, dtype, threads):
    batch, n_out, n_in = shape
    k = 3                                      # a few nonzero terms per output, sum still subnormal
    x = np.zeros((batch, n_in), dtype=dtype)
    x[:, :k] = TINY[dtype]
    model = _linear(n_in, n_out, dtype, TINY[dtype])
    want = x.astype(np.float64) @ np.full((n_in, n_out), TINY[dtype])
    assert 0 < want.max() < np.finfo(dtype).tiny      # the test's premise: subnormal results

    fb.set_flush_denormal(False)
    gradual = model.predict(x, batch_size=batch)
    np.testing.assert_allclose(gradual, want, rtol=1e-3, atol=0)   # subnormals keep few digits
    assert fb.set_flush_denormal(True) is True
    np.testing.assert_array_equal(model.predict(x, batch_size=batch), 0)   # every row: workers flush too


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_subnormal_inputs_read_as_zero(shape, dtype, threads):
    batch, n_out, n_in = shape
    x = np.full((batch, n_in), SUBNORMAL_INPUT[dtype], dtype=dtype)
    model = _linear(n_in, n_out, dtype, 1e10)          # x*w would be a normal number
    fb.set_flush_denormal(False)
    assert model.predict(x, batch_size=batch).min() > 0
    fb.set_flush_denormal(True)
    np.testing.assert_array_equal(model.predict(x, batch_size=batch), 0)


def test_caller_state_is_restored(threads):
    """After flushed training steps the caller's thread and Numba's workers still
    underflow gradually (workers started inside a flushed call would inherit FTZ)."""
    before_main = fpenv.read() & fpenv.FLUSH_BITS
    model = fb.MLP([300, 300, 300, 10], seed=0)
    opt = fb.optim.Adam(model.parameters())
    x = np.random.default_rng(0).standard_normal((128, 300)).astype(np.float32)
    y = np.arange(128) % 10
    fb.set_flush_denormal(True)
    for _ in range(2):
        model.train_step(x, y, "cross_entropy", opt)
    model.fit(x, y, optimizer=opt, epochs=1, batch_size=64)
    model.predict(x)
    assert fpenv.read() & fpenv.FLUSH_BITS == before_main == 0
    tiny = np.float32(1e-20)
    assert tiny * tiny > 0                                        # numpy, in this thread
    workers = np.zeros(4 * numba.config.NUMBA_NUM_THREADS, dtype=np.uint32)
    fpenv.worker_mxcsr(workers)
    assert not np.any(workers & fpenv.FLUSH_BITS)


FRESH_PROCESS = textwrap.dedent("""
    import numba, numpy as np, fastbp as fb
    from fastbp.kernels import fpenv
    fb.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    model = fb.MLP([300, 300, 10], seed=0)        # its first call starts Numba's workers
    model.predict(np.ones((256, 300), np.float32))
    workers = np.zeros(4 * numba.config.NUMBA_NUM_THREADS, dtype=np.uint32)
    fpenv.worker_mxcsr(workers)
    print(int(np.count_nonzero(workers & fpenv.FLUSH_BITS)), fpenv.read() & fpenv.FLUSH_BITS)
""")


def test_workers_started_by_a_flushed_call_do_not_keep_flushing():
    """A new thread inherits its creator's MXCSR: workers first started inside a flushed
    call would flush in all later code.  fastbp starts them beforehand."""
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "0"]


def test_forward_backward_flush_and_restore():
    model = _linear(3, 2, np.float32, TINY[np.float32])
    model.train()
    x = np.full((2, 3), TINY[np.float32], dtype=np.float32)
    fb.set_flush_denormal(True)
    np.testing.assert_array_equal(model.forward(x), 0)
    dx = model.backward(np.full((2, 2), TINY[np.float32], dtype=np.float32))
    np.testing.assert_array_equal(dx, 0)
    assert fpenv.read() & fpenv.FLUSH_BITS == 0
    fb.set_flush_denormal(False)
    assert model.forward(x).min() > 0


@pytest.mark.parametrize("size", [100, 70_000], ids=["serial", "parallel"])
def test_optimizer_step_flushes_like_train_step(size, threads):
    """Adam's exp_avg_sq = (1 - beta2) g**2 is subnormal for g = 1e-20 in float32."""
    arena = fb.Sequential(fb.Linear(size, 1, bias=False)).parameters()
    arena.grads[:] = 1e-20
    fb.set_flush_denormal(False)
    opt = fb.optim.Adam(arena)
    opt.step()
    assert np.all(opt.state[1] > 0)
    fb.set_flush_denormal(True)
    opt = fb.optim.Adam(arena)
    opt.step()
    np.testing.assert_array_equal(opt.state[1], 0)
    assert np.all(opt.state[0] > 0)                  # 0.1 * g is a normal number
    assert fpenv.read() & fpenv.FLUSH_BITS == 0


def test_kernel_helpers_round_trip():
    start = fpenv.read()
    old = fpenv.enter(True)
    assert fpenv.current() == fpenv.FLUSH_BITS
    assert fpenv.adopt(np.uint32(0)) & fpenv.FLUSH_BITS == fpenv.FLUSH_BITS
    assert fpenv.current() == 0
    fpenv.enter(True)
    fpenv.leave(old)
    assert fpenv.read() & fpenv.FLUSH_BITS == start & fpenv.FLUSH_BITS


def test_set_flush_denormal_validates():
    with pytest.raises(TypeError, match="mode must be a bool"):
        fb.set_flush_denormal(1)
    assert fb.get_flush_denormal() in (True, False)
