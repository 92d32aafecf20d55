"""Loss functions: ``loss(pred, target) -> (mean loss as float, ∂loss/∂pred)`` in one pass.

Semantics and defaults follow torch.nn (reduction="mean").  The value and the
gradient come from one Numba kernel (``fastbp.kernels.losses``); the fused
training step calls the same kernel through ``code`` and ``param``.
"""
import numpy as np

from .kernels import codes
from .kernels.losses import loss_value_and_grad
from .validation import FLOAT_DTYPES, as_labels, as_matrix, check_float, strict_matrix

_NO_LABELS = np.zeros(0, dtype=np.int64)
_NO_TARGETS = {dt: np.zeros((0, 0), dtype=dt) for dt in FLOAT_DTYPES}   # shared: no allocation per call


class Loss:
    """Base class.  Subclasses set ``code`` and, where they have one, ``param``."""

    code = -1
    param = 0.0
    #: the per-epoch metric ``fit`` reports beside the loss
    metric = "mae"

    def __call__(self, pred, target):
        if not isinstance(pred, np.ndarray):
            raise TypeError(f"pred must be a numpy.ndarray, got {type(pred).__name__}")
        if pred.dtype not in FLOAT_DTYPES:
            raise TypeError(f"pred must have dtype float32 or float64, got {pred.dtype}")
        pred = strict_matrix("pred", pred, pred.dtype, None)
        T, labels = self.prepare_target(target, pred.shape[1], pred.dtype, n_rows=pred.shape[0], strict=True)
        grad = np.empty_like(pred)
        value = loss_value_and_grad(self.code, pred, T, labels, self.typed_param(pred.dtype), grad)
        return float(value), grad

    def typed_param(self, dtype):
        """``param`` as a numpy scalar of ``dtype``, cached: the scalar constructor costs
        ~0.5 µs, per training step."""
        cached = self.__dict__.get("_typed_param")
        if cached is None or cached[0] is not dtype or cached[1] != self.param:
            cached = self._typed_param = (dtype, self.param, np.dtype(dtype).type(self.param))
        return cached[2]

    def prepare_target(self, target, n_out, dtype, n_rows=None, strict=False, name="target", check_range=True):
        """Targets as the kernel wants them: ``(T, labels)``; one of the two is empty.
        Errors name the argument as the caller calls it (``name``: ``y``, ``yb``, ...).
        ``check_range=False`` leaves the class labels' range to the caller (the compiled
        ``train_step`` checks it)."""
        if strict and not isinstance(target, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(target).__name__}")
        if strict and target.dtype.kind == "f" and target.dtype != dtype:
            raise TypeError(f"{name} must have dtype {np.dtype(dtype).name} like the predictions, got {target.dtype}")
        T = as_matrix(name, target, dtype, n_out)
        if n_rows is not None and T.shape[0] != n_rows:
            raise ValueError(f"{name} has {T.shape[0]} rows but the predictions have {n_rows}")
        return T, _NO_LABELS

    def config(self):
        return {"type": type(self).__name__}

    def __repr__(self):
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    """mean((pred − target)²)."""

    code = codes.MSE


class L1Loss(Loss):
    """mean(|pred − target|); the gradient at 0 is 0, as in torch."""

    code = codes.L1


class HuberLoss(Loss):
    """0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta); mean over elements."""

    code = codes.HUBER

    def __init__(self, delta=1.0):
        self.param = check_float("delta", delta)
        tiny = float(np.finfo(np.float32).tiny)     # a smaller delta becomes 0 in a float32 model
        if self.param < tiny:
            raise ValueError(f"delta must be > 0 (at least float32's smallest normal number, {tiny:.4g}), "
                             f"got {self.param}")

    @property
    def delta(self):
        return self.param

    def config(self):
        return {"type": "HuberLoss", "delta": self.param}


class BCEWithLogitsLoss(Loss):
    """Sigmoid + binary cross-entropy on logits (numerically stable); targets in [0, 1]."""

    code = codes.BCE_WITH_LOGITS
    metric = "accuracy"

    def prepare_target(self, target, n_out, dtype, n_rows=None, strict=False, name="target", check_range=True):
        T, labels = super().prepare_target(target, n_out, dtype, n_rows, strict, name)
        if T.min() < 0 or T.max() > 1:
            raise ValueError(f"{name} of BCEWithLogitsLoss must lie in [0, 1]")
        return T, labels


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy over logits (B, C) with integer labels (B,), mean over the batch.

    Args:
        label_smoothing: ε in [0, 1]; the target becomes (1 − ε)·onehot + ε/C (torch semantics).
    """

    code = codes.CROSS_ENTROPY
    metric = "accuracy"

    def __init__(self, label_smoothing=0.0):
        self.param = check_float("label_smoothing", label_smoothing, low=0.0, high=1.0)

    @property
    def label_smoothing(self):
        return self.param

    def prepare_target(self, target, n_out, dtype, n_rows=None, strict=False, name="target", check_range=True):
        labels = as_labels(name, target, n_out, n_rows=n_rows, strict=strict, check_range=check_range)
        no_targets = _NO_TARGETS.get(dtype)     # a model's dtype is a numpy dtype already
        return (_NO_TARGETS[np.dtype(dtype)] if no_targets is None else no_targets), labels

    def config(self):
        return {"type": "CrossEntropyLoss", "label_smoothing": self.param}


LOSSES = {cls.__name__: cls for cls in (MSELoss, L1Loss, HuberLoss, BCEWithLogitsLoss, CrossEntropyLoss)}
LOSS_NAMES = {"mse": MSELoss, "l1": L1Loss, "huber": HuberLoss, "bce": BCEWithLogitsLoss,
              "cross_entropy": CrossEntropyLoss}


def get_loss(loss):
    """A Loss instance from an instance or a short name (``"cross_entropy"``, ``"mse"``, ...)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSS_NAMES:
        return LOSS_NAMES[loss]()
    raise ValueError(f"loss must be a fastbp loss or one of {sorted(LOSS_NAMES)}, got {loss!r}")
