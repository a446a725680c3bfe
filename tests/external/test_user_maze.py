"""The maze agent as a user meets it: per-maze cheese vectors, rollouts, the analysis (real procgen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hookdiff
from hookdiff import errors
from hookdiff.agent import load_default, obs_to_tensor
from hookdiff.maze import render, sample_mazes
from hookdiff.rollout import Steering, decision_square_probs, rollout
from hookdiff.testing import assert_no_hooks
from hookdiff.vectors import STEERING_HOOK, cheese_vector


@pytest.fixture(scope="module")
def policy():
    return load_default().eval()


@pytest.fixture(scope="module")
def mazes():
    return sample_mazes("eval-decision-square", 3, seed=0)


@pytest.fixture(scope="module")
def per_maze(policy, mazes):
    return cheese_vector(policy, mazes, per_maze=True)


def test_per_maze_vectors_without_per_env_fail_before_the_first_step(policy, mazes, per_maze):
    assert per_maze.shape == (3, 32, 16, 16)
    with pytest.raises(errors.ShapeMismatchError, match=r"per_env=True"):
        rollout(policy, mazes, steering=[Steering(STEERING_HOOK, per_maze, -1.0)], max_steps=400)
    assert_no_hooks(policy)
    ds = rollout(
        policy,
        mazes,
        steering=[Steering(STEERING_HOOK, per_maze, -1.0, per_env=True)],
        max_steps=5,
        greedy=True,
    )
    assert ds.sizes["env"] == 3


def test_steering_coefficients_of_the_wrong_length(policy, mazes, per_maze):
    with pytest.raises(errors.ShapeMismatchError, match="2 coefficients for 3 envs") as err:
        decision_square_probs(
            policy, mazes, steering=[Steering(STEERING_HOOK, per_maze[0], [1, 2])]
        )
    assert isinstance(err.value, ValueError)
    with pytest.raises(errors.ShapeMismatchError, match="one number or one coefficient per env"):
        Steering(STEERING_HOOK, per_maze[0], [[1.0, 2.0]])


def test_sweep_and_nonlinearity_name_the_agents_output_alike(policy, mazes, per_maze):
    obs = obs_to_tensor(render(mazes[:2]))
    v = per_maze[0]
    ds = hookdiff.sweep(policy, obs, STEERING_HOOK, v, [-1.0, 1.0], capture="output")
    assert ds.output.dims == ("coeff", "batch", "action")
    with hookdiff.capture(policy, [STEERING_HOOK]) as acts:
        policy(obs)
    nl = hookdiff.nonlinearity(
        policy,
        acts[STEERING_HOOK][:1],
        STEERING_HOOK,
        v,
        [-0.05, 0.0, 0.05],
        depths=["fc_policy_out"],
    )
    assert nl.diff_logits.dims == ("sample", "t", "action")
    assert nl.attrs["breakpoints"] == 1  # the agent is piecewise linear: walked by default
    assert nl.n_pieces.attrs["long_name"] == "linear pieces"
    np.testing.assert_allclose(
        nl.diff_logits.sel(t=0.05).values[0],
        _steered(policy, obs[:1], v, 0.05) - policy(obs[:1]).detach().double().numpy()[0],
        rtol=1e-3,
        atol=1e-4,
    )


def _steered(policy, obs, v, t):
    """Independent: a plain torch forward hook on the hook point's module."""
    site = policy.hook_dict[STEERING_HOOK]
    handle = site.register_forward_hook(lambda m, i, o: o + t * v)
    try:
        with torch.no_grad():
            return policy(obs).double().numpy()[0]
    finally:
        handle.remove()
