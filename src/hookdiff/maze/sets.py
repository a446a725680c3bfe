"""Declarative maze sets: JSON specs in ``envs/``, seeded generators, and expert-labelled batches.

A spec (``envs/<name>.json``) says which procgen mazes to draw and how to edit and filter them:
vanilla hard mazes, the agent's training distribution (cheese moved into the inner maze's
top-right n x n), or evaluation sets (mazes with a decision square and the cheese outside the
top-right n x n). :func:`sample_mazes` turns a spec and a seed into the same states every time.
:func:`expert_batch` renders every mouse position of freshly sampled mazes, labelled with the first
step of the shortest path to the cheese: the behaviour-cloning data the agent trains on.

Specs are read from the package's ``hookdiff/envs`` folder, which in the source tree is a symlink
to the top-level ``envs/`` folder (one source of truth, shipped as package data in a wheel).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Int, UInt8

from hookdiff.errors import ConfigError, UnknownMazeSpecError, unknown_name_message
from hookdiff.maze.edit import start_cell, with_cheese
from hookdiff.maze.envs import _mouse_variants, _render_raw, level_states, mouse_cells
from hookdiff.maze.paths import decision_square, direction_field, top_right_region
from hookdiff.maze.state import WALL, MazeState

__all__ = [
    "MazeSpec",
    "ExpertBatch",
    "list_specs",
    "load_spec",
    "sample_mazes",
    "expert_batch",
    "in_top_right",
]

_MAX_LEVEL = 2**31 - 1


@dataclass(frozen=True)
class MazeSpec:
    """A declarative set of mazes (one ``envs/<name>.json`` file)."""

    name: str
    """The spec's name (its file name without ``.json``)."""
    description: str = ""
    """What the set is for."""
    distribution_mode: str = "hard"
    """Procgen's distribution mode: ``"hard"`` (25x25 world) or ``"easy"`` (15x15)."""
    level_seeds: str = "random"
    """``"random"``: level seeds drawn from the sampling seed; ``"consecutive"``: seed, seed+1, ..."""
    cheese: str = "vanilla"
    """``"vanilla"``: keep procgen's cheese; ``"top_right"``: move it to a uniformly random open
    cell (not the start) of the inner maze's top-right ``cheese_region`` x ``cheese_region``."""
    cheese_region: int = 5
    """``n`` of the top-right n x n region used by ``cheese="top_right"``."""
    require_decision_square: bool = False
    """Keep only mazes whose paths to the cheese and to the top-right cell fork."""
    cheese_outside_top_right: int | None = None
    """If set to ``n``, keep only mazes whose cheese lies outside the inner top-right n x n."""
    min_maze_dim: int = 1
    """Keep only mazes with at least this inner size."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MazeSpec:
        """Build and validate a spec from its JSON object.

        Raises:
            ValueError: unknown keys or bad values, naming the key and what was expected.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"maze spec has unknown keys {unknown}; expected some of {sorted(known)}"
            )
        if "name" not in d:
            raise ValueError("maze spec needs a 'name'")
        spec = cls(**d)
        checks = [
            (spec.distribution_mode in ("hard", "easy"), "distribution_mode", "'hard' or 'easy'"),
            (
                spec.level_seeds in ("random", "consecutive"),
                "level_seeds",
                "'random' or 'consecutive'",
            ),
            (spec.cheese in ("vanilla", "top_right"), "cheese", "'vanilla' or 'top_right'"),
            (
                isinstance(spec.cheese_region, int) and spec.cheese_region >= 1,
                "cheese_region",
                "an int >= 1",
            ),
            (
                spec.cheese_outside_top_right is None
                or (
                    isinstance(spec.cheese_outside_top_right, int)
                    and spec.cheese_outside_top_right >= 1
                ),
                "cheese_outside_top_right",
                "null or an int >= 1",
            ),
            (
                isinstance(spec.require_decision_square, bool),
                "require_decision_square",
                "true or false",
            ),
            (isinstance(spec.min_maze_dim, int), "min_maze_dim", "an int"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ValueError(
                    f"maze spec {spec.name!r}: {key} = {getattr(spec, key)!r}, expected {expected}"
                )
        return spec


def _spec_dir() -> Any:
    return resources.files("hookdiff") / "envs"


def list_specs() -> list[str]:
    """Names of the specs shipped in ``envs/``."""
    return sorted(p.name[:-5] for p in _spec_dir().iterdir() if p.name.endswith(".json"))


def load_spec(name: str | Path) -> MazeSpec:
    """Load a spec by name (``"train-top-right-5"``) or from a path to a JSON file.

    Example:
        >>> load_spec("train-top-right-5").cheese
        'top_right'

    Raises:
        UnknownMazeSpecError: no spec of that name (a ``KeyError``; the message names the closest).
        ConfigError: the file is not a JSON object (a ``ValueError``).
    """
    path = Path(name)
    if path.suffix == ".json" and path.exists():
        text = path.read_text()
    else:
        res = _spec_dir() / f"{name}.json"
        if not res.is_file():
            message = unknown_name_message("maze spec in envs/", str(name), list_specs())
            raise UnknownMazeSpecError(message + " (or a path to a spec .json file)")
        text = res.read_text()
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"maze spec {str(name)!r} is not valid JSON: {e}") from e
    if not isinstance(d, dict):
        raise ConfigError(f"maze spec {str(name)!r} must be a JSON object")
    return MazeSpec.from_dict(d)


def in_top_right(state: MazeState, cell: tuple[int, int], n: int) -> bool:
    """Whether ``cell`` lies in the inner maze's top-right ``n x n`` region."""
    lo, hi, _, _ = top_right_region(state, n)
    return lo <= cell[0] <= hi and lo <= cell[1] <= hi


def _top_right_cells(state: MazeState, n: int) -> list[tuple[int, int]]:
    lo, hi, _, _ = top_right_region(state, n)
    start = start_cell(state)
    g = state.grid
    cells = range(lo, hi + 1)
    return [(r, c) for r in cells for c in cells if g[r, c] != WALL and (r, c) != start]


def _apply(spec: MazeSpec, state: MazeState, rng: np.random.Generator) -> MazeState | None:
    """Edit one candidate maze per the spec; ``None`` if the spec rejects it."""
    if state.maze_dim < spec.min_maze_dim:
        return None
    if spec.cheese == "top_right":
        cells = _top_right_cells(state, spec.cheese_region)
        if not cells:
            return None
        state = with_cheese(state, cells[int(rng.integers(len(cells)))])
    if state.cheese is None:
        return None
    n_out = spec.cheese_outside_top_right
    if n_out is not None and in_top_right(state, state.cheese, n_out):
        return None
    if spec.require_decision_square and decision_square(state) is None:
        return None
    return state


def sample_mazes(spec: MazeSpec | str, n: int, seed: int) -> list[MazeState]:
    """``n`` mazes of the spec, reproducibly: the same (spec, n, seed) gives identical bytes.

    With ``level_seeds="consecutive"`` the candidates are levels ``seed, seed+1, ...`` (so a
    filtered evaluation set is "the first n qualifying levels from seed"); with ``"random"`` they are
    drawn from ``numpy.random.default_rng(seed)``, so different seeds give (almost surely) disjoint
    mazes. Each maze's edits use a generator seeded by ``(seed, level_seed)``.

    Example:
        >>> mazes = sample_mazes("train-top-right-5", 4, seed=0)

    Raises:
        RuntimeError: the spec rejects too many candidates (over ``1000 * n`` tried).
    """
    if isinstance(spec, str):
        spec = load_spec(spec)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seeds_rng = np.random.default_rng(seed)
    out: list[MazeState] = []
    tried = 0
    nxt = int(seed)
    while len(out) < n:
        want = max(8, 2 * (n - len(out)))
        if spec.level_seeds == "consecutive":
            levels = list(range(nxt, min(nxt + want, _MAX_LEVEL)))
            nxt += len(levels)
        else:
            levels = [int(x) for x in seeds_rng.integers(0, _MAX_LEVEL, size=want)]
        if not levels:
            raise RuntimeError(f"ran out of level seeds below {_MAX_LEVEL} for spec {spec.name!r}")
        for st in level_states(levels, distribution_mode=spec.distribution_mode):
            rng = np.random.default_rng([int(seed), st.level_seed])
            edited = _apply(spec, st, rng)
            if edited is not None:
                out.append(edited)
                if len(out) == n:
                    break
        tried += len(levels)
        if len(out) < n and tried > 1000 * max(n, 1):
            raise RuntimeError(
                f"spec {spec.name!r} kept {len(out)} of {tried} candidate mazes; "
                f"cannot reach n={n}: loosen its filters"
            )
    return out


class ExpertBatch(NamedTuple):
    """Observations of every mouse position of some mazes, labelled by the shortest-path expert."""

    obs: UInt8[np.ndarray, "batch 64 64 3"]
    """Procgen's frame with the mouse on ``cells[i]`` of maze ``maze[i]``."""
    labels: Int[np.ndarray, " batch"]
    """First step of the shortest path to the cheese: 0 left, 1 down, 2 up, 3 right."""
    maze: Int[np.ndarray, " batch"]
    """Index into ``mazes`` of each sample."""
    cells: Int[np.ndarray, "batch 2"]
    """The mouse's ``(row, col)`` in each sample."""
    mazes: list[MazeState]
    """The sampled mazes (mouse at the start)."""


def expert_batch(
    spec: MazeSpec | str,
    n_mazes: int,
    seed: int,
    *,
    env: Any | None = None,
    facing: str = "random",
    threads: int | None = None,
) -> ExpertBatch:
    """Every open cell (but the cheese's) of ``n_mazes`` sampled mazes, with the mouse on it,
    rendered batched and labelled with the first step of the shortest path to the cheese.

    Args:
        spec: a :class:`MazeSpec` or a spec name.
        n_mazes: mazes to sample (about 100-300 samples each in hard mode).
        seed: sampling seed; the batch is reproducible from ``(spec, n_mazes, seed, facing)``.
        env: a maze env to render in (its states are overwritten); default a new 64-env one.
        facing: ``"random"``: the mouse's sprite facing (``is_reflected``; procgen mirrors it after
            moves right, so rollouts show both) drawn per sample; ``"start"``: as in the start state.
        threads: threads for the per-env ``set_state`` work.

    Example:
        >>> b = expert_batch("train-top-right-5", 2, seed=0)
        >>> b.obs.shape[0] == len(b.labels)
        True
    """
    if facing not in ("random", "start"):
        raise ValueError(f"facing must be 'random' or 'start', got {facing!r}")
    if isinstance(spec, str):
        spec = load_spec(spec)
    mazes = sample_mazes(spec, n_mazes, seed)
    rng = np.random.default_rng([int(seed), 0xFACE])
    raws: list[bytes] = []
    labels, index, cells_all = [], [], []
    for i, st in enumerate(mazes):
        cells = mouse_cells(st)
        field = direction_field(st, st.cheese)
        rows = np.array([c[0] for c in cells], dtype=np.int64)
        cols = np.array([c[1] for c in cells], dtype=np.int64)
        lab = field[rows, cols]
        keep = lab >= 0  # cells cut off from the cheese (only after wall edits) have no label
        cells = [c for c, k in zip(cells, keep) if k]
        refl = rng.integers(0, 2, size=len(cells)).astype(bool) if facing == "random" else None
        raws.extend(_mouse_variants(st, cells, refl))
        labels.append(lab[keep])
        index.append(np.full(len(cells), i, dtype=np.int64))
        cells_all.append(np.array(cells, dtype=np.int64).reshape(-1, 2))
    mode = spec.distribution_mode
    obs = (
        _render_raw(raws, env, threads, mode) if raws else np.empty((0, 64, 64, 3), dtype=np.uint8)
    )
    return ExpertBatch(
        obs=obs,
        labels=_cat(labels, (0,)),
        maze=_cat(index, (0,)),
        cells=_cat(cells_all, (0, 2)),
        mazes=mazes,
    )


def _cat(parts: list[np.ndarray], empty_shape: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(empty_shape, dtype=np.int64)
