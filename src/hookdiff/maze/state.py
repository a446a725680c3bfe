"""Procgen 0.10.7 maze state bytes, parsed and validated into an immutable :class:`MazeState`.

``env.callmethod("get_state")`` returns one opaque byte string per env, and ``set_state`` feeds
such bytes straight into procgen's C++ deserializer, which crashes or misbehaves on bad input. This
module walks the fields in procgen's order (Game, BasicAbstractGame, MazeGame, trailer), checks
every length, count and code it reads, and raises :class:`~hookdiff.errors.MazeStateError` naming
the field, its byte offset and what was expected, before anything reaches procgen. A parsed state
keeps its raw bytes: ``to_bytes()`` of an unedited state is byte-identical to its input, and edits
patch only the mouse's x/y floats and the grid's cell ints (no length changes).

Coordinates are ``(row, col)`` in world cells, row 0 at the BOTTOM (procgen's y axis points up; the
rendered image's row 0 is the top, so image row ``i`` shows world row ``world_dim - 1 - i*world_dim//64``).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from jaxtyping import Int

from hookdiff.errors import MazeEditError, MazeStateError

__all__ = ["EMPTY", "WALL", "CHEESE", "TRAILER", "MazeState"]

EMPTY = 100
"""Grid code of an open cell."""
WALL = 51
"""Grid code of a wall cell."""
CHEESE = 2
"""Grid code of the cheese cell."""
TRAILER = 0xCAFECAFE
"""The int32 every procgen state ends with."""

_CODES = (EMPTY, WALL, CHEESE)
_DISTRIBUTION_MODES = {0: "easy", 1: "hard", 2: "extreme", 3: "memory", 10: "exploration"}
_N_OPTIONS = 12  # paint_vel_info ... physics_mode
_DISTRIBUTION_OPTION = 7  # index of distribution_mode among the options (byte offset 40)
_N_GAME_FIXED = 15  # reward .. is_waiting_for_step
_CUR_LEVEL_SEED = 5  # index of current_level_seed among those 15
_ENTITY_BYTES = 124  # 31 four-byte fields per entity
_ENTITY_TYPE = 24  # byte offset of the entity's type inside it
_ENTITY_REFLECTED = 60  # byte offset of the entity's is_reflected int (1: sprite mirrored)
_N_BASIC_FIXED = 19  # fixed fields between the entities and the third RNG record
_MAX_DIM = 1024  # far above procgen's 25; bounds w*h before we allocate
_RNG_CHARS = b"0123456789 "


@dataclass(frozen=True)
class _Layout:
    """Where the editable fields sit in one state's bytes, and the header values we expose."""

    mouse_offset: int  # byte offset of the mouse entity's float x (y follows at +4)
    grid_offset: int  # byte offset of the first cell int32
    world_dim: int
    maze_dim: int
    distribution_mode: str
    level_seed: int


class _Reader:
    """A cursor over the state bytes; every read is bounds-checked and names its field."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def _need(self, n: int, field: str, what: str) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise MazeStateError(
                f"maze state ends early: {field} at byte {self.pos} needs {what} "
                f"({n} bytes) but only {len(self.buf) - self.pos} remain of {len(self.buf)}",
                field=field,
                offset=self.pos,
            )

    def i32(self, field: str) -> int:
        self._need(4, field, "an int32")
        (v,) = struct.unpack_from("<i", self.buf, self.pos)
        self.pos += 4
        return v

    def f32(self, field: str) -> float:
        self._need(4, field, "a float32")
        (v,) = struct.unpack_from("<f", self.buf, self.pos)
        self.pos += 4
        return v

    def skip(self, n: int, field: str) -> int:
        self._need(n, field, f"{n // 4} four-byte fields")
        start = self.pos
        self.pos += n
        return start

    def string(self, field: str) -> bytes:
        at = self.pos
        n = self.i32(f"{field}.length")
        if n < 0 or n > len(self.buf) - self.pos:
            raise MazeStateError(
                f"{field}.length at byte {at} is {n}: expected a length between 0 and the "
                f"{len(self.buf) - self.pos} bytes left in the state",
                field=f"{field}.length",
                offset=at,
            )
        s = self.buf[self.pos : self.pos + n]
        self.pos += n
        return s

    def rng(self, field: str) -> None:
        at = self.pos
        seeded = self.i32(f"{field}.is_seeded")
        if seeded not in (0, 1):
            raise MazeStateError(
                f"{field}.is_seeded at byte {at} is {seeded}: expected 0 or 1",
                field=f"{field}.is_seeded",
                offset=at,
            )
        text_at = self.pos + 4
        text = self.string(f"{field}.state")
        if text.translate(None, _RNG_CHARS):
            raise MazeStateError(
                f"{field}.state at byte {text_at} holds non-decimal characters: expected a "
                "Mersenne-Twister state as decimal numbers separated by spaces",
                field=f"{field}.state",
                offset=text_at,
            )


def _bad(field: str, offset: int, got: object, expected: str) -> MazeStateError:
    return MazeStateError(
        f"{field} at byte {offset} is {got!r}: expected {expected}", field=field, offset=offset
    )


def _parse(buf: bytes) -> tuple[_Layout, np.ndarray, tuple[float, float]]:
    """Walk procgen 0.10.7's maze state fields in order; return layout, grid view, mouse (x, y).

    Each class's fields in turn (procgen's ``Game``, ``BasicAbstractGame``, ``MazeGame``), each
    checked as it is read, then the checks across fields.
    """
    r = _Reader(buf)
    mode_int, level_seed = _parse_game(r, buf)
    basic = _parse_basic(r, buf)
    maze_dim, md_at, world_dim, wd_at = _parse_maze_game(r, buf)
    cells = _checked_cells(buf, basic, maze_dim, md_at, world_dim, wd_at)
    layout = _Layout(
        mouse_offset=basic.mouse_at,
        grid_offset=basic.grid_at,
        world_dim=world_dim,
        maze_dim=maze_dim,
        distribution_mode=_DISTRIBUTION_MODES[mode_int],
        level_seed=level_seed,
    )
    return layout, cells.reshape(basic.h, basic.w), (basic.x, basic.y)


def _parse_game(r: _Reader, buf: bytes) -> tuple[int, int]:
    """procgen's ``Game`` fields: the distribution mode's code and the level seed."""
    version = r.i32("version")
    if version != 0:
        raise _bad("version", 0, version, "0 (procgen 0.10.7's serialize version)")
    name = r.string("game_name")
    if name != b"maze":
        raise _bad("game_name", 8, name, "b'maze'")
    opt_at = r.skip(4 * _N_OPTIONS, "options")
    mode_at = opt_at + 4 * _DISTRIBUTION_OPTION
    (mode_int,) = struct.unpack_from("<i", buf, mode_at)
    if mode_int not in _DISTRIBUTION_MODES:
        raise _bad(
            "options.distribution_mode", mode_at, mode_int, f"one of {sorted(_DISTRIBUTION_MODES)}"
        )
    r.skip(4 * 5, "grid_step..game_n")
    r.rng("level_seed_rand_gen")
    r.rng("rand_gen")
    fixed_at = r.skip(4 * _N_GAME_FIXED, "reward..is_waiting_for_step")
    (level_seed,) = struct.unpack_from("<i", buf, fixed_at + 4 * _CUR_LEVEL_SEED)
    return mode_int, level_seed


class _Basic(NamedTuple):
    """What ``BasicAbstractGame``'s fields give: the mouse entity and the grid."""

    mouse_at: int
    x: float
    y: float
    w: int
    h: int
    count: int
    grid_at: int


def _parse_basic(r: _Reader, buf: bytes) -> _Basic:
    """procgen's ``BasicAbstractGame`` fields: the one entity (the mouse) and the grid."""
    r.i32("grid_size")
    count_at = r.pos
    n_ent = r.i32("entities.count")
    if n_ent != 1:
        raise _bad("entities.count", count_at, n_ent, "1 (the mouse is maze's only entity)")
    mouse_at = r.skip(_ENTITY_BYTES, "entities[0]")
    (etype,) = struct.unpack_from("<i", buf, mouse_at + _ENTITY_TYPE)
    if etype != 0:
        raise _bad("entities[0].type", mouse_at + _ENTITY_TYPE, etype, "0 (the mouse)")
    x, y = struct.unpack_from("<ff", buf, mouse_at)
    r.skip(4 * _N_BASIC_FIXED, "basic_abstract_game fields")
    r.rng("basic_abstract_game.rand_gen")
    r.skip(4 * 3, "main_width..out_of_bounds_object")
    r.skip(4 * 6, "unit..min_visibility")
    w_at = r.pos
    w = r.i32("grid.w")
    h = r.i32("grid.h")
    for field, at, v in (("grid.w", w_at, w), ("grid.h", w_at + 4, h)):
        if not 1 <= v <= _MAX_DIM:
            raise _bad(field, at, v, f"a grid side between 1 and {_MAX_DIM}")
    c_at = r.pos
    count = r.i32("grid.count")
    if count != w * h:
        raise _bad("grid.count", c_at, count, f"w*h = {w}*{h} = {w * h}")
    grid_at = r.skip(4 * count, "grid.cells")
    return _Basic(mouse_at, x, y, w, h, count, grid_at)


def _parse_maze_game(r: _Reader, buf: bytes) -> tuple[int, int, int, int]:
    """procgen's ``MazeGame`` fields and the trailer: ``(maze_dim, its offset, world_dim, its
    offset)``; nothing may follow the trailer."""
    md_at = r.pos
    maze_dim = r.i32("maze_dim")
    wd_at = r.pos
    world_dim = r.i32("world_dim")
    t_at = r.pos
    trailer = r.i32("trailer") & 0xFFFFFFFF
    if trailer != TRAILER:
        raise _bad("trailer", t_at, hex(trailer), hex(TRAILER))
    if r.pos != len(buf):
        raise MazeStateError(
            f"{len(buf) - r.pos} bytes left over after the trailer at byte {t_at}: expected the "
            "state to end there",
            field="trailer",
            offset=r.pos,
        )
    return maze_dim, md_at, world_dim, wd_at


def _checked_cells(
    buf: bytes, basic: _Basic, maze_dim: int, md_at: int, world_dim: int, wd_at: int
) -> np.ndarray:
    """The grid's cells (a read-only view of ``buf``), after the checks across fields: a square
    world of side ``world_dim`` with the maze centred in it, known cell codes, at most one
    cheese, the mouse inside the grid on an open cell."""
    w, h, x, y, mouse_at, grid_at = (
        basic.w,
        basic.h,
        basic.x,
        basic.y,
        basic.mouse_at,
        basic.grid_at,
    )
    if not (w == h == world_dim):
        raise _bad("world_dim", wd_at, world_dim, f"the grid's side (w={w}, h={h}, square)")
    if not (1 <= maze_dim <= world_dim and maze_dim % 2 == 1 and (world_dim - maze_dim) % 2 == 0):
        raise _bad(
            "maze_dim", md_at, maze_dim, f"an odd size <= world_dim={world_dim}, centred in it"
        )
    cells = np.frombuffer(buf, dtype="<i4", count=basic.count, offset=grid_at)
    ok = (cells == EMPTY) | (cells == WALL) | (cells == CHEESE)
    if not ok.all():
        i = int(np.argmin(ok))
        raise _bad(
            "grid.cells",
            grid_at + 4 * i,
            int(cells[i]),
            f"a cell code in {{100 empty, 51 wall, 2 cheese}} (cell (row, col) = {divmod(i, w)})",
        )
    cheeses = np.flatnonzero(cells == CHEESE)
    if len(cheeses) > 1:
        i = int(cheeses[1])
        raise _bad(
            "grid.cells", grid_at + 4 * i, CHEESE, f"at most one cheese (found {len(cheeses)})"
        )
    if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < w and 0 <= y < h):
        raise _bad("entities[0].x,y", mouse_at, (x, y), f"a mouse position inside [0, {w})^2")
    if cells[int(y) * w + int(x)] == WALL:
        raise _bad("entities[0].x,y", mouse_at, (x, y), "a mouse on an open cell, not on a wall")
    return cells


class MazeState:
    """One procgen maze state: validated, immutable, byte-exact.

    Build it with :meth:`from_bytes`; get procgen's bytes back with :meth:`to_bytes`. Edits live
    in :mod:`hookdiff.maze.edit` and return new states.

    Example:
        >>> from hookdiff.maze import generate_states
        >>> s = generate_states(1, seed=0)[0]
        >>> MazeState.from_bytes(s.to_bytes()) == s
        True
    """

    __slots__ = ("_raw", "_layout", "_grid", "_xy")

    def __init__(self, raw: bytes, layout: _Layout, grid: np.ndarray, xy: tuple[float, float]):
        """Internal: use :meth:`from_bytes`."""
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_grid", grid)
        object.__setattr__(self, "_xy", xy)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"MazeState is immutable; use hookdiff.maze.edit to change {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("MazeState is immutable")

    @classmethod
    def from_bytes(cls, b: bytes | bytearray | memoryview) -> MazeState:
        """Parse and validate procgen 0.10.7 maze state bytes.

        Args:
            b: one element of ``env.callmethod("get_state")``.

        Raises:
            MazeStateError: naming the field, its byte offset and what was expected.
        """
        if not isinstance(b, bytes | bytearray | memoryview):
            raise MazeStateError(
                f"maze state must be bytes, got {type(b).__name__}", field=None, offset=None
            )
        raw = bytes(b)
        layout, grid, xy = _parse(raw)
        return cls(raw, layout, grid, xy)

    def to_bytes(self) -> bytes:
        """The state as procgen bytes (identical to the input for an unedited state)."""
        return self._raw

    def replace(
        self,
        *,
        grid: Int[np.ndarray, "row col"] | None = None,
        mouse: tuple[int, int] | None = None,
        reflected: bool | None = None,
    ) -> MazeState:
        """A new state with another grid, mouse cell and/or mouse facing (patched in place).

        Prefer the named edits in :mod:`hookdiff.maze.edit`; this is their common primitive and
        checks the structural invariants (grid shape and codes, at most one cheese, mouse on an
        open cell inside the grid).

        Raises:
            MazeEditError: when the result would break an invariant.
        """
        wd = self.world_dim
        buf = bytearray(self._raw)
        if grid is not None:
            g = np.asarray(grid)
            if g.shape != (wd, wd):
                raise MazeEditError(f"grid has shape {g.shape}: expected ({wd}, {wd})")
            bad = ~np.isin(g, _CODES)
            if bad.any():
                r, c = np.argwhere(bad)[0]
                raise MazeEditError(
                    f"grid cell ({r}, {c}) has code {g[r, c]}: expected 100 empty, 51 wall or 2 cheese"
                )
            n_cheese = int((g == CHEESE).sum())
            if n_cheese > 1:
                raise MazeEditError(f"grid has {n_cheese} cheeses: expected at most one")
            cells = np.ascontiguousarray(g, dtype="<i4").tobytes()
            off = self._layout.grid_offset
            buf[off : off + len(cells)] = cells
        else:
            g = self._grid
        if reflected is not None:
            struct.pack_into(
                "<i", buf, self._layout.mouse_offset + _ENTITY_REFLECTED, int(reflected)
            )
        if mouse is not None:
            row, col = _check_cell(mouse, wd, "mouse")
            struct.pack_into("<ff", buf, self._layout.mouse_offset, col + 0.5, row + 0.5)
            xy = (col + 0.5, row + 0.5)
        else:
            xy = self._xy
        mr, mc = int(xy[1]), int(xy[0])
        if g[mr, mc] == WALL:
            raise MazeEditError(f"the mouse at (row, col) = ({mr}, {mc}) would be on a wall")
        raw = bytes(buf)
        new_grid = np.frombuffer(raw, "<i4", count=wd * wd, offset=self._layout.grid_offset)
        return MazeState(raw, self._layout, new_grid.reshape(wd, wd), xy)

    @property
    def grid(self) -> Int[np.ndarray, "row col"]:
        """Read-only ``(world_dim, world_dim)`` int array ``[row, col]``, row 0 at the bottom."""
        return self._grid

    @property
    def inner_grid(self) -> Int[np.ndarray, "row col"]:
        """Read-only ``(maze_dim, maze_dim)`` view of the maze inside its wall margin."""
        m, d = self.margin, self.maze_dim
        return self._grid[m : m + d, m : m + d]

    @property
    def mouse(self) -> tuple[int, int]:
        """The mouse's cell ``(row, col)``."""
        return int(self._xy[1]), int(self._xy[0])

    @property
    def mouse_xy(self) -> tuple[float, float]:
        """The mouse entity's continuous ``(x, y)`` as procgen stores it (x = col + 0.5)."""
        return self._xy

    @property
    def mouse_reflected(self) -> bool:
        """Whether procgen draws the mouse mirrored (its entity's ``is_reflected``).

        Procgen sets it when the mouse moves right and clears it when it moves left; it changes
        the rendered sprite by a pixel or two, so it is part of what the agent sees.
        """
        (v,) = struct.unpack_from("<i", self._raw, self._layout.mouse_offset + _ENTITY_REFLECTED)
        return v != 0

    @property
    def cheese(self) -> tuple[int, int] | None:
        """The cheese's cell ``(row, col)``, or ``None`` when the maze has none."""
        idx = np.flatnonzero(self._grid.ravel() == CHEESE)
        if len(idx) == 0:
            return None
        r, c = divmod(int(idx[0]), self.world_dim)
        return r, c

    @property
    def world_dim(self) -> int:
        """Side of the whole world in cells (25 hard, 15 easy)."""
        return self._layout.world_dim

    @property
    def maze_dim(self) -> int:
        """Side of the inner maze in cells (odd, <= world_dim)."""
        return self._layout.maze_dim

    @property
    def margin(self) -> int:
        """Width of the wall margin around the inner maze: ``(world_dim - maze_dim) // 2``."""
        return (self._layout.world_dim - self._layout.maze_dim) // 2

    @property
    def distribution_mode(self) -> str:
        """Procgen's distribution mode: ``"easy"`` or ``"hard"`` (others for completeness)."""
        return self._layout.distribution_mode

    @property
    def level_seed(self) -> int:
        """Procgen's ``current_level_seed``: the level this maze was generated from."""
        return self._layout.level_seed

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MazeState):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return (
            f"MazeState({self.distribution_mode}, level_seed={self.level_seed}, "
            f"maze_dim={self.maze_dim}, mouse={self.mouse}, cheese={self.cheese})"
        )

    def __reduce__(self) -> tuple:
        return (MazeState.from_bytes, (self._raw,))


def _check_cell(cell: object, world_dim: int, what: str) -> tuple[int, int]:
    """Validate a ``(row, col)`` pair inside the grid; return it as plain ints."""
    try:
        row, col = (int(v) for v in cell)  # type: ignore[union-attr]
    except (TypeError, ValueError) as e:
        raise MazeEditError(f"{what} cell {cell!r} is not a (row, col) pair of ints") from e
    if not (0 <= row < world_dim and 0 <= col < world_dim):
        raise MazeEditError(
            f"{what} cell (row, col) = ({row}, {col}) is outside the {world_dim}x{world_dim} grid"
        )
    return row, col
