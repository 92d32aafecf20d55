"""The only module that configures Numba: decorators, flag sets and threads.

Every kernel module imports its decorators from here, so the compile flags of
the whole engine are decided in one place.

* ``NUMBA_SLP_VECTORIZE=1`` is set before Numba is imported (Numba leaves
  LLVM's SLP vectorizer off by default, which costs the register-tiled GEMM
  micro-kernel an order of magnitude; see ``benchmarks/NOTES.md``).  A user who
  sets the variable explicitly wins; ``SLP_VECTORIZED`` reports the outcome.
* ``cache=True`` unless ``FASTBP_CACHE=0``.  The cache lives in
  ``$FASTBP_CACHE_DIR`` (default ``~/.cache/fastbp``, or a temporary directory
  when that is not writable, so read-only installs cache too), in a
  subdirectory named after a hash of fastbp's version and kernel sources:
  Numba only re-validates a cached function against its own file, so a kernel
  edited in one module would otherwise leave stale copies inlined in its
  callers' caches.  An explicit ``NUMBA_CACHE_DIR`` is respected as is (clear
  it after changing ``FASTBP_GEMM``: that folder is not keyed by it).
* ``FASTBP_GEMM`` (``auto``/``own``) decides ``BLAS_SMALL``, whether small
  layer products use BLAS (``fastbp/kernels/gemm.py``).
* ``set_flush_denormal`` (on by default, like JAX and TensorFlow) makes the
  compiled entry points run with subnormal floats flushed to zero
  (``fastbp/kernels/fpenv.py``).
* ``FASTMATH_SAFE`` keeps NaN/Inf semantics (no ``nnan``/``ninf``) and no
  ``reassoc`` (which mis-vectorizes the GEMM micro-kernel);
  ``FASTMATH_REDUCE`` adds ``reassoc`` for reduction loops, whose order is then
  fixed by the compiled code, not by the thread count.
"""
import hashlib
import importlib.util
import os
import tempfile

os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")


def _gemm_backend():
    """``FASTBP_GEMM``: ``auto`` (default) or ``own``; see ``BLAS_SMALL``."""
    value = os.environ.get("FASTBP_GEMM", "auto")
    if value not in ("auto", "own"):
        raise ValueError(f"FASTBP_GEMM must be 'auto' or 'own', got {value!r}")
    return value


GEMM_BACKEND = _gemm_backend()
BLAS_SMALL = GEMM_BACKEND == "auto" and importlib.util.find_spec("scipy") is not None
"""True when small layer products go to BLAS (``np.dot`` in compiled code, which Numba
routes to SciPy's OpenBLAS): SciPy is installed and ``FASTBP_GEMM`` is not ``own``.
A compile-time constant: kernels are cached per setting."""

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _sources_hash():
    """A short hash of every module that defines jitted code (a change invalidates the cache)."""
    digest = hashlib.sha256()
    for sub in ("kernels", "autograd"):
        folder = os.path.join(_PACKAGE_DIR, sub)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read())
    with open(os.path.join(_PACKAGE_DIR, "_jit.py"), "rb") as f:
        digest.update(f.read())
    digest.update(b"blas_small=%d" % BLAS_SMALL)     # compiled into the GEMM entry points
    return digest.hexdigest()[:16]


def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path)
        probe.close()
        return True
    except OSError:
        return False


def _choose_cache_dir():
    """The Numba cache directory fastbp uses, or None when caching is off."""
    if os.environ.get("FASTBP_CACHE", "1") == "0":
        return None
    if "NUMBA_CACHE_DIR" in os.environ:
        return os.environ["NUMBA_CACHE_DIR"]
    base = os.environ.get("FASTBP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fastbp")
    for root in (base, os.path.join(tempfile.gettempdir(), "fastbp-cache")):
        path = os.path.join(root, "kernels-" + _sources_hash())
        if _writable(path):
            os.environ["NUMBA_CACHE_DIR"] = path
            return path
    return None


CACHE_DIR = _choose_cache_dir()

import numba  # noqa: E402  (must follow the environment set-up above)
import numpy as np  # noqa: E402

CACHE = CACHE_DIR is not None

# Numba's threading layer starts lazily, before the first fastbp kernel loads from the cache
# (``_hook_cache_loads``), not at import: starting it loads the system's
# libgomp, and a PyTorch imported after that binds to it and runs ~7x slower
# (benchmarks/NOTES.md section 30).  It must start before any cached kernel loads: a cached
# function compiled against cached parallel callees does not start it itself (Numba 0.68
# drops the callees' reload hooks when it links them into a new library), and loading it
# then fails with "LLVM ERROR: Symbol not found: allocate_sched" (NOTES section 25).
from numba.np.ufunc.parallel import _launch_threads  # noqa: E402


def _vector_bits():
    """Widest SIMD registers of the CPU Numba compiles for: 512 with AVX-512F, else 256.

    The features are Numba's own choice (``NUMBA_CPU_FEATURES`` or the host's), which
    also key its cache, so a cached kernel always matches this value."""
    from numba.core.codegen import get_host_cpu_features
    features = numba.config.CPU_FEATURES
    if features is None:
        features = get_host_cpu_features()
    return 512 if "+avx512f" in features.split(",") else 256


VECTOR_BITS = _vector_bits()
"""512 or 256: decides the GEMM's register tile (``fastbp/kernels/gemm.py``)."""
SLP_VECTORIZED = bool(getattr(numba.config, "SLP_VECTORIZE", 0))

FASTMATH_SAFE = frozenset({"contract", "nsz"})
FASTMATH_REDUCE = frozenset({"contract", "nsz", "reassoc", "arcp"})


_rebuild_listeners = []


def on_cache_rebuild(listener):
    """Call ``listener(object_code)`` before each fastbp kernel is rebuilt from the cache, with
    the kernel's cached machine code (an ELF object as bytes; None where this Numba stores
    it otherwise).  ``kernels/linked.py`` binds there the symbols the code calls."""
    _rebuild_listeners.append(listener)


def _object_code(payload):
    """The machine code in a cached compile result (``CompileResult._reduce``'s tuple, whose
    first item is the library's ``(name, 'object', (object code, bitcode))``), or None."""
    try:
        _name, kind, data = payload[0]
        return bytes(data[0]) if kind == "object" else None
    except (TypeError, ValueError, IndexError):
        return None


def _hook_cache_loads(dispatcher):
    """Make ``dispatcher`` start Numba's threading layer before it loads code from the cache
    (or compiles: Numba asks the cache first), and call the ``on_cache_rebuild`` listeners
    before it rebuilds a cached kernel."""
    cache = getattr(dispatcher, "_cache", None)
    if cache is None or not hasattr(cache, "load_overload"):
        raise RuntimeError("this Numba's dispatcher has no _cache.load_overload; "
                           "fastbp cannot start its threading layer lazily")
    load_overload = cache.load_overload

    def load_overload_after_launch(*args, **kwargs):
        _launch_threads()       # returns at once after the first call
        return load_overload(*args, **kwargs)

    cache.load_overload = load_overload_after_launch
    impl = getattr(cache, "_impl", None)    # a NullCache (caching off) has none and rebuilds nothing
    if impl is not None:
        if not hasattr(impl, "rebuild"):
            raise RuntimeError("this Numba's cache has no _impl.rebuild; fastbp cannot bind its "
                               "linked kernels before cached code loads")
        rebuild = impl.rebuild

        def rebuild_after_listeners(target_context, payload):
            if _rebuild_listeners:
                code = _object_code(payload)
                for listener in _rebuild_listeners:
                    listener(code)
            return rebuild(target_context, payload)

        impl.rebuild = rebuild_after_listeners
    return dispatcher


def jit(*args, **kwargs):
    """``numba.njit`` with fastbp's defaults (cache on, safe fastmath)."""
    kwargs.setdefault("cache", CACHE)
    kwargs.setdefault("fastmath", set(FASTMATH_SAFE))
    made = numba.njit(*args, **kwargs)
    if callable(made) and not hasattr(made, "py_func"):    # used as @jit(...): a decorator
        return lambda func: _hook_cache_loads(made(func))
    return _hook_cache_loads(made)


def jit_parallel(*args, **kwargs):
    """``jit`` with ``parallel=True``, for kernels that ``prange`` over independent work."""
    kwargs["parallel"] = True
    return jit(*args, **kwargs)


prange = numba.prange


def set_num_threads(n):
    """Set the number of threads every fastbp kernel (and BLAS, if loaded) uses."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    n = int(n)                          # numpy integers too, as numba.set_num_threads takes them
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"n must be between 1 and {limit} (NUMBA_NUM_THREADS), got {n}")
    numba.set_num_threads(n)
    _limit_blas_threads(n)


def get_num_threads():
    """The number of threads fastbp's parallel kernels use."""
    return numba.get_num_threads()


def _limit_blas_threads(n):
    """Keep BLAS pools from oversubscribing the cores Numba's threads use."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")


_flush_denormal = True
_workers_started = False


def set_flush_denormal(mode):
    """Flush subnormal floats to zero (FTZ and DAZ) inside fastbp's compiled calls; on by default.

    Subnormals (below 1.2e-38 in float32) cost a microcode assist per operation on
    x86 and can slow a step several-fold once a model's gradients get tiny; JAX and
    TensorFlow flush them too.  ``False`` gives IEEE gradual underflow, as PyTorch
    does by default.  Only fastbp's own calls are affected, never the caller's numpy
    code.  Returns True where the CPU supports it (x86), like ``torch.set_flush_denormal``.
    """
    global _flush_denormal
    if not isinstance(mode, bool):
        raise TypeError(f"mode must be a bool, got {type(mode).__name__}")
    from .kernels import fpenv
    _flush_denormal = mode
    return fpenv.X86


def get_flush_denormal():
    """Whether fastbp's compiled calls flush subnormal floats to zero (``set_flush_denormal``)."""
    return _flush_denormal


def flush_denormal():
    """The flag the compiled entry points take; first starts Numba's worker threads unflushed.

    A new thread inherits its creator's MXCSR, so workers first created inside a
    flushed call would keep flushing afterwards, in other code too.  Starting every
    worker here first (with the caller's own MXCSR) prevents that.
    """
    global _workers_started
    if not _workers_started:
        from .kernels import fpenv
        threads = numba.get_num_threads()
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        try:
            fpenv.worker_mxcsr(np.zeros(4 * numba.config.NUMBA_NUM_THREADS, dtype=np.uint32))
        finally:
            numba.set_num_threads(threads)
        _workers_started = True
    return _flush_denormal
