"""Procgen maze envs loaded with given states, and batched observations of them.

Everything that touches procgen lives here: making vectorized envs (importing procgen without its
gym deprecation banner), reading and setting :class:`~hookdiff.maze.state.MazeState` s, generating
seeded levels, and rendering. Rendering is done by procgen itself (``set_state`` re-renders; the
next ``observe()`` returns the frame), so an observation is exactly what procgen shows for that
state. Many states are rendered with one ``set_state`` over a whole batch of envs and one
``observe()`` (optionally spreading the per-env deserialize + render work over threads). Note that
procgen's own ``set_state`` is a Python loop of one C call per env: batching saves env
construction and per-call overhead, not procgen's per-state work (~130 us per state here). Observations are ``uint8 (N, 64, 64, 3)``; image row 0 is the TOP of
the world (world row ``world_dim - 1``).
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from jaxtyping import UInt8

from hookdiff.errors import MazeEditError, MissingExtraError
from hookdiff.maze.state import _ENTITY_REFLECTED, CHEESE, WALL, MazeState

__all__ = [
    "MAX_BATCH",
    "make_env",
    "states_of",
    "set_states",
    "observe",
    "step",
    "generate_states",
    "level_states",
    "render",
    "observations_at_every_cell",
    "mouse_cells",
    "default_threads",
]

MAX_BATCH = 64
"""Envs per batch when hookdiff makes its own env for rendering."""


def _procgen() -> Any:
    """Import procgen with gym's deprecation banner (printed on stderr) swallowed.

    procgen, gym and gym3 come with the ``maze`` extra; without them this raises
    :class:`~hookdiff.errors.MissingExtraError` saying what to install.
    """
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import procgen
    except ImportError as e:
        raise MissingExtraError(
            "procgen maze envs need the maze extra (procgen, gym3, gym, numpy<2): "
            f"pip install 'hookdiff[maze]'  (import failed: {e})"
        ) from e
    return procgen


def default_threads() -> int:
    """Threads used to spread ``set_state`` over envs by default: 1.

    Procgen's ``set_state`` releases the GIL, so ``threads=k`` can run k deserialize+render jobs at
    once; on a 2-core machine shared with training it measured no faster (and sometimes slower,
    contending with procgen's own worker threads), so more threads are opt-in.
    """
    return 1


def make_env(
    num: int,
    *,
    distribution_mode: str = "hard",
    start_level: int = 0,
    num_levels: int = 0,
    rand_seed: int = 0,
    **kwargs: Any,
) -> Any:
    """A procgen ``ProcgenGym3Env`` of ``num`` maze envs.

    Args:
        num: number of envs.
        distribution_mode: ``"hard"`` (25x25 world) or ``"easy"`` (15x15).
        start_level, num_levels: procgen's level-seed range (``num_levels=0``: unbounded).
        rand_seed: seeds procgen's level draws (and so every auto-reset after an episode ends).
        **kwargs: passed to ``ProcgenGym3Env`` (e.g. ``num_threads``).

    Example:
        >>> env = make_env(8, rand_seed=1)
        >>> len(states_of(env))
        8
    """
    if num < 1:
        raise ValueError(f"num must be >= 1 envs, got {num}")
    procgen = _procgen()
    return procgen.ProcgenGym3Env(
        num=num,
        env_name="maze",
        distribution_mode=distribution_mode,
        start_level=start_level,
        num_levels=num_levels,
        rand_seed=rand_seed,
        **kwargs,
    )


def states_of(env: Any) -> list[MazeState]:
    """The current state of every env, parsed."""
    return [MazeState.from_bytes(b) for b in env.callmethod("get_state")]


def _set_raw(env: Any, raws: Sequence[bytes], threads: int) -> None:
    """``set_state`` envs ``0..len(raws)-1`` from already-validated bytes (the rest keep theirs),
    spread over ``threads`` threads."""
    env.observe()  # waits for any step still in flight before we overwrite the games
    n = len(raws)
    if threads <= 1 or n < 2 * threads:
        for i in range(n):
            env.call_c_func("set_state", i, raws[i], len(raws[i]))
        return

    def part(k: int) -> None:
        for i in range(k, n, threads):
            env.call_c_func("set_state", i, raws[i], len(raws[i]))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(part, range(threads)))


def set_states(
    env: Any, states: Sequence[MazeState | bytes], *, threads: int | None = None
) -> None:
    """Load one state into each env of ``env`` (procgen re-renders; ``observe()`` shows them).

    Args:
        env: a procgen maze env of ``len(states)`` envs.
        states: one :class:`MazeState` (or raw bytes, parsed and validated first) per env.
        threads: threads for the per-env work (default :func:`default_threads`).

    Raises:
        ValueError: the number of states differs from ``env.num``.
        MazeStateError: raw bytes that do not parse.
    """
    if len(states) != env.num:
        raise ValueError(f"set_states got {len(states)} states for an env of {env.num} envs")
    raws = [
        s.to_bytes() if isinstance(s, MazeState) else MazeState.from_bytes(s).to_bytes()
        for s in states
    ]
    _set_raw(env, raws, default_threads() if threads is None else threads)


def observe(env: Any) -> UInt8[np.ndarray, "env 64 64 3"]:
    """The current frames of every env: a fresh ``uint8 (env.num, 64, 64, 3)`` array."""
    return np.array(env.observe()[1]["rgb"], copy=True)


def step(
    env: Any, actions: Sequence[int] | np.ndarray
) -> tuple[UInt8[np.ndarray, "env 64 64 3"], np.ndarray, np.ndarray]:
    """Act once in every env; return ``(obs, reward, first)`` after the step.

    ``first[i]`` is true when env ``i``'s episode ended in this step and procgen reset it to a new
    level (so ``obs[i]`` already shows the new level).
    """
    a = np.asarray(actions, dtype=np.int32).reshape(env.num)
    env.act(a)
    rew, ob, first = env.observe()
    return np.array(ob["rgb"], copy=True), np.array(rew), np.array(first, dtype=bool)


def generate_states(n: int, *, seed: int, distribution_mode: str = "hard") -> list[MazeState]:
    """The start states of the procgen levels with level seeds ``seed, seed+1, ..., seed+n-1``.

    Each level comes from an env with ``start_level=k, num_levels=1, rand_seed=0``, so a level
    seed always gives identical bytes (the published "seeds 0..99" are these level seeds).

    Example:
        >>> [s.level_seed for s in generate_states(3, seed=10)]
        [10, 11, 12]
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return level_states(range(seed, seed + n), distribution_mode=distribution_mode)


def level_states(level_seeds: Sequence[int], *, distribution_mode: str = "hard") -> list[MazeState]:
    """The start state of the procgen level of each level seed (about 1 ms per level).

    Raises:
        ValueError: a level seed outside ``[0, 2**31 - 1)``.
    """
    out = []
    for k in level_seeds:
        k = int(k)
        if not 0 <= k < 2**31 - 1:
            raise ValueError(f"level seed {k} is outside procgen's range [0, 2**31 - 1)")
        env = make_env(1, distribution_mode=distribution_mode, start_level=k, num_levels=1)
        out.append(MazeState.from_bytes(env.callmethod("get_state")[0]))
        env.close()
    return out


def _render_raw(
    raws: Sequence[bytes], env: Any | None, threads: int | None, distribution_mode: str
) -> UInt8[np.ndarray, "batch 64 64 3"]:
    n = len(raws)
    if env is None:
        env = make_env(max(1, min(n, MAX_BATCH)), distribution_mode=distribution_mode)
    th = default_threads() if threads is None else threads
    b = env.num
    out = np.empty((n, 64, 64, 3), dtype=np.uint8)
    for i in range(0, n, b):
        chunk = raws[i : i + b]
        k = len(chunk)
        _set_raw(env, chunk, th)  # a short last batch sets only its first k envs
        out[i : i + k] = env.observe()[1]["rgb"][:k]
    return out


def render(
    states: Sequence[MazeState], env: Any | None = None, *, threads: int | None = None
) -> UInt8[np.ndarray, "batch 64 64 3"]:
    """Procgen's observation of each state, rendered in batches of the env's size.

    Args:
        states: the states to render.
        env: a maze env to render in (its envs are overwritten); default a new one of up to
            :data:`MAX_BATCH` envs.
        threads: threads for the per-env ``set_state`` work.

    Example:
        >>> obs = render(generate_states(2, seed=0))
        >>> obs.shape, obs.dtype
        ((2, 64, 64, 3), dtype('uint8'))
    """
    if not states:
        return np.empty((0, 64, 64, 3), dtype=np.uint8)
    raws = [s.to_bytes() for s in states]
    return _render_raw(raws, env, threads, states[0].distribution_mode)


def _mouse_variants(
    state: MazeState, cells: Sequence[tuple[int, int]], reflected: Sequence[bool] | None = None
) -> list[bytes]:
    """The state's bytes with the mouse on each cell (cells already validated), optionally with
    the mouse's facing (``is_reflected``) set per cell."""
    buf = bytearray(state.to_bytes())
    at = state._layout.mouse_offset  # package-internal fast path: patch bytes, skip re-parsing
    out = []
    for i, (r, c) in enumerate(cells):
        struct.pack_into("<ff", buf, at, c + 0.5, r + 0.5)
        if reflected is not None:
            struct.pack_into("<i", buf, at + _ENTITY_REFLECTED, int(bool(reflected[i])))
        out.append(bytes(buf))
    return out


def mouse_cells(state: MazeState) -> list[tuple[int, int]]:
    """Cells the mouse can stand on: open, not the cheese; row-major from row 0."""
    g = state.grid
    return [(int(r), int(c)) for r, c in np.argwhere((g != WALL) & (g != CHEESE))]


def observations_at_every_cell(
    state: MazeState,
    cells: Sequence[tuple[int, int]] | None = None,
    env: Any | None = None,
    *,
    threads: int | None = None,
) -> tuple[UInt8[np.ndarray, "cell 64 64 3"], list[tuple[int, int]]]:
    """Procgen's observation of ``state`` with the mouse on each cell, rendered batched.

    Args:
        state: the maze.
        cells: ``(row, col)`` cells for the mouse; default every open cell but the cheese's.
        env: a maze env to render in (overwritten); default a new one.
        threads: threads for the per-env ``set_state`` work.

    Returns:
        ``(obs, cells)``: ``obs[i]`` is the frame with the mouse on ``cells[i]``.

    Raises:
        MazeEditError: a cell is off the grid, a wall, or the cheese.

    Example:
        >>> obs, cells = observations_at_every_cell(generate_states(1, seed=0)[0])
    """
    if cells is None:
        cells = mouse_cells(state)
    else:
        wd = state.world_dim
        checked = []
        for cell in cells:
            r, c = int(cell[0]), int(cell[1])
            if not (0 <= r < wd and 0 <= c < wd):
                raise MazeEditError(f"mouse cell ({r}, {c}) is outside the {wd}x{wd} grid")
            if state.grid[r, c] in (WALL, CHEESE):
                what = "a wall" if state.grid[r, c] == WALL else "the cheese"
                raise MazeEditError(f"cannot put the mouse on ({r}, {c}): that cell is {what}")
            checked.append((r, c))
        cells = checked
    if not cells:
        return np.empty((0, 64, 64, 3), dtype=np.uint8), []
    obs = _render_raw(_mouse_variants(state, cells), env, threads, state.distribution_mode)
    return obs, list(cells)
