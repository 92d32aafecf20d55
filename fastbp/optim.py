"""Optimizers over a model's parameter arena (torch.optim's rules and defaults).

Every optimizer updates the whole arena with one kernel call
(``fastbp.kernels.optim.optimizer_step``) over the flat ``params``/``grads``
buffers; its state is one ``(rows, P)`` array of the arena's layout.  ``step()``
runs it with subnormals flushed to zero when ``fastbp.get_flush_denormal()``, as
the model's fused ``train_step`` does, so both update the same way.

Example:
    >>> opt = fastbp.optim.Adam(model.parameters(), lr=1e-3)
    >>> opt.zero_grad(); ...backward...; opt.step()
    >>> opt.lr = 1e-4                        # takes effect at the next step

For a fused training step that runs the kernel itself (no Python per step),
an optimizer exposes what the kernel needs: ``code``, ``state``, ``hyper``,
and ``advance(n)``, which counts ``n`` steps without running anything and
returns the new ``step_count``.  ``hyper`` and ``state`` are updated in place
(hyper-parameter changes, ``load_state_dict``), never rebound, so references
held by the caller stay valid.
"""
import math
from collections.abc import MutableMapping

import numpy as np

from .arena import ParameterArena
from .kernels import codes
from ._jit import flush_denormal
from .kernels.optim import HYPER_SIZE, STATE_ROWS, clip_grad_norm, optimizer_step_call
from .validation import MAX_STEP_COUNT, checked_buffer, checked_step_count

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "clip_grad_norm_"]


def _check_arena(params):
    if not isinstance(params, ParameterArena):
        raise TypeError(f"params must be a ParameterArena (model.parameters()), got {type(params).__name__}")
    if params.params is None:
        raise ValueError("params: the ParameterArena is not allocated yet")
    return params


def _float(name, value, parse_strings=False):
    if isinstance(value, (str, bytes)) and not parse_strings:   # torch's optimizers raise on "0.1" too
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def _at_least_zero(name, value):
    if not 0.0 <= value:          # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value}")


def _in_unit_interval(name, value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


class _HyperParameter:
    """A hyper-parameter attribute: setting it validates and repacks ``hyper`` in place."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, optimizer, owner=None):
        if optimizer is None:
            return self
        return optimizer._values[self.name]

    def __set__(self, optimizer, value):
        optimizer._set_hyper_parameters({self.name: value})


class _ParamGroup(MutableMapping):
    """torch-like ``param_groups[0]``: hyper-parameter keys read and write the optimizer."""

    def __init__(self, optimizer):
        self._optimizer = optimizer
        self._extra = {}

    def __getitem__(self, key):
        if key in self._optimizer._values:
            return self._optimizer._values[key]
        return self._extra[key]

    def __setitem__(self, key, value):
        if key in self._optimizer._values:
            setattr(self._optimizer, key, value)
        else:
            self._extra[key] = value

    def __delitem__(self, key):
        if key in self._optimizer._values:
            raise KeyError(f"{key!r} is a hyper-parameter of the optimizer and cannot be removed")
        del self._extra[key]

    def __iter__(self):
        yield from self._optimizer._values
        yield from self._extra

    def __len__(self):
        return len(self._optimizer._values) + len(self._extra)

    def __repr__(self):
        return repr(dict(self))


class Optimizer:
    """Base class: one flat update of a ParameterArena per ``step()``.

    Attributes:
        arena: the ParameterArena being optimized.
        code: the kernel's optimizer code (``fastbp.kernels.codes``).
        state: (rows, P) optimizer state, the arena's dtype.
        hyper: 1-D hyper-parameter array packed for the kernel, the arena's dtype.
        step_count: number of steps taken (the kernel's ``step`` is its 1-based count).
        param_groups: ``[group]``, a dict-like view of the hyper-parameters (torch-like).
    """

    code = None
    _names = ()          # hyper-parameter names, in constructor order

    def __init__(self, params, **hyper_parameters):
        self.arena = _check_arena(params)
        self.state = params.zeros_like_params(STATE_ROWS[self.code])
        self.step_count = 0
        self._values = {}
        self.hyper = np.zeros(HYPER_SIZE[self.code], dtype=params.dtype)
        self._set_hyper_parameters(hyper_parameters)
        self.param_groups = [_ParamGroup(self)]

    # -- hyper-parameters ------------------------------------------------------------------------
    def _normalize(self, values):
        """Convert user values to plain Python floats/bools/tuples (TypeError on junk)."""
        raise NotImplementedError

    def _validate(self, values):
        """Raise ValueError naming the offending argument."""
        raise NotImplementedError

    def _pack(self, values):
        """The kernel's hyper list, in its layout order."""
        raise NotImplementedError

    def _set_hyper_parameters(self, changes):
        unknown = set(changes) - set(self._names)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no hyper-parameter {sorted(unknown)[0]!r}")
        values = dict(self._values)
        values.update(self._normalize(changes))
        self._validate(values)
        self._check_finite_in_dtype(values)
        self._values = {name: values[name] for name in self._names}
        self.hyper[:] = self._pack(self._values)

    def _check_finite_in_dtype(self, values):
        """Every number must be finite in the parameters' dtype: ``lr=inf``, or ``lr=1e39`` for
        float32 parameters, would turn every parameter into Inf or NaN at the first step."""
        dtype = self.hyper.dtype
        for name, value in values.items():
            for number in (value if isinstance(value, tuple) else (value,)):
                if isinstance(number, bool):
                    continue
                with np.errstate(over="ignore"):
                    finite = np.isfinite(dtype.type(number))
                if not finite:
                    raise ValueError(f"{name} must be finite in {dtype.name} (the parameters' dtype), got {value}")

    # -- stepping ------------------------------------------------------------------------------
    def step(self, closure=None):
        """Update every parameter from ``arena.grads`` (one kernel call).

        Args:
            closure: optional callable that recomputes the gradients and returns the loss;
                it is called before the update and its result returned.
        """
        step = self.step_count + 1
        if type(step) is not int or not 0 < step <= MAX_STEP_COUNT:     # set by hand to junk
            step = checked_step_count("step_count + 1", step)
        loss = closure() if closure is not None else None
        self.step_count = step
        optimizer_step_call(self.code, self.arena.params, self.arena.grads, self.state, self.hyper,
                            self.step_count, flush_denormal())
        return loss

    def advance(self, n=1):
        """Count ``n`` steps without updating anything; returns the new ``step_count``.

        For fused training loops that call ``optimizer_step`` themselves: the kernel's
        ``step`` argument is ``opt.advance()`` for one step, or ``opt.advance(n) - n + k + 1``
        for the k-th (0-based) of ``n`` steps run in one compiled call.

        Example:
            >>> t = opt.advance()
            >>> optimizer_step(opt.code, arena.params, arena.grads, opt.state, opt.hyper, t)
        """
        n = checked_step_count("n", n)
        self.step_count = checked_step_count("step_count + n", self.step_count + n)
        return self.step_count

    def zero_grad(self):
        """Set every gradient of the arena to zero."""
        self.arena.zero_grad()

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self):
        """A copy of the optimizer's state: numpy arrays and plain numbers only (``.npz``-safe).

        Keys: ``code``, ``step_count``, ``state`` and every hyper-parameter
        (``betas`` as a float64 array of 2).
        """
        d = {"code": int(self.code), "step_count": int(self.step_count), "state": self.state.copy()}
        for name, value in self._values.items():
            d[name] = np.array(value, dtype=np.float64) if isinstance(value, tuple) else value
        return d

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()``'s output (values may be 0-d arrays, e.g. from ``np.load``).

        ``state`` is copied into the existing array, so references to it stay valid.
        """
        for key in ("code", "step_count"):
            if key not in state_dict:
                raise ValueError(f"state_dict has no {key!r} entry")
        code = checked_step_count("state_dict['code']", state_dict["code"])
        if code != self.code:
            raise ValueError(f"state_dict is for optimizer code {code}, this {type(self).__name__} "
                             f"has code {self.code}")
        state = checked_buffer("state_dict", state_dict, "state", self.state)
        step_count = checked_step_count("state_dict['step_count']", state_dict["step_count"])
        # hyper-parameters are validated as a whole before they are set; nothing is written before
        self._set_hyper_parameters({name: state_dict[name] for name in self._names if name in state_dict})
        self.state[...] = state
        self.step_count = step_count

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({args})"


def _flag(value):
    if isinstance(value, str):
        raise TypeError(f"expected a bool, got {value!r}")
    return bool(value)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (torch.optim.SGD).

    Args:
        params: the model's ParameterArena (``model.parameters()``).
        lr: learning rate.
        momentum: momentum factor.
        dampening: dampening of the momentum.
        weight_decay: L2 penalty added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening == 0).
        maximize: ascend the objective instead of descending.

    Example:
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    """

    code = codes.SGD
    _names = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    lr = _HyperParameter()
    momentum = _HyperParameter()
    dampening = _HyperParameter()
    weight_decay = _HyperParameter()
    nesterov = _HyperParameter()
    maximize = _HyperParameter()

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 maximize=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov, maximize=maximize)

    def _normalize(self, values):
        return {k: (_flag(v) if k in ("nesterov", "maximize") else _float(k, v)) for k, v in values.items()}

    def _validate(self, v):
        for name in ("lr", "momentum", "weight_decay"):
            _at_least_zero(name, v[name])
        if not math.isfinite(v["dampening"]):
            raise ValueError(f"dampening must be finite, got {v['dampening']}")
        if v["nesterov"] and (v["momentum"] <= 0 or v["dampening"] != 0):
            raise ValueError("nesterov requires momentum > 0 and dampening == 0 "
                             f"(momentum={v['momentum']}, dampening={v['dampening']})")

    def _pack(self, v):
        return [v["lr"], v["momentum"], v["dampening"], v["weight_decay"], float(v["nesterov"]),
                float(v["maximize"])]


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop).

    Args:
        params: the model's ParameterArena (``model.parameters()``).
        lr: learning rate.
        alpha: smoothing constant of the squared-gradient average.
        eps: added to the denominator.
        weight_decay: L2 penalty added to the gradient.
        momentum: momentum factor.
        centered: normalize by the estimated gradient variance instead of the raw second moment.

    Example:
        >>> opt = RMSprop(model.parameters(), lr=1e-3, momentum=0.9, centered=True)
    """

    code = codes.RMSPROP
    _names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    lr = _HyperParameter()
    alpha = _HyperParameter()
    eps = _HyperParameter()
    weight_decay = _HyperParameter()
    momentum = _HyperParameter()
    centered = _HyperParameter()

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered)

    def _normalize(self, values):
        return {k: (_flag(v) if k == "centered" else _float(k, v)) for k, v in values.items()}

    def _validate(self, v):
        for name in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            _at_least_zero(name, v[name])

    def _pack(self, v):
        return [v["lr"], v["alpha"], v["eps"], v["weight_decay"], v["momentum"], float(v["centered"])]


class Adam(Optimizer):
    """Adam (torch.optim.Adam, amsgrad=False; weight_decay is an L2 term added to the gradient).

    Args:
        params: the model's ParameterArena (``model.parameters()``).
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator.
        weight_decay: L2 penalty added to the gradient.

    Example:
        >>> opt = Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
    """

    code = codes.ADAM
    _names = ("lr", "betas", "eps", "weight_decay")
    lr = _HyperParameter()
    betas = _HyperParameter()
    eps = _HyperParameter()
    weight_decay = _HyperParameter()

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _normalize(self, values):
        out = {}
        for k, v in values.items():
            if k == "betas":
                try:
                    pair = np.asarray(v)
                    if pair.dtype.kind not in "biuf":
                        raise TypeError
                    beta1, beta2 = pair.astype(np.float64).tolist()
                except (TypeError, ValueError):
                    raise TypeError(f"betas must be a pair of real numbers, got {v!r}") from None
                out[k] = (beta1, beta2)
            else:
                out[k] = _float(k, v)
        return out

    def _validate(self, v):
        _at_least_zero("lr", v["lr"])
        _at_least_zero("eps", v["eps"])
        _in_unit_interval("betas[0]", v["betas"][0])
        _in_unit_interval("betas[1]", v["betas"][1])
        _at_least_zero("weight_decay", v["weight_decay"])

    def _pack(self, v):
        return [v["lr"], v["betas"][0], v["betas"][1], v["eps"], v["weight_decay"]]


class AdamW(Adam):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay ``p *= 1 - lr * weight_decay``.

    Args:
        params: the model's ParameterArena (``model.parameters()``).
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator.
        weight_decay: decoupled weight decay coefficient.

    Example:
        >>> opt = AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    """

    code = codes.ADAMW

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def clip_grad_norm_(params, max_norm, norm_type=2.0):
    """Scale the arena's gradients in place so their total norm is at most ``max_norm``.

    torch.nn.utils.clip_grad_norm_ semantics: gradients are multiplied by
    ``max_norm / (total_norm + 1e-6)`` when that is below 1.  The norm is
    accumulated in float64 in a fixed order (identical for any thread count).

    Args:
        params: the model's ParameterArena (``model.parameters()``).
        max_norm: the largest allowed norm (>= 0).
        norm_type: p of the p-norm (> 0), or ``float('inf')`` / ``'inf'`` for the max norm.

    Returns:
        The total norm of the gradients before clipping, as a float.

    Example:
        >>> total = clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    arena = _check_arena(params)
    # torch's clip_grad_norm_ converts both with float(), so norm_type='inf' works
    max_norm = _float("max_norm", max_norm, parse_strings=True)
    norm_type = _float("norm_type", norm_type, parse_strings=True)
    if not 0.0 <= max_norm:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    if not 0.0 < norm_type:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    return float(clip_grad_norm(arena.grads, max_norm, norm_type))
