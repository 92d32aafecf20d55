"""Memory-aware gradient checkpointing: account, plan, and hand the plan to the model.

A plan splits the model's ops into segments.  Only each segment's output is
stored during the forward pass; during backward every segment but the last is
recomputed from its stored input (same dropout masks, same batch statistics,
running statistics untouched), so gradients are bitwise those of an
unsegmented step.  See ``fastbp.compiler`` for the memory layout.

Cost model (exact for fastbp's workspace, per batch of ``B`` samples):

* memory = itemsize · B · (input + Σ stored segment outputs + 2 gradient slots
  + the largest segment's scratch), which is the workspace that
  ``model`` really allocates;
* recompute = Σ forward FLOPs of every segment but the last.

Under a byte budget ``plan`` finds, by dynamic programming, the segmentation
with the least recompute among those that fit (ties: the least memory).  This
is optimal among plans that recompute each segment once from its stored input
(the execution model fastbp runs); multi-level recursion as in Griewank's
revolve, which trades more recompute for less memory, is not explored.
"""
import math
import numbers
from dataclasses import dataclass

import numpy as np
import psutil

from .compiler import assign_slots, segment_scratch
from .validation import check_positive_int

#: share of the available memory (psutil) that ``memory_budget="auto"`` may use
AUTO_FRACTION = 0.5


@dataclass
class Plan:
    """A checkpointing plan for one model and batch size."""

    segments: list            # op boundaries [0, ..., n_ops]
    batch_size: int
    peak_bytes: int           # predicted workspace bytes (= what the model allocates)
    unplanned_bytes: int      # the same without checkpointing
    recompute_flops: int      # extra forward FLOPs per step
    step_flops: int           # FLOPs of one step without recompute (≈ 3 × forward)
    stored: list              # names of the ops whose outputs are stored

    @property
    def recompute_fraction(self):
        """Recompute FLOPs as a fraction of one training step's FLOPs."""
        return self.recompute_flops / self.step_flops if self.step_flops else 0.0

    @property
    def n_segments(self):
        return len(self.segments) - 1

    def __repr__(self):
        return (f"Plan({self.n_segments} segments, peak {self.peak_bytes:,} B of {self.unplanned_bytes:,} B "
                f"unplanned, recompute {self.recompute_fraction:.1%} of a step)")


def _model_ops(model):
    return model._ops, model.in_features, model.out_features, model.dtype


def layout_bytes(model, segments, batch_size):
    """Workspace bytes for ``segments`` at ``batch_size`` (what the model would allocate)."""
    ops, n_in, n_out, dtype = _model_ops(model)
    lay = assign_slots(ops, n_in, n_out, segments, dtype)
    return lay.per_sample * batch_size * dtype.itemsize


def activation_bytes(model, batch_size):
    """Bytes the backward pass keeps without checkpointing: ``(per_op, total)``.

    ``per_op`` maps "input", each op's name (with its index) and "gradient buffers" to bytes;
    ``total`` equals the workspace the model allocates for that batch size.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    ops, n_in, n_out, dtype = _model_ops(model)
    unit = batch_size * dtype.itemsize
    per_op = {"input": n_in * unit}
    for i, op in enumerate(ops):
        per_op[f"{i}: {op.name}"] = sum(w for _, w in op.keeps) * unit
    max_width = max([n_in] + [max(op.n_in, op.n_out) for op in ops])
    per_op["gradient buffers"] = 2 * max_width * unit
    return per_op, sum(per_op.values())


def _make_plan(model, segments, batch_size):
    ops = model._ops
    n = len(ops)
    recompute = sum(ops[i].flops for a, b in zip(segments[:-2], segments[1:-1]) for i in range(a, b))
    forward = sum(op.flops for op in ops)
    return Plan(segments=list(segments), batch_size=batch_size,
                peak_bytes=layout_bytes(model, segments, batch_size),
                unplanned_bytes=layout_bytes(model, [0, n], batch_size),
                recompute_flops=recompute * batch_size, step_flops=3 * forward * batch_size,
                stored=[ops[b - 1].name for b in segments[1:-1]])


def uniform_segments(n_ops, n_segments):
    """Boundaries of ``n_segments`` (at most ``n_ops``) near-equal segments."""
    k = max(1, min(n_segments, n_ops))
    return sorted({round(i * n_ops / k) for i in range(k + 1)})


def _chain_tables(ops, in_features):
    """Per-sample fixed units, and scratch and forward FLOPs of every segment [a, b)."""
    n = len(ops)
    max_width = max([in_features] + [max(op.n_in, op.n_out) for op in ops])
    fixed = in_features + 2 * max_width + ops[-1].n_out          # input, gradients, network output
    seg_scratch = [[0] * (n + 1) for _ in range(n + 1)]
    seg_flops = [[0] * (n + 1) for _ in range(n + 1)]
    for a in range(n):
        for b in range(a + 1, n + 1):
            seg_scratch[a][b] = segment_scratch(ops, a, b)
            seg_flops[a][b] = seg_flops[a][b - 1] + ops[b - 1].flops
    candidates = sorted({seg_scratch[a][b] for a in range(n) for b in range(a + 1, n + 1)})
    return fixed, seg_scratch, seg_flops, candidates


def optimal_segments(ops, in_features, max_units):
    """The segmentation with the least recompute whose per-sample workspace is ≤ ``max_units``.

    Exact: for every candidate scratch size S (the largest segment's scratch),
    a dynamic program over segment ends keeps the Pareto front of (stored
    units, recompute) pairs; the cheapest plan within ``max_units`` wins (ties:
    the least memory).  Returns None when no segmentation fits.
    """
    n = len(ops)
    fixed, seg_scratch, seg_flops, candidates = _chain_tables(ops, in_features)
    best = None
    for S in candidates:
        room = max_units - fixed - S           # for stored outputs of non-final segments
        if room < 0:
            break
        # fronts[b]: non-dominated (stored, recompute, boundaries) for ops[0:b] ending a segment at b
        fronts = [[] for _ in range(n + 1)]
        fronts[0] = [(0, 0, (0,))]
        for b in range(1, n + 1):
            last = b == n
            add_units = 0 if last else ops[b - 1].n_out
            cands = []
            for a in range(b):
                if seg_scratch[a][b] > S:
                    continue
                add_cost = 0 if last else seg_flops[a][b]
                cands.extend((units + add_units, cost + add_cost, bounds + (b,))
                             for units, cost, bounds in fronts[a] if units + add_units <= room)
            cands.sort(key=lambda c: (c[0], c[1]))
            front, best_cost = [], math.inf
            for c in cands:
                if c[1] < best_cost:
                    front.append(c)
                    best_cost = c[1]
            fronts[b] = front
        for units, cost, bounds in fronts[n]:
            key = (cost, units + S)
            if best is None or key < best[0]:
                best = (key, list(bounds))
    return None if best is None else best[1]


def min_units(ops, in_features):
    """The least per-sample workspace any segmentation needs (a shortest path per scratch size)."""
    n = len(ops)
    fixed, seg_scratch, _, candidates = _chain_tables(ops, in_features)
    best = math.inf
    for S in candidates:
        stored = [0] + [math.inf] * n
        for b in range(1, n + 1):
            add = 0 if b == n else ops[b - 1].n_out
            stored[b] = min((stored[a] + add for a in range(b) if seg_scratch[a][b] <= S), default=math.inf)
        best = min(best, fixed + S + stored[n])
    return best


def plan(model, batch_size, memory_budget="auto"):
    """Plan checkpointing for ``model`` at ``batch_size``.

    Args:
        memory_budget: bytes of activation workspace allowed (an int, the optimal
            plan under it); ``"auto"`` (``AUTO_FRACTION`` of psutil's available
            memory; no checkpointing when everything fits); or ``("segments", k)``
            for ``k`` uniform segments (``fb.checkpoint.plan(m, B, ("segments", 8))``);
            ``"sqrt"`` for ⌈√L⌉ uniform segments.

    Raises:
        MemoryError: when even the tightest plan needs more than the budget; the
            message gives the bytes needed and available.  Raised before training.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    ops, n_in, _, dtype = _model_ops(model)
    n = len(ops)
    unit = batch_size * dtype.itemsize
    if memory_budget == "sqrt":
        return _make_plan(model, uniform_segments(n, math.ceil(math.sqrt(n))), batch_size)
    if isinstance(memory_budget, tuple) and len(memory_budget) == 2 and memory_budget[0] == "segments":
        k = check_positive_int("number of segments", memory_budget[1])
        return _make_plan(model, uniform_segments(n, k), batch_size)
    if memory_budget == "auto":
        budget = int(psutil.virtual_memory().available * AUTO_FRACTION)
        if layout_bytes(model, [0, n], batch_size) <= budget:
            return _make_plan(model, [0, n], batch_size)
    elif isinstance(memory_budget, bool) or not isinstance(memory_budget, int):
        raise TypeError(f"memory_budget must be a byte count (int), 'auto', 'sqrt' or ('segments', k), "
                        f"got {memory_budget!r}")
    else:
        budget = memory_budget
        if budget <= 0:
            raise ValueError(f"memory_budget must be > 0 bytes, got {budget}")
    segments = optimal_segments(ops, n_in, budget // unit)
    if segments is None:
        need = min_bytes(model, batch_size)
        raise MemoryError(f"no checkpointing plan fits: batch_size={batch_size} needs at least {need:,} bytes "
                          f"of activation memory, the budget is {budget:,} bytes; lower the batch size")
    return _make_plan(model, segments, batch_size)


def min_bytes(model, batch_size):
    """The least workspace bytes any checkpointing plan needs at ``batch_size``."""
    ops, n_in, _, dtype = _model_ops(model)
    return min_units(ops, n_in) * batch_size * dtype.itemsize


def _check_segments(segments, n_ops):
    """A hand-made plan's op boundaries: ints from 0, strictly increasing, ending at ``n_ops``."""
    if isinstance(segments, np.ndarray) and segments.ndim == 1:
        bounds = segments.tolist()
    elif isinstance(segments, (list, tuple)):
        bounds = list(segments)
    else:
        raise TypeError(f"plan.segments must be a list of ints (op boundaries), got {type(segments).__name__}")
    bad = [b for b in bounds if isinstance(b, bool) or not isinstance(b, numbers.Integral)]
    if bad:
        raise TypeError(f"plan.segments must hold ints (op boundaries), got {bad[0]!r}")
    if len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != n_ops or any(a >= b for a, b in zip(bounds, bounds[1:])):
        hint = " (a plan made for another model?)" if len(bounds) >= 2 and bounds[-1] != n_ops else ""
        raise ValueError(f"plan.segments must start at 0, increase strictly and end at the number of ops "
                         f"({n_ops}); got {bounds}{hint}")


def resolve(model, checkpoint, batch_size):
    """``fit``'s ``checkpoint`` argument → a Plan (or None for no checkpointing)."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint, Plan):
        _check_segments(checkpoint.segments, len(model._ops))
        return checkpoint
    if isinstance(checkpoint, str) and checkpoint in ("auto", "sqrt"):
        return plan(model, batch_size, checkpoint)
    if isinstance(checkpoint, bool):
        raise TypeError("checkpoint must be None, a Plan, 'auto', 'sqrt', a segment count or a byte budget")
    if isinstance(checkpoint, int):
        if checkpoint < 1:
            raise ValueError(f"checkpoint must be a positive segment count or byte budget, got {checkpoint}")
        # small ints are segment counts, large ones byte budgets
        if checkpoint <= len(model._ops):
            return plan(model, batch_size, ("segments", checkpoint))
        return plan(model, batch_size, checkpoint)
    raise TypeError(f"checkpoint must be None, a Plan, 'auto', 'sqrt', a segment count (int <= number of ops) "
                    f"or a byte budget (int), got {checkpoint!r}")
