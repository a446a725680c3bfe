"""The study's behaviour numbers on the shipped agent go the published ways.

A small study of the shipped (trained) agent, with rollouts long enough that episodes end at the
cheese or the top-right region rather than all timing out. Each maze is steered by its own vectors
(the published batch protocol), so the directions are known: adding the top-right vector raises
P(toward the top-right) and top-right arrivals; subtracting the cheese vector lowers P(toward the
cheese) and cheese arrivals. The later-layer effect is recomputed with ``decision_square_probs``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff.agent import load_default
from hookdiff.maze import decision_square, level_states
from hookdiff.rollout import Steering, decision_square_probs
from hookdiff.study import StudyConfig, study_dataset
from hookdiff.vectors import STEERING_HOOK


@pytest.fixture(scope="module")
def study():
    config = StudyConfig(
        n_mazes=12,
        ts=(-1.0, 0.0, 1.0),
        later_candidates=(STEERING_HOOK,),
        breakpoints=False,
        rollout_mazes=12,
        rollout_ts=(-1.0, 0.0, 1.0),
        rollout_max_steps=60,
        field_mazes=0,
    )
    ds = study_dataset(config, progress=False)
    assert ds.attrs["agent"] == "shipped agent" and not ds.attrs["untrained"]
    return ds.sel(site="steering")


def _mean(ds, name, vector, t):
    return float(ds[name].sel(vector=vector, t=t).mean())


def test_top_right_vector_pulls_to_the_top_right(study):
    assert _mean(study, "p_toward_top_right", "top_right", 1.0) > (
        _mean(study, "p_toward_top_right", "top_right", -1.0) + 0.15
    )
    assert _mean(study, "reached_top_right", "top_right", 1.0) > (
        _mean(study, "reached_top_right", "top_right", -1.0) + 0.15
    )


def test_subtracting_the_cheese_vector_pushes_away_from_the_cheese(study):
    assert _mean(study, "p_toward_cheese", "cheese", -1.0) < (
        _mean(study, "p_toward_cheese", "cheese", 0.0) - 0.1
    )
    assert _mean(study, "reached_cheese", "cheese", -1.0) < _mean(
        study, "reached_cheese", "cheese", 1.0
    )


def test_rollout_outcomes_are_exclusive_and_not_all_timeouts(study):
    r = study[["reached_cheese", "reached_top_right", "timed_out"]]
    assert np.allclose((r["reached_cheese"] + r["reached_top_right"] + r["timed_out"]).values, 1)
    base = r.sel(vector="cheese", t=0.0)
    assert float(base["reached_cheese"].sum()) >= 1 and float(base["reached_top_right"].sum()) >= 1
    assert float(base["timed_out"].mean()) < 0.5
    np.testing.assert_array_equal(  # one unsteered rollout serves both vectors
        study["rollout_steps"].sel(vector="cheese", t=0.0),
        study["rollout_steps"].sel(vector="top_right", t=0.0),
    )


def test_candidate_effect_recomputed_from_the_saved_vectors(study):
    """Cheese at t = -1: mean drop of P(toward cheese); top-right at t = +1: mean rise."""
    policy = load_default()
    mazes = level_states([int(s) for s in study["level_seed"].values])
    assert [decision_square(m) for m in mazes] == [
        tuple(d) for d in study["decision_square"].values
    ]
    shape = policy.run_with_cache(torch.zeros(1, 3, 64, 64))[1][STEERING_HOOK].shape[1:]
    base = decision_square_probs(policy, mazes)
    effect = study["candidate_effect"].sel(candidate=STEERING_HOOK)
    for name, t, key, sign in [
        ("cheese", -1.0, "p_toward_cheese", -1.0),
        ("top_right", 1.0, "p_toward_top_right", 1.0),
    ]:
        v = torch.from_numpy(study["vector_steering"].sel(vector=name).values)
        v = v.reshape(len(mazes), *shape)
        steered = decision_square_probs(
            policy, mazes, steering=[Steering(STEERING_HOOK, v, t, per_env=True)]
        )
        want = sign * float((steered[key] - base[key]).mean())
        assert float(effect.sel(vector=name)) == pytest.approx(want, abs=1e-5)
        assert want > 0.05  # the published direction, on the trained agent


def test_each_rollout_env_gets_its_own_mazes_vector_and_its_groups_t():
    """The rollout's envs are the mazes repeated per (vector, t) group: env j is maze j % r of
    group j // r, and is steered by that maze's own vector at that group's t (0 for the other)."""
    from hookdiff.study.dataset import VECTORS
    from hookdiff.study.measure import _rollout_groups, _rollout_steering

    r, shape = 3, (4, 2, 2)
    vecs = {
        name: torch.randn((5, *shape), generator=torch.Generator().manual_seed(k))
        for k, name in enumerate(VECTORS)
    }
    groups = _rollout_groups((-1.0, 0.0, 2.0), len(VECTORS))
    steering = _rollout_steering(STEERING_HOOK, vecs, groups, r, per_maze=True)
    for vi, (s, name) in enumerate(zip(steering, VECTORS)):
        assert s.per_env and s.hook == STEERING_HOOK
        for j in range(len(groups) * r):
            group_vector, t = groups[j // r]
            assert torch.equal(s.vector[j], vecs[name][j % r]), (name, j)
            assert float(s.coeff[j]) == (t if group_vector == vi else 0.0), (name, j)


def test_episodes_are_seeded_per_maze_and_episode_the_same_in_every_condition(study):
    """Common random numbers: maze i's episode e has its own seed, so rolled out alone it
    repeats the study's batched t = 0 rollouts; the cut rollouts' t = 0 arm (logits
    symmetrised at coefficient 0) under the same seeds repeats them too, and the +t arm with
    the same seeds and t = 0 is the unsteered rollout again."""
    from hookdiff.rollout import rollout
    from hookdiff.study.cut_rollouts import cut_rollout, episode_seeds

    policy = load_default()
    k = study.sizes["episode"]
    assert k == StudyConfig().episodes_per_maze >= 4
    seed = StudyConfig().seeds()["rollout"]
    for i in (0, 7):
        state = level_states([int(study["level_seed"].values[i])])[0]
        seeds = episode_seeds(seed, state.level_seed, k)
        alone = rollout(policy, [state] * k, max_steps=60, seed=seeds)
        want = study["rollout_steps"].sel(vector="cheese", t=0.0, maze=i).values
        np.testing.assert_array_equal(alone["steps"].values, want)
        shape = policy.run_with_cache(torch.zeros(1, 3, 64, 64))[1][STEERING_HOOK].shape[1:]
        v = torch.from_numpy(study["vector_steering"].sel(vector="cheese").values[i])
        v = v.reshape(*shape)
        cut = cut_rollout(
            policy, state, STEERING_HOOK, [v], 0.0, "fc_policy_out", "symmetrize",
            max_steps=60, seed=seeds,
        )  # fmt: skip
        np.testing.assert_array_equal(cut["loc_roll_base_steps"][0], want)
        np.testing.assert_array_equal(cut["loc_roll_steps"][0, 0], want)  # +0·v: unsteered
    # episodes differ from each other (own seeds), so a maze's rate is more than one draw
    steps = study["rollout_steps"].sel(t=0.0, vector="cheese").values
    assert (steps != steps[:, :1]).any()


def test_the_cut_rollouts_of_several_mazes_in_one_batch_repeat_each_maze_alone(study):
    """Each env draws from its own seed, so batching the mazes of a cut changes nothing but the
    float rounding of the forward: the outcomes and step counts equal each maze's alone."""
    from hookdiff.study.cut_rollouts import cut_rollout, cut_rollouts_of, episode_seeds

    policy = load_default()
    shape = policy.run_with_cache(torch.zeros(1, 3, 64, 64))[1][STEERING_HOOK].shape[1:]
    picked = (0, 3, 7)
    states = level_states([int(study["level_seed"].values[i]) for i in picked])
    vecs = [
        [
            torch.from_numpy(study["vector_steering"].sel(vector=v).values[i]).reshape(*shape)
            for v in ("cheese", "top_right")
        ]
        for i in picked
    ]
    seeds = [episode_seeds(3, s.level_seed, 2) for s in states]
    args = (STEERING_HOOK, 1.0, "embedder.block3.res1.resadd_out", "symmetrize")
    together = cut_rollouts_of(policy, states, args[0], vecs, *args[1:], max_steps=40, seeds=seeds)
    for m, state in enumerate(states):
        alone = cut_rollout(policy, state, args[0], vecs[m], *args[1:], max_steps=40, seed=seeds[m])
        for name, x in alone.items():
            np.testing.assert_array_equal(together[name][..., m, :], x, err_msg=name)
    # the layout, against maze 2's envs built by hand in (vector, sign, episode) order
    from hookdiff.rollout import rollout

    arms = [(j, s, e) for j in range(2) for s in (1.0, -1.0) for e in range(2)]
    by_hand = Steering(
        args[0],
        torch.stack([vecs[2][j] for j, _, _ in arms]),
        [s for _, s, _ in arms],
        per_env=True,
        cut=args[2],
        variant=args[3],
    )
    one = rollout(
        policy, [states[2]] * len(arms), steering=[by_hand], max_steps=40,
        seed=[seeds[2][e] for _, _, e in arms],
    )  # fmt: skip
    want = one["steps"].values.astype(float).reshape(2, 2, 2)
    assert len(np.unique(want)) > 1  # the arms differ, so a wrong layout would show
    np.testing.assert_array_equal(together["loc_roll_steps"][:, :, 2, :], want)
