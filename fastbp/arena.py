"""The parameter arena: every parameter of a model in one contiguous buffer.

``params`` holds every weight and bias back to back, ``grads`` has the same
layout, and optimizers allocate their state in buffers of that layout too, so
an optimizer step is one kernel over one flat buffer.  Layers never own
arrays; they hold views (``arena.view``) that stay views for the model's life:
the buffers are written in place, never rebound.
"""
import numpy as np

CACHE_LINE = 64


def aligned_zeros(shape, dtype):
    """Zeros of ``shape`` (C order) whose first element starts on a 64-byte cache line.

    numpy takes large arrays from malloc's mmap'd chunks, which start 16 bytes past a
    page: every row of an operand then begins mid cache line, and the GEMM's 512-bit
    loads and tile stores split across two lines (W1's layer products 4-6% slower;
    NOTES section 41).  The model's buffers (arena, optimizer state, workspace) use this.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(nbytes + CACHE_LINE, dtype=np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class ParameterArena:
    """A growable list of named slots, frozen into one flat buffer by ``allocate``.

    Attributes:
        params: 1-D C-contiguous array of every parameter.
        grads: 1-D array with the same layout as ``params``.
        slots: list of ``(name, offset, shape)`` in layout order.
    """

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.slots = []
        self.size = 0
        self.params = None
        self.grads = None

    def reserve(self, name, shape):
        """Add a slot of ``shape``; returns its offset.  Only before ``allocate``."""
        if self.params is not None:
            raise RuntimeError("the arena is already allocated")
        shape = tuple(int(s) for s in shape)
        offset = self.size
        self.slots.append((name, offset, shape))
        self.size += int(np.prod(shape, dtype=np.int64))
        return offset

    def allocate(self):
        """Create the flat ``params`` and ``grads`` buffers (zero-filled)."""
        self.params = aligned_zeros(self.size, self.dtype)
        self.grads = aligned_zeros(self.size, self.dtype)
        return self

    def view(self, offset, shape, buffer="params"):
        """A view of ``shape`` at ``offset`` into the ``params`` or ``grads`` buffer."""
        flat = self.params if buffer == "params" else self.grads
        n = int(np.prod(shape, dtype=np.int64))
        return flat[offset:offset + n].reshape(shape)

    def zeros_like_params(self, rows=1):
        """Optimizer state: ``rows`` buffers of the arena's layout, as one (rows, size) array."""
        return aligned_zeros((rows, self.size), self.dtype)

    def zero_grad(self):
        self.grads[...] = 0

    def __len__(self):
        return self.size

    def __repr__(self):
        return f"ParameterArena({len(self.slots)} slots, {self.size} {self.dtype.name} values)"
