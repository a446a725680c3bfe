"""Pure edits of a :class:`~hookdiff.maze.state.MazeState`, and the maze pairs steering vectors need.

Every function returns a new state and leaves its input untouched; an edit that would break the
maze's invariants (mouse on a wall or on the cheese, cheese on a wall or on the mouse, a cell off
the grid, two cheeses) raises :class:`~hookdiff.errors.MazeEditError` before any bytes change.
The pairs are the two mazes whose activation difference defines a steering vector: the cheese
vector (with/without cheese) and the top-right vector (with/without a corridor from the maze's
top-right cell to the world's top-right corner). Cells are ``(row, col)``, row 0 at the bottom.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hookdiff.errors import MazeEditError
from hookdiff.maze.state import CHEESE, EMPTY, WALL, MazeState, _check_cell

__all__ = [
    "with_cheese",
    "without_cheese",
    "with_mouse",
    "with_walls",
    "start_cell",
    "top_right_corridor",
    "cheese_pair",
    "top_right_pair",
]


def start_cell(state: MazeState) -> tuple[int, int]:
    """The mouse's start cell: the inner maze's bottom-left ``(margin, margin)``."""
    return state.margin, state.margin


def with_cheese(state: MazeState, cell: tuple[int, int]) -> MazeState:
    """Move the cheese to ``cell`` (placing it if the maze has none).

    Example:
        >>> from hookdiff.maze import sample_mazes
        >>> s = sample_mazes("eval-decision-square", 1, seed=0)[0]
        >>> with_cheese(s, (s.margin + 2, s.margin)).cheese
        (8, 6)

    Raises:
        MazeEditError: ``cell`` is off the grid, a wall, or the mouse's cell.
    """
    row, col = _check_cell(cell, state.world_dim, "cheese")
    if state.grid[row, col] == WALL:
        raise MazeEditError(f"cannot put the cheese on ({row}, {col}): that cell is a wall")
    if (row, col) == state.mouse:
        raise MazeEditError(
            f"cannot put the cheese on ({row}, {col}): the mouse is there "
            "(procgen would end the episode at once); move the mouse first"
        )
    g = np.array(state.grid)
    g[g == CHEESE] = EMPTY
    g[row, col] = CHEESE
    return state.replace(grid=g)


def without_cheese(state: MazeState) -> MazeState:
    """Remove the cheese (its cell becomes empty); a maze without cheese is returned unchanged."""
    if state.cheese is None:
        return state
    g = np.array(state.grid)
    g[g == CHEESE] = EMPTY
    return state.replace(grid=g)


def with_mouse(
    state: MazeState, cell: tuple[int, int], *, reflected: bool | None = None
) -> MazeState:
    """Put the mouse on ``cell`` (its entity's x, y = col + 0.5, row + 0.5).

    Args:
        state: the maze.
        cell: ``(row, col)`` of an open cell that does not hold the cheese.
        reflected: the mouse's facing (procgen mirrors it after a move right); ``None`` keeps it.

    Raises:
        MazeEditError: ``cell`` is off the grid, a wall, or the cheese's cell.
    """
    row, col = _check_cell(cell, state.world_dim, "mouse")
    if state.grid[row, col] == WALL:
        raise MazeEditError(f"cannot put the mouse on ({row}, {col}): that cell is a wall")
    if state.grid[row, col] == CHEESE:
        raise MazeEditError(
            f"cannot put the mouse on ({row}, {col}): the cheese is there "
            "(procgen would end the episode at once)"
        )
    return state.replace(mouse=(row, col), reflected=reflected)


def with_walls(state: MazeState, cells: Iterable[tuple[int, int]], wall: bool) -> MazeState:
    """Make every cell in ``cells`` a wall (``wall=True``) or open it (``wall=False``).

    Opening a cell that holds the cheese keeps the cheese.

    Raises:
        MazeEditError: a cell is off the grid, or a wall would cover the mouse or the cheese.
    """
    g = np.array(state.grid)
    for cell in cells:
        row, col = _check_cell(cell, state.world_dim, "wall")
        if wall:
            if (row, col) == state.mouse:
                raise MazeEditError(f"cannot wall ({row}, {col}): the mouse is there")
            if g[row, col] == CHEESE:
                raise MazeEditError(f"cannot wall ({row}, {col}): the cheese is there")
            g[row, col] = WALL
        elif g[row, col] == WALL:
            g[row, col] = EMPTY
    return state.replace(grid=g)


def top_right_corridor(state: MazeState) -> list[tuple[int, int]]:
    """The L-shaped corridor from the maze's top-right inner cell to the world's top-right corner.

    It runs up the inner top-right cell's column to the world's top row, then right along that row
    to ``(world_dim - 1, world_dim - 1)``. Returns the cells outside the maze, in order (empty when
    the maze fills the world).
    """
    top = state.margin + state.maze_dim - 1
    last = state.world_dim - 1
    up = [(r, top) for r in range(top + 1, last + 1)]
    right = [(last, c) for c in range(top + 1, last + 1)]
    return up + right


def cheese_pair(state: MazeState) -> tuple[MazeState, MazeState]:
    """The cheese-vector pair ``(with_cheese, without_cheese)``, mouse at the start in both.

    Raises:
        MazeEditError: the maze has no cheese, or the cheese is on the start cell.
    """
    if state.cheese is None:
        raise MazeEditError("cheese_pair needs a maze with cheese; this one has none")
    if state.cheese == start_cell(state):
        raise MazeEditError(f"the cheese sits on the start cell {state.cheese}; move it first")
    at_start = with_mouse(state, start_cell(state))
    return at_start, without_cheese(at_start)


def top_right_pair(state: MazeState) -> tuple[MazeState, MazeState]:
    """The top-right-vector pair ``(with_path, without_path)``, mouse at the start in both.

    ``with_path`` opens :func:`top_right_corridor`; the cheese is left where it is in both.

    Raises:
        MazeEditError: the maze fills the world (``maze_dim == world_dim``): there is no room for
            a corridor, so the two states would be identical.
    """
    corridor = top_right_corridor(state)
    if not corridor:
        raise MazeEditError(
            f"maze_dim == world_dim == {state.world_dim}: no margin to open a top-right corridor in"
        )
    base = state if state.mouse == start_cell(state) else with_mouse(state, start_cell(state))
    return with_walls(base, corridor, wall=False), base
