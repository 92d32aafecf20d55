"""Validation of user input, run before any kernel so that bad input gets a
clear ``TypeError``/``ValueError`` naming the argument, never a Numba typing
error, NaN garbage or a half-updated model.

Two strictness levels:

* the hot path (``forward``, ``backward``, ``train_step``, loss calls) accepts
  exactly the model's dtype in C order and never converts silently;
* the convenience API (``fit``, ``predict``, ``evaluate``) converts any real
  numeric array-like to the model's dtype once, up front (like scikit-learn).
"""
import numbers

import numpy as np

from .kernels.reductions import all_finite, int_range

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)          # comparing with the type np.int64 converts it on every call


def check_dtype(dtype):
    """The model dtype: float32 or float64 (None: the default, float32, as Keras's floatx;
    numpy would read None as float64)."""
    if dtype is None:
        return FLOAT_DTYPES[0]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt.name}")
    return dt


def seeded_rng(name, seed):
    """``numpy.random.default_rng(seed)``, with a TypeError/ValueError that names ``name``."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{name} must be None, a non-negative int or a numpy Generator/SeedSequence "
                      f"({e})") from None


def check_positive_int(name, value, minimum=1):
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


MAX_STEP_COUNT = 1 << 62     # step counters stay far from int64's end (the compiled calls add to them)


def checked_step_count(name, value):
    """A step count (or a code read back from a file): an integer, 0-d arrays included, in
    [0, ``MAX_STEP_COUNT``], as a Python int."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    value = check_positive_int(name, value, minimum=0)
    if value > MAX_STEP_COUNT:
        raise ValueError(f"{name} must be in [0, 2**62], got {value}")
    return value


def check_float(name, value, low=None, high=None, low_open=False):
    """A real number in [low, high] (or (low, high] when ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def _require_ndarray(name, a):
    """``a`` as a plain ndarray: a subclass (np.matrix, np.memmap) as a view of its data,
    since the compiled kernels and ``reshape`` need plain-array semantics (a matrix stays
    2-D through ``reshape(-1)``).  Masked arrays are refused: their mask would be lost."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if type(a) is np.ndarray:
        return a
    _refuse_masked(name, a)
    return a.view(np.ndarray)


def _refuse_masked(name, a):
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a numpy.ndarray, got a masked array; fill or drop the masked "
                        f"values first (numpy.ma.filled)")


def non_finite_error(name, source, converted):
    """The ValueError for a ``converted`` array that holds NaN or Inf: its ``source`` may have been
    finite and overflowed in the cast (1e39 to float32)."""
    if source is not converted and source.dtype.kind == "f" and source.dtype.itemsize > converted.dtype.itemsize \
            and bool(np.isfinite(source).all()):
        return ValueError(f"{name} holds values beyond the range of {converted.dtype.name}, the model's dtype")
    return ValueError(f"{name} contains NaN or Inf")


def _check_finite(name, a, source=None):
    if a.dtype.kind != "f":
        return
    if a.dtype in FLOAT_DTYPES and a.flags.c_contiguous:
        finite = all_finite(a.reshape(-1))            # one pass, no temporary array
    else:
        finite = bool(np.isfinite(a).all())
    if not finite:
        raise non_finite_error(name, a if source is None else source, a)


def _check_shape(name, a, ndim, width):
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.shape[0] == 0 or (ndim == 2 and a.shape[1] == 0):
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if width is not None and a.shape[1] != width:
        raise ValueError(f"{name} must have {width} columns, got shape {a.shape}")


def _ready_matrix(a, dtype, width):
    """Whether ``a`` is already a plain, non-empty, C-contiguous (B, width) array of ``dtype``:
    the common case, checked in ~0.3 µs instead of ~1 µs (a W3 step is ~35 µs)."""
    if type(a) is np.ndarray and a.ndim == 2 and a.dtype == dtype and a.flags.c_contiguous:
        rows, cols = a.shape
        return rows > 0 and cols > 0 and (width is None or cols == width)
    return False


def strict_matrix(name, a, dtype, width, finite=True):
    """A non-empty, finite, C-contiguous (B, width) array of exactly ``dtype`` (hot path).

    ``finite=False`` leaves the NaN/Inf check to the caller (``copy_finite`` while staging).
    """
    if _ready_matrix(a, dtype, width):
        if finite:
            _check_finite(name, a)
        return a
    a = _require_ndarray(name, a)
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype.name} (the model's dtype), got {a.dtype}")
    _check_shape(name, a, 2, width)
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass numpy.ascontiguousarray({name})")
    if finite:
        _check_finite(name, a)
    return a


def output_matrix(name, a, dtype, shape):
    """A writable C-contiguous array of exactly ``dtype`` and ``shape`` to write results into."""
    if type(a) is not np.ndarray:
        a = _require_ndarray(name, a)
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype.name} (the model's dtype), got {a.dtype}")
    if a.shape != shape and a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    flags = a.flags
    if not flags.c_contiguous or not flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous array")
    return a


def as_matrix(name, a, dtype, width, finite=True):
    """Convert a real numeric array-like to a finite C-contiguous (N, width) array of ``dtype``.

    Finiteness is checked after the conversion, so a float64 value that overflows the
    model's float32 is caught too.  ``finite=False`` leaves that check to the caller
    (the compiled ``predict`` checks its input in the same call).
    """
    if _ready_matrix(a, dtype, width):
        if finite:
            _check_finite(name, a)
        return a
    _refuse_masked(name, a)
    arr = np.asarray(a) if not isinstance(a, np.ndarray) else a
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1 and width is not None and width == 1:
        arr = arr.reshape(-1, 1)
    _check_shape(name, arr, 2, width)
    if type(arr) is np.ndarray and arr.dtype == dtype and arr.flags.c_contiguous:
        out = arr                                       # what ascontiguousarray would return
    else:
        with np.errstate(over="ignore"):                # an overflow is reported below, by name
            out = np.ascontiguousarray(arr, dtype=dtype)
    if finite:
        _check_finite(name, out, arr)
    return out


def as_labels(name, y, n_classes, n_rows=None, strict=False, check_range=True):
    """Integer class labels in [0, n_classes) as a C-contiguous int64 (N,) array.
    ``check_range=False``: the caller checks the range (the compiled training step does)."""
    if not check_range and type(y) is np.ndarray and y.ndim == 1 and y.dtype == _INT64 and y.flags.c_contiguous \
            and y.shape[0] > 0 and (n_rows is None or y.shape[0] == n_rows):
        return y                                # what the checks below would return (a training step's labels)
    _refuse_masked(name, y)
    arr = _require_ndarray(name, y) if strict else np.asarray(y)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and not strict and arr.size and np.all(np.isfinite(arr)) \
                and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D integer labels, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} labels but the predictions have {n_rows} rows")
    if arr.dtype == np.int64 and arr.flags.c_contiguous:
        if not check_range:
            return arr
        lo, hi = int_range(arr)                 # one compiled pass
    else:
        lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"{name} must be class indices in [0, {n_classes}), got values in [{lo}, {hi}]")
    return np.ascontiguousarray(arr, dtype=np.int64)


def checked_buffer(owner, mapping, key, like):
    """``mapping[key]`` converted to ``like``'s dtype, checked to be real, finite and of
    ``like``'s shape, for copying into a model or optimizer buffer (``load_state_dict``)."""
    if key not in mapping:
        raise ValueError(f"{owner} has no {key!r} entry")
    name = f"{owner}[{key!r}]"
    value = np.asarray(mapping[key])
    if value.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    if value.shape != like.shape:
        raise ValueError(f"{name} has shape {value.shape}, expected {like.shape}")
    with np.errstate(over="ignore"):
        out = value.astype(like.dtype)
    _check_finite(name, out, value)
    return out


def same_rows(name_a, a, name_b, b):
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{name_a} has {a.shape[0]} rows but {name_b} has {b.shape[0]}")
