"""Flush-to-zero for fastbp's compiled calls: subnormal floats read and written as 0.

Subnormal numbers (below float32's 1.18e-38) cost Intel cores a microcode
assist per operation: a model trained to a tiny loss fills its backward pass
with them and a step runs 3-5x slower (``benchmarks/NOTES.md`` section 16).
JAX/XLA and TensorFlow therefore run with the x86 MXCSR bits FTZ (results
flushed) and DAZ (inputs read as zero) set; PyTorch offers it as
``torch.set_flush_denormal``.  fastbp sets both bits for the duration of its
compiled entry points only (``enter``/``leave`` in ``program.py``, on by
default, ``fastbp.set_flush_denormal``), and every parallel kernel makes its
worker threads ``adopt`` the calling thread's bits for the length of a task,
so results do not depend on the thread count and nothing leaks into the
caller's numpy code.  On CPUs other than x86 the functions do nothing.

A compiled call that raised would skip its ``leave``; the entry points do not
raise (``fastbp.validation`` checks every input before they run).
"""
import platform

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.extending import intrinsic

from .._jit import jit, jit_parallel, prange

X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
"""True when the MXCSR exists (the flags are set and read); elsewhere every function is a no-op."""

FLUSH_BITS = np.uint32(0x8040)
"""MXCSR FTZ (bit 15) | DAZ (bit 6)."""
KEEP_BITS = np.uint32(0xFFFFFFFF ^ 0x8040)   # every other MXCSR bit (rounding, masks, sticky flags)


def _mxcsr_call(builder, name, slot):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [slot.type]), name)
    builder.call(fn, [slot])


@intrinsic
def _read_mxcsr(typingctx):
    def codegen(context, builder, signature, args):
        if not X86:
            return ir.Constant(ir.IntType(32), 0)
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)
    return types.uint32(), codegen


@intrinsic
def _write_mxcsr(typingctx, value):
    def codegen(context, builder, signature, args):
        if X86:
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(args[0], slot)
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()
    return types.void(types.uint32), codegen


@jit
def read():
    """The calling thread's MXCSR (0 where there is none)."""
    return _read_mxcsr()


@jit
def current():
    """The calling thread's flush bits: ``FLUSH_BITS`` or 0 (or a part of it, if set by hand)."""
    return np.uint32(_read_mxcsr() & FLUSH_BITS)


@jit
def adopt(bits):
    """Set the calling thread's flush bits to ``bits``; returns its MXCSR before, for ``leave``."""
    old = _read_mxcsr()
    new = np.uint32((old & KEEP_BITS) | bits)
    if new != old:
        _write_mxcsr(new)
    return old


@jit
def enter(flush):
    """``adopt`` FTZ|DAZ when ``flush``, else gradual underflow; returns the MXCSR to ``leave`` with."""
    return adopt(FLUSH_BITS if flush else np.uint32(0))


@jit
def leave(old):
    """Restore the MXCSR ``adopt``/``enter`` returned (only the flush bits; exception flags stay sticky)."""
    now = _read_mxcsr()
    new = np.uint32((now & KEEP_BITS) | (old & FLUSH_BITS))
    if new != now:
        _write_mxcsr(new)


@jit_parallel
def worker_mxcsr(out):
    """out[t] = the MXCSR of the thread that runs iteration t (also starts Numba's worker threads)."""
    for t in prange(out.shape[0]):
        out[t] = _read_mxcsr()
