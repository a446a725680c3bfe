"""Today's exact line walk, kept as the benchmark's reference (a frozen copy, not the package's).

A verbatim copy of ``hookdiff.analysis.breakpoints.walk_line`` before its speed-up: every piece
carries (p, d) through every op, with dense float64 convolutions on both. ``bench_walk.py`` and
the walk's tests compare the package's walk against it: same breakpoints, same units, same kinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from hookdiff.analysis._chain import Chain, maxpool_gather, maxpool_pattern
from hookdiff.contract import Op
from hookdiff.errors import NotPiecewiseLinearError, TrainingModeError
from hookdiff.ops import apply_op

__all__ = ["walk_line"]

#: Default budget of the walk: pieces × (largest activation size) at most this many numbers per
#: tensor (2**25: 128 MiB in float32), i.e. 4096 pieces together on the scale-1 agent. Larger
#: batches are much faster (fewer, bigger ops); memory peaks at roughly ten such tensors.
DEFAULT_MAX_ELEMENTS = 2**25

_Affine = tuple[Tensor, Tensor | None]  # (value at piece start, direction or None = constant)


@dataclass
class _Pieces:
    """A batch of line pieces: sample index, start and end t, and the live activations."""

    sample: Tensor
    t0: Tensor
    t1: Tensor
    env: dict[str, _Affine]

    def __len__(self) -> int:
        return int(self.sample.shape[0])


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
    layer_id = {n: i for i, n in enumerate(layers)}
    last_use: dict[str, int] = {}
    for k, s in enumerate(steps):
        for n in s.inputs:
            last_use[n] = k
    budget = max_pieces or max(64, DEFAULT_MAX_ELEMENTS // max(a[0].numel(), 1))
    tol = 16 * torch.finfo(a.dtype).eps * max(1.0, abs(t_min), abs(t_max))
    b = a.shape[0]
    with torch.no_grad():
        env: dict[str, _Affine] = {chain.hook: (a + t_min * v, v.expand_as(a).contiguous())}
        for name, t in context.items():
            env[name] = (t, None)
        start = _Pieces(
            sample=torch.arange(b),
            t0=torch.full((b,), float(t_min), dtype=a.dtype),
            t1=torch.full((b,), float(t_max), dtype=a.dtype),
            env=env,
        )
        records: list[tuple[Tensor, Tensor, int]] = []
        finals: list[tuple[Tensor, Tensor, Tensor]] = []
        # depth-first; a layer that splits a batch into more than ``budget`` pieces pushes lazy
        # chunks (index arrays into the parent batch) that are gathered only when popped, so
        # memory stays at about one batch per piecewise layer however many pieces there are
        stack: list[tuple[int, _Pieces | _LazyChunk]] = [
            (0, c) for c in reversed(_chunks(start, budget))
        ]
        while stack:
            k, item = stack.pop()
            if isinstance(item, _LazyChunk):  # split at steps[k] already: gather, then apply it
                pieces = item.gather()
                _apply_layer(pieces, steps[k])
                _drop_dead(pieces, steps[k], k, last_use)
                k += 1
            else:
                pieces = item
            while k < len(steps):
                s = steps[k]
                if s.kind in ("relu", "maxpool"):
                    split = _split_index(pieces, s, tol, records, layer_id[s.name])
                    if split is not None and len(split[0]) > budget:
                        lazy = [
                            _LazyChunk(pieces, *(x[i : i + budget] for x in split))
                            for i in range(0, len(split[0]), budget)
                        ]
                        stack.extend((k, c) for c in reversed(lazy))
                        break
                    if split is not None:
                        pieces = _LazyChunk(pieces, *split).gather()
                    _apply_layer(pieces, s)
                else:
                    pieces.env[s.name] = _affine(s, [pieces.env[n] for n in s.inputs])
                _drop_dead(pieces, s, k, last_use)
                k += 1
            else:  # this batch reached the deepest op: keep its slope on every piece
                p_out, d_out = pieces.env[steps[-1].name]
                d_out = torch.zeros_like(p_out) if d_out is None else d_out
                finals.append((pieces.sample, pieces.t0, d_out.reshape(len(pieces), -1)))
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
        jump.double().numpy() if slope_jumps else None,
    )


def _records(records: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The breakpoints the walk recorded: sample, t, layer index and unit, unsorted."""
    if not records:
        return np.zeros(0, int), np.zeros(0), np.zeros(0, int), np.zeros(0, int)
    sample = torch.cat([r[0] for r in records]).numpy()
    t = torch.cat([r[1] for r in records]).double().numpy()
    layer = np.concatenate([np.full(len(r[0]), r[2]) for r in records])
    unit = torch.cat([r[3] for r in records]).numpy()
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
    order = np.lexsort((t0.numpy(), sample.numpy()))
    order_t = torch.as_tensor(order)
    sample, d = sample[order_t], d[order_t]
    same = sample[1:] == sample[:-1]
    jump = d[1:] - d[:-1]
    size = torch.maximum(d[1:].norm(dim=1), d[:-1].norm(dim=1))
    kink = jump.norm(dim=1) > (eps**0.5) * size
    return kink[same].numpy(), jump[same]


def _chunks(pieces: _Pieces, size: int) -> list[_Pieces]:
    n = len(pieces)
    if n <= size:
        return [pieces]
    out = []
    for i in range(0, n, size):
        sl = slice(i, i + size)
        env = {k: (p[sl], None if d is None else d[sl]) for k, (p, d) in pieces.env.items()}
        out.append(_Pieces(pieces.sample[sl], pieces.t0[sl], pieces.t1[sl], env))
    return out


def _affine(step: Op, args: Sequence[_Affine]) -> _Affine:
    """(p, d) through an affine op: (op(p), op_without_bias(d))."""
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
    if kind in ("conv", "linear"):
        if d is None:
            return m(p), None
        # p and d in one call without the bias (one larger matmul), then the bias on p only
        n = p.shape[0]
        both = torch.cat([p, d])
        if kind == "conv":
            out = m._conv_forward(both, m.weight, None)
            bias = None if m.bias is None else m.bias.reshape(1, -1, 1, 1)
        else:
            out = F.linear(both, m.weight)
            bias = m.bias
        p_out, d_out = out[:n], out[n:]
        return (p_out if bias is None else p_out + bias), d_out
    raise NotPiecewiseLinearError(f"op {step.name!r} of kind {kind!r} is not affine")


def _drop_dead(pieces: _Pieces, step: Op, k: int, last_use: dict[str, int]) -> None:
    """Free the activations no later op reads."""
    for n in step.inputs:
        if last_use.get(n) == k:
            pieces.env.pop(n, None)


def _split_index(
    pieces: _Pieces, step: Op, tol: float, records: list, layer: int
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """Where the layer's pattern changes inside each piece: the sub-pieces as index arrays.

    Returns ``None`` when nothing moves or nothing changes, else ``(owner, offset, t0, t1)`` per
    sub-piece (see :func:`_split`); the breakpoints are appended to ``records``.
    """
    p, d = pieces.env[step.inputs[0]]
    if d is None:  # the input does not move along the line: nothing to split
        return None
    length = pieces.t1 - pieces.t0
    if step.kind == "relu":
        parent, s, unit = _relu_crossings(p, d, length, tol)
    else:
        parent, s, unit = _maxpool_crossings(p, d, length, step.module, tol)
    return _split(pieces, parent, s, unit, tol, records, layer)


def _apply_layer(pieces: _Pieces, step: Op) -> None:
    """Apply a relu / maxpool per piece, with the pattern read at each piece's midpoint."""
    p, d = pieces.env[step.inputs[0]]
    if d is None:
        pieces.env[step.name] = (apply_op(step, [p]), None)
        return
    half = _bcast((pieces.t1 - pieces.t0) / 2, p)
    if step.kind == "relu":
        on = (p + half * d) > 0  # the state inside the piece, read at its midpoint
        pieces.env[step.name] = (p * on, d * on)
    else:
        idx = _pool_index(p + half * d, step.module)
        pieces.env[step.name] = (maxpool_gather(p, idx), maxpool_gather(d, idx))


def _relu_crossings(
    p: Tensor, d: Tensor, length: Tensor, tol: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(piece index, offset s, unit) of every unit whose input p + s·d crosses 0 in its piece."""
    n = p.shape[0]
    pf, df = p.reshape(n, -1), d.reshape(n, -1)
    end = torch.addcmul(pf, df, length.reshape(n, 1))  # the input at the piece's end
    parent, unit = ((pf > 0) != (end > 0)).nonzero(as_tuple=True)  # a sign change inside
    s = -pf[parent, unit] / df[parent, unit]
    inside = (s > tol) & (s < length[parent] - tol)
    return parent[inside], s[inside], unit[inside]


def _pool_index(x: Tensor, m: nn.Module) -> Tensor:
    """Flat index (within the input plane) of each maxpool window's argmax."""
    return maxpool_pattern(x, m)


def _pair(x: int | tuple[int, int]) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else (int(x[0]), int(x[1]))


def _maxpool_crossings(
    p: Tensor, d: Tensor, length: Tensor, m: nn.Module, tol: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(piece index, offset s, unit) of every point where a window's argmax is overtaken in its piece.

    The argmax of a window moves along the upper envelope of its affine candidates, whose slope
    only increases, so it never returns: a window whose argmax is the same at both ends of a
    piece has no change inside. Only the other windows (found with two ``max_pool2d`` calls) are
    walked, all at once: from the current argmax j at offset s_cur, the next change is the
    earliest crossing (p_j − p_i) / (d_i − d_j) > s_cur of a steeper candidate i; the steepest
    candidate crossing there takes over. At most k·k rounds (the envelope has ≤ k·k pieces).
    """
    n, c, h, w = p.shape
    lengths = _bcast(length, p)
    first = _pool_index(p + tol * d, m)
    last = _pool_index(p + (lengths - tol) * d, m)
    pc, cc, hc, wc = (first != last).nonzero(as_tuple=True)
    out_h, out_w = first.shape[2:]
    window = (cc * out_h + hc) * out_w + wc  # the pooled unit, flat within the output plane
    if pc.numel() == 0:
        return pc, torch.zeros(0, dtype=p.dtype), pc
    kh, kw = _pair(m.kernel_size)
    sh, sw = _pair(m.stride if m.stride is not None else m.kernel_size)
    ph, pw = _pair(m.padding)
    dh = torch.arange(kh).repeat_interleave(kw)
    dw = torch.arange(kw).repeat(kh)
    rows = hc[:, None] * sh - ph + dh[None]
    cols = wc[:, None] * sw - pw + dw[None]
    valid = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)
    sel = (pc[:, None], cc[:, None], flat)
    wp = torch.where(valid, p.reshape(n, c, h * w)[sel], float("-inf"))
    wd = torch.where(valid, d.reshape(n, c, h * w)[sel], 0.0)
    j = ((flat == first[pc, cc, hc, wc][:, None]) & valid).to(torch.uint8).argmax(-1, keepdim=True)
    lim = length[pc] - tol
    s_cur = torch.full(pc.shape, tol, dtype=p.dtype)
    done = torch.zeros(pc.shape, dtype=torch.bool)
    offsets = []
    pieces = []
    units = []
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
        j = torch.where(active[:, None], new_j, j)
        s_cur = torch.where(active, s_next, s_cur)
        done |= ~active
    if not pieces:
        none = torch.zeros(0, dtype=torch.long)
        return none, torch.zeros(0, dtype=p.dtype), none
    return torch.cat(pieces), torch.cat(offsets), torch.cat(units)


def _split(
    pieces: _Pieces, parent: Tensor, s: Tensor, unit: Tensor, tol: float, records: list, layer: int
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """Cut each piece at its offsets ``s`` (all pieces at once); record the new breakpoints.

    Returns ``(owner, offset, t0, t1)`` of the sub-pieces (``None`` if there is no cut): the parent
    row of each, its start relative to the parent's start, and its own start and end.
    """
    if parent.numel() == 0:
        return None
    n = len(pieces)
    order = torch.argsort(s, stable=True)
    parent, s, unit = parent[order], s[order], unit[order]
    order = torch.argsort(parent, stable=True)
    parent, s, unit = parent[order], s[order], unit[order]
    dup = torch.zeros_like(parent, dtype=torch.bool)
    dup[1:] = (parent[1:] == parent[:-1]) & (s[1:] - s[:-1] <= tol)  # the same t, seen twice
    parent, s, unit = parent[~dup], s[~dup], unit[~dup]
    records.append((pieces.sample[parent], pieces.t0[parent] + s, layer, unit))

    counts = torch.bincount(parent, minlength=n)
    sizes = counts + 1
    owner = torch.repeat_interleave(torch.arange(n), sizes)
    first = torch.cumsum(sizes, 0) - sizes
    is_first = torch.zeros(len(owner), dtype=torch.bool)
    is_first[first] = True
    offs = torch.zeros(len(owner), dtype=s.dtype)
    offs[~is_first] = s  # parent-major, ascending within a parent: the sorted order above
    ends = torch.empty_like(offs)
    ends[:-1] = offs[1:]
    last = first + sizes - 1
    t0 = pieces.t0[owner] + offs
    t1 = pieces.t0[owner] + ends
    t1[last] = pieces.t1  # the last sub-piece ends where its parent did
    return owner, offs, t0, t1


@dataclass
class _LazyChunk:
    """Sub-pieces of ``parent`` (``owner`` rows, starting ``offs`` after their parent's start),
    not yet gathered: a split's children cost only index arrays until they are walked."""

    parent: _Pieces
    owner: Tensor
    offs: Tensor
    t0: Tensor
    t1: Tensor

    def gather(self) -> _Pieces:
        """The sub-pieces with their activations at their own start."""
        env = {}
        for name, (p, d) in self.parent.env.items():
            if d is None:
                env[name] = (p[self.owner], None)
            else:
                dd = d[self.owner]
                env[name] = (torch.addcmul(p[self.owner], _bcast(self.offs, dd), dd), dd)
        return _Pieces(self.parent.sample[self.owner], self.t0, self.t1, env)
