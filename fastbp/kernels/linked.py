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

``LazyTable`` is for leaves most models never run (BatchNorm's, dropout's): its callbacks
are compiled (or loaded from the cache) only when ``link`` is called, and compiled callers
reach them through a table of addresses, one external symbol per table.  A caller's machine
code then names the table, not the callbacks, so loading it from the cache loads none of
them, and a plain model's first step compiles none of their code (NOTES section 59).
"""
import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array

from fastbp._jit import CACHE, FASTMATH_SAFE, on_cache_rebuild

_PREFIX = __name__.split(".")[0] + "_"   # "fastbp_" (a copy loaded under another name binds its own)
_callbacks = []     # the compiled cfuncs: they own the code the symbols point to
_unbound = {}       # symbol -> the set-up that compiles (or loads) its callback and binds it
_tables = []        # every LazyTable: linked code holds their address arrays' addresses


def c_function(name, argtypes, body):
    """``body`` compiled as the C function ``void fastbp_<name>(argtypes)`` (with ``jit``'s
    flags: what ``body`` inlines is compiled as ``jit`` would), callable from compiled code
    through the returned ``ExternalFunction``.  A ``types.CPointer`` argument
    is passed by callers as an address (``data_address``, a ``uintp``).  Whatever calls the
    function must call ``bind`` on it while it is typed; cached callers bind what they call
    as they are rebuilt.  So a process compiles or loads only the callbacks it uses."""
    symbol = _PREFIX + name

    def setup():
        llvm.add_symbol(symbol, _compile_callback(argtypes, body))

    _unbound[symbol] = setup
    return types.ExternalFunction(symbol, types.void(*_caller_types(argtypes)))


def _compile_callback(argtypes, body):
    """Compile (or load from the cache) ``body`` as a ``void(argtypes)`` C callback with
    ``jit``'s flags, keep it alive, and return its address."""
    made = numba.cfunc(types.void(*argtypes), cache=CACHE, fastmath=set(FASTMATH_SAFE))(body)
    _callbacks.append(made)
    return made.address


def _caller_types(argtypes):
    """The argument types callers pass: an address (``uintp``) for each ``types.CPointer``."""
    return [types.uintp if isinstance(t, types.CPointer) else t for t in argtypes]


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


class LazyTable:
    """C callbacks compiled (or loaded from the cache) only by ``link``, called from compiled
    code through a table of their addresses (``function``'s intrinsic loads the address at
    each call, so a caller compiled or loaded before ``link`` calls what ``link`` made).

    Calling a slot that is not linked yet would jump to address 0: callers check ``ready``
    first.  Slots are numbered in the order ``function`` is called, which a module's source
    fixes (the cache is keyed by the sources), hence one table per module and dtype."""

    SLOTS = 16

    def __init__(self, name):
        self.symbol = _PREFIX + "table_" + name
        self.addresses = np.zeros(self.SLOTS, np.uint64)     # slot -> callback address, 0 until linked
        self._setups = []
        llvm.add_symbol(self.symbol, self.addresses.ctypes.data)   # before any caller is linked
        _tables.append(self)
        self.ready = self._make_ready()

    def function(self, name, argtypes, body):
        """``body`` as the C function ``void(argtypes)``, compiled as ``c_function``'s are, but
        only by ``link``; returns an intrinsic that compiled code calls with the arguments
        (a ``types.CPointer`` one as an address: ``data_address``)."""
        slot = len(self._setups)
        if slot == self.SLOTS:
            raise ValueError(f"{self.symbol} holds {self.SLOTS} functions; raise LazyTable.SLOTS")

        def setup():
            self.addresses[slot] = _compile_callback(argtypes, body)

        self._setups.append(setup)
        return self._make_call(name, slot, argtypes)

    def link(self):
        """Compile (or load) every callback of the table not linked yet and fill its slot."""
        for slot, setup in enumerate(self._setups):
            if self.addresses[slot] == 0:
                setup()

    @property
    def linked(self):
        """Whether every callback of the table is compiled and in its slot."""
        return bool(self.addresses[:len(self._setups)].all())

    def _make_call(self, name, slot, argtypes):
        symbol = self.symbol
        c_types = _caller_types(argtypes)

        @intrinsic
        def call(typingctx, *args):
            if len(args) != len(c_types):
                return None

            def codegen(context, builder, sig, llargs):
                given = cgutils.unpack_tuple(builder, llargs[0])
                values = [context.cast(builder, v, a, t) for v, a, t in zip(given, sig.args[0].types, c_types)]
                fnty = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in c_types])
                entry = builder.gep(_table_global(builder.module, symbol), [ir.Constant(ir.IntType(64), slot)])
                builder.call(builder.inttoptr(builder.load(entry), fnty.as_pointer()), values)
                return context.get_dummy_value()
            return types.none(types.StarArgTuple.from_types(args)), codegen
        call.__name__ = name
        return call

    def _make_ready(self):
        table = self

        @intrinsic
        def ready(typingctx):
            """True once every slot of the table holds its callback's address."""
            def codegen(context, builder, sig, llargs):
                base = _table_global(builder.module, table.symbol)
                result = ir.Constant(ir.IntType(1), 1)
                for slot in range(len(table._setups)):
                    entry = builder.load(builder.gep(base, [ir.Constant(ir.IntType(64), slot)]))
                    result = builder.and_(result, builder.icmp_unsigned("!=", entry, entry.type(0)))
                return result
            return types.boolean(), codegen
        return ready


class DtypeTables:
    """A ``LazyTable`` per float dtype (``<name>_float32``, ``<name>_float64``), each holding
    the callbacks ``functions(dtype)`` lists as ``(name, argtypes, body)``.

    ``calls(dtype)`` gives their intrinsics in the listed order (at typing: ``dtype`` is a
    Numba type); ``link(dtype)`` links the numpy float dtype's table; ``check(a)``, called
    in compiled code, raises ``RuntimeError(unlinked)`` unless the table of the array ``a``'s
    dtype is linked (kernels check before their first call through the table)."""

    def __init__(self, name, functions, unlinked):
        self.tables, self._calls = {}, {}
        for dtype in (types.float32, types.float64):
            table = LazyTable(f"{name}_{dtype}")
            self.tables[dtype] = table
            self._calls[dtype] = tuple(table.function(*spec) for spec in functions(dtype))
        self.check = self._make_check(unlinked)

    def calls(self, dtype):
        return self._calls[dtype]

    def link(self, dtype):
        """Compile (or load from the cache) the callbacks for ``dtype`` (a numpy float dtype);
        once per process and dtype, before any kernel that calls them runs."""
        key = numba.from_dtype(np.dtype(dtype))
        if key not in self.tables:
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype).name}")
        self.tables[key].link()

    def _make_check(self, unlinked):
        tables = self.tables

        def check(a):
            raise NotImplementedError("only available inside Numba-compiled code")

        @overload(check, inline="always")
        def _check(a):
            ready = tables[a.dtype].ready

            def impl(a):
                if not ready():
                    raise RuntimeError(unlinked)
            return impl
        return check


def _table_global(module, symbol):
    """The table ``symbol`` in ``module``, declared as an external i64 (its first slot)."""
    table = module.globals.get(symbol)
    if table is None:
        table = ir.GlobalVariable(module, ir.IntType(64), symbol)
    return table


def same_dtype(first, *others):
    """At typing: every argument is an array of ``first``'s dtype (a callback takes one
    dtype's pointers, so arrays of mixed dtypes must not reach it)."""
    return all(isinstance(a, types.Array) and a.dtype == first.dtype for a in (first,) + others)


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
