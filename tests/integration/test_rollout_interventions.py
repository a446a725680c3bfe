"""Intervened steering inside rollouts on the shipped agent and real procgen mazes.

Every rollout is greedy, so each step's move follows from that step's logits: the recorded path is
checked against logits recomputed independently, step by step, from the observations the rollout
saw (``on_step``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff import steer
from hookdiff.agent import directions, load_default, obs_to_tensor
from hookdiff.analysis import freezable, line_response
from hookdiff.errors import InterventionError
from hookdiff.maze import decision_square, render, sample_mazes, with_mouse
from hookdiff.maze.state import WALL
from hookdiff.rollout import Steering, advance, decision_square_probs, rollout
from hookdiff.testing import assert_no_hooks

HOOK = "embedder.block2.res1.resadd_out"
OUT = "fc_policy_out"
STEPS = 12

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def policy():
    return load_default()


@pytest.fixture(scope="module")
def mazes():
    return sample_mazes("eval-decision-square", 3, seed=0)


@pytest.fixture(scope="module")
def vector(policy, mazes):
    with torch.no_grad():
        _, cache = policy.run_with_cache(obs_to_tensor(render(mazes)))
    a = cache[HOOK]
    g = torch.Generator().manual_seed(0)
    return torch.randn(a.shape[1:], generator=g) * a.norm() / a.numel() ** 0.5


def _recorded_rollout(policy, states, steering):
    """A greedy rollout and, per step, ``(envs, observations, cells)`` it acted on."""
    seen = []
    ds = rollout(
        policy,
        states,
        steering=[steering],
        max_steps=STEPS,
        greedy=True,
        on_step=lambda envs, obs, cells: seen.append((envs, obs, cells)),
    )
    return ds, seen


def _check_moves(ds, seen, states, logits_of) -> None:
    """Each recorded step moved as the argmax of ``logits_of(envs, obs)`` says."""
    walls = np.stack([s.grid == WALL for s in states])
    assert len(seen) > 3
    for step, (envs, obs, cells) in enumerate(seen, start=1):
        action = torch.softmax(logits_of(envs, obs), dim=-1).argmax(-1).numpy()
        want = advance(cells, action, walls[envs])
        np.testing.assert_array_equal(ds.path.values[envs, step], want, err_msg=f"step {step}")


def test_symmetrized_rollout_equals_a_per_step_computation(policy, mazes, vector) -> None:
    states = list(mazes) * 2
    coeffs = torch.tensor([-2.0] * 3 + [2.0] * 3)
    s = Steering(HOOK, vector, coeffs, cut=OUT, variant="symmetrize")
    ds, seen = _recorded_rollout(policy, states, s)
    assert ds.attrs["steering_interventions"] == f"symmetrize@{OUT}"

    def logits_of(envs, obs):  # f(a) + ½[f(a + cv) − f(a − cv)] by plain steered forwards
        x, c = obs_to_tensor(obs), coeffs[envs]
        with torch.no_grad():
            with steer(policy, HOOK, vector, c):
                plus = policy(x)
            with steer(policy, HOOK, vector, -c):
                minus = policy(x)
            return policy(x) + 0.5 * (plus - minus)

    _check_moves(ds, seen, states, logits_of)
    exact = rollout(
        policy, states, steering=[Steering(HOOK, vector, coeffs)], max_steps=STEPS, greedy=True
    )
    assert (exact.path.values != ds.path.values).any()  # the intervention changed behaviour
    assert_no_hooks(policy)


def test_linearized_rollout_with_per_env_vectors_equals_line_response(
    policy, mazes, vector
) -> None:
    cut = "embedder.block3.res1.resadd_out"
    states = list(mazes) * 2
    vectors = torch.stack([vector * (1 + 0.5 * i) for i in range(len(states))])
    coeffs = torch.tensor([1.5, 1.5, -1.5, 3.0, 1.5, -1.5])  # repeated values share a forward
    s = Steering(HOOK, vectors, coeffs, per_env=True, cut=cut, variant="linearize")
    ds, seen = _recorded_rollout(policy, states, s)

    def logits_of(envs, obs):  # one env at a time, from a full cached forward
        _, cache = policy.run_with_cache(obs_to_tensor(obs))
        rows = []
        for i, e in enumerate(envs):
            r = line_response(
                policy,
                cache[HOOK][i : i + 1],
                HOOK,
                vectors[e],
                [float(coeffs[e])],
                depth=OUT,
                cut=cut,
                variant="linearize",
            )
            rows.append(torch.from_numpy(r.values[0, 0]))
        return torch.stack(rows)

    _check_moves(ds, seen, states, logits_of)


def test_exact_steering_is_the_plain_hook_path(policy, mazes, vector) -> None:
    states = list(mazes) * 2
    coeffs = torch.tensor([0.0] * 3 + [3.0] * 3)
    s = Steering(HOOK, vector, coeffs, cut=None, variant="exact", freeze=())
    assert not s.intervened
    ds, seen = _recorded_rollout(policy, states, s)

    def logits_of(envs, obs):
        with torch.no_grad(), steer(policy, HOOK, vector, coeffs[envs]):
            return policy(obs_to_tensor(obs))

    _check_moves(ds, seen, states, logits_of)
    plain = rollout(policy, list(mazes), max_steps=STEPS, greedy=True)
    np.testing.assert_array_equal(ds.path.values[:3], plain.path.values)


def test_freezing_every_layer_equals_linearizing_at_the_output(policy, mazes, vector) -> None:
    states = list(mazes) * 2
    coeffs = torch.tensor([-3.0] * 3 + [3.0] * 3)
    every = tuple(freezable(policy, HOOK, OUT))
    assert len(every) == 9
    frozen = rollout(
        policy,
        states,
        steering=[Steering(HOOK, vector, coeffs, freeze=every)],
        max_steps=STEPS,
        greedy=True,
    )
    linear = rollout(
        policy,
        states,
        max_steps=STEPS,
        greedy=True,
        steering=[Steering(HOOK, vector, coeffs, cut=OUT, variant="linearize")],
    )
    np.testing.assert_array_equal(frozen.path.values, linear.path.values)
    exact = rollout(
        policy, states, steering=[Steering(HOOK, vector, coeffs)], max_steps=STEPS, greedy=True
    )
    assert (exact.path.values != frozen.path.values).any()


@pytest.mark.parametrize("hook", [HOOK, "embedder.block2.res1.conv1_out"])  # 2nd: in a branch
def test_decision_square_probs_linearized_at_the_logits_is_the_jvp(
    policy, mazes, vector, hook
) -> None:
    states = list(mazes) * 2
    coeffs = torch.tensor([-2.0, 0.5, 1.0, 2.0, -2.0, 4.0])
    s = Steering(hook, vector, coeffs, cut=OUT, variant="linearize")
    ds = decision_square_probs(policy, states, steering=[s])
    plain = decision_square_probs(policy, states)
    obs = obs_to_tensor(render([with_mouse(m, decision_square(m)) for m in states]))
    with torch.no_grad():
        _, cache = policy.run_with_cache(obs)
    a = cache[hook]
    base, jv = torch.func.jvp(
        lambda x: policy.run_segment(x, hook, OUT, context=cache),
        (a,),
        (vector.expand_as(a).contiguous(),),
    )
    want = directions(base + coeffs[:, None] * jv).detach().numpy()
    np.testing.assert_allclose(ds.direction_probs.values, want, rtol=1e-4, atol=1e-5)
    assert np.abs(ds.direction_probs.values - plain.direction_probs.values).max() > 1e-2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(cut="embedder.block2.res2.conv1_out", variant="linearize"), "Valid cuts"),
        (dict(cut="embedder.block2.maxpool_out", variant="symmetrize"), "closest"),
        (dict(cut=OUT, variant="linear"), "variant"),
        (dict(variant="symmetrize"), "needs a cut"),
        (dict(cut=OUT), "takes no cut"),
        (dict(freeze=("embedder.block3.conv_out",)), "Freezable"),
    ],
)
def test_bad_interventions_are_refused_before_any_step(policy, mazes, vector, kwargs, match):
    s = Steering(HOOK, vector, 1.0, **kwargs)
    with pytest.raises(InterventionError, match=match):
        rollout(policy, list(mazes), steering=[s], max_steps=2)
    with pytest.raises(InterventionError, match=match):
        decision_square_probs(policy, list(mazes), steering=[s])


def test_an_intervened_steering_must_be_alone(policy, mazes, vector) -> None:
    both = [Steering(HOOK, vector, 1.0, cut=OUT, variant="linearize"), Steering(HOOK, vector)]
    with pytest.raises(InterventionError, match="only steering"):
        rollout(policy, list(mazes), steering=both, max_steps=2)
