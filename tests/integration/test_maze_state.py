"""MazeState against real procgen 0.10.7: byte-exact round trips over many levels, parsed cheese
and mouse against the rendered frames, and fuzzed bytes that must raise MazeStateError."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookdiff.errors import MazeStateError
from hookdiff.maze import (
    CHEESE,
    EMPTY,
    WALL,
    MazeState,
    generate_states,
    make_env,
    mouse_cells,
    render,
    set_states,
    states_of,
    with_mouse,
    without_cheese,
)

N_HARD, N_EASY = 300, 250


@pytest.fixture(scope="module")
def raw_levels() -> dict[str, list[bytes]]:
    out = {}
    for mode, n in (("hard", N_HARD), ("easy", N_EASY)):
        raws = []
        for k in range(n):
            env = make_env(1, distribution_mode=mode, start_level=1000 + k, num_levels=1)
            raws.append(env.callmethod("get_state")[0])
            env.close()
        out[mode] = raws
    return out


@pytest.fixture(scope="module")
def hard_state() -> MazeState:
    return generate_states(1, seed=17)[0]  # a 25x25 maze


def test_round_trip_is_byte_identical(raw_levels: dict[str, list[bytes]]) -> None:
    n = 0
    for mode, raws in raw_levels.items():
        wd = 25 if mode == "hard" else 15
        for k, raw in enumerate(raws):
            s = MazeState.from_bytes(raw)
            assert s.to_bytes() == raw
            assert s.distribution_mode == mode and s.world_dim == wd
            assert s.level_seed == 1000 + k
            assert s.maze_dim % 2 == 1 and 3 <= s.maze_dim <= wd
            assert s.mouse == (s.margin, s.margin)  # inner (0, 0)
            assert s.cheese is not None and s.cheese != s.mouse
            assert s.grid.shape == (wd, wd) and s.inner_grid.shape == (s.maze_dim,) * 2
            assert set(np.unique(s.grid)) <= {EMPTY, WALL, CHEESE}
            # inner cells with both coordinates even are open, both odd are walls
            inner = s.inner_grid
            assert (inner[::2, ::2] != WALL).all() and (inner[1::2, 1::2] == WALL).all()
            n += 1
    assert n >= 500
    # live envs (several per env, after set_state) round-trip too
    env = make_env(8, rand_seed=5)
    for raw in env.callmethod("get_state"):
        assert MazeState.from_bytes(raw).to_bytes() == raw


def _pixel_cells(changed: np.ndarray, wd: int) -> set[tuple[int, int]]:
    """World cells (row 0 at the bottom) under changed image pixels (image row 0 at the top)."""
    k = 64 / wd
    return {(wd - 1 - int(i // k), int(j // k)) for i, j in np.argwhere(changed)}


def _near(cells: set[tuple[int, int]], expected: list[tuple[int, int]]) -> bool:
    """Every changed cell is one of ``expected`` or touches it (sprites may bleed one pixel)."""
    return all(any(abs(r - er) <= 1 and abs(c - ec) <= 1 for er, ec in expected) for r, c in cells)


@pytest.mark.parametrize(("mode", "n"), [("hard", 80), ("easy", 40)])
def test_parsed_cheese_and_mouse_match_the_frame(raw_levels, mode: str, n: int) -> None:
    states = [MazeState.from_bytes(b) for b in raw_levels[mode][:n]]
    wd = states[0].world_dim
    k = 64 / wd
    env = make_env(min(n, 64), distribution_mode=mode)
    base = render(states, env)
    no_cheese = render([without_cheese(s) for s in states], env)
    # the mouse moved to the open cell farthest (in rows) from it, so row flips would show
    moved_to = [
        max(mouse_cells(s), key=lambda c, s=s: abs(c[0] - s.mouse[0]) + 0.01 * c[1]) for s in states
    ]
    moved = render([with_mouse(s, c) for s, c in zip(states, moved_to)], env)
    for s, b, nc, mv, dest in zip(states, base, no_cheese, moved, moved_to):
        # removing the cheese changes only pixels at the parsed cheese cell
        changed = (b != nc).any(-1)
        cells = _pixel_cells(changed, wd)
        assert s.cheese in cells and _near(cells, [s.cheese]), (s, cells)
        # the cheese's box (image row 0 = world top row) holds most of the change
        r, c = s.cheese
        top, left = (wd - 1 - r) * k, c * k
        box = changed[math.floor(top) : math.ceil(top + k), math.floor(left) : math.ceil(left + k)]
        assert box.sum() >= 0.5 * changed.sum()
        # moving the mouse changes pixels at the parsed mouse cell and its destination only
        cells = _pixel_cells((b != mv).any(-1), wd)
        assert s.mouse in cells and dest in cells and _near(cells, [s.mouse, dest]), (s, cells)


def test_frame_row_zero_is_the_world_top(hard_state: MazeState) -> None:
    """Opening a margin cell in the world's bottom-left changes the image's bottom-left pixels."""
    s = hard_state
    assert s.margin == 0
    g = np.array(s.grid)
    wall = next((r, c) for r in range(25) for c in range(25) if g[r, c] == WALL)
    g[wall] = EMPTY
    changed = (render([s])[0] != render([s.replace(grid=g)])[0]).any(-1)
    rows = np.argwhere(changed)[:, 0]
    assert rows.min() >= 64 - (wall[0] + 1) * 2.56 - 1
    assert rows.max() <= 64 - wall[0] * 2.56 + 1


# ---------------------------------------------------------------- fuzzing -------------------


def _length_fields(s: MazeState) -> list[int]:
    """Byte offsets of the length/count fields of a state (strings, entities, grid, world_dim)."""
    b = s.to_bytes()
    (l1,) = struct.unpack_from("<i", b, 84)
    (l2,) = struct.unpack_from("<i", b, 92 + l1)
    mouse = 164 + l1 + l2
    rng3 = mouse + 124 + 76
    (l3,) = struct.unpack_from("<i", b, rng3 + 4)
    grid_w = rng3 + 8 + l3 + 12 + 24
    return [4, 84, 92 + l1, mouse - 4, rng3 + 4, grid_w, grid_w + 4, grid_w + 8, len(b) - 8]


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(data=st.data())
def test_fuzz_truncation(hard_state: MazeState, data) -> None:
    b = hard_state.to_bytes()
    k = data.draw(st.integers(0, len(b) - 1))
    with pytest.raises(MazeStateError) as e:
        MazeState.from_bytes(b[:k])
    assert e.value.field and e.value.offset is not None and e.value.offset <= len(b)


@FUZZ
@given(data=st.data())
def test_fuzz_bit_flips_in_length_fields(hard_state: MazeState, data) -> None:
    b = bytearray(hard_state.to_bytes())
    at = data.draw(st.sampled_from(_length_fields(hard_state)))
    bit = data.draw(st.integers(0, 31))
    (v,) = struct.unpack_from("<I", b, at)
    struct.pack_into("<I", b, at, v ^ (1 << bit))
    with pytest.raises(MazeStateError):
        MazeState.from_bytes(bytes(b))


@FUZZ
@given(data=st.data())
def test_fuzz_wrong_values(hard_state: MazeState, data) -> None:
    s = hard_state
    b = bytearray(s.to_bytes())
    fields = _length_fields(s)
    kind = data.draw(st.sampled_from(["trailer", "entities", "count", "cell", "cheese", "mouse"]))
    grid_at = fields[5] + 12
    if kind == "trailer":
        v = data.draw(st.integers(0, 2**32 - 1).filter(lambda x: x != 0xCAFECAFE))
        struct.pack_into("<I", b, len(b) - 4, v)
    elif kind == "entities":
        v = data.draw(st.integers(-(2**31), 2**31 - 1).filter(lambda x: x != 1))
        struct.pack_into("<i", b, fields[3], v)
    elif kind == "count":
        v = data.draw(st.integers(-(2**31), 2**31 - 1).filter(lambda x: x != 625))
        struct.pack_into("<i", b, fields[7], v)
    elif kind == "cell":
        v = data.draw(st.integers(-(2**31), 2**31 - 1).filter(lambda x: x not in (2, 51, 100)))
        struct.pack_into("<i", b, grid_at + 4 * data.draw(st.integers(0, 624)), v)
    elif kind == "cheese":  # a second cheese
        free = [i for i, x in enumerate(s.grid.ravel()) if x == EMPTY]
        struct.pack_into("<i", b, grid_at + 4 * data.draw(st.sampled_from(free)), CHEESE)
    else:  # the mouse off the grid, on a wall, or not a number
        walls = [divmod(i, 25) for i, x in enumerate(s.grid.ravel()) if x == WALL]
        x, y = data.draw(
            st.one_of(
                st.sampled_from([(c + 0.5, r + 0.5) for r, c in walls]),
                st.tuples(st.floats(width=32), st.floats(width=32)).filter(
                    lambda p: not (0 <= p[0] < 25 and 0 <= p[1] < 25)
                ),
            )
        )
        struct.pack_into("<ff", b, fields[3] + 4, x, y)
    with pytest.raises(MazeStateError):
        MazeState.from_bytes(bytes(b))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_random_corruption_never_crashes(hard_state: MazeState, data) -> None:
    """Any byte overwrite, insertion or deletion either parses (and round-trips) or raises ours."""
    b = bytearray(hard_state.to_bytes())
    at = data.draw(st.integers(0, len(b) - 1))
    op = data.draw(st.sampled_from(["set", "insert", "delete"]))
    chunk = data.draw(st.binary(min_size=1, max_size=8))
    if op == "set":
        b[at : at + len(chunk)] = chunk
        del b[len(hard_state.to_bytes()) :]
    elif op == "insert":
        b[at:at] = chunk
    else:
        del b[at : at + len(chunk)]
    try:
        s = MazeState.from_bytes(bytes(b))
    except MazeStateError:
        return
    assert s.to_bytes() == bytes(b)


@settings(max_examples=100, deadline=None)
@given(b=st.binary(max_size=4096))
def test_fuzz_arbitrary_bytes(b: bytes) -> None:
    with pytest.raises(MazeStateError):
        MazeState.from_bytes(b)


def test_bad_bytes_never_reach_procgen(hard_state: MazeState) -> None:
    env = make_env(2)
    before = states_of(env)
    with pytest.raises(MazeStateError, match="trailer"):
        set_states(env, [hard_state.to_bytes(), hard_state.to_bytes()[:-4] + b"\0\0\0\0"])
    assert states_of(env) == before  # nothing was set
    with pytest.raises(ValueError, match="2 envs"):
        set_states(env, [hard_state])
