"""Where a relu / maxpool changes state inside each line piece, and the cut of pieces there.

For every piece of a batch (see :mod:`hookdiff.analysis._pieces`) at once: a relu unit's input
p + s·d crosses 0 at s = −p/d; a maxpool window's argmax moves along the upper envelope of its
affine candidates. :func:`_split` cuts the pieces at those offsets and records the breakpoints;
:func:`_flips` keeps, per crossing, which sub-pieces see the changed state. Used by
:mod:`hookdiff.analysis.walk`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hookdiff.analysis._chain import maxpool_pattern
from hookdiff.analysis._pieces import _bcast, _Pieces


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
