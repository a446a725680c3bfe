"""Later layers matched to a common effect, recomputed independently (shipped agent).

The study's ``matched_later`` runs in-process on 3 mazes with one later candidate; the
decision-square vectors are recomputed with ``run_with_cache`` on procgen renders, and the matched
coefficient, its effect and the later scan's exact even part with ``hookdiff.steer`` and plain
policy forwards, the readout computed separately (direction probabilities).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hookdiff import steer
from hookdiff.agent import directions, load_default, obs_to_tensor
from hookdiff.maze import (
    next_direction,
    render,
    top_right_cell,
    top_right_corridor,
    with_mouse,
    with_walls,
    without_cheese,
)
from hookdiff.study import quick_config
from hookdiff.study.inputs import later_candidates, study_mazes, study_vectors
from hookdiff.study.later import VECTOR_ORIGINS
from hookdiff.study.measure import matched_later

HOOK = "embedder.block2.res1.resadd_out"
LATER = "embedder.block3.res2.resadd_out"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup():
    policy = load_default()
    config = dataclasses.replace(
        quick_config(), n_mazes=3, later_candidates=(HOOK, LATER), later_match_steps=8
    )
    mazes = study_mazes(config)
    vectors = study_vectors(policy, config, mazes.states, [HOOK, *later_candidates(policy, config)])
    return policy, config, mazes, vectors, matched_later(policy, mazes, vectors, config)


def _placed(mazes):
    return [with_mouse(s, d) for s, d in zip(mazes.states, mazes.squares)]


def _p(policy, hook, states, vs, t, name):
    """P(step toward the target) per maze, t·v_i added at ``hook`` (plain forwards, one maze each)."""
    out = []
    for state, v in zip(states, vs):
        goal = state.cheese if name == "cheese" else top_right_cell(state)
        d = next_direction(state, state.mouse, goal)
        with torch.no_grad(), steer(policy, hook, v, t):
            out.append(float(directions(policy(obs_to_tensor(render([state]))))[0, d]))
    return np.array(out)


def _ds_vectors(policy, mazes, hook, name):
    """Each maze's vector from its pair with the mouse on the decision square (run_with_cache)."""
    out = []
    for s in _placed(mazes):
        if name == "cheese":
            first, second = s, without_cheese(s)
        else:
            first, second = with_walls(s, top_right_corridor(s), wall=False), s
        _, cache = policy.run_with_cache(obs_to_tensor(render([first, second])))
        out.append(cache[hook][0] - cache[hook][1])
    return out


def _origin_vectors(own: dict[str, list], origin: str) -> list:
    """The vectors of ``origin``: a position's own per-maze vectors, or for
    ``<position>_leave_one_out`` each maze's mean of the other mazes' (summed by hand)."""
    if origin in own:
        return own[origin]
    rows = own[origin.removesuffix("_leave_one_out")]
    return [
        sum(r for j, r in enumerate(rows) if j != i) / (len(rows) - 1) for i in range(len(rows))
    ]


def test_matched_t_reaches_the_steering_layers_effect_and_not_before(setup):
    policy, config, mazes, vectors, ds = setup
    placed = _placed(mazes)
    precision = config.later_max_t / 16 / 2**config.later_match_steps
    checked = 0
    for name, sign, direction in (("cheese", -1.0, -1.0), ("top_right", 1.0, 1.0)):
        start = list(vectors.applied(HOOK)[name])
        p0 = _p(policy, HOOK, placed, start, 0.0, name)
        goal = np.mean(np.abs(_p(policy, HOOK, placed, start, sign, name) - p0))
        assert float(ds["matched_goal"].sel(vector=name)) == pytest.approx(goal, rel=1e-4)
        own = {
            "start": list(vectors.applied(LATER)[name]),
            "decision_square": _ds_vectors(policy, mazes, LATER, name),
        }
        for pos in VECTOR_ORIGINS:
            t = float(ds["matched_t"].sel(matched_layer=LATER, pair_position=pos, vector=name))
            if not np.isfinite(t):
                continue
            vs = _origin_vectors(own, pos)
            q0 = _p(policy, LATER, placed, vs, 0.0, name)
            at = _p(policy, LATER, placed, vs, t, name)
            assert np.mean(np.abs(at - q0)) >= goal * (1 - 1e-4)  # reached at t
            before = _p(policy, LATER, placed, vs, t - sign * precision, name)
            assert np.mean(np.abs(before - q0)) < goal * (1 + 1e-4)  # not just before it
            got = ds["matched_effect"].sel(matched_layer=LATER, pair_position=pos, vector=name)
            np.testing.assert_allclose(got.values, direction * (at - q0), atol=2e-5)
            checked += 1
        # at the steering layer with the published pairs the goal is met by t = ±1 itself
        t = float(ds["matched_t"].sel(matched_layer=HOOK, pair_position="start", vector=name))
        assert np.sign(t) == sign and abs(t) <= 1.0 + precision
    assert checked >= 1


def test_decision_square_vectors_and_the_later_scan_recomputed(setup):
    policy, config, mazes, vectors, ds = setup
    from hookdiff.study.inputs import decision_square_vectors

    got = decision_square_vectors(policy, mazes, [LATER])[LATER]
    for name in ("cheese", "top_right"):
        want = _ds_vectors(policy, mazes, LATER, name)
        torch.testing.assert_close(got[name], torch.stack(want), atol=1e-5, rtol=1e-5)
    for name in ("cheese", "top_right"):
        layer = str(ds["later_scan_layer"].sel(vector=name).values)
        if not layer:
            assert ds["later_even"].sel(vector=name).isnull().all()
            continue
        pos = str(ds["later_scan_position"].sel(vector=name).values)
        t = float(ds["later_scan_t"].sel(vector=name))
        i = 0
        own = {"start": list(vectors.applied(layer)[name]), "decision_square": list(got[name])}
        v = _origin_vectors(own, pos)[i]
        r = {s: _p(policy, layer, _placed(mazes)[i : i + 1], [v], s, name)[0] for s in (-t, 0, t)}
        e = ds["later_even"].sel(vector=name, readout="p", maze=i)
        assert float(e) == pytest.approx(r[t] + r[-t] - 2 * r[0], abs=2e-5)
        assert str(ds["later_even_cut"]["later_cut"].values[-1]) == "fc_policy_out"
