"""The maze harness: procgen maze states, edits, paths, envs/observations and maze sets.

``MazeState`` parses and validates procgen 0.10.7 state bytes; :mod:`~hookdiff.maze.edit` holds
pure edits and the maze pairs behind the cheese and top-right steering vectors;
:mod:`~hookdiff.maze.actions` the 15 actions as 5 directions; :mod:`~hookdiff.maze.paths`
shortest paths, the decision square and directions toward targets;
:mod:`~hookdiff.maze.envs` procgen envs loaded with states and batched observations;
:mod:`~hookdiff.maze.sets` declarative maze sets (``envs/*.json``) and expert-labelled batches.
Coordinates are always ``(row, col)`` in world cells, row 0 at the bottom. The plotting helper
lives in :mod:`hookdiff.maze.plot` (imported on use, so matplotlib is not loaded here).
"""

from hookdiff.maze.actions import (
    ACTION_DIRECTIONS,
    DIRECTION_ACTIONS,
    DIRECTION_NAMES,
    DIRECTION_STEPS,
    direction_log_probs,
    direction_probs,
)
from hookdiff.maze.edit import (
    cheese_pair,
    start_cell,
    top_right_corridor,
    top_right_pair,
    with_cheese,
    with_mouse,
    with_walls,
    without_cheese,
)
from hookdiff.maze.envs import (
    generate_states,
    level_states,
    make_env,
    mouse_cells,
    observations_at_every_cell,
    observe,
    render,
    set_states,
    states_of,
    step,
)
from hookdiff.maze.paths import (
    decision_square,
    direction_field,
    distances,
    next_direction,
    open_cells,
    shortest_path,
    top_right_cell,
    top_right_region,
)
from hookdiff.maze.sets import (
    ExpertBatch,
    MazeSpec,
    expert_batch,
    in_top_right,
    list_specs,
    load_spec,
    sample_mazes,
)
from hookdiff.maze.state import CHEESE, EMPTY, WALL, MazeState

__all__ = [
    "CHEESE",
    "DIRECTION_STEPS",
    "ACTION_DIRECTIONS",
    "direction_log_probs",
    "direction_probs",
    "DIRECTION_ACTIONS",
    "DIRECTION_NAMES",
    "EMPTY",
    "WALL",
    "ExpertBatch",
    "MazeSpec",
    "MazeState",
    "cheese_pair",
    "decision_square",
    "direction_field",
    "distances",
    "expert_batch",
    "generate_states",
    "in_top_right",
    "level_states",
    "list_specs",
    "load_spec",
    "make_env",
    "mouse_cells",
    "next_direction",
    "observations_at_every_cell",
    "observe",
    "open_cells",
    "render",
    "sample_mazes",
    "set_states",
    "shortest_path",
    "start_cell",
    "states_of",
    "step",
    "top_right_cell",
    "top_right_region",
    "top_right_corridor",
    "top_right_pair",
    "with_cheese",
    "with_mouse",
    "with_walls",
    "without_cheese",
]
