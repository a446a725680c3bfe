"""Exact breakpoints of a piecewise-linear segment along the line a + t·v (SyReNN's line walk).

Restricted to the line x(t) = a + t·v, t in [t_min, t_max], a chain of affine ops, relus and
maxpools is piecewise affine in t. Following Sotoudeh & Thakur's line restriction (SyReNN, 2019),
this module propagates the line op by op as a set of *pieces*: on each piece [t0, t1] every live
activation is p + (t − t0)·d (p: its value at the piece start, d: its direction). Affine ops
(conv, linear, add, flatten) map (p, d) to (op(p), op_without_bias(d)). At a relu every unit whose
input crosses 0 inside a piece (t* = t0 − p/d) splits that piece; at a maxpool every point where
a window's argmax is overtaken (the upper envelope of the window's affine candidates) splits it.
All crossings of one layer are found at once with tensor ops over all pieces (pieces stacked on
the batch dim, in order along the line); then the walk moves to the next layer. Pieces multiply
with depth (thousands in [−3, 3] on a trained agent), so the walk runs depth-first over chunks of
at most ``max_pieces`` pieces, which bounds memory. The result is exact up to floating point:
every t where the activation pattern (relu signs, maxpool argmaxes) of the segment changes.

Only the directions d go through the ops on every piece. The segment is continuous along the line,
so a piece starts where the one before it ends: p is carried through the ops only on *anchor*
pieces (each sample's first, then every :data:`ANCHOR_EVERY`-th) and summed from the directions in
between (p_next = p + (t1 − t0)·d) where a relu / maxpool needs it, which halves the convolution
work; on the CPU the float64 convolutions run in cache-sized row blocks, and freed memory stays in
the heap while the walk runs (:func:`_heap_kept`) instead of being page-faulted in afresh per op.

Models with an op that is not piecewise linear (a HookedTransformer's attention, layer norm, GELU)
raise :class:`~hookdiff.errors.NotPiecewiseLinearError`; the rest of the analysis still works.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from jaxtyping import Float
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from hookdiff.analysis._attrs import describe
from hookdiff.analysis._chain import Chain, build_chain, maxpool_gather, maxpool_pattern, prepare
from hookdiff.contract import PATTERN_KINDS, Op, apply_op
from hookdiff.errors import NotPiecewiseLinearError, ShapeMismatchError, TrainingModeError

__all__ = ["DEFAULT_MAX_ELEMENTS", "breakpoints_at", "line_breakpoints", "walk_line"]

#: Default budget of the walk: pieces × (largest activation size) at most this many numbers per
#: tensor (2**25: 128 MiB in float32), i.e. 4096 pieces together on the scale-1 agent. Larger
#: batches are much faster (fewer, bigger ops); memory peaks at roughly ten such tensors.
DEFAULT_MAX_ELEMENTS = 2**25

#: Pieces per block of the value prefix: every this many pieces of a sample, the value at the
#: piece start is carried through every op exactly (an anchor); in between it is summed from the
#: slopes, so rounding adds up over at most this many pieces.
ANCHOR_EVERY = 32

#: Input numbers per convolution call and thread on the CPU: float64 convolutions unfold their
#: whole batch at once, so small batches that stay in cache run several times faster than one
#: large call.
_CONV_ELEMENTS = 2**16

#: glibc's mallopt parameters (malloc.h) and their defaults: the walk keeps freed blocks in the
#: heap while it runs (see :func:`_heap_kept`), then puts the defaults back.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_TRIM_DEFAULT, _MMAP_MAX_DEFAULT = 128 * 1024, 65536

_Line = tuple[Tensor, Tensor | None]  # (values at the anchor rows, direction per row or None)


@dataclass
class _Pieces:
    """A batch of line pieces, sorted by (sample, t), with the live activations along them.

    Every live activation is ``(p, d)``: its direction ``d`` on every piece (``None``: constant
    along the line) and its value ``p`` at the start of the *anchor* pieces only (``anchor``:
    sorted rows, among them each sample's first); a piece's own start value follows by
    continuity, p(row) = p(anchor) + Σ (t1 − t0)·d over the pieces in between (:func:`_values`).
    """

    sample: Tensor
    t0: Tensor
    t1: Tensor
    anchor: Tensor
    env: dict[str, _Line]
    full: dict[str, Tensor] = field(default_factory=dict)
    state: Tensor | None = None  # the last split's pattern (relu states, maxpool argmaxes)
    flips: tuple | None = None  # and where its crossings change it in the sub-pieces

    def __len__(self) -> int:
        return int(self.sample.shape[0])

    def values(self, name: str) -> Tensor:
        """The value of activation ``name`` at the start of every piece (computed once)."""
        if name not in self.full:
            self.full[name] = _values(self, *self.env[name])
        return self.full[name]


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


def _bcast(x: Tensor, like: Tensor) -> Tensor:
    return x.reshape((-1,) + (1,) * (like.ndim - 1))


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
    with torch.no_grad(), _heap_kept(a.device):
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


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc with ``mallopt`` (Linux), else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
        return libc if hasattr(libc, "mallopt") else None
    except (OSError, AttributeError):
        return None


@contextmanager
def _heap_kept(device: torch.device) -> Iterator[None]:
    """On a CPU with glibc, keep freed memory in the heap while the walk runs.

    The walk allocates and frees tensors of hundreds of MB per layer; glibc serves each with a
    fresh ``mmap`` and returns it on ``free``, so every one is page-faulted and zeroed by the
    kernel again (about a third of the walk's time). With mmap off and trimming raised, freed
    blocks are reused; the defaults are put back afterwards (glibc then stops adapting its mmap
    threshold for the rest of the process). Elsewhere (GPU, other C libraries): nothing.
    """
    libc = _glibc() if device.type == "cpu" else None
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_MAX, _MMAP_MAX_DEFAULT)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_DEFAULT)


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
            d_out = torch.zeros((len(pieces),) + p_out.shape[1:], dtype=p_out.dtype,
                                device=p_out.device) if d_out is None else d_out  # fmt: skip
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


def _chunks(pieces: _Pieces, size: int) -> list[_Pieces]:
    """The starting batch (one anchored piece per sample) cut into batches of ``size``."""
    n = len(pieces)
    if n <= size:
        return [pieces]
    out = []
    for i in range(0, n, size):
        sl = slice(i, i + size)
        env = {k: (p[sl], None if d is None else d[sl]) for k, (p, d) in pieces.env.items()}
        rows = pieces.anchor[: len(pieces.sample[sl])]
        out.append(_Pieces(pieces.sample[sl], pieces.t0[sl], pieces.t1[sl], rows, env))
    return out


def _blocks(pieces: _Pieces) -> tuple[Tensor, Tensor]:
    """Per piece: the index of its anchor among ``pieces.anchor`` and its distance from it."""
    rows = torch.arange(len(pieces), device=pieces.anchor.device)
    block = torch.searchsorted(pieces.anchor, rows, right=True) - 1
    return block, rows - pieces.anchor[block]


def _anchors(sample: Tensor) -> Tensor:
    """Anchor rows of a batch sorted by sample: each sample's first piece and every
    :data:`ANCHOR_EVERY`-th after it."""
    rows = torch.arange(len(sample), device=sample.device)
    first = torch.ones_like(sample, dtype=torch.bool)
    first[1:] = sample[1:] != sample[:-1]
    start = torch.cummax(torch.where(first, rows, 0), 0).values
    return rows[(rows - start) % ANCHOR_EVERY == 0]


def _values(pieces: _Pieces, p: Tensor, d: Tensor | None) -> Tensor:
    """Every piece's start value from its anchor's: p + Σ (t1 − t0)·d over the pieces between.

    The segment is continuous along the line, so a piece starts where the one before it ends;
    one cumulative sum per block of pieces, no op re-run.
    """
    block, pos = _blocks(pieces)
    if d is None:
        return p[block]
    n, blocks = len(pieces), len(pieces.anchor)
    if blocks == n:
        return p
    width = int(pos.max()) + 1
    flat, length = d.reshape(n, -1), (pieces.t1 - pieces.t0)[:, None]
    size = flat.shape[1]
    rows = torch.arange(n, device=pos.device)
    if blocks != -(-n // width) or not bool((pos == rows % width).all()):  # uneven blocks
        pad = flat.new_zeros((blocks, width + 1, size))
        pad[block, pos + 1] = flat * length
        pad[:, 0] = p.reshape(blocks, -1)
        for j in range(1, width + 1):  # a cumulative sum along dim 1, one plane at a time
            pad[:, j].add_(pad[:, j - 1])  # (contiguous planes: ~3x cumsum_(1))
        return pad[block, pos].reshape(d.shape)
    # blocks of ``width`` consecutive rows (the last one shorter): a reshape, no scatter
    # (the same sums, in the same order, as above: a piece's value never depends on the batch)
    out = flat.new_empty((blocks, width, size))  # rows past n: never read
    torch.mul(flat[:-1], length[:-1], out=out.view(blocks * width, size)[1:n])  # steps in...
    out[:, 0] = p.reshape(blocks, -1)  # ...but a block starts at its anchor's value
    for j in range(1, width):  # a cumulative sum along dim 1, one plane at a time
        m = -(-(n - j) // width)  # (contiguous planes: ~3x cumsum_(1)); blocks with row j
        out[:m, j].add_(out[:m, j - 1])
    return out.view(blocks * width, size)[:n].reshape(d.shape)


def _values_at(pieces: _Pieces, p: Tensor, d: Tensor, rows: Tensor) -> Tensor:
    """:func:`_values` at a few ``rows`` only (the pieces between them and their anchors)."""
    block, pos = _blocks(pieces)
    out = p[block[rows]].reshape(len(rows), -1).clone()
    far = torch.nonzero(pos[rows] > 0).flatten()
    if len(far):
        steps = torch.arange(int(pos[rows].max()), device=rows.device)
        idx = pieces.anchor[block[rows[far]]][:, None] + steps[None]
        keep = steps[None] < pos[rows[far]][:, None]
        idx = torch.where(keep, idx, 0)
        length = (pieces.t1 - pieces.t0)[idx] * keep
        out[far] += (d.reshape(len(pieces), -1)[idx] * length[..., None]).sum(1)
    return out.reshape((len(rows),) + d.shape[1:])


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
        torch._C._nn.thnn_conv2d(d[i : i + rows], m.weight, size, None, stride, pad,
                                 out=out[i : i + rows])  # fmt: skip
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


def _relu_crossings(
    p: Tensor, d: Tensor, length: Tensor, tol: float, sample: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(piece index, offset s, unit) of every unit whose input p + s·d crosses 0 in its piece,
    and the state of every unit inside each piece before its crossing (if any).

    A piece ends where the next piece of its sample starts (``sample``: each piece's), so the
    sign at its end is the next row's sign; only a sample's last piece computes its end.
    """
    n = p.shape[0]
    pf, df = p.reshape(n, -1), d.reshape(n, -1)
    above = pf > 0
    change = torch.empty_like(above)
    torch.ne(above[:-1], above[1:], out=change[:-1])
    last = torch.ones_like(sample, dtype=torch.bool)
    last[:-1] = sample[1:] != sample[:-1]
    last = torch.nonzero(last).flatten()
    end = torch.addcmul(pf[last], df[last], length[last, None])  # the input at the piece's end
    change[last] = above[last] != (end > 0)
    parent, unit = change.nonzero(as_tuple=True)  # a sign change inside
    s = -pf[parent, unit] / df[parent, unit]
    inside = (s > tol) & (s < length[parent] - tol)
    at_start = s <= tol  # crossed as the piece begins: inside, the state after the crossing
    above[parent[at_start], unit[at_start]] = ~above[parent[at_start], unit[at_start]]
    return parent[inside], s[inside], unit[inside], above.reshape(p.shape)


def _pool_index(x: Tensor, m: nn.Module) -> Tensor:
    """Flat index (within the input plane) of each maxpool window's argmax."""
    return maxpool_pattern(x, m)


def _pair(x: int | tuple[int, int]) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else (int(x[0]), int(x[1]))


def _maxpool_crossings(
    p: Tensor, d: Tensor, length: Tensor, m: nn.Module, tol: float, sample: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(piece index, offset s, unit, new argmax) of every point where a window's argmax is
    overtaken in its piece, and every window's argmax at the start of each piece (just after).

    The argmax of a window moves along the upper envelope of its affine candidates, whose slope
    only increases, so it never returns: a window whose argmax is the same at both ends of a
    piece has no change inside (its end is where the next piece of its ``sample`` starts). Only
    the other windows are walked, all at once: from the current argmax j at offset s_cur, the next change is the
    earliest crossing (p_j − p_i) / (d_i − d_j) > s_cur of a steeper candidate i; the steepest
    candidate crossing there takes over. At most k·k rounds (the envelope has ≤ k·k pieces).
    """
    n, c, h, w = p.shape
    first = _pool_index(p + tol * d, m)
    last = torch.empty_like(first)
    last[:-1] = first[1:]
    end = torch.ones_like(sample, dtype=torch.bool)
    end[:-1] = sample[1:] != sample[:-1]
    end = torch.nonzero(end).flatten()
    last[end] = _pool_index(p[end] + _bcast(length[end] - tol, d) * d[end], m)
    pc, cc, hc, wc = (first != last).nonzero(as_tuple=True)
    out_h, out_w = first.shape[2:]
    window = (cc * out_h + hc) * out_w + wc  # the pooled unit, flat within the output plane
    if pc.numel() == 0:
        return pc, p.new_zeros(0), pc, pc, first
    kh, kw = _pair(m.kernel_size)
    sh, sw = _pair(m.stride if m.stride is not None else m.kernel_size)
    ph, pw = _pair(m.padding)
    dh = torch.arange(kh, device=p.device).repeat_interleave(kw)
    dw = torch.arange(kw, device=p.device).repeat(kh)
    rows = hc[:, None] * sh - ph + dh[None]
    cols = wc[:, None] * sw - pw + dw[None]
    valid = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)
    sel = (pc[:, None], cc[:, None], flat)
    wp = torch.where(valid, p.reshape(n, c, h * w)[sel], float("-inf"))
    wd = torch.where(valid, d.reshape(n, c, h * w)[sel], 0.0)
    j = ((flat == first[pc, cc, hc, wc][:, None]) & valid).to(torch.uint8).argmax(-1, keepdim=True)
    lim = length[pc] - tol
    s_cur = torch.full(pc.shape, tol, dtype=p.dtype, device=p.device)
    done = torch.zeros(pc.shape, dtype=torch.bool, device=p.device)
    offsets = []
    pieces = []
    units = []
    taken = []
    for _ in range(kh * kw):
        pj, dj = wp.gather(-1, j), wd.gather(-1, j)
        steeper = valid & (wd > dj)
        denom = torch.where(steeper, wd - dj, torch.ones_like(wd))
        cross = torch.where(steeper, (pj - torch.where(valid, wp, 0.0)) / denom, float("inf"))
        cross = torch.where(cross > s_cur[:, None], cross, float("inf"))
        s_next = cross.min(-1).values
        active = ~done & (s_next < lim)
        if not bool(active.any()):
            break
        pieces.append(pc[active])
        offsets.append(s_next[active])
        units.append(window[active])
        near = cross <= (s_next + tol)[:, None]
        new_j = torch.where(near, wd, float("-inf")).argmax(-1, keepdim=True)
        taken.append(flat.gather(-1, new_j)[active, 0])
        j = torch.where(active[:, None], new_j, j)
        s_cur = torch.where(active, s_next, s_cur)
        done |= ~active
    if not pieces:
        none = pc.new_zeros(0)
        return none, p.new_zeros(0), none, none, first
    return torch.cat(pieces), torch.cat(offsets), torch.cat(units), torch.cat(taken), first


def _split(
    pieces: _Pieces,
    parent: Tensor,
    s: Tensor,
    unit: Tensor,
    tol: float,
    records: list,
    layer: int,
    taken: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """Cut each piece at its offsets ``s`` (all pieces at once); record the new breakpoints
    (``taken``: a maxpool window's new argmax at each, kept for the sub-pieces' patterns).

    Returns ``(owner, offset, t0, t1)`` of the sub-pieces (``None`` if there is no cut): the parent
    row of each, its start relative to the parent's start, and its own start and end.
    """
    if parent.numel() == 0:
        return None
    n = len(pieces)
    relu, taken = taken is None, unit if taken is None else taken
    order = torch.argsort(s, stable=True)
    parent, s, unit, taken = parent[order], s[order], unit[order], taken[order]
    order = torch.argsort(parent, stable=True)
    parent, s, unit, taken = parent[order], s[order], unit[order], taken[order]
    dup = torch.zeros_like(parent, dtype=torch.bool)
    dup[1:] = (parent[1:] == parent[:-1]) & (s[1:] - s[:-1] <= tol)  # the same t, seen twice
    group = torch.cumsum(~dup, 0) - 1  # units tied at one t: report the lowest, whatever rounding
    raw = (parent, unit, group, taken)
    unit = unit.new_full((int(group[-1]) + 1,), unit.max()).scatter_reduce(0, group, unit, "amin")
    parent, s = parent[~dup], s[~dup]
    records.append((pieces.sample[parent], pieces.t0[parent] + s, layer, unit))

    counts = torch.bincount(parent, minlength=n)
    sizes = counts + 1
    owner = torch.repeat_interleave(torch.arange(n, device=parent.device), sizes)
    first = torch.cumsum(sizes, 0) - sizes
    is_first = torch.zeros(len(owner), dtype=torch.bool, device=owner.device)
    is_first[first] = True
    offs = torch.zeros(len(owner), dtype=s.dtype, device=s.device)
    offs[~is_first] = s  # parent-major, ascending within a parent: the sorted order above
    ends = torch.empty_like(offs)
    ends[:-1] = offs[1:]
    last = first + sizes - 1
    t0 = pieces.t0[owner] + offs
    t1 = pieces.t0[owner] + ends
    t1[last] = pieces.t1  # the last sub-piece ends where its parent did
    pieces.flips = _flips(raw, parent, counts, first, relu)
    return owner, offs, t0, t1


def _flips(
    raw: tuple[Tensor, ...], cuts: Tensor, counts: Tensor, first: Tensor, relu: bool
) -> tuple:
    """Per crossing (``raw``: its piece, unit, cut and new argmax, sorted as in :func:`_split`):
    the rows of sub-pieces [start, end) in which its unit is past the crossing, the unit, and
    (maxpool) the argmax there, else ``None``. A relu unit crosses once per piece, so to the end
    of its piece's sub-pieces; a maxpool window until its next crossing, so no rows overlap."""
    parent, unit, group, taken = raw
    rank = torch.arange(len(cuts), device=cuts.device) - (torch.cumsum(counts, 0) - counts)[cuts]
    start = (first[cuts] + rank + 1)[group]  # the sub-piece that starts at each cut
    end = first[parent] + counts[parent] + 1
    if relu:
        return start, end, unit, None
    order = torch.argsort(unit, stable=True)  # by (unit, piece, s): a window's crossings in turn
    parent, unit, start, end, taken = (x[order] for x in (parent, unit, start, end, taken))
    again = (parent[1:] == parent[:-1]) & (unit[1:] == unit[:-1])
    end[:-1] = torch.where(again, start[1:], end[:-1])
    return start, end, unit, taken


@dataclass
class _LazyChunk:
    """Sub-pieces of ``parent`` (``owner`` rows, starting ``offs`` after their parent's start),
    not yet gathered: a split's children cost only index arrays until they are walked."""

    parent: _Pieces
    owner: Tensor
    offs: Tensor
    t0: Tensor
    t1: Tensor
    row0: int = 0  # the first of these sub-pieces among all of the split's

    def gather(self, name: str) -> tuple[_Pieces, Tensor]:
        """The sub-pieces (new anchors, their values there), and the pattern inside each of the
        layer that split them (reading ``name``): see :func:`_apply_layer`."""
        par = self.parent
        sample = par.sample[self.owner]
        alone = all(d is None or key == name for key, (_, d) in par.env.items())
        anchor = _anchors(sample) if alone else self._inherited(sample)
        own_a, offs_a = self.owner[anchor], self.offs[anchor]
        block, _ = _blocks(par)
        env: dict[str, _Line] = {}
        for key, (p, d) in par.env.items():
            if d is None:
                env[key] = (p[block[own_a]], None)
                continue
            at = par.values(key)[own_a] if key == name else _values_at(par, p, d, own_a)
            da = d[own_a]
            env[key] = (torch.addcmul(at, _bcast(offs_a, da), da), d.index_select(0, self.owner))
        return _Pieces(sample, self.t0, self.t1, anchor, env), self._states()

    def _states(self) -> Tensor:
        """The split layer's pattern inside each sub-piece: its piece's, with each crossing's
        relu unit flipped (or maxpool window's argmax set) in the sub-pieces past it (no value
        computed)."""
        state = self.parent.state
        start, end, unit, taken = self.parent.flips
        n = len(self.owner)
        lo, hi = (start - self.row0).clamp(0, n), (end - self.row0).clamp(0, n)
        width = (hi - lo).clamp(min=0)
        which = torch.repeat_interleave(torch.arange(len(lo), device=lo.device), width)
        rows = (
            lo[which]
            + torch.arange(len(which), device=lo.device)
            - (torch.cumsum(width, 0) - width)[which]
        )
        out = state.index_select(0, self.owner).reshape(n, -1)
        at = (rows, unit[which])
        out[at] = ~out[at] if taken is None else taken[which]  # rows of one unit never overlap
        return out.reshape((n,) + state.shape[1:])

    def _inherited(self, sample: Tensor) -> Tensor:
        """Anchors that cost nothing: the first sub-piece of each anchor piece of the parent (and
        each sample's first sub-piece). Used when activations other than the split layer's
        input are live, whose values elsewhere would have to be summed."""
        was = torch.zeros(len(self.parent), dtype=torch.bool, device=sample.device)
        was[self.parent.anchor] = True
        keep = was[self.owner] & (self.offs == 0)
        keep[0] = True
        keep[1:] |= sample[1:] != sample[:-1]
        return torch.nonzero(keep).flatten()


# --------------------------------------------------------------------------------------------
# Labelled results
# --------------------------------------------------------------------------------------------


def line_breakpoints(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, "*shape"],
    t_range: tuple[float, float],
    *,
    depths: Sequence[str | int] | None = None,
    context: Mapping[str, Tensor] | None = None,
    max_pieces: int | None = None,
    density_bins: int = 48,
) -> xr.Dataset:
    """Exact breakpoints of every depth f_n along a + t·v for t in ``t_range``.

    Args:
        model: The maze agent or an ``nn.Sequential`` of Conv2d/Linear/ReLU/MaxPool2d/Flatten.
        activations: B activations a at ``hook``.
        hook: The intervention point.
        vector: v (the activation's shape without the batch dimension).
        t_range: ``(t_min, t_max)``.
        depths: Depth names (or n = 1, 2, ...); default every point to the output, plus
            ``"directions"`` on the agent (whose kinks are those of the policy logits).
        context: Activations before ``hook`` that the segment reads (inside a residual branch).
        max_pieces: Pieces walked together (memory budget); default from
            :data:`DEFAULT_MAX_ELEMENTS`.
        density_bins: Number of equal-width t bins of ``breakpoint_density``.

    Returns:
        A Dataset with ``breakpoint_t`` / ``breakpoint_sample`` / ``breakpoint_layer`` (dim
        ``breakpoint``, long format, sorted by sample then t), ``n_pieces``, ``first_break_pos``,
        ``first_break_neg`` (dims ``sample, depth``) and ``breakpoint_density``
        (``sample, t_bin, depth``); see :mod:`hookdiff.analysis.nonlinearity`.

    Raises:
        NotPiecewiseLinearError: the segment has an op that is not piecewise linear.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU())
        >>> ds = line_breakpoints(net, torch.tensor([[1.0, -2.0]]), "0",
        ...                       torch.tensor([1.0, 1.0]), (-3.0, 3.0))
        >>> ds["breakpoint_t"].values.tolist(), int(ds["n_pieces"].item())
        ([-1.0, 2.0], 3)
    """
    chain = build_chain(model, hook, depths)
    _check_piecewise(chain)
    a, v, ctx = prepare(chain, activations, vector, context)
    t_min, t_max = (float(x) for x in t_range)
    result = walk_line(chain, a, v, ctx, t_min, t_max, max_pieces=max_pieces)
    return describe(breakpoint_dataset(chain, result, a.shape[0], t_min, t_max, density_bins))


def breakpoint_dataset(
    chain: Chain,
    r: WalkResult,
    b: int,
    t_min: float,
    t_max: float,
    density_bins: int,
    walked: int | None = None,
) -> xr.Dataset:
    """Label a :class:`WalkResult`: per-depth counts, first breaks, density (see module doc).

    ``walked``: only samples ``0 .. walked-1`` were walked; the per-sample figures of the rest
    are NaN (unknown, not "no breakpoint").
    """
    if density_bins < 1:
        raise ShapeMismatchError(f"density_bins must be >= 1; got {density_bins}")
    depths = list(chain.depths)
    n_d = len(depths)
    layer_names = np.asarray(r.layers, dtype=str)
    n_pieces = np.ones((b, n_d))
    first_pos = np.full((b, n_d), np.nan)
    first_neg = np.full((b, n_d), np.nan)
    edges = np.linspace(t_min, t_max, density_bins + 1)
    density = np.zeros((b, density_bins, n_d))
    width = np.diff(edges)
    bins = np.clip(np.searchsorted(edges, r.t, side="right") - 1, 0, density_bins - 1)
    for di, depth in enumerate(depths):
        ids = [i for i, n in enumerate(r.layers) if n in chain.depends[depth]]
        m = np.isin(r.layer, ids)
        smp, t = r.sample[m], r.t[m]
        n_pieces[:, di] += np.bincount(smp, minlength=b)
        np.add.at(density[:, :, di], (smp, bins[m]), 1.0)
        pos, neg = t > 0, t < 0
        np.fmin.at(first_pos[:, di], smp[pos], t[pos])
        np.fmin.at(first_neg[:, di], smp[neg], -t[neg])
    density /= width[None, :, None]
    walked = b if walked is None else walked
    for arr in (n_pieces, first_pos, first_neg, density):
        arr[walked:] = np.nan
    depends = np.array([[n in chain.depends[d] for n in r.layers] for d in depths], dtype=bool)
    depends = depends.reshape(n_d, len(r.layers))
    return xr.Dataset(
        {
            "breakpoint_t": (("breakpoint",), r.t),
            "breakpoint_sample": (("breakpoint",), r.sample.astype(np.int64)),
            "breakpoint_kink": (("breakpoint",), r.kink.astype(bool)),
            "breakpoint_layer": (
                ("breakpoint",),
                layer_names[r.layer] if len(r.t) else np.zeros(0, dtype=str),
            ),
            "n_pieces": (("sample", "depth"), n_pieces),
            "first_break_pos": (("sample", "depth"), first_pos),
            "first_break_neg": (("sample", "depth"), first_neg),
            "breakpoint_density": (("sample", "t_bin", "depth"), density),
            "depends_on": (("depth", "dep_layer"), depends),
        },
        coords={
            "sample": np.arange(b),
            "depth": depths,
            "dep_layer": layer_names,
            "t_bin": (edges[:-1] + edges[1:]) / 2,
            "t_bin_lo": ("t_bin", edges[:-1]),
            "t_bin_hi": ("t_bin", edges[1:]),
        },
        attrs={
            "hook": chain.hook,
            "t_min": t_min,
            "t_max": t_max,
            "kink_depth": r.kink_depth,
            "breakpoint_samples": walked,
        },
    )


def breakpoints_at(ds: xr.Dataset, sample: int, depth: str) -> np.ndarray:
    """The sorted breakpoints of f_depth for one sample, from a breakpoint / nonlinearity Dataset.

    A depth's breakpoints are those found at the relu / maxpool layers it depends on (the
    Dataset's boolean ``depends_on``, dims ``depth, dep_layer``).

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU())
        >>> ds = line_breakpoints(net, torch.tensor([[1.0, -2.0]]), "0",
        ...                       torch.tensor([1.0, 1.0]), (-3.0, 3.0))
        >>> breakpoints_at(ds, 0, "1").tolist()
        [-1.0, 2.0]
    """
    uses = ds["depends_on"].sel(depth=depth).values.astype(bool)
    names = ds["dep_layer"].values[uses]
    keep = (ds["breakpoint_sample"].values == sample) & np.isin(
        ds["breakpoint_layer"].values, names
    )
    return np.sort(ds["breakpoint_t"].values[keep])
