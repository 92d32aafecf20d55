"""The tape: ``Tensor`` (a numpy array plus the op that made it) and reverse-mode backward.

Every differentiable op (``ops.py``, ``losses.py``) computes its output with
numpy or an engine kernel and, right beside it, a local ``_backward(g)`` that
maps the output's gradient to one gradient per input; ``_node`` records both.
``Tensor.backward`` then walks the graph in reverse topological order (an
explicit stack, no recursion, so chains of any length work), summing the
gradients of tensors used more than once, and accumulating into ``.grad`` of
leaf tensors, as PyTorch does.  The graph's closures (and the arrays they
saved) are dropped after backward unless ``retain_graph=True``.
"""
import functools
import threading

import numpy as np

__all__ = [
    "Tensor", "tensor", "custom_op",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
]


# --------------------------------------------------------------------------- grad mode

class _GradMode(threading.local):
    enabled = True


_MODE = _GradMode()


def is_grad_enabled():
    """Whether ops record the graph in this thread (False inside ``no_grad``)."""
    return _MODE.enabled


class _GradModeContext:
    """Context manager and decorator that sets grad mode and restores it on exit."""

    _target = True

    def __new__(cls, func=None):
        self = super().__new__(cls)
        self._saved = []
        if func is not None:            # bare ``@no_grad`` on a function
            return self(func)
        return self

    def __enter__(self):
        self._saved.append(_MODE.enabled)
        _MODE.enabled = self._target
        return self

    def __exit__(self, *exc):
        _MODE.enabled = self._saved.pop()
        return False

    def __call__(self, func):
        cls = type(self)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with cls():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):
    """Disable graph recording: ops inside give tensors with ``requires_grad=False``.

    Use as ``with no_grad():`` or as a decorator (``@no_grad()`` or ``@no_grad``).
    """

    _target = False


class enable_grad(_GradModeContext):
    """Re-enable graph recording (inside ``no_grad``); context manager or decorator."""

    _target = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode``: immediately when called, restored on exit when used with ``with``."""

    def __new__(cls, mode):
        self = object.__new__(cls)
        self._target = bool(mode)
        self._saved = [_MODE.enabled]
        _MODE.enabled = self._target
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _MODE.enabled = self._saved.pop()
        return False


# --------------------------------------------------------------------------- Tensor

def _is_float(dtype):
    return np.dtype(dtype).kind == "f"


def _to_array(data, dtype=None, copy=False):
    """numpy array for ``data``: arrays keep their dtype, Python numbers become float64."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtype, copy=True) if copy else np.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        return np.array(data, copy=True) if copy else np.asarray(data)
    arr = np.array(data)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind == "O":
        raise TypeError(f"cannot make a tensor from {type(data).__name__} (object array)")
    return arr


def tensor(data, requires_grad=False, dtype=None):
    """A new leaf ``Tensor`` holding a copy of ``data``.

    Python floats and ints become float64 (so ``tensor([2.0])`` and
    ``tensor([1, 2])`` are float64); numpy arrays keep their dtype (float32
    stays float32, int64 stays int64); ``dtype`` overrides both.  Only
    floating-point tensors may ``requires_grad``.
    """
    return Tensor(_to_array(data, dtype, copy=True), requires_grad=requires_grad)


class Tensor:
    """A numpy array on the autograd tape.

    ``Tensor(data)`` wraps an array without copying; ``tensor(data)`` copies.

    Attributes:
        data: the ``np.ndarray``.
        grad: ``None`` or an array of ``data``'s shape and dtype; filled by
            ``backward`` on leaf tensors (and on tensors that ``retain_grad()``),
            accumulating across calls until ``zero_grad()`` or ``grad = None``.
        requires_grad: whether ops on this tensor are recorded.
    """

    __array_ufunc__ = None        # ``ndarray (op) Tensor`` defers to Tensor's reflected operator
    __array_priority__ = 1000
    __hash__ = object.__hash__    # ``==`` is elementwise, identity hashing stays

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self._requires_grad = False
        self._prev = ()           # the inputs of the op that made this tensor
        self._backward = None     # g -> one gradient (or None) per input
        self._op = None           # the op's name; None for leaves
        self._freed = False       # backward ran without retain_graph
        self._retains_grad = False
        if requires_grad:
            self.requires_grad = True

    # ----------------------------------------------------------------- attributes
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        value = bool(value)
        if not self.is_leaf:
            raise RuntimeError("you can only change requires_grad flags of leaf tensors; "
                               "use detach() to get a leaf")
        if value and not _is_float(self.data.dtype):
            raise RuntimeError(f"only tensors of floating-point dtype can require gradients, "
                               f"got dtype {self.data.dtype}")
        self._requires_grad = value

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place (leaf tensors only); returns self."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        """True for tensors not made by a recorded op (user-created or ``requires_grad=False``)."""
        return self._op is None

    @property
    def grad_fn(self):
        """The name of the op that made this tensor, or None for leaves."""
        return self._op

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    def size(self, dim=None):
        """The shape (torch's ``size()``), or its length along ``dim``."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype not in (np.float64, np.bool_, np.int64):
            extra += f", dtype={self.data.dtype}"
        if self._op is not None:
            extra += f", grad_fn={self._op}"
        elif self._requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ----------------------------------------------------------------- leaving the tape
    def detach(self):
        """A leaf sharing ``data``, outside the graph (``requires_grad=False``)."""
        return Tensor(self.data)

    def numpy(self):
        """The data array (shared); like torch, refused while the tensor requires grad."""
        if self._requires_grad:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; use detach().numpy() "
                               "or .data")
        return self.data

    def __array__(self, dtype=None, copy=None):
        if self._requires_grad:
            raise RuntimeError("can't convert a tensor that requires grad to a numpy array; "
                               "use detach() or .data")
        if dtype is not None:
            return self.data.astype(dtype, copy=bool(copy))
        return self.data.copy() if copy else self.data

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    # ----------------------------------------------------------------- backward
    def zero_grad(self):
        """Drop the accumulated gradient (``grad = None``), as torch's ``set_to_none``."""
        self.grad = None

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` during backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on a tensor that has requires_grad=False")
        self._retains_grad = True
        return self

    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf), weighted by ``gradient``, into every leaf's ``.grad``.

        ``gradient`` may be omitted only for a one-element tensor (it is then 1).
        The graph is freed afterwards unless ``retain_graph=True``.
        """
        if not self._requires_grad:
            raise RuntimeError(_not_differentiable_message(self))
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; this tensor "
                                   f"has shape {self.shape}: call backward(gradient) with a gradient of "
                                   f"that shape")
            g = np.ones_like(self.data)
        else:
            g = _to_array(gradient.data if isinstance(gradient, Tensor) else gradient, self.dtype)
            if g.shape != self.shape:
                raise RuntimeError(f"backward: gradient has shape {g.shape} but the tensor has shape "
                                   f"{self.shape}")
        run_backward([self], [g], retain_graph=retain_graph)

    # ----------------------------------------------------------------- operators (ops.py)
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # comparisons: boolean tensors, outside the graph
    def __lt__(self, other):
        return _ops.compare(np.less, self, other)

    def __le__(self, other):
        return _ops.compare(np.less_equal, self, other)

    def __gt__(self, other):
        return _ops.compare(np.greater, self, other)

    def __ge__(self, other):
        return _ops.compare(np.greater_equal, self, other)

    def __eq__(self, other):
        return _ops.compare(np.equal, self, other)

    def __ne__(self, other):
        return _ops.compare(np.not_equal, self, other)

    # ----------------------------------------------------------------- methods (ops.py)
    @property
    def T(self):
        """All axes reversed (the matrix transpose for 2-D)."""
        return _ops.permute(self, tuple(range(self.ndim))[::-1])

    def sum(self, axis=None, keepdims=False):
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return _ops.min(self, axis, keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _ops.argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return _ops.argmin(self, axis, keepdims)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def leaky_relu(self, negative_slope=0.01):
        return _ops.leaky_relu(self, negative_slope)

    def elu(self, alpha=1.0):
        return _ops.elu(self, alpha)

    def gelu(self, approximate="none"):
        return _ops.gelu(self, approximate)

    def silu(self):
        return _ops.silu(self)

    def softplus(self, beta=1.0, threshold=20.0):
        return _ops.softplus(self, beta, threshold)

    def softmax(self, axis=-1):
        return _ops.softmax(self, axis)

    def log_softmax(self, axis=-1):
        return _ops.log_softmax(self, axis)

    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    view = reshape

    def flatten(self):
        return _ops.reshape(self, -1)

    def transpose(self, dim0=None, dim1=None):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    def astype(self, dtype):
        return _ops.astype(self, dtype)

    def float(self):
        return _ops.astype(self, np.float32)

    def double(self):
        return _ops.astype(self, np.float64)


def _not_differentiable_message(t):
    if not _is_float(t.dtype):
        return (f"this tensor (dtype {t.dtype}) is not differentiable: integer and boolean tensors "
                f"(comparisons, argmax/argmin, labels) carry no gradient")
    return ("this tensor does not require grad and has no grad_fn: none of its inputs requires grad, "
            "or it was computed under no_grad() or from detach()")


# --------------------------------------------------------------------------- recording

def _node(data, parents, backward, op):
    """Output tensor of an op; records ``backward`` when grad mode is on and an input requires grad.

    ``backward(g)`` returns one gradient (array of that input's shape, or None)
    per entry of ``parents``; gradients for inputs that do not require grad
    are ignored, so a backward may skip them by checking ``requires_grad``.
    """
    out = Tensor(data)
    if _MODE.enabled and _is_float(out.data.dtype) and any(p._requires_grad for p in parents):
        out._requires_grad = True
        out._prev = tuple(parents)
        out._backward = backward
        out._op = op
    return out


def custom_op(data, parents, backward, name="custom"):
    """Wrap an array computed from ``parents`` as a differentiable node.

    ``backward(g)`` must return a tuple with one gradient per parent (arrays of
    the parents' shapes, or None).  The extension point for ops not in
    ``ops.py``; ``gradcheck`` verifies them.
    """
    parents = tuple(p if isinstance(p, Tensor) else Tensor(p) for p in parents)
    return _node(np.asarray(data), parents, backward, name)


# --------------------------------------------------------------------------- backward

_FREED_MESSAGE = ("trying to backward through the graph a second time (or after its saved arrays were "
                  "freed); call backward(retain_graph=True) the first time if you need to backward "
                  "through it again")


def _topological_order(roots):
    """Nodes reachable from ``roots`` through tensors that require grad, inputs before outputs.

    Iterative depth-first post-order (an explicit stack instead of recursion).
    """
    order, visited = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        if node._freed:
            raise RuntimeError(_FREED_MESSAGE)
        visited.add(id(node))
        stack.append((node, True))
        for p in node._prev:
            if p._requires_grad and id(p) not in visited:
                stack.append((p, False))
    return order


def _accumulate(t, g):
    """``t.grad += g``, creating ``t.grad`` (a private copy) on first use."""
    if t.grad is None:
        t.grad = np.array(g, dtype=t.dtype, copy=True)
    else:
        t.grad += g


def run_backward(roots, root_grads, inputs=None, retain_graph=False):
    """Reverse-mode sweep from ``roots`` seeded with ``root_grads``.

    Without ``inputs``: accumulate into ``.grad`` of leaves (and of tensors that
    ``retain_grad()``).  With ``inputs`` (a list of tensors): touch no ``.grad``
    and return their gradients (None where unreached), as ``torch.autograd.grad``.
    """
    for r in roots:
        if not r._requires_grad:
            raise RuntimeError(_not_differentiable_message(r))
    order = _topological_order(roots)
    grads = {}
    for r, g in zip(roots, root_grads):
        grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    wanted = None if inputs is None else {id(t): None for t in inputs}

    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if wanted is not None:
            if id(node) in wanted:
                wanted[id(node)] = g
        elif node._op is None or node._retains_grad:
            _accumulate(node, g)
        if node._op is None:
            continue
        parent_grads = node._backward(g)
        for p, gp in zip(node._prev, parent_grads):
            if gp is None or not p._requires_grad:
                continue
            gp = np.asarray(gp)
            if gp.shape != p.shape:
                raise RuntimeError(f"backward of '{node._op}' returned a gradient of shape {gp.shape} "
                                   f"for an input of shape {p.shape}")
            if gp.dtype != p.dtype:
                gp = gp.astype(p.dtype)
            k = id(p)
            grads[k] = grads[k] + gp if k in grads else gp

    if not retain_graph:
        for node in order:
            if node._op is not None:
                node._backward = None
                node._prev = ()
                node._freed = True
    if wanted is not None:
        return [wanted[id(t)] for t in inputs]
    return None


from . import ops as _ops  # noqa: E402  (ops imports Tensor from this module)
