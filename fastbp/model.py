"""Sequential and MLP: describe a network, own its buffers, run it through the kernels.

The Python objects never execute layers themselves.  ``Sequential`` compiles
its layers into a layer program (``fastbp.kernels.program``) once; forward,
backward, a training step, an epoch and predict are each one compiled call
over the program, the parameter arena and a preallocated workspace.
"""
import numpy as np

from . import io
from ._jit import flush_denormal
from .arena import ParameterArena, aligned_zeros
from .kernels import gemm
from .kernels import program as P
from .kernels.losses import scratch_size
from .kernels.reductions import copy_finite
from .compiler import assign_slots, compile_ops
from .layers import BatchNorm1d, Dropout, Linear, Module, activation_from_name
from .losses import CrossEntropyLoss, Loss, get_loss
from .metrics import History
from .optim import Adam, Optimizer
from .validation import (MAX_STEP_COUNT, as_matrix, check_dtype, check_positive_int, checked_buffer,
                         checked_step_count, non_finite_error, output_matrix, same_rows, seeded_rng, strict_matrix)


class Sequential:
    """A stack of layers run in order, with every parameter in one arena.

    Args:
        *layers: ``fb.Linear`` and activation modules.  An activation right after a
            Linear is fused into it (one kernel for bias + activation).
        dtype: ``np.float32`` (default) or ``np.float64``.
        seed: seeds initialization and, unless ``fit`` gets its own, shuffling.

    ``model.backward`` *overwrites* every gradient (it does not accumulate):
    one forward, one backward, one optimizer step.

    Example:
        >>> model = fb.Sequential(fb.Linear(64, 32), fb.ReLU(), fb.Linear(32, 10), seed=0)
        >>> logits = model.predict(X)
    """

    def __init__(self, *layers, dtype=np.float32, seed=None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layers[{i}] must be a fastbp layer, got {type(layer).__name__}")
            if isinstance(layer, (Linear, BatchNorm1d)):
                # a layer's parameters are views into one model's arena: sharing one object
                # would leave an earlier model, or the first position, reading stale views
                first = next(j for j, other in enumerate(layers) if other is layer)
                if first < i:
                    raise ValueError(f"layers[{i}] is the same {type(layer).__name__} object as layers[{first}]; "
                                     f"fastbp does not tie weights between layers: create a new layer")
                if getattr(layer, "_arena", None) is not None:
                    raise ValueError(f"layers[{i}] ({layer!r}) already belongs to another model; create a new "
                                     f"layer (copy weights with load_state_dict or layer.weight[...] = ...)")
        if not any(isinstance(layer, Linear) for layer in layers):
            raise ValueError("Sequential needs at least one Linear layer")
        self.layers = list(layers)
        self.dtype = check_dtype(dtype)
        self.seed = seed
        self._rng = seeded_rng("seed", seed)
        self.training = True
        try:
            self._build()
        except BaseException:
            for layer in self.layers:       # a failed build must not keep the layers from another model
                layer.bind(None, None)
            raise

    def _build(self):
        """Arena, parameters, layer program and workspace for ``self.layers`` (``__init__``)."""
        layers = self.layers
        self.arena = ParameterArena(self.dtype)
        self.state = ParameterArena(self.dtype)     # BatchNorm statistics: model state, not trained
        width = next(layer.in_features for layer in layers if isinstance(layer, Linear))
        self.in_features = width
        for layer in self.layers:
            layer.reserve(self.arena, width, self.state)
            width = layer.output_features(width)
        self.out_features = width
        self.arena.allocate()
        self.state.allocate()
        for layer in self.layers:
            layer.bind(self.arena, self.state)
            layer.initialize(self._rng)
        self._dropout_seed = int(self._rng.integers(1 << 62))
        self._step = 0                              # training forwards so far: the dropout stream
        self._ops = compile_ops(self.layers, self.in_features)
        self.checkpoint_plan = None
        self._compile()
        self._ensure_capacity(1)

    # ----------------------------------------------------------------- program
    def _compile(self, segments=None):
        """Build the layer program and its workspace layout for a segmentation of the ops.

        ``segments`` are op boundaries ``[0, ..., n_ops]``; None means one segment
        (no checkpointing).  See ``fastbp.compiler``.
        """
        if segments is None:
            segments = [0, len(self._ops)]
        lay = assign_slots(self._ops, self.in_features, self.out_features, segments, self.dtype)
        self._program, self._consts, self._layout = lay.program, lay.consts, lay.layout
        self._segments, self._per_sample = lay.segments, lay.per_sample
        self._has_batchnorm = any(isinstance(layer, BatchNorm1d) for layer in self.layers)
        # BatchNorm1d without running statistics normalises by the batch's in eval mode too
        self._batch_stats_in_eval = any(isinstance(layer, BatchNorm1d) and not layer.track_running_stats
                                        for layer in self.layers)
        self._mode_dependent = any(isinstance(layer, (BatchNorm1d, Dropout)) for layer in self.layers)
        self.capacity = 0                           # the workspace is re-allocated on next use
        self._forward_rows = 0

    def _ensure_capacity(self, rows):
        """Grow the workspace (never shrink) so that batches of ``rows`` fit."""
        if rows <= self.capacity:
            return
        need = 1
        for op in self._program:
            if op[P.C_OP] == P.OP_DENSE:
                need = max(need, gemm.work_size(rows, int(op[P.C_OUT]), int(op[P.C_IN])))
        # the training step's loss uses the start of work as float64 scratch (program.checked_step)
        need = max(need, scratch_size(rows, self.out_features) * 8 // self.dtype.itemsize)
        # both buffers first: a MemoryError must leave the old, consistent workspace
        ws, work = aligned_zeros(self._per_sample * rows, self.dtype), aligned_zeros(need, self.dtype)
        self._ws, self._work, self.capacity = ws, work, rows
        self._forward_rows = 0

    def _slot(self, which, rows, width):
        start = self._layout[which] * self.capacity
        return self._ws[start:start + rows * width].reshape(rows, width)

    def _stage_input(self, name, x):
        """Copy the batch ``x`` into the input slot, checking for NaN/Inf in the same pass.

        A non-finite batch raises before any compiled step runs; the slot then holds
        garbage, so the previous forward pass can no longer be backpropagated.
        """
        start = self._layout[P.L_INPUT] * self.capacity
        if not copy_finite(x.reshape(-1), self._ws[start:start + x.size]):
            self._forward_rows = 0
            raise ValueError(f"{name} contains NaN or Inf")

    # ------------------------------------------------------------- public API
    def parameters(self):
        """The parameter arena (``.params`` and ``.grads`` are the flat buffers)."""
        return self.arena

    @property
    def num_parameters(self):
        return self.arena.size

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        self.arena.zero_grad()

    def forward(self, x):
        """Output of the network for a batch ``x`` (B, in_features) of the model's dtype.

        The activations are kept for ``backward`` (in either mode: after an eval-mode
        forward, backward treats BatchNorm's running statistics as constants and
        dropout as the identity, as torch does).
        """
        x = strict_matrix("x", x, self.dtype, self.in_features, finite=False)
        rows = x.shape[0]
        self._check_batch_rows("x", rows)
        self._ensure_capacity(rows)
        self._stage_input("x", x)
        P.forward(self._program, self._consts, self.arena.params, self.state.params, self._ws, self.capacity,
                  rows, self._work, self.training, self._dropout_seed, self._step, self._segments,
                  flush_denormal())
        self._forward_rows = rows
        self._forward_training = self.training
        self._forward_step = self._step
        self._step += self.training
        return self._slot(P.L_OUTPUT, rows, self.out_features).copy()

    __call__ = forward

    def backward(self, dout):
        """Backpropagate ∂L/∂output of the last ``forward``; returns ∂L/∂input.

        Overwrites (does not accumulate) every ``weight_grad`` and ``bias_grad``.
        """
        if self._forward_rows == 0:
            raise RuntimeError("backward needs a forward pass first (model.forward(x)); predict, fit and "
                               "train_step do not keep their activations")
        rows = self._forward_rows
        dout = strict_matrix("dout", dout, self.dtype, self.out_features)
        if dout.shape[0] != rows:
            raise ValueError(f"dout has {dout.shape[0]} rows but the last forward had {rows}")
        self._slot(P.L_GRAD0, rows, self.out_features)[...] = dout
        slot = P.backward(self._program, self._consts, self.arena.params, self.arena.grads, self.state.params,
                          self._ws, self.capacity, rows, self._layout, self._work, self._forward_training, True,
                          self._dropout_seed, self._forward_step, self._segments, flush_denormal())
        start = slot * self.capacity
        return self._ws[start:start + rows * self.in_features].reshape(rows, self.in_features).copy()

    def set_checkpoint(self, checkpoint, batch_size):
        """Use gradient checkpointing from now on (None turns it off); returns the Plan.

        ``checkpoint`` is a ``fb.checkpoint.Plan``, ``"auto"`` (plan within a share of
        the available memory, no checkpointing when everything fits), ``"sqrt"``
        (⌈√L⌉ uniform segments), an int up to the number of ops (that many uniform
        segments) or a larger int (a byte budget, planned optimally).  Gradients
        stay bitwise identical to training without checkpointing.
        """
        from . import checkpoint as ckpt
        plan = ckpt.resolve(self, checkpoint, check_positive_int("batch_size", batch_size))
        old = self.checkpoint_plan
        self._compile(None if plan is None else plan.segments)
        try:
            self._ensure_capacity(batch_size)
        except BaseException:           # e.g. MemoryError: keep the previous plan and program
            self._compile(None if old is None else old.segments)
            raise
        self.checkpoint_plan = plan
        return plan

    def _parameterized_ops(self):
        """(op index, name) of every op with parameters, e.g. ``(0, "0: Linear(64, 128)")``."""
        return [(i, f"{i}: {op.name}") for i, op in enumerate(self._ops) if op.row[P.C_W] >= 0]

    def activation_bytes(self, batch_size):
        """Bytes kept for backward without checkpointing: ``(per_op dict, total)``."""
        from .checkpoint import activation_bytes
        return activation_bytes(self, batch_size)

    @property
    def workspace_bytes(self):
        """Bytes of the activation workspace allocated now."""
        return self._ws.nbytes

    def _check_batch_rows(self, name, rows, training=None):
        """BatchNorm1d normalising by batch statistics (training mode, or no running statistics)
        needs 2 rows or more, as in torch ("Expected more than 1 value per channel").
        ``training``: the mode the rows run in (None: the model's)."""
        if rows >= 2:
            return
        hint = "use a larger batch" if training is not None else "use a larger batch or model.eval()"
        training = self.training if training is None else training
        if rows < 2 and self._has_batchnorm and training:
            raise ValueError(f"{name} has 1 row: BatchNorm1d needs more than 1 value per feature in "
                             f"training mode ({hint})")
        if rows < 2 and self._batch_stats_in_eval:
            raise ValueError(f"{name} has 1 row: a BatchNorm1d with track_running_stats=False normalises "
                             f"by the batch's statistics in every mode and needs more than 1 row")

    def _check_optimizer(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastbp.optim optimizer, got {type(optimizer).__name__}")
        if optimizer.arena is not self.arena:
            raise ValueError("optimizer was built for another model's parameters; "
                             "pass model.parameters() to it")

    def train_step(self, xb, yb, loss, optimizer):
        """Forward, loss, backward and ``optimizer`` update as one compiled call; returns the loss.

        The step runs in training mode (BatchNorm1d batch statistics and running-statistics
        update, dropout on).  A model with BatchNorm1d or Dropout in eval mode raises
        instead of silently training as if in training mode: call ``model.train()`` first.
        """
        loss = get_loss(loss)
        self._check_optimizer(optimizer)
        if not self.training and self._mode_dependent:
            raise ValueError("train_step runs in training mode, but the model is in eval mode and has "
                             "BatchNorm1d or Dropout layers; call model.train() first")
        xb = strict_matrix("xb", xb, self.dtype, self.in_features, finite=False)
        if not xb.flags.writeable:      # the step reads xb in place and needs it writable (P.train_step)
            xb = xb.copy()
        # the label range and xb's NaN/Inf are checked inside the compiled step (status below)
        T, labels = loss.prepare_target(yb, self.out_features, self.dtype, n_rows=xb.shape[0], strict=True,
                                      name="yb", check_range=False)
        rows = xb.shape[0]
        self._check_batch_rows("xb", rows, training=True)
        self._ensure_capacity(rows)
        step = optimizer.step_count + 1
        if type(step) is not int or not 0 < step <= MAX_STEP_COUNT:     # set by hand to junk
            step = checked_step_count("optimizer.step_count + 1", step)
        value, status = P.train_step(self._program, self._consts, self.arena.params, self.arena.grads,
                                     self.state.params, self._ws, self.capacity, self._layout, self._work,
                                     self._segments, self._dropout_seed, self._step, loss.code,
                                     loss.typed_param(self.dtype), xb, T, labels, optimizer.code,
                                     optimizer.state, optimizer.hyper, step, flush_denormal())
        if status == P.STEP_BAD_LABELS:
            loss.prepare_target(yb, self.out_features, self.dtype, n_rows=rows, strict=True, name="yb")  # raises
            raise AssertionError("the compiled step rejected labels that prepare_target accepts")
        if status == P.STEP_NONFINITE_INPUT:
            raise ValueError("xb contains NaN or Inf")
        optimizer.step_count = step
        self._step += 1
        self._forward_rows = 0
        return float(value)

    def fit(self, X, y, loss=None, optimizer=None, epochs=1, batch_size=32, shuffle=True, seed=None,
            validation_data=None, verbose=0, callback=None, checkpoint=None, track_grad_norms=False):
        """Train on (X, y) for ``epochs``; returns a ``History`` of per-epoch loss and metric.

        Args:
            X: (N, in_features) real numbers, converted once to the model's dtype.
            y: integer labels for ``CrossEntropyLoss`` (the default loss), else targets.
            loss: a fastbp loss (default ``CrossEntropyLoss()``).
            optimizer: a fastbp.optim optimizer over ``model.parameters()`` (default Adam, lr=1e-3).
            batch_size: rows per step; the last batch of an epoch may be smaller.
            shuffle, seed: reshuffle rows every epoch, from ``seed`` (default: the model's seed stream).
            validation_data: ``(X_val, y_val)`` evaluated after each epoch.
            verbose: 1 prints one line per epoch.
            callback: called as ``callback(epoch, logs)`` after each epoch.
            checkpoint: gradient checkpointing for this and later steps: a ``fb.checkpoint.Plan``,
                ``"auto"``, ``"sqrt"``, a segment count or a byte budget (see ``set_checkpoint``).
            track_grad_norms: record each parameterized layer's gradient norm, averaged over the
                epoch's steps, as ``history["grad_norms"]`` (one dict {layer: norm} per epoch).
        """
        loss = CrossEntropyLoss() if loss is None else get_loss(loss)
        optimizer = Adam(self.arena) if optimizer is None else optimizer
        self._check_optimizer(optimizer)
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        X = as_matrix("X", X, self.dtype, self.in_features)
        T, labels = loss.prepare_target(y, self.out_features, self.dtype, name="y")
        same_rows("X", X, "y", labels if labels.size else T)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a tuple (X_val, y_val)")
            Xv = as_matrix("validation_data[0]", validation_data[0], self.dtype, self.in_features)
            Tv, Lv = loss.prepare_target(validation_data[1], self.out_features, self.dtype, name="validation_data[1]")
            same_rows("validation_data[0]", Xv, "validation_data[1]", Lv if Lv.size else Tv)
            self._check_batch_rows("validation_data[0]", Xv.shape[0], training=False)   # before any epoch
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable as callback(epoch, logs), got {type(callback).__name__}")
        rng = self._rng if seed is None else seeded_rng("seed", seed)
        n = X.shape[0]
        if self._has_batchnorm and n == 1:
            raise ValueError("X has 1 row: BatchNorm1d cannot normalise a single sample in training mode; "
                             "train on more rows")
        if self._has_batchnorm and (batch_size == 1 or n % batch_size == 1):
            raise ValueError(f"with {n} samples and batch_size={batch_size} a batch of 1 row occurs, which "
                             f"BatchNorm1d cannot normalise in training mode; change batch_size")
        if checkpoint is not None:
            self.set_checkpoint(checkpoint, batch_size=min(batch_size, n))
        rows = min(batch_size, n)
        n_batches = -(-n // batch_size)
        checked_step_count("optimizer.step_count after fit", checked_step_count("optimizer.step_count",
                           optimizer.step_count) + epochs * n_batches)
        self._ensure_capacity(rows)
        T_batch = np.zeros((rows, self.out_features) if labels.size == 0 else (0, 0), dtype=self.dtype)
        labels_batch = np.zeros(rows if labels.size else 0, dtype=np.int64)
        batch_losses = np.zeros(n_batches, dtype=np.float64)
        batch_metrics = np.zeros(n_batches, dtype=np.float64)
        grad_norms = np.zeros((n_batches if track_grad_norms else 0, len(self._ops)), dtype=np.float64)
        metric_count = n if labels.size else n * self.out_features
        sizes = np.full(n_batches, batch_size, dtype=np.float64)
        sizes[-1] = n - batch_size * (n_batches - 1)
        history = History()
        self.train()
        order = np.arange(n, dtype=np.int64)
        for epoch in range(epochs):
            if shuffle:
                order = rng.permutation(n).astype(np.int64)
            P.train_epoch(self._program, self._consts, self.arena.params, self.arena.grads, self.state.params,
                          self._ws, self.capacity, self._layout, self._work, self._segments,
                          self._dropout_seed, self._step,
                          X, T, labels, order, batch_size, loss.code, loss.typed_param(self.dtype),
                          optimizer.code, optimizer.state, optimizer.hyper, optimizer.step_count,
                          T_batch, labels_batch, batch_losses, batch_metrics, grad_norms, flush_denormal())
            optimizer.step_count += n_batches
            self._step += n_batches
            logs = {"loss": float(np.dot(batch_losses, sizes) / n),
                    loss.metric: float(batch_metrics.sum() / metric_count)}
            if track_grad_norms:
                mean = grad_norms.mean(axis=0)
                logs["grad_norms"] = {name: float(mean[i]) for i, name in self._parameterized_ops()}
            if validation_data is not None:
                logs.update({"val_" + k: v for k, v in self._evaluate(Xv, Tv, Lv, loss).items()})
            history.append(epoch, logs)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs} " + " ".join(f"{k}={v:.4f}" for k, v in logs.items()
                                                                if not isinstance(v, dict)))
            if callback is not None:
                callback(epoch, logs)
        self._forward_rows = 0
        return history

    def predict(self, X, batch_size=256, out=None):
        """Network outputs (logits for classification) for every row of X, in eval semantics.

        Args:
            batch_size: rows per compiled forward pass (the workspace holds this many).  A model
                with a BatchNorm1d that has no running statistics predicts all rows in one pass.
            out: optional (N, out_features) C-contiguous array of the model's dtype to write
                into; with it, a repeated call allocates nothing.
        """
        Xc = as_matrix("X", X, self.dtype, self.in_features, finite=False)   # checked in the compiled call
        if out is not None:
            out = output_matrix("out", out, self.dtype, (Xc.shape[0], self.out_features))
            # rows are read batch by batch before their outputs are written: out may be X
            # itself, but any other overlap would overwrite rows not read yet
            # (two arrays that own their data cannot overlap: skip the 0.5 µs check at batch 1)
            if (out.base is not None or Xc.base is not None) and np.may_share_memory(out, Xc) \
                    and not (out.ctypes.data == Xc.ctypes.data and out.shape == Xc.shape):
                raise ValueError("out overlaps X; pass a separate array (or X itself, when the shapes match)")
        return self._predict(Xc, check_positive_int("batch_size", batch_size), out, source=X)

    def _predict(self, X, batch_size=256, out=None, source=None):
        """``predict`` on a converted, C-contiguous X; raises ValueError (naming ``X``, whose
        original is ``source``) before computing anything when X holds NaN or Inf.

        A BatchNorm1d without running statistics normalises by the statistics of the rows it
        is given, so such a model predicts all of X in one pass (as torch's ``model(X)``
        does): chunks would each get their own statistics."""
        if self._batch_stats_in_eval:
            self._check_batch_rows("X", X.shape[0], training=False)
            batch_size = X.shape[0]
        self._ensure_capacity(min(batch_size, X.shape[0]))
        if out is None:
            out = np.empty((X.shape[0], self.out_features), dtype=self.dtype)
        if not P.predict(self._program, self._consts, self.arena.params, self.state.params, self._ws,
                         self.capacity, self._layout, self._work, self._segments, X, out, flush_denormal()):
            raise non_finite_error("X", X if source is None else np.asarray(source), X)
        self._forward_rows = 0
        return out

    def evaluate(self, X, y, loss=None):
        """``{"loss": mean loss, metric: value}`` over (X, y); the model is not changed."""
        loss = CrossEntropyLoss() if loss is None else get_loss(loss)
        X = as_matrix("X", X, self.dtype, self.in_features)
        T, labels = loss.prepare_target(y, self.out_features, self.dtype, name="y")
        same_rows("X", X, "y", labels if labels.size else T)
        return self._evaluate(X, T, labels, loss)

    def _evaluate(self, X, T, labels, loss):
        out = self._predict(X)
        grad = np.empty_like(out)
        from .kernels.losses import loss_value_and_grad
        value = loss_value_and_grad(loss.code, out, T, labels, loss.typed_param(self.dtype), grad)
        count = out.shape[0] if labels.size else out.size
        return {"loss": float(value), loss.metric: P.metric_sum(loss.code, out, T, labels) / count}

    # ----------------------------------------------------------- persistence
    def config(self):
        return {"class": type(self).__name__, "layers": [layer.config() for layer in self.layers],
                "dtype": self.dtype.name}

    @classmethod
    def from_layers(cls, layers, dtype=np.float32, seed=None):
        """A model of this class over ``layers``: ``load`` rebuilds an ``MLP`` this way
        (its constructor takes layer sizes, not layers)."""
        if not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers must be a list or tuple of fastbp layers, got {type(layers).__name__}")
        model = cls.__new__(cls)
        Sequential.__init__(model, *layers, dtype=dtype, seed=seed)
        return model

    def state_dict(self):
        """Copies of the flat parameter buffer and the model state (BatchNorm statistics)."""
        return {"params": self.arena.params.copy(), "state": self.state.params.copy()}

    def load_state_dict(self, state_dict):
        """Copy ``state_dict`` into the model's buffers in place (views stay valid)."""
        new = {key: checked_buffer("state_dict", state_dict, key, buf)
               for key, buf in (("params", self.arena.params), ("state", self.state.params))}
        for layer in self.layers:
            if isinstance(layer, BatchNorm1d) and layer.track_running_stats:
                lo = layer.state_offset + layer.num_features
                if (new["state"][lo:lo + layer.num_features] < 0).any():
                    raise ValueError(f"state_dict['state'] holds a negative running_var for {layer!r}")
        # everything is checked before anything is written: a bad entry leaves the model as it was
        self.arena.params[...] = new["params"]
        self.state.params[...] = new["state"]

    def save(self, path):
        """Write the architecture (JSON) and the parameters to an .npz file."""
        io.save(self, path)

    def summary(self, batch_size=1, print_fn=print):
        """A table of the compiled ops (an activation fused into the layer before it): output
        shape, parameter count and the activation bytes backward keeps at ``batch_size``.
        Prints it with ``print_fn`` (None: don't) and returns it as a string."""
        from .checkpoint import activation_bytes
        per_op, total = activation_bytes(self, batch_size)
        lines = [f"{'op':<44}{'output shape':<16}{'params':>10}{'activations':>14}", "-" * 84]
        for (key, nbytes), op in zip(list(per_op.items())[1:], self._ops):
            w, b = op.row[P.C_W], op.row[P.C_B]
            n = (op.n_in * op.n_out if op.row[P.C_OP] == P.OP_DENSE else op.n_out) * (w >= 0) + op.n_out * (b >= 0)
            lines.append(f"{key[:43]:<44}{str((batch_size, op.n_out)):<16}{n:>10,}{nbytes:>14,}")
        lines.append(f"{'input and gradient buffers':<60}{'':>10}"
                     f"{per_op['input'] + per_op['gradient buffers']:>14,}")
        lines.append("-" * 84)
        lines.append(f"total: {self.arena.size:,} parameters ({self.dtype.name}, {self.arena.params.nbytes:,} bytes); "
                     f"{total:,} bytes of activations at batch {batch_size}")
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}(\n  {inner}\n)"


class MLP(Sequential):
    """A multilayer perceptron: Linear layers of ``sizes`` with ``activation`` between them.

    Each hidden layer is ``Linear → [BatchNorm1d] → activation → [Dropout]``.

    Args:
        sizes: widths ``[in, hidden..., out]``.
        activation: a name (``"relu"``, ``"tanh"``, ``"gelu_tanh"``, ...) or an activation module.
        batchnorm: add ``BatchNorm1d`` after each hidden Linear.
        dropout: probability of a ``Dropout`` after each hidden activation (0 for none).

    Example:
        >>> fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0)
    """

    def __init__(self, sizes, activation="relu", dtype=np.float32, seed=None, bias=True, init="default",
                 batchnorm=False, dropout=0.0):
        if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
            raise ValueError(f"sizes must be a list of at least two layer widths, got {sizes!r}")
        if not isinstance(batchnorm, bool):
            raise TypeError(f"batchnorm must be a bool, got {type(batchnorm).__name__}")
        activation_from_name(activation)        # validate once, before building anything
        if dropout:
            Dropout(dropout)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, bias=bias, init=init))
            if i < len(sizes) - 2:
                if batchnorm:
                    layers.append(BatchNorm1d(n_out))
                layers.append(activation_from_name(activation))
                if dropout:
                    layers.append(Dropout(dropout))
        super().__init__(*layers, dtype=dtype, seed=seed)


def load(path):
    """Load a model written by ``model.save`` (never unpickles): an ``MLP`` comes back as an
    ``MLP``, in the train/eval mode it was saved in."""
    return io.load(path, {"Sequential": Sequential, "MLP": MLP})


__all__ = ["Sequential", "MLP", "load", "Loss"]
