"""Reshaped views of C-contiguous arrays, built inline.

Numba's ``ndarray.reshape`` calls a C helper (``numba_attempt_nocopy_reshape``) and a
shape normaliser on every call: ~20-25 ns here, and the engine reshapes workspace slots
and parameter slices dozens of times a step and ~25 times in a batch-1 ``predict``
(benchmarks/NOTES.md, section 51).  For a C-contiguous array the view's strides follow
from the new shape alone, so ``c_view`` builds the view in a few instructions.  Like
Numba's ``reshape``, it takes contiguous arrays only (another layout is a typing error at
compile time).  A pure view: no data moves, so results keep their bits.
"""
from numba import types
from numba.core import cgutils, errors
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array


def c_view(a, shape):
    """``a.reshape(shape)``; raises ValueError when the sizes differ (as numpy does)."""
    return a.reshape(shape)


def _int_tuple(shape):
    return isinstance(shape, types.BaseTuple) and len(shape) > 0 and \
        all(isinstance(t, types.Integer) for t in shape.types)


@intrinsic
def _c_view(typingctx, a, shape):
    if not (isinstance(a, types.Array) and a.layout == "C" and _int_tuple(shape)):
        return None
    ndim = len(shape)

    def codegen(context, builder, sig, args):
        ary = make_array(sig.args[0])(context, builder, args[0])
        dims = [context.cast(builder, d, t, types.intp)
                for d, t in zip(cgutils.unpack_tuple(builder, args[1], ndim), sig.args[1].types)]
        size = context.get_constant(types.intp, 1)
        for d in dims:
            size = builder.mul(size, d)
        with builder.if_then(builder.icmp_signed("!=", size, ary.nitems), likely=False):
            context.call_conv.return_user_exc(builder, ValueError, ("cannot reshape: the sizes differ",))
        strides = []
        stride = ary.itemsize
        for d in reversed(dims):
            strides.append(stride)
            stride = builder.mul(stride, d)
        view = make_array(sig.return_type)(context, builder)
        populate_array(view, data=ary.data, shape=dims, strides=strides[::-1], itemsize=ary.itemsize,
                       meminfo=ary.meminfo, parent=ary.parent)
        return impl_ret_borrowed(context, builder, sig.return_type, view._getvalue())
    return a.copy(ndim=ndim, layout="C")(a, shape), codegen


@overload(c_view)
def _c_view_impl(a, shape):
    if not (isinstance(a, types.Array) and _int_tuple(shape)):
        return None
    if a.layout != "C":
        raise errors.TypingError(f"c_view needs a C-contiguous array, got layout {a.layout!r}")
    return lambda a, shape: _c_view(a, shape)


@intrinsic
def borrow(typingctx, a):
    """``a`` without its reference count: views taken of the result (slices, ``c_view``) skip
    the atomic increment and decrement Numba emits around every array it passes on.

    Only for arrays an entry point received as arguments (the caller holds them for the
    whole call), and never returned to Python.  Each refcount change is an atomic add on the
    buffer's meminfo (~5 ns, and a cache line shared by both cores in parallel regions,
    NOTES section 48), and a W3 step passes views on an estimated ~170 times (NOTES section 51)."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, sig, args):
        ary = make_array(sig.args[0])(context, builder, args[0])
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        ary.parent = cgutils.get_null_value(ary.parent.type)
        return ary._getvalue()
    return a(a), codegen
