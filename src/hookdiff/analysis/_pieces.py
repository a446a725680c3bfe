"""The line walk's pieces: a batch of line pieces, their anchors and values, and lazy sub-pieces.

On each piece [t0, t1] of the line a + t·v every live activation is p + (t − t0)·d. Only the
directions d are stored on every piece; the values p are stored at *anchor* pieces (each
sample's first, then every :data:`ANCHOR_EVERY`-th) and summed from the directions in between
(p_next = p + (t1 − t0)·d, the segment being continuous along the line) where a relu / maxpool
needs them. A split's sub-pieces stay index arrays into their parent (:class:`_LazyChunk`) until
the walk reaches them. Used by :mod:`hookdiff.analysis.walk`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

#: Pieces per block of the value prefix: every this many pieces of a sample, the value at the
#: piece start is carried through every op exactly (an anchor); in between it is summed from the
#: slopes, so rounding adds up over at most this many pieces.
ANCHOR_EVERY = 32

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


def _bcast(x: Tensor, like: Tensor) -> Tensor:
    return x.reshape((-1,) + (1,) * (like.ndim - 1))


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
