"""Exact breakpoints of a piecewise-linear segment along the line a + t·v (SyReNN's line walk).

Restricted to the line x(t) = a + t·v, t in [t_min, t_max], a chain of affine ops, relus and
maxpools is piecewise affine in t. Following Sotoudeh & Thakur's line restriction (SyReNN, 2019),
this module propagates the line op by op as a set of *pieces*: on each piece [t0, t1] every live
activation is p + (t − t0)·d (p: its value at the piece start, d: its direction). Affine ops
(conv, linear, add, flatten) map (p, d) to (op(p), op_without_bias(d)). At a relu every unit whose
input crosses 0 inside a piece (t* = t0 − p/d) splits that piece; at a maxpool every point where
a window's argmax is overtaken (the upper envelope of the window's affine candidates) splits it
(:mod:`hookdiff.analysis._crossings`). All crossings of one layer are found at once with tensor
ops over all pieces (pieces stacked on the batch dim, in order along the line); then the walk
moves to the next layer. Pieces multiply with depth (thousands in [−3, 3] on a trained agent), so
the walk runs depth-first over chunks of at most ``max_pieces`` pieces, which bounds memory. The
result is exact up to floating point: every t where the activation pattern (relu signs, maxpool
argmaxes) of the segment changes. Its labelled form is :func:`hookdiff.line_breakpoints`.

Only the directions d go through the ops on every piece. The segment is continuous along the line,
so a piece starts where the one before it ends: p is carried through the ops only on *anchor*
pieces and summed from the directions in between (:mod:`hookdiff.analysis._pieces`) where a relu /
maxpool needs it, which halves the convolution work; on the CPU the float64 convolutions run in
cache-sized row blocks.

Heap tuning (process-wide, explicit): on the CPU the walk keeps freed memory in glibc's heap while
it runs (:func:`hookdiff.analysis.heap.tune_heap`) instead of having it page-faulted in afresh
per op. ``walk_line(..., heap_tuning=False)`` or the environment variable
``HOOKDIFF_NO_HEAP_TUNING=1`` turns that off; importing this module changes nothing.

Models with an op that is not piecewise linear (a HookedTransformer's attention, layer norm, GELU)
raise :class:`~hookdiff.errors.NotPiecewiseLinearError`; the rest of the analysis still works.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from hookdiff.analysis._chain import Chain, maxpool_gather
from hookdiff.analysis._crossings import _maxpool_crossings, _relu_crossings, _split
from hookdiff.analysis._pieces import _chunks, _LazyChunk, _Line, _Pieces
from hookdiff.analysis.heap import tune_heap
from hookdiff.contract import PATTERN_KINDS, Op
from hookdiff.errors import NotPiecewiseLinearError, TrainingModeError
from hookdiff.ops import apply_op

__all__ = ["DEFAULT_MAX_ELEMENTS", "WalkResult", "walk_line"]

#: Default budget of the walk: pieces × (largest activation size) at most this many numbers per
#: tensor (2**25: 128 MiB in float32), i.e. 4096 pieces together on the scale-1 agent. Larger
#: batches are much faster (fewer, bigger ops); memory peaks at roughly ten such tensors.
DEFAULT_MAX_ELEMENTS = 2**25

#: Input numbers per convolution call and thread on the CPU: float64 convolutions unfold their
#: whole batch at once, so small batches that stay in cache run several times faster than one
#: large call.
_CONV_ELEMENTS = 2**16


@dataclass(frozen=True)
class WalkResult:
    """The raw output of :func:`walk_line`: one row per breakpoint, sorted by (sample, t).

    Attributes:
        sample: Sample index of each breakpoint.
        t: Its t.
        layer: Index into ``layers`` of the relu / maxpool op where the pattern changes.
        layers: Names of the relu / maxpool ops of the segment.
        kink: Whether the slope of the deepest op (``kink_depth``) changes at the breakpoint
            (by more than sqrt(eps) of its size): pattern changes masked downstream do not.
        kink_depth: Name of the deepest op of the walk.
        unit: Flat index, within one sample's activation of that layer, of the unit whose state
            changes (a relu unit, or a maxpool output window).
        jump: ``(breakpoint, size of the deepest op)``: its slope after minus before the
            breakpoint, when the walk was asked for ``slope_jumps`` (else ``None``).
    """

    sample: np.ndarray
    t: np.ndarray
    layer: np.ndarray
    layers: tuple[str, ...]
    kink: np.ndarray
    kink_depth: str
    unit: np.ndarray
    jump: np.ndarray | None = None


def _check_piecewise(chain: Chain) -> None:
    if chain.steps is None or chain.not_piecewise is not None:
        raise NotPiecewiseLinearError(
            f"exact breakpoints need a piecewise-linear segment after {chain.hook!r} (conv, "
            f"linear, add, flatten, relu, maxpool); {type(chain.model).__name__} is not: "
            f"{chain.not_piecewise}. diff(t), the JVP prediction, the residual, the asymmetry and "
            f"pattern flips (parts 1-5) still work: call nonlinearity(..., breakpoints=False) or "
            f"linear_response(...)."
        )
    for s in chain.steps:
        if s.kind == "conv" and getattr(s.module, "padding_mode", "zeros") != "zeros":
            raise NotPiecewiseLinearError(
                f"conv {s.name!r} uses padding_mode={s.module.padding_mode!r}; the line walk "
                f"supports zero padding only (parts 1-5 still work)."
            )
        if isinstance(s.module, _BatchNorm) and (s.module.training or s.module.running_var is None):
            raise TrainingModeError(
                f"BatchNorm {s.name!r} normalises with the statistics of the batch (training mode, "
                f"or track_running_stats=False), so one sample's output depends on the others and "
                f"the segment is not a function of the sample alone. Call model.eval() (with "
                f"running statistics, BatchNorm is an affine map the walk follows)."
            )


def walk_line(
    chain: Chain,
    a: Tensor,
    v: Tensor,
    context: Mapping[str, Tensor],
    t_min: float,
    t_max: float,
    *,
    max_pieces: int | None = None,
    slope_jumps: bool = False,
    heap_tuning: bool = True,
) -> WalkResult:
    """Every t in (t_min, t_max) where a relu / maxpool of the segment changes state.

    Args:
        chain: The downstream chain (``build_chain``); must be piecewise linear.
        a: B activations at the hook.
        v: The direction (activation shape without batch).
        context: Activations before the hook that the segment reads (B rows each).
        t_min: Start of the interval.
        t_max: End of the interval.
        max_pieces: Pieces walked together (memory budget); default from
            :data:`DEFAULT_MAX_ELEMENTS`.
        slope_jumps: Also keep the jump of the deepest op's slope at every breakpoint (one row
            of the deepest op's size per breakpoint: ask for it at the logits, not at a conv).
        heap_tuning: On the CPU, keep freed memory in glibc's heap while the walk runs
            (:func:`hookdiff.analysis.heap.tune_heap`: process-wide while it runs, about 1.4×
            faster); off with ``False`` or where ``HOOKDIFF_NO_HEAP_TUNING`` is set.

    Returns:
        A :class:`WalkResult`.

    Example:
        >>> from hookdiff.analysis._chain import build_chain
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU())
        >>> r = walk_line(build_chain(net, "0", None), torch.tensor([[1.0, -2.0]]),
        ...               torch.tensor([1.0, 1.0]), {}, -3.0, 3.0)
        >>> r.t.tolist()
        [-1.0, 2.0]
    """
    _check_piecewise(chain)
    if not t_max > t_min:
        raise ValueError(f"need t_min < t_max for the line walk; got [{t_min}, {t_max}]")
    steps = chain.steps
    layers = tuple(s.name for s in steps if s.kind in ("relu", "maxpool"))
    budget = max_pieces or max(64, DEFAULT_MAX_ELEMENTS // max(a[0].numel(), 1))
    heap = tune_heap(a.device) if heap_tuning else contextlib.nullcontext()
    with torch.no_grad(), heap:
        records, finals = _walk(chain, a, v, context, (t_min, t_max), budget)
    kink, jump = _kinks(finals, torch.finfo(a.dtype).eps)
    sample, t, layer, unit = _records(records)
    order = np.lexsort((t, sample))
    if len(kink) != len(order):  # pragma: no cover - one boundary per breakpoint, by construction
        raise RuntimeError(f"line walk: {len(order)} breakpoints but {len(kink)} piece boundaries")
    return WalkResult(
        sample[order],
        t[order],
        layer[order],
        layers,
        kink,
        steps[-1].name,
        unit[order],
        jump.double().cpu().numpy() if slope_jumps else None,
    )


def _walk(
    chain: Chain,
    a: Tensor,
    v: Tensor,
    context: Mapping[str, Tensor],
    t_range: tuple[float, float],
    budget: int,
) -> tuple[list, list]:
    """The walk itself, depth-first over batches of at most ``budget`` pieces.

    A layer that splits a batch into more than ``budget`` pieces pushes lazy chunks (index arrays
    into the parent batch) that are gathered only when popped, so memory stays at about one batch
    per piecewise layer however many pieces there are. Returns the breakpoint records and, per
    batch that reached the deepest op, (sample, t0, slope there).
    """
    steps = chain.steps
    layer_id = {n: i for i, n in enumerate(s.name for s in steps if s.kind in PATTERN_KINDS)}
    last_use = {n: k for k, s in enumerate(steps) for n in s.inputs}
    tol = 16 * torch.finfo(a.dtype).eps * max(1.0, *(abs(t) for t in t_range))
    records: list[tuple[Tensor, Tensor, int, Tensor]] = []
    finals: list[tuple[Tensor, Tensor, Tensor]] = []
    stack: list[tuple[int, _Pieces | _LazyChunk]] = [
        (0, c) for c in reversed(_chunks(_start(chain, a, v, context, t_range), budget))
    ]
    while stack:
        k, item = stack.pop()
        if isinstance(item, _LazyChunk):  # split at steps[k] already: gather, then apply it
            pieces, inside = item.gather(steps[k].inputs[0])
            _apply_layer(pieces, steps[k], inside, last_use[steps[k].inputs[0]] == k)
            _drop_dead(pieces, steps[k], k, last_use)
            k += 1
        else:
            pieces = item
        while k < len(steps):
            s = steps[k]
            if s.kind in PATTERN_KINDS:
                split = _split_index(pieces, s, tol, records, layer_id[s.name])
                if split is not None and len(split[0]) > budget:
                    lazy = [
                        _LazyChunk(pieces, *(x[i : i + budget] for x in split), row0=i)
                        for i in range(0, len(split[0]), budget)
                    ]
                    stack.extend((k, c) for c in reversed(lazy))
                    break
                fresh = split is not None  # its input gathered into new tensors: reusable
                if split is None:
                    inside = pieces.state
                else:
                    pieces, inside = _LazyChunk(pieces, *split).gather(s.inputs[0])
                _apply_layer(pieces, s, inside, fresh and last_use[s.inputs[0]] == k)
            else:
                pieces.env[s.name] = _affine(s, [pieces.env[n] for n in s.inputs])
            _drop_dead(pieces, s, k, last_use)
            k += 1
        else:  # this batch reached the deepest op: keep its slope on every piece
            p_out, d_out = pieces.env[steps[-1].name]
            d_out = (
                torch.zeros(
                    (len(pieces),) + p_out.shape[1:], dtype=p_out.dtype, device=p_out.device
                )
                if d_out is None
                else d_out
            )
            finals.append((pieces.sample, pieces.t0, d_out.reshape(len(pieces), -1)))
    return records, finals


def _start(
    chain: Chain, a: Tensor, v: Tensor, context: Mapping[str, Tensor], t_range: tuple[float, float]
) -> _Pieces:
    """One piece per sample covering the whole interval; every piece is an anchor."""
    b, t_min = a.shape[0], t_range[0]
    env: dict[str, _Line] = {chain.hook: (a + t_min * v, v.expand_as(a).contiguous())}
    for name, t in context.items():
        env[name] = (t, None)
    rows = torch.arange(b, device=a.device)
    return _Pieces(
        sample=rows,
        t0=torch.full((b,), float(t_min), dtype=a.dtype, device=a.device),
        t1=torch.full((b,), float(t_range[1]), dtype=a.dtype, device=a.device),
        anchor=rows,
        env=env,
    )


def _records(records: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The breakpoints the walk recorded: sample, t, layer index and unit, unsorted."""
    if not records:
        return np.zeros(0, int), np.zeros(0), np.zeros(0, int), np.zeros(0, int)
    sample = torch.cat([r[0] for r in records]).cpu().numpy()
    t = torch.cat([r[1] for r in records]).double().cpu().numpy()
    layer = np.concatenate([np.full(len(r[0]), r[2]) for r in records])
    unit = torch.cat([r[3] for r in records]).cpu().numpy()
    return sample, t, layer, unit


def _kinks(finals: list[tuple[Tensor, Tensor, Tensor]], eps: float) -> tuple[np.ndarray, Tensor]:
    """Per piece boundary (sorted by sample, t): does the deepest op's slope change, and by what?

    A pattern change can leave the output's slope unchanged (its effect masked downstream,
    e.g. a conv position that no maxpool window selects, or a unit feeding only relus that are
    off); the slopes of the two pieces around each boundary tell.
    """
    sample = torch.cat([f[0] for f in finals])
    t0 = torch.cat([f[1] for f in finals]).double()
    d = torch.cat([f[2] for f in finals])
    order = np.lexsort((t0.cpu().numpy(), sample.cpu().numpy()))
    order_t = torch.as_tensor(order, device=d.device)
    sample, d = sample[order_t], d[order_t]
    same = sample[1:] == sample[:-1]
    jump = d[1:] - d[:-1]
    size = torch.maximum(d[1:].norm(dim=1), d[:-1].norm(dim=1))
    kink = jump.norm(dim=1) > (eps**0.5) * size
    return kink[same].cpu().numpy(), jump[same]


def _affine(step: Op, args: Sequence[_Line]) -> _Line:
    """(p, d) through an affine op: (op(p) at the anchors, op_without_bias(d) on every piece)."""
    kind, m = step.kind, step.module
    if kind == "add":
        (p1, d1), (p2, d2) = args
        d = d1 if d2 is None else d2 if d1 is None else d1 + d2
        return p1 + p2, d
    p, d = args[0]
    if kind == "flatten":
        return apply_op(step, [p]), None if d is None else apply_op(step, [d])
    if isinstance(m, _BatchNorm):  # eval mode: y = x·scale + shift per channel
        scale = (
            m.weight / torch.sqrt(m.running_var + m.eps)
            if m.affine
            else 1 / torch.sqrt(m.running_var + m.eps)
        )
        return m(p), None if d is None else d * scale.reshape((1, -1) + (1,) * (d.ndim - 2))
    if kind == "conv":
        return m(p), None if d is None else _conv_rows(m, d)
    if kind == "linear":
        return m(p), None if d is None else F.linear(d, m.weight)
    raise NotPiecewiseLinearError(f"op {step.name!r} of kind {kind!r} is not affine")


def _conv_rows(m: nn.Module, d: Tensor) -> Tensor:
    """The convolution without its bias; on the CPU in row blocks of :data:`_CONV_ELEMENTS` per
    thread (each thread convolves its own rows), written straight into one output (the kernel a
    plain float conv runs there anyway)."""
    rows = max(1, _CONV_ELEMENTS * torch.get_num_threads() // max(d[0].numel(), 1))
    if d.device.type != "cpu" or rows >= len(d):
        return m._conv_forward(d, m.weight, None)
    if not _plain_conv(m):
        parts = [m._conv_forward(d[i : i + rows], m.weight, None) for i in range(0, len(d), rows)]
        return torch.cat(parts)
    out = d.new_empty((len(d), m.out_channels) + _conv_size(m, d.shape[2:]))
    size, stride, pad = list(m.kernel_size), list(m.stride), list(m.padding)
    for i in range(0, len(d), rows):
        torch._C._nn.thnn_conv2d(
            d[i : i + rows], m.weight, size, None, stride, pad, out=out[i : i + rows]
        )
    return out


def _plain_conv(m: nn.Module) -> bool:
    """A 2-d convolution the CPU kernel with an output argument runs as is."""
    return (
        isinstance(m, nn.Conv2d)
        and m.groups == 1
        and tuple(m.dilation) == (1, 1)
        and not isinstance(m.padding, str)
        and hasattr(torch._C._nn, "thnn_conv2d")
    )


def _conv_size(m: nn.Module, shape: Sequence[int]) -> tuple[int, int]:
    """Output height and width of the convolution ``m`` on an input plane of ``shape``."""
    return tuple(
        (n + 2 * p - k) // s + 1 for n, p, k, s in zip(shape, m.padding, m.kernel_size, m.stride)
    )


def _drop_dead(pieces: _Pieces, step: Op, k: int, last_use: dict[str, int]) -> None:
    """Free the activations no later op reads."""
    for n in step.inputs:
        if last_use.get(n) == k:
            pieces.env.pop(n, None)
            pieces.full.pop(n, None)


def _split_index(
    pieces: _Pieces, step: Op, tol: float, records: list, layer: int
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """Where the layer's pattern changes inside each piece: the sub-pieces as index arrays.

    Returns ``None`` when nothing moves or nothing changes, else ``(owner, offset, t0, t1)`` per
    sub-piece (see :func:`_split`); the breakpoints are appended to ``records``.
    """
    _, d = pieces.env[step.inputs[0]]
    if d is None:  # the input does not move along the line: nothing to split
        return None
    p = pieces.values(step.inputs[0])
    length = pieces.t1 - pieces.t0
    taken = None
    if step.kind == "relu":
        parent, s, unit, pieces.state = _relu_crossings(p, d, length, tol, pieces.sample)
    else:
        found = _maxpool_crossings(p, d, length, step.module, tol, pieces.sample)
        parent, s, unit, taken, pieces.state = found
    return _split(pieces, parent, s, unit, tol, records, layer, taken)


def _apply_layer(pieces: _Pieces, step: Op, inside: Tensor | None, reuse: bool = False) -> None:
    """Apply a relu / maxpool per piece, with the pattern inside each piece: ``inside`` is a
    relu's unit states, or a maxpool's argmax per window (``None``: the input does not move).
    ``reuse``: the input's directions are this batch's own and read by no later op, so a relu
    overwrites them (one memory pass less)."""
    p, d = pieces.env[step.inputs[0]]
    if d is None or inside is None:
        pieces.env[step.name] = (apply_op(step, [p]), None)
        return
    anchor = pieces.anchor
    if step.kind == "relu":
        pieces.env[step.name] = (p * inside[anchor], d.mul_(inside) if reuse else d * inside)
    else:
        pieces.env[step.name] = (maxpool_gather(p, inside[anchor]), maxpool_gather(d, inside))
