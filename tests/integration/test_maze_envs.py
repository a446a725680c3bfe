"""Envs, observations, edits and maze sets against real procgen: pixel-exact observations,
edited states rendered where expected, direction conventions checked by stepping, specs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hookdiff
from hookdiff.errors import MazeEditError
from hookdiff.maze import (
    DIRECTION_ACTIONS,
    DIRECTION_STEPS,
    EMPTY,
    WALL,
    MazeState,
    cheese_pair,
    decision_square,
    direction_field,
    expert_batch,
    generate_states,
    in_top_right,
    list_specs,
    load_spec,
    make_env,
    mouse_cells,
    next_direction,
    observations_at_every_cell,
    observe,
    render,
    sample_mazes,
    set_states,
    shortest_path,
    states_of,
    step,
    top_right_cell,
    top_right_corridor,
    top_right_pair,
    with_cheese,
    with_mouse,
    without_cheese,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big() -> MazeState:
    return generate_states(1, seed=17)[0]  # maze_dim 25


@pytest.fixture(scope="module")
def mazes() -> list[MazeState]:
    return generate_states(24, seed=200)


def _cells_changed(a: np.ndarray, b: np.ndarray, wd: int) -> set[tuple[int, int]]:
    k = 64 / wd
    return {(wd - 1 - int(i // k), int(j // k)) for i, j in np.argwhere((a != b).any(-1))}


def _near(cells, expected) -> bool:
    return all(any(abs(r - er) <= 1 and abs(c - ec) <= 1 for er, ec in expected) for r, c in cells)


def test_generate_states_is_seeded() -> None:
    a = generate_states(5, seed=3)
    assert [s.level_seed for s in a] == [3, 4, 5, 6, 7]
    assert [s.to_bytes() for s in a] == [s.to_bytes() for s in generate_states(5, seed=3)]
    assert all(
        s.distribution_mode == "easy" for s in generate_states(2, seed=0, distribution_mode="easy")
    )


def test_every_cell_observations_are_pixel_exact(big: MazeState) -> None:
    obs, cells = observations_at_every_cell(big)
    assert obs.dtype == np.uint8 and obs.shape == (len(cells), 64, 64, 3)
    assert set(cells) == set(mouse_cells(big)) and big.cheese not in cells
    assert len(cells) == int((big.grid == EMPTY).sum())
    # single-threaded, in a differently sized env: identical frames
    obs1, _ = observations_at_every_cell(big, cells, env=make_env(7), threads=1)
    assert np.array_equal(obs, obs1)
    # one fresh env per position, set to the edited state: identical frames
    env = make_env(1)
    for i in range(0, len(cells), 23):
        set_states(env, [with_mouse(big, cells[i])])
        assert np.array_equal(observe(env)[0], obs[i])


def test_stepping_matches_directions_and_frames(mazes: list[MazeState]) -> None:
    """Follow next_direction with procgen's actions (1 left, 3 down, 5 up, 7 right): the mouse moves
    one cell the expected way, the frame equals our render of the edited start state (with the
    sprite's facing carried over), and the path ends on the cheese with reward 10."""
    env = make_env(1)
    for s in mazes[:6]:
        set_states(env, [s])
        cell, target = s.mouse, s.cheese
        path = shortest_path(s, cell, target)
        for nxt in path[1:]:
            d = next_direction(s, cell, target)
            assert (cell[0] + DIRECTION_STEPS[d][0], cell[1] + DIRECTION_STEPS[d][1]) == nxt
            obs, rew, first = step(env, [DIRECTION_ACTIONS[d]])
            cell = nxt
            if cell == target:
                assert rew[0] == 10 and first[0]
                break
            now = states_of(env)[0]
            assert now.mouse == cell and not first[0]
            assert np.array_equal(render([now])[0], obs[0])
            mine = with_mouse(s, cell, reflected=now.mouse_reflected)
            assert np.array_equal(render([mine])[0], obs[0])


def test_direction_field_agrees_with_paths(mazes: list[MazeState]) -> None:
    for s in mazes[:8]:
        for target in (s.cheese, top_right_cell(s)):
            field = direction_field(s, target)
            for cell in mouse_cells(s)[::3]:
                path = shortest_path(s, cell, target)
                if len(path) == 1:
                    assert field[cell] == -1
                    continue
                dr, dc = DIRECTION_STEPS[field[cell]]
                assert (cell[0] + dr, cell[1] + dc) == path[1]
            assert (field[s.grid == WALL] == -1).all()


def test_edited_states_render_as_expected(mazes: list[MazeState]) -> None:
    env = make_env(8)
    checked = 0
    for s in mazes:
        if s.maze_dim < 9 or s.maze_dim == 25:
            continue
        wd = s.world_dim
        dest = max(mouse_cells(s), key=lambda c: (c[0], -c[1]))  # top-most, left-most
        moved_cheese = with_cheese(s, dest)
        moved_mouse = with_mouse(s, dest)
        with_path, without_path = top_right_pair(s)
        base, mc, mm, wp, wop = render([s, moved_cheese, moved_mouse, with_path, without_path], env)
        cells = _cells_changed(base, mc, wd)
        assert {s.cheese, dest} <= cells and _near(cells, [s.cheese, dest])
        cells = _cells_changed(base, mm, wd)
        assert {s.mouse, dest} <= cells and _near(cells, [s.mouse, dest])
        corridor = top_right_corridor(s)
        cells = _cells_changed(wp, wop, wd)
        assert set(corridor) <= cells and _near(cells, corridor)
        assert np.array_equal(wop, base)  # the mouse is already at the start
        # the corridor is walkable: the world's top-right corner is reachable
        assert shortest_path(with_path, top_right_cell(s), (wd - 1, wd - 1)) is not None
        checked += 1
    assert checked >= 3


def test_cheese_pair_renders_the_difference(mazes: list[MazeState]) -> None:
    s = mazes[0]
    w, wo = cheese_pair(with_mouse(s, mouse_cells(s)[-1]))
    a, b = render([w, wo])
    assert _cells_changed(a, b, s.world_dim) <= {
        (s.cheese[0] + dr, s.cheese[1] + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
    }
    assert w.mouse == wo.mouse == (s.margin, s.margin)


def test_observation_cell_errors(big: MazeState) -> None:
    with pytest.raises(MazeEditError, match="wall"):
        observations_at_every_cell(big, [(0, 1)] if big.grid[0, 1] == WALL else [(1, 1)])
    with pytest.raises(MazeEditError, match="cheese"):
        observations_at_every_cell(big, [big.cheese])
    with pytest.raises(MazeEditError, match="outside"):
        observations_at_every_cell(big, [(25, 0)])


# ---------------------------------------------------------------- maze sets -----------------


def test_specs_are_shipped_from_one_source() -> None:
    top = sorted(p.name for p in (ROOT / "envs").glob("*.json"))
    pkg = Path(hookdiff.__file__).parent / "envs"
    assert sorted(p.name for p in pkg.glob("*.json")) == top
    for name in top:
        assert (pkg / name).read_bytes() == (ROOT / "envs" / name).read_bytes()
        spec = load_spec(name[:-5])
        assert spec.name == name[:-5] == json.loads((ROOT / "envs" / name).read_text())["name"]
    assert {"vanilla-hard", "train-top-right-5", "eval-decision-square"} <= set(list_specs())
    with pytest.raises(KeyError, match="vanilla-hard"):
        load_spec("no-such-spec")


def test_spec_validation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "cheese": "somewhere"}))
    with pytest.raises(ValueError, match="cheese"):
        load_spec(bad)
    bad.write_text(json.dumps({"name": "bad", "chese": "vanilla"}))
    with pytest.raises(ValueError, match="unknown keys"):
        load_spec(bad)


def test_train_spec_moves_the_cheese_top_right() -> None:
    spec = load_spec("train-top-right-5")
    mazes = sample_mazes(spec, 30, seed=1)
    assert [m.to_bytes() for m in mazes] == [m.to_bytes() for m in sample_mazes(spec, 30, seed=1)]
    assert len({m.level_seed for m in mazes}) == 30
    for m in mazes:
        assert in_top_right(m, m.cheese, 5) and m.cheese != m.mouse == (m.margin, m.margin)
        assert m.distribution_mode == "hard"
    other = sample_mazes(spec, 30, seed=2)
    assert not {m.level_seed for m in mazes} & {m.level_seed for m in other}


def test_eval_spec_has_decision_squares() -> None:
    mazes = sample_mazes("eval-decision-square", 12, seed=0)
    seeds = [m.level_seed for m in mazes]
    assert seeds == sorted(seeds) and seeds[0] >= 0
    for m in mazes:
        assert decision_square(m) is not None and not in_top_right(m, m.cheese, 5)
    # consecutive seeds: the qualifying levels among 0.. in order
    vanilla = sample_mazes("vanilla-hard", seeds[-1] + 1, seed=0)
    ok = [v.level_seed for v in vanilla if decision_square(v) and not in_top_right(v, v.cheese, 5)]
    assert ok == seeds


def test_expert_batch() -> None:
    b = expert_batch("train-top-right-5", 6, seed=4)
    m = len(b.labels)
    assert b.obs.shape == (m, 64, 64, 3) and b.obs.dtype == np.uint8
    assert b.maze.shape == (m,) and b.cells.shape == (m, 2)
    assert set(np.unique(b.labels)) <= {0, 1, 2, 3}
    assert m == sum(len(mouse_cells(s)) for s in b.mazes)
    for i, s in enumerate(b.mazes):
        field = direction_field(s, s.cheese)
        sel = b.maze == i
        assert np.array_equal(field[b.cells[sel, 0], b.cells[sel, 1]], b.labels[sel])
    # frames are procgen's frames of the labelled positions (facing drawn per sample)
    idx = np.arange(0, m, 37)
    states = []
    for j in idx:
        s, cell = b.mazes[b.maze[j]], tuple(b.cells[j])
        states += [with_mouse(s, cell, reflected=False), with_mouse(s, cell, reflected=True)]
    frames = render(states)
    for n, j in enumerate(idx):
        assert np.array_equal(b.obs[j], frames[2 * n]) or np.array_equal(
            b.obs[j], frames[2 * n + 1]
        )
    again = expert_batch("train-top-right-5", 6, seed=4)
    assert np.array_equal(again.obs, b.obs) and np.array_equal(again.labels, b.labels)
    start = expert_batch("train-top-right-5", 2, seed=4, facing="start", env=make_env(16))
    first = start.maze == 0
    s0 = start.mazes[0]
    cells0 = [tuple(c) for c in start.cells[first]]
    assert np.array_equal(start.obs[first], observations_at_every_cell(s0, cells0)[0])


def test_without_cheese_is_a_no_op_without_cheese(mazes: list[MazeState]) -> None:
    s = without_cheese(mazes[0])
    assert without_cheese(s) is s and decision_square(s) is None
