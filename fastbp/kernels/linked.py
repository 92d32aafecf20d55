"""Leaf kernels compiled once and called by symbol name, to cut cold compile time.

Numba links a copy of every callee's code into each library it compiles and runs LLVM's
full optimization and code generation over the copy again.  The packed GEMM's leaves
(packs, register tiles, fused epilogues) sat under ~20 libraries of a training step (the
serial path, the column halves, the backward pair, each parallel region's gufunc and two
wrappers, the entry points), so a cold W1 step optimized and emitted them ~20 times
(benchmarks/NOTES.md sections 56-57).

``c_function`` compiles a leaf once per signature as a C callback (``numba.cfunc``, cached
like every kernel) and returns a ``types.ExternalFunction`` that compiled callers call by
name.  The name is bound to the callback's address (``llvmlite.binding.add_symbol``) while
a caller is typed (``bind``), or before a cached caller that names it is rebuilt
(``_jit.on_cache_rebuild``), so every caller finds it when its machine code is linked (an
unbound one crashes the process there).  Arrays cross as an address plus their shape
(``data_address``) and are rebuilt on the other side with ``numba.carray``, so only
C-contiguous arrays may cross.  The callback runs the leaf's own compiled code: same bits.
"""
import llvmlite.binding as llvm
import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from fastbp._jit import CACHE, FASTMATH_SAFE, on_cache_rebuild

_PREFIX = __name__.split(".")[0] + "_"   # "fastbp_" (a copy loaded under another name binds its own)
_callbacks = []     # the compiled cfuncs: they own the code the symbols point to
_unbound = {}       # symbol -> the set-up that compiles (or loads) its callback and binds it


def c_function(name, argtypes, body):
    """``body`` compiled as the C function ``void fastbp_<name>(argtypes)`` (with ``jit``'s
    flags: what ``body`` inlines is compiled as ``jit`` would), callable from compiled code
    through the returned ``ExternalFunction``.  A ``types.CPointer`` argument
    is passed by callers as an address (``data_address``, a ``uintp``).  Whatever calls the
    function must call ``bind`` on it while it is typed; cached callers bind what they call
    as they are rebuilt.  So a process compiles or loads only the callbacks it uses."""
    symbol = _PREFIX + name

    def setup():
        made = numba.cfunc(types.void(*argtypes), cache=CACHE, fastmath=set(FASTMATH_SAFE))(body)
        llvm.add_symbol(symbol, made.address)
        _callbacks.append(made)

    _unbound[symbol] = setup
    return types.ExternalFunction(symbol, types.void(*[types.uintp if isinstance(t, types.CPointer) else t
                                                      for t in argtypes]))


def _bind_symbol(symbol):
    setup = _unbound.pop(symbol, None)     # first, so that what the set-up compiles skips it
    if setup is not None:
        try:
            setup()
        except BaseException:
            _unbound[symbol] = setup       # still unbound: a later caller tries again
            raise


def bind(function):
    """Compile (or load from the cache) ``function``'s callback and bind its symbol, once."""
    _bind_symbol(function.symbol)


def _bind_referenced(object_code):
    """Bind every unbound symbol a cached kernel's machine code names (all of them where the
    code is not at hand): its relocations are resolved as it is rebuilt."""
    for symbol in list(_unbound):
        if object_code is None or symbol.encode() in object_code:
            _bind_symbol(symbol)


on_cache_rebuild(_bind_referenced)


@intrinsic
def data_address(typingctx, a):
    """The address of a C-contiguous array's first element, without touching its reference
    count (the array must outlive the call that receives the address)."""
    if not (isinstance(a, types.Array) and a.layout == "C"):
        return None

    def codegen(context, builder, sig, args):
        ary = make_array(sig.args[0])(context, builder, args[0])
        return builder.ptrtoint(ary.data, cgutils.intp_t)
    return types.uintp(a), codegen
