"""The only module that configures Numba: decorators, flag sets and threads.

Every kernel module imports its decorators from here, so the compile flags of
the whole engine are decided in one place.

* ``NUMBA_SLP_VECTORIZE=1`` is set before Numba is imported (Numba leaves
  LLVM's SLP vectorizer off by default, which costs the register-tiled GEMM
  micro-kernel an order of magnitude; see ``benchmarks/NOTES.md``).  A user who
  sets the variable explicitly wins; ``SLP_VECTORIZED`` reports the outcome.
* ``cache=True`` unless ``FASTBP_CACHE=0``.  Numba falls back to a user-wide
  cache directory when the package directory is read-only; ``NUMBA_CACHE_DIR``
  overrides both.
* ``FASTMATH_SAFE`` keeps NaN/Inf semantics (no ``nnan``/``ninf``) and no
  ``reassoc`` (which mis-vectorizes the GEMM micro-kernel);
  ``FASTMATH_REDUCE`` adds ``reassoc`` for reduction loops, whose order is then
  fixed by the compiled code, not by the thread count.
"""
import os

os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")

import numba  # noqa: E402  (must follow the environment set-up above)

CACHE = os.environ.get("FASTBP_CACHE", "1") != "0"
SLP_VECTORIZED = bool(getattr(numba.config, "SLP_VECTORIZE", 0))

FASTMATH_SAFE = frozenset({"contract", "nsz"})
FASTMATH_REDUCE = frozenset({"contract", "nsz", "reassoc", "arcp"})


def jit(*args, **kwargs):
    """``numba.njit`` with fastbp's defaults (cache on, safe fastmath)."""
    kwargs.setdefault("cache", CACHE)
    kwargs.setdefault("fastmath", set(FASTMATH_SAFE))
    return numba.njit(*args, **kwargs)


def jit_parallel(*args, **kwargs):
    """``jit`` with ``parallel=True``, for kernels that ``prange`` over independent work."""
    kwargs["parallel"] = True
    return jit(*args, **kwargs)


prange = numba.prange


def set_num_threads(n):
    """Set the number of threads every fastbp kernel (and BLAS, if loaded) uses."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
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
