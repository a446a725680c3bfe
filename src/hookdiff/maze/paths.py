"""Shortest paths on a maze's open cells, the decision square, and directions toward targets.

Breadth-first search over the open cells (4-neighbour; the cheese cell counts as open). A vanilla
maze's open cells form a tree, so shortest paths are unique; after edits that add cycles, ties are
broken in direction order. Directions are indices into :data:`hookdiff.maze.actions.DIRECTION_NAMES`
(left, down, up, right = 0..3; rows count from the bottom, so "down" is ``row - 1``).
"""

from __future__ import annotations

from collections import deque

import numpy as np
from jaxtyping import Int

from hookdiff.maze.actions import DIRECTION_STEPS
from hookdiff.maze.edit import start_cell
from hookdiff.maze.state import WALL, MazeState

__all__ = [
    "open_cells",
    "shortest_path",
    "distances",
    "top_right_cell",
    "top_right_region",
    "decision_square",
    "next_direction",
    "direction_field",
]


def open_cells(state: MazeState) -> list[tuple[int, int]]:
    """Every non-wall cell ``(row, col)`` in row-major order (row 0 first), cheese included."""
    return [(int(r), int(c)) for r, c in np.argwhere(state.grid != WALL)]


def _check(state: MazeState, cell: tuple[int, int], what: str) -> tuple[int, int]:
    r, c = int(cell[0]), int(cell[1])
    wd = state.world_dim
    if not (0 <= r < wd and 0 <= c < wd):
        raise ValueError(f"{what} {cell} is outside the {wd}x{wd} grid")
    if state.grid[r, c] == WALL:
        raise ValueError(f"{what} {cell} is a wall; paths run over open cells only")
    return r, c


def distances(state: MazeState, source: tuple[int, int]) -> Int[np.ndarray, "row col"]:
    """BFS step counts from ``source`` to every cell; -1 on walls and unreachable cells.

    Raises:
        ValueError: ``source`` is off the grid or a wall.
    """
    sr, sc = _check(state, source, "source")
    open_ = state.grid != WALL
    wd = state.world_dim
    dist = np.full((wd, wd), -1, dtype=np.int64)
    dist[sr, sc] = 0
    queue = deque([(sr, sc)])
    while queue:
        r, c = queue.popleft()
        d = dist[r, c] + 1
        for dr, dc in DIRECTION_STEPS:
            nr, nc = r + dr, c + dc
            if 0 <= nr < wd and 0 <= nc < wd and open_[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = d
                queue.append((nr, nc))
    return dist


def direction_field(state: MazeState, target: tuple[int, int]) -> Int[np.ndarray, "row col"]:
    """For every open cell, the direction index (0..3) of the first step of its path to ``target``.

    One BFS from the target; a cell's direction points at the neighbour one step closer (ties, only
    possible after edits that make cycles, go to the first in left, down, up, right order). -1 on
    walls, on the target and on cells that cannot reach it.

    Example:
        >>> from hookdiff.maze import sample_mazes
        >>> s = sample_mazes("eval-decision-square", 1, seed=0)[0]
        >>> int(direction_field(s, s.cheese)[s.mouse])   # 3: right
        3
    """
    dist = distances(state, target)
    wd = state.world_dim
    # Distance of each cell's neighbour in each direction; -2 where off the grid or a wall.
    padded = np.full((wd + 2, wd + 2), -2, dtype=np.int64)
    padded[1:-1, 1:-1] = np.where(dist >= 0, dist, -2)
    field = np.full((wd, wd), -1, dtype=np.int64)
    for k in range(len(DIRECTION_STEPS) - 1, -1, -1):  # reversed, so lower indices win ties
        dr, dc = DIRECTION_STEPS[k]
        neigh = padded[1 + dr : 1 + dr + wd, 1 + dc : 1 + dc + wd]
        field = np.where((dist > 0) & (neigh == dist - 1), k, field)
    return field


def next_direction(state: MazeState, cell: tuple[int, int], target: tuple[int, int]) -> int:
    """The direction index (0 left, 1 down, 2 up, 3 right) that starts the path cell -> target.

    Returns -1 when ``cell == target`` or the target is unreachable.

    Raises:
        ValueError: ``cell`` or ``target`` is off the grid or a wall.
    """
    r, c = _check(state, cell, "cell")
    return int(direction_field(state, target)[r, c])


def shortest_path(
    state: MazeState, start: tuple[int, int], goal: tuple[int, int]
) -> list[tuple[int, int]] | None:
    """The shortest path ``[start, ..., goal]`` over open cells, or ``None`` if unreachable.

    Raises:
        ValueError: ``start`` or ``goal`` is off the grid or a wall.
    """
    sr, sc = _check(state, start, "start")
    field = direction_field(state, goal)
    path = [(sr, sc)]
    if (sr, sc) == tuple(goal):
        return path
    if field[sr, sc] < 0:
        return None
    r, c = sr, sc
    while (r, c) != (int(goal[0]), int(goal[1])):
        dr, dc = DIRECTION_STEPS[field[r, c]]
        r, c = r + dr, c + dc
        path.append((r, c))
    return path


def top_right_cell(state: MazeState) -> tuple[int, int]:
    """The inner maze's top-right cell: ``row = col = margin + maze_dim - 1`` (always open)."""
    t = state.margin + state.maze_dim - 1
    return t, t


def top_right_region(state: MazeState, size: int = 5) -> tuple[int, int, int, int]:
    """``(row_lo, row_hi, col_lo, col_hi)`` (inclusive) of the inner maze's top-right ``size``².

    Clipped to the inner maze, so a maze smaller than ``size`` is all top-right region.
    """
    top = state.margin + state.maze_dim - 1
    lo = max(state.margin, top - size + 1)
    return lo, top, lo, top


def decision_square(state: MazeState) -> tuple[int, int] | None:
    """The last cell shared by the paths from the start to the cheese and to the top-right cell.

    The start is the inner maze's bottom-left cell (where the mouse starts), whatever the mouse's
    current cell, as in the published definition. ``None`` when the maze has no cheese or the paths
    do not fork (one contains the other), or when the start or the top-right cell has been walled
    or cut off by edits.

    Example:
        >>> from hookdiff.maze import sample_mazes
        >>> decision_square(sample_mazes("eval-decision-square", 1, seed=0)[0])
        (12, 10)
    """
    cheese = state.cheese
    if cheese is None:
        return None
    start = start_cell(state)
    if state.grid[start] == WALL or state.grid[top_right_cell(state)] == WALL:
        return None
    to_cheese = shortest_path(state, start, cheese)
    to_corner = shortest_path(state, start, top_right_cell(state))
    if to_cheese is None or to_corner is None:
        return None
    shared = 0
    for a, b in zip(to_cheese, to_corner):
        if a != b:
            break
        shared += 1
    if shared == len(to_cheese) or shared == len(to_corner):
        return None  # one path contains the other: no fork
    return to_cheese[shared - 1]
