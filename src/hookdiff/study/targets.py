"""The steering vectors as data: one :class:`VectorSpec` per vector, read by every step.

A vector of the study is a contrast between two maze states (the ActAdd recipe: the activation
difference of a pair) plus what the study reads off it: the cell it steers toward, the
coefficient it was published to steer with, and the dataset variables that hold its target
readout and its rollout outcome. Every step loops over the selected specs
(:meth:`hookdiff.study.config.StudyConfig.vector_specs`) instead of naming the vectors, so a new
vector is one entry of :data:`VECTOR_SPECS`.

The rollout outcomes (reached the cheese, reached the top-right region) are not vectors: they
are what a rollout ends in, the same table whatever vectors steer it
(:data:`hookdiff.study.schema.REACH_TARGETS`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from hookdiff.maze.edit import (
    start_cell,
    top_right_corridor,
    with_cheese,
    with_mouse,
    with_walls,
    without_cheese,
)
from hookdiff.maze.paths import decision_square, distances, top_right_cell
from hookdiff.maze.state import MazeState

__all__ = [
    "ALL_VECTORS",
    "TARGET_CELLS",
    "DEFAULT_VECTORS",
    "VECTORS",
    "VECTOR_SPECS",
    "VectorSpec",
    "at_start",
    "moved_cheese_cell",
    "selected_specs",
    "vector_spec",
]

#: A maze pair builder: a maze (the mouse wherever it is) → ``(first, second)``, the two states
#: whose activation difference act(first) − act(second) is the vector. The mouse stays put.
PairBuilder = Callable[[MazeState], tuple[MazeState, MazeState]]


@dataclass(frozen=True)
class VectorSpec:
    """One steering vector of the study: how it is made and how its effect is read.

    Attributes:
        name: the ``vector`` coordinate value (``"cheese"``).
        label: the vector's name in a sentence (``"top-right"`` as in "the top-right vector").
        target: what it steers toward, in a sentence (``"the top-right cell"``).
        published_t: the coefficient it was published to steer with (its sign is the direction
            that works: −1 for the cheese vector, +1 for the top-right vector).
        target_var: the dataset variable of P(step toward the target) at the decision square
            (a key of :data:`TARGET_CELLS`).
        reach_var: the rollout outcome variable (reached the target); None where a rollout
            cannot reach it (the moved-cheese vector's cell holds no cheese to end on).
        swapped_base: the base of the base swap, in a sentence (the pair's other state).
        pair: the maze pair builder (:data:`PairBuilder`); the mouse is left where it is, so the
            same builder makes the published pairs (mouse at the start, :meth:`start_pair`) and
            the pairs on the decision square.
        target_cell: the cell the vector steers toward, of a maze: ``(row, col)``.
        maze_is_first: the maze itself is the pair's first state (else its second); the other
            state is the maze's paired real state (the base swap, :meth:`paired_state`).
        usable: whether the pair can be made from a maze (the two states differ).
        published: the vector and its ``published_t`` come from the published study (False: a
            vector of this package, whose ``published_t`` is only the sign expected to steer).
    """

    name: str
    label: str
    target: str
    published_t: float
    target_var: str
    reach_var: str | None
    swapped_base: str
    pair: PairBuilder
    target_cell: Callable[[MazeState], tuple[int, int]]
    maze_is_first: bool
    usable: Callable[[MazeState], bool]
    published: bool = True

    @property
    def loc_reach_var(self) -> str | None:
        """The cut rollouts' outcome variable (``loc_roll_`` + :attr:`reach_var`; None without
        one)."""
        return None if self.reach_var is None else f"loc_roll_{self.reach_var}"

    @property
    def direction(self) -> float:
        """The sign of :attr:`published_t`: +1 where the published effect raises P(toward the
        target), −1 where it lowers it (an effect times this is positive in that direction)."""
        return float(np.sign(self.published_t))

    def start_pair(self, state: MazeState) -> tuple[MazeState, MazeState]:
        """The published pair: :attr:`pair` with the mouse at the start cell."""
        return self.pair(at_start(state))

    def paired_state(self, state: MazeState) -> MazeState:
        """The maze's paired real state (the pair's other state), the mouse where it is."""
        first, second = self.pair(state)
        return second if self.maze_is_first else first


def at_start(state: MazeState) -> MazeState:
    """``state`` with the mouse on the start cell (``state`` itself when it is there)."""
    return state if state.mouse == start_cell(state) else with_mouse(state, start_cell(state))


# --------------------------------------------------------------------------------------------
# Pair builders and targets
# --------------------------------------------------------------------------------------------


def _cheese_pair(state: MazeState) -> tuple[MazeState, MazeState]:
    """The maze, and the maze without its cheese."""
    return state, without_cheese(state)


def _top_right_pair(state: MazeState) -> tuple[MazeState, MazeState]:
    """The maze with the top-right corridor open, and the maze."""
    return with_walls(state, top_right_corridor(state), wall=False), state


def moved_cheese_cell(state: MazeState) -> tuple[int, int] | None:
    """Where the cheese-location pair moves the cheese: the open cell reachable from the cheese
    that is farthest from it (BFS steps), never the start cell or the decision square (where the
    mouse sits in the study's observations); the first in row-major order on a tie. None where
    the maze has no cheese or no such cell. It depends on the maze alone (its seed), not on the
    mouse.

    Example:
        >>> from hookdiff.maze import sample_mazes
        >>> s = sample_mazes("eval-decision-square", 1, seed=0)[0]
        >>> moved_cheese_cell(s) != s.cheese
        True
    """
    if state.cheese is None:
        return None
    dist = distances(state, state.cheese)
    for cell in (start_cell(state), decision_square(state)):
        if cell is not None:
            dist[cell] = -1
    best = int(np.argmax(dist))
    if dist.flat[best] <= 0:
        return None
    row, col = np.unravel_index(best, dist.shape)
    return int(row), int(col)


def _cheese_location_pair(state: MazeState) -> tuple[MazeState, MazeState]:
    """The maze, and the maze with its cheese moved to :func:`moved_cheese_cell`."""
    cell = moved_cheese_cell(state)
    if cell is None:
        from hookdiff.errors import MazeEditError

        raise MazeEditError("no reachable cell to move the cheese to (cheese-location pair)")
    return state, with_cheese(state, cell)


def _moved_cheese_pair(state: MazeState) -> tuple[MazeState, MazeState]:
    """The maze with its cheese moved to :func:`moved_cheese_cell`, and the maze."""
    first, second = _cheese_location_pair(state)
    return second, first


def _moved_cell(state: MazeState) -> tuple[int, int]:
    """The cell the cheese is moved to (the moved-cheese vector's target)."""
    cell = moved_cheese_cell(state)
    if cell is None:
        raise ValueError(
            "the cheese cannot be moved in this maze: the moved-cheese vector has no target in it"
        )
    return cell


def _cheese_cell(state: MazeState) -> tuple[int, int]:
    """The cheese's cell (the cheese vectors' target)."""
    if state.cheese is None:
        raise ValueError("the maze has no cheese: the cheese vectors have no target in it")
    return state.cheese


def _has_cheese_off_start(state: MazeState) -> bool:
    """The maze has cheese, off the start cell (the cheese pair differs)."""
    return state.cheese is not None and state.cheese != start_cell(state)


def _has_corridor_room(state: MazeState) -> bool:
    """The maze leaves room for the top-right corridor (the top-right pair differs)."""
    return bool(top_right_corridor(state))


def _can_move_cheese(state: MazeState) -> bool:
    """The cheese is off the start and can be moved (the cheese-location pair differs)."""
    return _has_cheese_off_start(state) and moved_cheese_cell(state) is not None


# --------------------------------------------------------------------------------------------
# The built-in vectors
# --------------------------------------------------------------------------------------------

#: The built-in vectors, in the order of the ``vector`` coordinate.
VECTOR_SPECS: dict[str, VectorSpec] = {
    "cheese": VectorSpec(
        name="cheese",
        label="cheese",
        target="cheese",
        published_t=-1.0,
        target_var="p_toward_cheese",
        reach_var="reached_cheese",
        swapped_base="the maze without cheese",
        pair=_cheese_pair,
        target_cell=_cheese_cell,
        maze_is_first=True,
        usable=_has_cheese_off_start,
    ),
    "top_right": VectorSpec(
        name="top_right",
        label="top-right",
        target="the top-right cell",
        published_t=1.0,
        target_var="p_toward_top_right",
        reach_var="reached_top_right",
        swapped_base="the maze with the corridor",
        pair=_top_right_pair,
        target_cell=top_right_cell,
        maze_is_first=False,
        usable=_has_corridor_room,
    ),
    # Not a published vector: act(cheese at its own cell) − act(cheese moved away). Its
    # published_t = +1 is the sign expected to steer toward the original cheese cell, not a
    # published result.
    "cheese_location": VectorSpec(
        name="cheese_location",
        label="cheese-location",
        target="cheese",
        published_t=1.0,
        target_var="p_toward_cheese",
        reach_var="reached_cheese",
        swapped_base="the maze with the cheese moved",
        pair=_cheese_location_pair,
        target_cell=_cheese_cell,
        maze_is_first=True,
        usable=_can_move_cheese,
        published=False,
    ),
    # Not a published vector: the cheese-location pair the other way round, act(cheese moved)
    # − act(the maze), so the maze is the pair's *second* state (as for the top-right vector)
    # while the cheese-location vector's maze is its first (as for the cheese vector). Its
    # published_t = +1 is the sign expected to steer toward the moved cell.
    "moved_cheese": VectorSpec(
        name="moved_cheese",
        label="moved-cheese",
        target="the moved cheese's cell",
        published_t=1.0,
        target_var="p_toward_moved_cheese",
        reach_var=None,
        swapped_base="the maze with the cheese moved",
        pair=_moved_cheese_pair,
        target_cell=_moved_cell,
        maze_is_first=False,
        usable=_can_move_cheese,
        published=False,
    ),
}
#: The target readouts at the decision square (the dataset variables of P(step toward a
#: cell)) and the cell each reads, of a maze (None: the maze has no such cell). Every vector's
#: :attr:`VectorSpec.target_var` is one of them; the behaviour step records all of them under
#: every vector.
TARGET_CELLS: dict[str, Callable[[MazeState], tuple[int, int] | None]] = {
    "p_toward_cheese": lambda state: state.cheese,
    "p_toward_top_right": top_right_cell,
    "p_toward_moved_cheese": moved_cheese_cell,
}
#: Every built-in vector's name, in the order of the ``vector`` coordinate.
ALL_VECTORS = tuple(VECTOR_SPECS)
#: The vectors a study measures by default: the published two.
DEFAULT_VECTORS = ("cheese", "top_right")
#: The default study's ``vector`` coordinate (the published vectors; :data:`ALL_VECTORS` for
#: every built-in one).
VECTORS = DEFAULT_VECTORS


def vector_spec(name: str) -> VectorSpec:
    """The spec of the built-in vector ``name`` (an error naming the known ones otherwise)."""
    from hookdiff.errors import UnknownNameError, unknown_name_message

    if name not in VECTOR_SPECS:
        raise UnknownNameError(unknown_name_message("vector", name, ALL_VECTORS))
    return VECTOR_SPECS[name]


def selected_specs(names: Iterable[str] | None = None) -> tuple[VectorSpec, ...]:
    """The specs of ``names`` in the order of :data:`VECTOR_SPECS` (repeats dropped); ``"all"``
    selects every built-in vector, None the default ones.

    Raises:
        UnknownNameError: a name is not a built-in vector (the message names the known ones).

    Example:
        >>> [s.name for s in selected_specs(["top_right", "cheese"])]
        ['cheese', 'top_right']
    """
    wanted = list(DEFAULT_VECTORS if names is None else names)
    if "all" in wanted:
        return tuple(VECTOR_SPECS.values())
    for name in wanted:
        vector_spec(name)
    return tuple(spec for name, spec in VECTOR_SPECS.items() if name in wanted)
