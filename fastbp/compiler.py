"""Compile a layer stack into a layer program and lay its activations out in one workspace.

``compile_ops`` turns layers into ops (an activation right after a Linear or
BatchNorm1d is fused into it); ``assign_slots`` places every activation an op
keeps for backward in a workspace slot, for a given segmentation of the ops:

* dedicated slots: the network input, each segment's output (the stored
  checkpoints, the last one being the network output) and two gradient slots;
* a scratch region shared by all segments: everything else a segment keeps.

With one segment nothing is shared or recomputed.  With several, only the
segment outputs survive the forward pass and each segment but the last is
recomputed from its stored input during backward (``kernels/program.py``).
Sizes are counted per sample; a workspace for batch ``B`` holds ``B`` rows per slot.
"""
from dataclasses import dataclass, field

import numpy as np

from .kernels import activations, codes, dropout, norm
from .kernels import program as P
from .layers import Activation, BatchNorm1d, Dropout, Linear


@dataclass
class Op:
    """One program row before slot assignment."""

    row: list                 # program columns (slot columns filled by assign_slots)
    const: list               # K_* constants
    name: str                 # layer names, for summaries and plans
    n_in: int
    n_out: int
    keeps: list = field(default_factory=list)   # the slots it writes: ("z"|"a"|"h", width)
    flops: int = 0            # forward FLOPs per sample


def _label(layer):
    """A short name for tables: ``Linear(64→128)``, ``BatchNorm1d(128)``, ``Dropout(0.1)``, ``ReLU``."""
    if isinstance(layer, Linear):
        return f"Linear({layer.in_features}→{layer.out_features})"
    if isinstance(layer, BatchNorm1d):
        return f"BatchNorm1d({layer.num_features})"
    if isinstance(layer, Dropout):
        return f"Dropout({layer.p:g})"
    return type(layer).__name__


def compile_ops(layers, in_features):
    """The ops of a layer stack, in order (no slots yet)."""
    ops, width, i = [], in_features, 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        fused = isinstance(nxt, Activation) and isinstance(layer, (Linear, BatchNorm1d))
        act, alpha = (nxt.code, nxt.alpha) if fused else (codes.IDENTITY, 0.0)
        const = [0.0] * P.N_CONSTS
        const[P.K_ALPHA] = alpha
        name = _label(layer) + (f" + {_label(nxt)}" if fused else "")
        if isinstance(layer, (Linear, BatchNorm1d)):
            n_out = layer.output_features(width)
            # the output in a slot of its own only where backward needs the pre-activation too
            keeps = [("z", n_out)] + ([] if activations.keeps_output_only(act, alpha) else [("a", n_out)])
            h, s, flags, op_code = -1, -1, 0, P.OP_DENSE
            flops = 2 * width * n_out + 4 * n_out
            if isinstance(layer, BatchNorm1d):
                op_code, s = P.OP_BATCHNORM, layer.state_offset
                keeps.append(("h", n_out))
                flags = P.FLAG_TRACK_RUNNING if layer.track_running_stats else 0
                const[P.K_EPS], const[P.K_MOMENTUM] = layer.eps, layer.momentum
                flops = 10 * n_out
            row = [op_code, act, width, n_out, layer.weight_offset, layer.bias_offset, -1, -1, -1, h, s, flags]
            i += 2 if fused else 1
        elif isinstance(layer, Dropout) or (isinstance(layer, Activation) and layer.code != codes.IDENTITY):
            n_out = width
            keeps, flops = [("a", width)], 4 * width
            if isinstance(layer, Dropout):
                const[P.K_P] = layer.p
                row = [P.OP_DROPOUT, codes.IDENTITY, width, width, -1, -1, -1, -1, -1, -1, -1, 0]
            else:
                const[P.K_ALPHA] = layer.alpha
                row = [P.OP_ACT, layer.code, width, width, -1, -1, -1, -1, -1, -1, -1, 0]
            i += 1
        else:          # Identity on its own: nothing to run
            i += 1
            continue
        ops.append(Op(row, const, name, width, n_out, keeps, flops))
        width = n_out
    return ops


@dataclass
class Layout:
    """The program tables and workspace layout for one segmentation."""

    program: np.ndarray       # (n_ops, N_COLS) int64
    consts: np.ndarray        # (n_ops, N_CONSTS)
    layout: np.ndarray        # (N_LAYOUT,) int64
    segments: np.ndarray      # op boundaries [0, ..., n_ops]
    per_sample: int           # workspace values per sample
    dedicated: int            # of which: input, segment outputs and gradient slots
    scratch: int              # of which: the shared scratch region


def segment_scratch(ops, first, stop):
    """Per-sample scratch a segment needs: all it keeps but its output slot."""
    total = sum(w for op in ops[first:stop] for _, w in op.keeps)
    return total - ops[stop - 1].n_out


def _consts_table(ops, dtype):
    """The (n_ops, N_CONSTS) constants in the model's dtype; ValueError naming the layer when one
    does not fit: ``LeakyReLU(1e39)`` is a float64 but no float32 (its outputs would be Inf/NaN),
    and ``BatchNorm1d(eps=1e-50)`` would become 0 in float32 (subnormals are flushed to zero in
    the compiled calls, so a subnormal counts as 0 too): a division by zero."""
    exact = np.array([op.const for op in ops], dtype=np.float64).reshape(-1, P.N_CONSTS)
    with np.errstate(over="ignore", under="ignore"):
        consts = exact.astype(dtype)
    tiny = np.finfo(dtype).tiny
    for bad, why in ((~np.isfinite(consts), "is not finite"),
                     ((exact != 0) & (np.abs(consts) < tiny), "underflows to zero")):
        where = np.argwhere(bad)
        if where.size:
            i, k = where[0]
            raise ValueError(f"{ops[i].name}: its constant {ops[i].const[k]:g} {why} in "
                             f"{np.dtype(dtype).name}, the model's dtype")
    return consts


def assign_slots(ops, in_features, out_features, segments, dtype):
    """Place every kept activation in a slot for the segmentation ``segments``.

    Also links the BatchNorm and dropout kernels for ``dtype`` when the ops use them: they
    are compiled only for programs that run them (``kernels/linked.py``'s ``LazyTable``)."""
    codes_used = {op.row[P.C_OP] for op in ops}
    if P.OP_BATCHNORM in codes_used:
        norm.link(dtype)
    if P.OP_DROPOUT in codes_used:
        dropout.link(dtype)
    segments = [int(s) for s in segments]
    max_width = max([in_features] + [max(op.n_in, op.n_out) for op in ops])
    cursor = in_features                             # slot 0 (P.INPUT_SLOT) is the input
    boundary = {}
    for stop in segments[1:]:
        boundary[stop] = cursor
        cursor += ops[stop - 1].n_out
    g0, g1 = cursor, cursor + max_width
    scratch_base = cursor + 2 * max_width
    scratch = max([segment_scratch(ops, a, b) for a, b in zip(segments[:-1], segments[1:])] + [0])
    rows = []
    for first, stop in zip(segments[:-1], segments[1:]):
        free = scratch_base
        prev = 0 if first == 0 else boundary[first]
        for i in range(first, stop):
            op = ops[i]
            row = list(op.row)
            row[P.C_X] = prev
            out_role = "a" if any(role == "a" for role, _ in op.keeps) else "z"
            slots = {}
            for role, width in op.keeps:
                if role == out_role and i == stop - 1:
                    slots[role] = boundary[stop]          # a stored segment output
                else:
                    slots[role] = free
                    free += width
            z = slots.get("z", prev)          # OP_ACT/OP_DROPOUT read their input as Z
            a = slots.get("a", z)             # identity activation: A is Z
            row[P.C_Z], row[P.C_A] = z, a
            if "h" in slots:
                row[P.C_H] = slots["h"]
            rows.append(row)
            prev = a
    return Layout(
        program=np.array(rows, dtype=np.int64).reshape(-1, P.N_COLS),
        consts=_consts_table(ops, dtype),
        layout=np.array([P.INPUT_SLOT, boundary[segments[-1]], g0, g1, out_features], dtype=np.int64),
        segments=np.array(segments, dtype=np.int64),
        per_sample=scratch_base + scratch,
        dedicated=scratch_base,
        scratch=scratch,
    )
