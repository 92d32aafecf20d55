"""Atomic int32 counters in an array, for threads of one parallel region that meet
without leaving it (``program._forward_region``).

A counter is one int32 element; ``fetch_add`` claims or announces with acquire-release
ordering (whatever a thread wrote before announcing is visible to one that then reads
the counter with ``load_acquire``); ``spin_pause`` is the x86 ``pause`` hint a waiting
loop issues so that it yields the core's shared resources, and ``yield_cpu`` gives the CPU
to another thread (one that holds the work being waited for, when there are more threads
than CPUs).
"""
import sys

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._jit import jit
from .fpenv import X86

# sched_yield(2), called by symbol: POSIX, so absent on Windows, where yield_cpu only pauses
_sched_yield = None if sys.platform == "win32" else types.ExternalFunction("sched_yield", types.int32())


def _is_int32_array(a):
    return isinstance(a, types.Array) and a.dtype == types.int32 and a.ndim == 1


def _element_pointer(context, builder, array_type, array, pos):
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [pos], wraparound=False)


@intrinsic
def fetch_add(typingctx, counters, pos, value):
    """``old = counters[pos]; counters[pos] += value; return old``, atomically (acq_rel)."""
    if not (_is_int32_array(counters) and isinstance(pos, types.Integer) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        add = context.cast(builder, args[2], sig.args[2], types.int32)
        return builder.sext(builder.atomic_rmw("add", ptr, add, "acq_rel"), ir.IntType(64))
    return types.int64(counters, pos, value), codegen


@intrinsic
def load_acquire(typingctx, counters, pos):
    """``counters[pos]``, read atomically with acquire ordering."""
    if not (_is_int32_array(counters) and isinstance(pos, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.sext(builder.load_atomic(ptr, "acquire", 4), ir.IntType(64))
    return types.int64(counters, pos), codegen


@intrinsic
def spin_pause(typingctx):
    """x86 ``pause``: a spin-wait hint (nothing on other CPUs)."""
    def codegen(context, builder, sig, args):
        if X86:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return types.none(), codegen


if _sched_yield is None:
    @jit
    def yield_cpu():
        """``spin_pause`` (no ``sched_yield`` here)."""
        spin_pause()
else:
    @jit
    def yield_cpu():
        """``sched_yield()``: let another runnable thread have this CPU."""
        _sched_yield()
