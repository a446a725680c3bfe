"""Maze codec, edits and paths on hand-made state bytes (no procgen): small mazes with
hand-derived decision squares, directions and corridors."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hookdiff.errors import MazeEditError, MazeStateError
from hookdiff.maze import (
    CHEESE,
    DIRECTION_STEPS,
    EMPTY,
    WALL,
    MazeState,
    cheese_pair,
    decision_square,
    direction_field,
    distances,
    in_top_right,
    next_direction,
    shortest_path,
    top_right_cell,
    top_right_corridor,
    top_right_pair,
    top_right_region,
    with_cheese,
    with_mouse,
    with_walls,
    without_cheese,
)


def build_state(inner_rows: list[str], world_dim: int, mouse=None, mode: int = 1) -> bytes:
    """Procgen-layout bytes for a maze given as text rows, TOP row first.

    '.' open, '#' wall, 'C' cheese; the inner maze is centred in a wall margin.
    """
    d = len(inner_rows)
    m = (world_dim - d) // 2
    grid = np.full((world_dim, world_dim), WALL, dtype="<i4")
    for i, line in enumerate(inner_rows):
        r = m + d - 1 - i  # text row 0 is the top of the maze
        for j, ch in enumerate(line):
            grid[r, m + j] = {".": EMPTY, "#": WALL, "C": CHEESE}[ch]
    if mouse is None:
        mouse = (m, m)
    out = bytearray()
    i32 = lambda *v: out.extend(struct.pack(f"<{len(v)}i", *v))  # noqa: E731
    string = lambda s: (i32(len(s)), out.extend(s))  # noqa: E731
    i32(0)
    string(b"maze")
    options = [0] * 12
    options[4] = 1
    options[7] = mode
    i32(*options)
    i32(1, 0, 2**31 - 1, 0, 0)
    for _ in range(2):
        i32(1)
        string(b"12 34 56")
    i32(0, 0, 0, 4, 500, 77, 0, 0, 0, 0, 0, 4, 0, 0, 0)  # current_level_seed = 77
    i32(world_dim * world_dim, 1)
    ent = [0] * 31
    out.extend(struct.pack("<ff", mouse[1] + 0.5, mouse[0] + 0.5))
    i32(*ent[2:6], 0, *ent[7:])
    i32(*[0] * 19)
    i32(1)
    string(b"9 8 7")
    i32(world_dim, world_dim, 51)
    out.extend(struct.pack("<6f", 2.56, 25.0, 0.0, 0.0, 25.0, 0.0))
    i32(world_dim, world_dim, world_dim * world_dim)
    out.extend(grid.tobytes())
    i32(d, world_dim)
    out.extend(struct.pack("<I", 0xCAFECAFE))
    return bytes(out)


# Inner 5x5 maze, top row first. Start (inner 0,0) is the bottom-left; top-right is inner (4,4).
# Paths from the start: to the cheese (inner (2,2)) along the bottom row then up column 2; to the
# top-right along the bottom row then up column 4. They share (0,0),(0,1),(0,2): the decision
# square is inner (0,2) = world (1,3) with margin 1.
FORK = [
    "####.",
    "####.",
    "##C#.",
    "##.#.",
    ".....",
]


@pytest.fixture
def fork() -> MazeState:
    return MazeState.from_bytes(build_state(FORK, 7))


def test_parse_synthetic(fork: MazeState) -> None:
    assert fork.world_dim == 7 and fork.maze_dim == 5 and fork.margin == 1
    assert fork.mouse == (1, 1)
    assert fork.cheese == (3, 3)
    assert fork.level_seed == 77 and fork.distribution_mode == "hard"
    assert fork.grid[1, 1:6].tolist() == [EMPTY] * 5  # bottom inner row, row 0 at the bottom
    assert fork.inner_grid.shape == (5, 5)
    assert fork.inner_grid[4, 4] == EMPTY
    assert fork.to_bytes() == build_state(FORK, 7)


def test_state_is_immutable(fork: MazeState) -> None:
    with pytest.raises(ValueError):
        fork.grid[0, 0] = EMPTY
    with pytest.raises(AttributeError):
        fork.world_dim = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        fork._raw = b""  # noqa: SLF001


def test_decision_square_fork(fork: MazeState) -> None:
    assert top_right_cell(fork) == (5, 5)
    assert decision_square(fork) == (1, 3)


@pytest.mark.parametrize(
    "rows",
    [
        ["####.", "####.", "####.", "####.", "...C."],  # cheese on the way to the corner
        ["####C", "####.", "####.", "####.", "....."],  # cheese on the corner
        ["####.", "####.", "####.", "####.", "....."],  # no cheese
        ["C.#..", "#####", "....#", "#####", "....."],  # corner cut off (unreachable)
        ["C...#", "#####", "....#", "#####", "....."],  # corner walled (after an edit)
    ],
)
def test_decision_square_none(rows: list[str]) -> None:
    assert decision_square(MazeState.from_bytes(build_state(rows, 7))) is None


def test_decision_square_corner_on_cheese_path() -> None:
    # The top-right cell lies on the path to the cheese, which continues into the margin corridor.
    s = MazeState.from_bytes(build_state(["####.", "####.", "####.", "####.", "....."], 7))
    s = with_cheese(with_walls(s, [(6, 5)], wall=False), (6, 5))
    assert decision_square(s) is None


def test_paths_and_directions(fork: MazeState) -> None:
    path = shortest_path(fork, (1, 1), (3, 3))
    assert path == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3)]
    assert shortest_path(fork, (1, 1), (1, 1)) == [(1, 1)]
    # left=0, down=1, up=2, right=3; "down" is row - 1 (toward the bottom)
    assert next_direction(fork, (1, 1), (3, 3)) == 3
    assert next_direction(fork, (2, 3), (3, 3)) == 2
    assert next_direction(fork, (5, 5), (1, 1)) == 1
    assert next_direction(fork, (1, 5), (1, 1)) == 0
    assert next_direction(fork, (3, 3), (3, 3)) == -1
    with pytest.raises(ValueError, match="wall"):
        next_direction(fork, (0, 0), (3, 3))
    with pytest.raises(ValueError, match="outside"):
        shortest_path(fork, (1, 1), (9, 9))


def test_direction_field_matches_paths(fork: MazeState) -> None:
    for target in [(3, 3), (5, 5), (1, 1)]:
        field = direction_field(fork, target)
        dist = distances(fork, target)
        for r, c in np.argwhere(fork.grid != WALL):
            path = shortest_path(fork, (r, c), target)
            assert len(path) - 1 == dist[r, c]
            if (r, c) == target:
                assert field[r, c] == -1
                continue
            dr, dc = DIRECTION_STEPS[field[r, c]]
            assert (r + dr, c + dc) == path[1]
        assert (field[fork.grid == WALL] == -1).all()


def test_unreachable_path() -> None:
    s = MazeState.from_bytes(build_state(["C...#", "#####", "....#", "#####", "....."], 7))
    assert shortest_path(s, (1, 1), (5, 1)) is None
    assert direction_field(s, (5, 1))[1, 1] == -1


def test_edits(fork: MazeState) -> None:
    moved = with_cheese(fork, (1, 5))
    assert moved.cheese == (1, 5) and (moved.grid == CHEESE).sum() == 1
    assert moved.grid[3, 3] == EMPTY
    assert fork.cheese == (3, 3)  # input untouched
    assert without_cheese(fork).cheese is None
    m = with_mouse(fork, (5, 5))
    assert m.mouse == (5, 5) and m.mouse_xy == (5.5, 5.5)
    assert with_mouse(m, (1, 1)).to_bytes() == fork.to_bytes()
    walled = with_walls(fork, [(1, 4)], wall=True)
    assert walled.grid[1, 4] == WALL
    assert decision_square(walled) is None  # the corner is cut off
    assert with_walls(walled, [(1, 4)], wall=False) == fork
    # every edit re-parses to the same state
    for s in (moved, m, walled):
        assert MazeState.from_bytes(s.to_bytes()) == s


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: with_mouse(s, (0, 0)), "wall"),
        (lambda s: with_mouse(s, (3, 3)), "cheese"),
        (lambda s: with_mouse(s, (7, 1)), "outside"),
        (lambda s: with_mouse(s, (-1, 1)), "outside"),
        (lambda s: with_cheese(s, (2, 2)), "wall"),
        (lambda s: with_cheese(s, (1, 1)), "mouse"),
        (lambda s: with_cheese(s, (1, 9)), "outside"),
        (lambda s: with_walls(s, [(1, 1)], wall=True), "mouse"),
        (lambda s: with_walls(s, [(3, 3)], wall=True), "cheese"),
        (lambda s: s.replace(grid=np.full((7, 7), CHEESE)), "cheeses"),
        (lambda s: s.replace(grid=np.full((7, 7), 5)), "code"),
        (lambda s: s.replace(grid=np.full((5, 5), EMPTY)), "shape"),
    ],
)
def test_bad_edits_raise(fork: MazeState, edit, match: str) -> None:
    with pytest.raises(MazeEditError, match=match):
        edit(fork)


def test_pairs(fork: MazeState) -> None:
    away = with_mouse(fork, (1, 5))
    with_c, without_c = cheese_pair(away)
    assert with_c.mouse == without_c.mouse == (1, 1)
    assert with_c.cheese == (3, 3) and without_c.cheese is None
    assert (with_c.grid != without_c.grid).sum() == 1
    with pytest.raises(MazeEditError, match="no"):
        cheese_pair(without_cheese(fork))

    assert top_right_corridor(fork) == [(6, 5), (6, 6)]  # up column 5, then right along row 6
    with_p, without_p = top_right_pair(away)
    assert with_p.mouse == without_p.mouse == (1, 1)
    changed = {tuple(map(int, x)) for x in np.argwhere(with_p.grid != without_p.grid)}
    assert changed == {(6, 5), (6, 6)}
    assert (with_p.grid[6, 5:] == EMPTY).all() and without_p == with_mouse(fork, (1, 1))
    assert shortest_path(with_p, (5, 5), (6, 6)) == [(5, 5), (6, 5), (6, 6)]

    full = MazeState.from_bytes(build_state(FORK, 5))
    assert top_right_corridor(full) == []
    with pytest.raises(MazeEditError, match="no margin"):
        top_right_pair(full)


def test_corridor_in_a_wider_margin() -> None:
    s = MazeState.from_bytes(build_state(FORK, 9))  # margin 2, inner top-right (6, 6)
    assert top_right_corridor(s) == [(7, 6), (8, 6), (8, 7), (8, 8)]


def test_codec_errors_name_field_and_offset(fork: MazeState) -> None:
    b = bytearray(fork.to_bytes())
    b[-4:] = struct.pack("<I", 0xDEADBEEF)
    with pytest.raises(MazeStateError, match="trailer") as e:
        MazeState.from_bytes(bytes(b))
    assert e.value.field == "trailer" and e.value.offset == len(b) - 4
    with pytest.raises(MazeStateError, match="left over"):
        MazeState.from_bytes(fork.to_bytes() + b"\0")
    with pytest.raises(MazeStateError, match="bytes"):
        MazeState.from_bytes("not bytes")  # type: ignore[arg-type]
    # mouse on a wall
    wall_mouse = build_state(FORK, 7, mouse=(0, 0))
    with pytest.raises(MazeStateError, match="wall") as e:
        MazeState.from_bytes(wall_mouse)
    assert e.value.field == "entities[0].x,y"
    # maze_dim even
    even = bytearray(fork.to_bytes())
    struct.pack_into("<i", even, len(even) - 12, 4)
    with pytest.raises(MazeStateError, match="maze_dim") as e:
        MazeState.from_bytes(bytes(even))
    assert e.value.offset == len(even) - 12
    with pytest.raises(MazeStateError, match="game_name"):
        MazeState.from_bytes(fork.to_bytes().replace(b"maze", b"heis", 1))


@pytest.mark.parametrize(
    ("maze_dim", "world_dim", "size", "expected"),
    [
        # margin = (world - maze) // 2; top = margin + maze - 1; low = max(margin, top - size + 1)
        (3, 5, 5, (1, 3)),  # a maze smaller than the region is all region
        (5, 7, 5, (1, 5)),
        (7, 9, 5, (3, 7)),
        (9, 13, 5, (6, 10)),
        (11, 11, 5, (6, 10)),  # no margin
        (13, 25, 5, (14, 18)),
        (9, 13, 3, (8, 10)),
        (9, 13, 1, (10, 10)),
    ],
)
def test_top_right_region_on_mazes_of_several_sizes(maze_dim, world_dim, size, expected) -> None:
    s = MazeState.from_bytes(build_state(["." * maze_dim] * maze_dim, world_dim))
    assert (s.maze_dim, s.world_dim) == (maze_dim, world_dim)
    lo, hi = expected
    assert top_right_region(s, size) == (lo, hi, lo, hi)
    inside = {
        (r, c) for r in range(world_dim) for c in range(world_dim) if in_top_right(s, (r, c), size)
    }
    assert inside == {(r, c) for r in range(lo, hi + 1) for c in range(lo, hi + 1)}
