"""Study numbers recomputed independently from lower-level calls (steer, forward, directions).

One tiny study (2 mazes, t in {−1, 0, 1}, no breakpoint walk) is computed in-process; its vector,
P(toward cheese) at the decision square, ‖diff‖ of the logits and a vector-field arrow are
recomputed for one maze and one t from procgen renders, ``run_with_cache``, ``hookdiff.steer``, a
plain policy forward and ``directions``. The default protocol steers each maze with its own
vectors; a second tiny study checks the ``pairs`` protocol (one mean vector for every maze).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hookdiff import steer
from hookdiff.agent import ImpalaPolicy, directions, obs_to_tensor, save_checkpoint
from hookdiff.maze import (
    cheese_pair,
    decision_square,
    level_states,
    next_direction,
    observations_at_every_cell,
    render,
    top_right_cell,
    top_right_pair,
    with_mouse,
)
from hookdiff.study import StudyConfig, quick_config, study_dataset
from hookdiff.study.figures import field_state

HOOK = "embedder.block2.res1.resadd_out"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny study of a seeded random-init agent given as a checkpoint (the study's own loading)."""
    torch.manual_seed(1234)
    policy = ImpalaPolicy(scale=1).eval()
    ckpt = save_checkpoint(policy, tmp_path_factory.mktemp("agent") / "random.pt")
    config = dataclasses.replace(
        quick_config(),
        checkpoint=str(ckpt),
        n_mazes=2,
        ts=(-1.0, 0.0, 1.0),
        later_candidates=(HOOK, "embedder.block3.res2.resadd_out"),
        breakpoints=False,
        rollout_mazes=1,
        rollout_ts=(-1.0, 0.0, 1.0),
        rollout_max_steps=4,
        field_mazes=1,
    )
    ds = study_dataset(config, progress=False)
    return config, ds, policy


def _vector(policy, pair, hook=HOOK):
    _, cache = policy.run_with_cache(obs_to_tensor(render(list(pair))))
    return cache[hook][0] - cache[hook][1]


def test_vectors_recomputed_from_the_recorded_maze(study):
    config, ds, policy = study
    assert ds.attrs["vectors_from"] == config.vectors_from == "same_maze"
    # each studied maze makes its own pair
    np.testing.assert_array_equal(ds["vector_level_seed"].values, ds["level_seed"].values)
    for i in range(ds.sizes["maze"]):
        (vmaze,) = level_states([int(ds["vector_level_seed"].values[i])])
        for name, pair in [("cheese", cheese_pair(vmaze)), ("top_right", top_right_pair(vmaze))]:
            v = _vector(policy, pair).reshape(-1).numpy()
            got = ds["vector_steering"].sel(vector=name).values[i]
            np.testing.assert_allclose(got, v, atol=1e-6)


def test_pairs_protocol_steers_every_maze_with_the_mean_vector(study):
    _, _, policy = study
    ckpt = study[0].checkpoint
    config = dataclasses.replace(
        study[0], checkpoint=ckpt, vectors_from="pairs", vector_pairs=2, rollout_mazes=0
    )
    ds = study_dataset(config, progress=False)
    seeds = ds["vector_level_seed"].values
    assert len(seeds) == 2 and not set(seeds) & set(ds["level_seed"].values)
    vmazes = level_states([int(x) for x in seeds])
    mean = torch.stack([_vector(policy, cheese_pair(m)) for m in vmazes]).mean(0)
    np.testing.assert_allclose(
        ds["vector_steering"].sel(vector="cheese").values.mean(0), mean.reshape(-1), atol=1e-6
    )
    for i in range(ds.sizes["maze"]):
        (maze,) = level_states([int(ds["level_seed"].values[i])])
        square = decision_square(maze)
        with torch.no_grad(), steer(policy, HOOK, mean, -1.0):
            p = directions(policy(obs_to_tensor(render([with_mouse(maze, square)]))))[0]
        got = ds["p_toward_cheese"].sel(site="steering", vector="cheese", t=-1.0, maze=i)
        assert float(got) == pytest.approx(
            float(p[next_direction(maze, square, maze.cheese)]), abs=1e-5
        )


def test_decision_square_probability_and_logit_diff_recomputed(study):
    config, ds, policy = study
    for i in range(ds.sizes["maze"]):  # every maze with its own vector, wherever its rows lie
        (maze,) = level_states([int(ds["level_seed"].values[i])])
        square = decision_square(maze)
        assert tuple(ds["decision_square"].values[i]) == square
        v = torch.from_numpy(ds["vector_steering"].sel(vector="cheese").values[i])
        _check_maze(ds, policy, maze, square, v.reshape(_shape(policy)), i)


def _check_maze(ds, policy, maze, square, v, i):
    """Maze i's probabilities at t = −1 and its diff norms at t = ±1, recomputed directly."""
    obs = obs_to_tensor(render([with_mouse(maze, square)]))
    with torch.no_grad():
        base = policy(obs)
        with steer(policy, HOOK, v, -1.0):
            steered = policy(obs)
        with steer(policy, HOOK, v, 1.0):
            plus = policy(obs)
    to_cheese = next_direction(maze, square, maze.cheese)
    to_corner = next_direction(maze, square, top_right_cell(maze))
    p = directions(steered)[0]
    sel = dict(site="steering", vector="cheese", t=-1.0, maze=i)
    assert float(ds["p_toward_cheese"].sel(**sel)) == pytest.approx(float(p[to_cheese]), abs=1e-5)
    assert float(ds["p_toward_top_right"].sel(**sel)) == pytest.approx(
        float(p[to_corner]), abs=1e-5
    )
    diff = ds["diff_norm"].sel(
        site="steering", vector="cheese", position="decision_square", maze=i, depth="fc_policy_out"
    )
    assert float(diff.sel(t=-1.0)) == pytest.approx(
        float((steered - base).norm()), rel=1e-4, abs=1e-5
    )
    assert float(diff.sel(t=1.0)) == pytest.approx(float((plus - base).norm()), rel=1e-4, abs=1e-5)


def _shape(policy):
    _, cache = policy.run_with_cache(torch.zeros(1, 3, 64, 64))
    return cache[HOOK].shape[1:]


def test_vector_field_arrow_recomputed(study):
    config, ds, policy = study
    state = field_state(ds, 0)
    cells = ds["field_cells"].values[0]
    k = int(np.flatnonzero(cells[:, 0] >= 0)[-1])
    cell = tuple(int(x) for x in cells[k])
    obs, _ = observations_at_every_cell(state, [cell])
    v = torch.from_numpy(ds["vector_steering"].sel(vector="top_right").values[0])
    with torch.no_grad(), steer(policy, HOOK, v.reshape(_shape(policy)), -1.0):
        p = directions(policy(obs_to_tensor(obs)))[0].double().numpy()
    got = ds["field_probs"].sel(vector="top_right", field_t=-1.0).values[0, k]
    np.testing.assert_allclose(got, p, atol=1e-5)


def test_rollout_baseline_is_shared_and_outcomes_are_exclusive(study):
    config, ds, _ = study
    r = ds[["reached_cheese", "reached_top_right", "timed_out"]].sel(site="steering", maze=0)
    total = r["reached_cheese"] + r["reached_top_right"] + r["timed_out"]
    assert np.allclose(total.values, 1.0)
    base = ds["rollout_steps"].sel(site="steering", t=0.0, maze=0).values
    assert (base[0] == base[1]).all()  # one t = 0 rollout serves both vectors (every episode)
    assert np.isnan(ds["rollout_steps"].sel(site="steering", maze=1).values).all()


def test_config_json_and_cli_overrides(tmp_path):
    from hookdiff.cli import build_parser, study_config

    path = tmp_path / "c.json"
    path.write_text('{"n_mazes": 5, "ts": [-1, 0, 1], "rollout_ts": [0], "field_ts": [0]}')
    parser = build_parser()
    args = parser.parse_args(["study", "--config", str(path), "--seed", "3", "--no-breakpoints"])
    c = study_config(args)
    assert (c.n_mazes, c.ts, c.seed, c.breakpoints) == (5, (-1.0, 0.0, 1.0), 3, False)
    quick = study_config(parser.parse_args(["study", "--quick", "--n-mazes", "2"]))
    assert quick.n_mazes == 2 and quick.rollout_max_steps == quick_config().rollout_max_steps
    with pytest.raises(ValueError, match="unknown keys"):
        StudyConfig.from_dict({"n_maze": 3})
    with pytest.raises(ValueError, match="rollout_ts"):
        StudyConfig.from_dict({"rollout_ts": [7.0]})


def test_pick_later_takes_the_latest_within_tolerance():
    from hookdiff.study import pick_later

    hooks = ["a", "b", "c", "d"]
    effect = np.array([[0.5, 0.5], [1.0, 0.6], [0.7, 0.8], [0.2, 0.1]])
    hook, scores = pick_later(hooks, effect, 0.1)
    assert hook == "c" and scores[2] == pytest.approx(0.75)  # 0.75 >= 0.8 - 0.08
    assert pick_later(hooks, effect, 0.0)[0] == "b"
