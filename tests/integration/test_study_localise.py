"""The localisation's numbers recomputed independently for one maze and one t (shipped agent).

The study's localise steps run in-process on 3 mazes at t ∈ {1}; points of the cut scan, the
knock-out, the exact even part, a control (another maze's vector), the base swap, the random-init
agent and the kink sums are recomputed from procgen renders, ``hookdiff.steer`` with a plain
policy forward, or one ``line_response`` call on one maze, with the readout computed separately
(direction probabilities, :func:`hookdiff.stats.log_odds`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

from hookdiff import steer
from hookdiff.agent import directions, load_default, obs_to_tensor
from hookdiff.analysis import line_response
from hookdiff.maze import (
    next_direction,
    render,
    top_right_cell,
    top_right_corridor,
    with_mouse,
    with_walls,
    without_cheese,
)
from hookdiff.stats import log_odds
from hookdiff.study import quick_config
from hookdiff.study.inputs import random_init_policy, study_mazes, study_vectors
from hookdiff.study.localise import (
    localise_controls,
    localise_kinks,
    localise_scan,
    matched_random,
)
from hookdiff.vectors import cheese_vector, top_right_vector

HOOK = "embedder.block2.res1.resadd_out"
T = 1.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup():
    policy = load_default()
    config = dataclasses.replace(
        quick_config(), n_mazes=3, localise_ts=(T,), breakpoint_mazes=1, max_pieces=256
    )
    mazes = study_mazes(config)
    vectors = study_vectors(policy, config, mazes.states, [HOOK])
    parts = {
        f.__name__: f(policy, mazes, vectors, config)
        for f in (localise_scan, localise_controls, localise_kinks)
    }
    return policy, config, mazes, vectors, parts


def _target(maze, square, name):
    goal = maze.cheese if name == "cheese" else top_right_cell(maze)
    return next_direction(maze, square, goal)


def _steered_p(policy, state, v, t, direction):
    """P(direction) of ``policy`` on ``state`` with t·v added at the hook (a plain forward)."""
    with torch.no_grad(), steer(policy, HOOK, v, t):
        return float(directions(policy(obs_to_tensor(render([state]))))[0, direction])


def _even(r):
    """E(T) from {t: r(t)}."""
    return r[T] + r[-T] - 2 * r[0.0]


def test_exact_even_part_and_another_mazes_vector_by_plain_forwards(setup):
    policy, config, mazes, vectors, parts = setup
    ds = parts["localise_controls"]
    own = vectors.applied(HOOK)["top_right"]
    i = 0
    maze, square = mazes.states[i], mazes.squares[i]
    d = _target(maze, square, "top_right")
    placed = with_mouse(maze, square)
    for control, v in (("vector", own[i]), ("other_maze", own[(i + 1) % 3])):
        r = {t: _steered_p(policy, placed, v, t, d) for t in (-T, 0.0, T)}
        sel = dict(control=control, vector="top_right", t_loc=T, maze=i)
        assert float(ds["loc_even"].sel(readout="p", **sel)) == pytest.approx(_even(r), abs=2e-5)
        assert float(ds["loc_odd"].sel(readout="p", **sel)) == pytest.approx(r[T] - r[-T], abs=2e-5)
        lo = {t: float(log_odds(p)) for t, p in r.items()}
        assert float(ds["loc_even"].sel(readout="logodds", **sel)) == pytest.approx(
            _even(lo), abs=1e-3
        )
    base = ds["loc_base"].sel(control="vector", vector="top_right", readout="p", maze=i)
    assert float(base) == pytest.approx(r[0.0], abs=1e-6)


def test_base_swap_adds_the_vector_to_the_paired_state(setup):
    policy, config, mazes, vectors, parts = setup
    ds = parts["localise_controls"]
    i = 1
    maze, square = mazes.states[i], mazes.squares[i]
    placed = with_mouse(maze, square)
    paired = {
        "cheese": without_cheese(placed),
        "top_right": with_walls(placed, top_right_corridor(maze), wall=False),
    }
    for name in ("cheese", "top_right"):
        make = cheese_vector if name == "cheese" else top_right_vector
        v = make(policy, [maze], HOOK)  # the maze's own vector, recomputed
        d = _target(maze, square, name)  # the readout target stays the real maze's
        r = {t: _steered_p(policy, paired[name], v, t, d) for t in (-T, 0.0, T)}
        sel = dict(control="base_swap", vector=name, readout="p", t_loc=T, maze=i)
        assert float(ds["loc_even"].sel(**sel)) == pytest.approx(_even(r), abs=2e-5)
        _, cache = policy.run_with_cache(obs_to_tensor(render([placed, paired[name]])))
        a, a_paired = cache[HOOK][0].double(), cache[HOOK][1].double()
        for sign, s in (("+t", 1.0), ("-t", -1.0)):
            want = (a + s * v.double() - a_paired).norm() / (a_paired - a).norm()
            got = ds["base_swap_distance"].sel(source="own", vector=name, sign=sign, maze=i)
            assert float(got) == pytest.approx(float(want), rel=1e-4, abs=1e-6)
        # the leave-one-out vector: the mean of every other maze's own vector, recomputed
        others = [make(policy, [m], HOOK).double() for j, m in enumerate(mazes.states) if j != i]
        loo = torch.stack(others).mean(dim=0)
        r = {t: _steered_p(policy, paired[name], loo.float(), t, d) for t in (-T, 0.0, T)}
        sel = dict(control="base_swap_leave_one_out", vector=name, readout="p", t_loc=T, maze=i)
        assert float(ds["loc_even"].sel(**sel)) == pytest.approx(_even(r), abs=2e-5)
        want = (a + loo - a_paired).norm() / (a_paired - a).norm()
        got = ds["base_swap_distance"].sel(source="leave_one_out", vector=name, sign="+t", maze=i)
        assert float(got) == pytest.approx(float(want), rel=1e-4, abs=1e-6)


def test_untrained_control_is_a_seeded_random_init_agent_with_its_own_vectors(setup):
    policy, config, mazes, vectors, parts = setup
    ds = parts["localise_controls"]
    untrained = random_init_policy(policy.scale, config.seeds()["untrained"])
    i = 2
    maze, square = mazes.states[i], mazes.squares[i]
    v = cheese_vector(untrained, [maze], HOOK)
    d = _target(maze, square, "cheese")
    r = {t: _steered_p(untrained, with_mouse(maze, square), v, t, d) for t in (-T, 0.0, T)}
    sel = dict(control="untrained", vector="cheese", readout="p", maze=i)
    assert float(ds["loc_base"].sel(**sel)) == pytest.approx(r[0.0], abs=1e-6)
    assert float(ds["loc_even"].sel(t_loc=T, **sel)) == pytest.approx(_even(r), abs=2e-5)


def test_random_control_matches_norm_and_support_and_is_seeded(setup):
    *_, parts = setup
    v = torch.zeros(2, 4, 3, 3)
    v[:, :, 1:, :2] = torch.randn(2, 4, 2, 2)
    r = matched_random(v, torch.Generator().manual_seed(0))
    torch.testing.assert_close(r.norm(dim=1), v.norm(dim=1))
    assert not torch.allclose(r, v) and (r[:, :, 0] == 0).all()
    torch.testing.assert_close(r, matched_random(v, torch.Generator().manual_seed(0)))
    even = parts["localise_controls"]["loc_even"]
    assert np.isfinite(even.sel(control="random").values).all()


def _one_maze(mazes, vectors, policy, i, name):
    from hookdiff.vectors import activations_from_obs

    a = activations_from_obs(policy, mazes.obs["decision_square"][i : i + 1], HOOK)
    return a, vectors.applied(HOOK)[name][i]


@pytest.mark.parametrize("variant", ["linearize", "symmetrize"])
def test_cut_scan_points_recomputed_with_one_line_response(setup, variant):
    policy, config, mazes, vectors, parts = setup
    cut = "embedder.block3.res1.resadd_out"
    i, name = 1, "cheese"
    a, v = _one_maze(mazes, vectors, policy, i, name)
    logits = line_response(
        policy, a, HOOK, v, [-T, 0.0, T], depth="fc_policy_out", cut=cut, variant=variant
    )
    d = _target(mazes.states[i], mazes.squares[i], name)
    p = directions(torch.from_numpy(logits.values[:, 0]).double())[:, d].numpy()
    got = parts["localise_scan"]["loc_even_cut"].sel(
        vector=name, variant=variant, cut=cut, t_loc=T, maze=i
    )
    assert float(got.sel(readout="p")) == pytest.approx(p[2] + p[0] - 2 * p[1], abs=1e-5)
    lo = log_odds(p)
    assert float(got.sel(readout="logodds")) == pytest.approx(lo[2] + lo[0] - 2 * lo[1], abs=1e-3)


def test_softmax_only_test_and_knockout_recomputed(setup):
    policy, config, mazes, vectors, parts = setup
    i, name = 0, "cheese"
    a, v = _one_maze(mazes, vectors, policy, i, name)
    d = _target(mazes.states[i], mazes.squares[i], name)
    exact = line_response(policy, a, HOOK, v, [-T, 0.0, T], depth="fc_policy_out").values[:, 0]
    sym = exact[1] + 0.5 * (exact - exact[::-1])  # logits symmetrised by hand
    p = directions(torch.from_numpy(sym).double())[:, d].numpy()
    scan = parts["localise_scan"]
    got = scan["loc_even_cut"].sel(
        vector=name, variant="symmetrize", cut="fc_policy_out", readout="p", t_loc=T, maze=i
    )
    assert float(got) == pytest.approx(p[2] + p[0] - 2 * p[1], abs=1e-5)
    layer = "embedder.block3.maxpool_out"
    frozen = line_response(policy, a, HOOK, v, [-T, 0.0, T], depth="directions", freeze=[layer])
    q = frozen.values[:, 0, d]
    got = scan["loc_even_knockout"].sel(
        vector=name, frozen_layer=layer, readout="p", t_loc=T, maze=i
    )
    assert float(got) == pytest.approx(q[2] + q[0] - 2 * q[1], abs=1e-5)
    assert set(scan["frozen_layer"].values) >= {layer, "embedder.relufc_out"}


def test_kink_sums_equal_the_direct_even_part_recomputed_in_float64(setup):
    policy, config, mazes, vectors, parts = setup
    ds = parts["localise_kinks"]
    assert ds.sizes["kink_maze"] == 1
    total = ds["kink_even"].sum("frozen_layer")
    np.testing.assert_allclose(total.values, ds["kink_even_total"].values, rtol=1e-9, atol=1e-12)
    by_channel = ds["kink_even_channel"]
    np.testing.assert_allclose(by_channel.sum("kink_channel"), ds["kink_even"], atol=1e-9)
    counts = by_channel.count("kink_channel").sel(vector="cheese", t_loc=T, kink_maze=0)
    assert counts.sel(frozen_layer="embedder.relufc_out") == 256  # fc units
    assert counts.sel(frozen_layer="embedder.block3.maxpool_out") == 32  # NaN past 32 channels
    # r = w·logits, w = d(log-odds toward the top-right)/d(logits) at t = 0, by autograd on P
    maze, square, name = mazes.states[0], mazes.squares[0], "top_right"
    d = _target(maze, square, name)
    p64 = load_default().double()
    obs = obs_to_tensor(render([with_mouse(maze, square)])).double()
    v = vectors.applied(HOOK)[name][0].double()
    logits = {}
    for t in (-T, 0.0, T):
        with torch.no_grad(), steer(p64, HOOK, v, t):
            logits[t] = p64(obs)[0]
    x = logits[0.0].clone().requires_grad_(True)
    p = directions(x[None])[0, d]
    (w,) = torch.autograd.grad(torch.log(p) - torch.log1p(-p), x)
    r = {t: float(w @ y) for t, y in logits.items()}
    got = ds["kink_even_total"].sel(vector=name, t_loc=T, kink_maze=0)
    assert float(got) == pytest.approx(_even(r), rel=1e-6, abs=1e-9)
    assert float(ds["kink_even_direct"].sel(vector=name, t_loc=T, kink_maze=0)) == pytest.approx(
        _even(r), rel=1e-9, abs=1e-12
    )


def test_cut_rollout_of_one_maze_recomputed_with_the_rollout_and_steering_objects(setup):
    from hookdiff.rollout import Steering, rollout
    from hookdiff.study.cut_rollouts import localise_cut_rollouts

    policy, config, mazes, vectors, parts = setup
    config = dataclasses.replace(config, localise_rollout_mazes=2, rollout_max_steps=15)
    scan = xr.merge([parts["localise_scan"], parts["localise_controls"]])
    ds = localise_cut_rollouts(policy, mazes, vectors, config, scan)
    assert ds["loc_roll_cut_chosen"].sel(cut="fc_policy_out").all()  # the logits: always
    assert ds["loc_roll_reached_cheese"].isel(maze=slice(2, None)).isnull().all()
    i, cut = 1, "fc_policy_out"
    own = vectors.applied(HOOK)
    # envs: cheese +t ×k, cheese −t ×k, top-right +t ×k, top-right −t ×k, then t = 0 ×k; each
    # episode's own seed, the same in every arm
    k = config.episodes_per_maze
    v = torch.stack([own["cheese"][i]] * 2 * k + [own["top_right"][i]] * 3 * k)
    level = mazes.states[i].level_seed
    seeds = [
        int(np.random.SeedSequence([config.seeds()["rollout"], level, e]).generate_state(1)[0])
        for e in range(k)
    ]
    coeffs = ([T] * k + [-T] * k) * 2 + [0.0] * k
    steering = Steering(HOOK, v, coeffs, per_env=True, cut=cut, variant="symmetrize")
    roll = rollout(
        policy, [mazes.states[i]] * 5 * k, steering=[steering], max_steps=15, seed=seeds * 5
    )
    got = ds.sel(variant="symmetrize", cut=cut, maze=i)
    arms = [(n, s) for n in ("cheese", "top_right") for s in ("+t", "-t")]
    for j, (name, sign) in enumerate(arms):
        at = dict(vector=name, sign=sign)
        rows = slice(j * k, (j + 1) * k)
        np.testing.assert_array_equal(got["loc_roll_steps"].sel(**at), roll["steps"].values[rows])
        for var in ("reached_cheese", "reached_top_right"):
            np.testing.assert_array_equal(got[f"loc_roll_{var}"].sel(**at), roll[var].values[rows])
    for name in ("cheese", "top_right"):  # the t = 0 arm, recorded for each vector
        base = got["loc_roll_base_steps"].sel(vector=name)
        np.testing.assert_array_equal(base, roll["steps"].values[4 * k :])


def test_margin_even_part_is_zero_with_the_logits_symmetrised_and_the_log_odds_is_not(setup):
    *_, parts = setup
    got = parts["localise_scan"]["loc_even_cut"].sel(cut="fc_policy_out", t_loc=T)
    margin, lo = got.sel(readout="margin").values, got.sel(readout="logodds").values
    ok = np.isfinite(margin)
    assert ok.sum() >= 4  # both vectors, both variants, mazes with a target
    np.testing.assert_allclose(margin[ok], 0.0, atol=1e-5)  # float32 logits: rounding only
    assert np.abs(lo[ok]).max() > 1e-2  # the softmax's own curvature


def test_margin_recomputed_from_plain_forwards_and_autograd(setup):
    policy, config, mazes, vectors, parts = setup
    ds = parts["localise_controls"]
    i, name = 1, "cheese"
    maze, square = mazes.states[i], mazes.squares[i]
    d = _target(maze, square, name)
    v = vectors.applied(HOOK)[name][i]
    obs = obs_to_tensor(render([with_mouse(maze, square)]))
    logits = {}
    for t in (-T, 0.0, T):
        with torch.no_grad(), steer(policy, HOOK, v, t):
            logits[t] = policy(obs)[0].double()
    x = logits[0.0].clone().requires_grad_(True)
    p = directions(x[None])[0, d]
    lo0 = torch.log(p) - torch.log1p(-p)
    (w,) = torch.autograd.grad(lo0, x)
    lo0 = float(lo0.detach())
    m = {t: lo0 + float(w @ (z - logits[0.0])) for t, z in logits.items()}
    sel = dict(control="vector", vector=name, readout="margin", maze=i)
    assert float(ds["loc_even"].sel(t_loc=T, **sel)) == pytest.approx(_even(m), abs=1e-4)
    assert float(ds["loc_odd"].sel(t_loc=T, **sel)) == pytest.approx(m[T] - m[-T], abs=1e-4)
    assert float(ds["loc_base"].sel(**sel)) == pytest.approx(lo0, abs=1e-4)


def test_margin_even_part_equals_the_kink_attribution_total(setup):
    *_, parts = setup
    kinks = parts["localise_kinks"]["kink_even_total"].sel(t_loc=T, kink_maze=0)
    exact = parts["localise_controls"]["loc_even"].sel(
        control="vector", readout="margin", t_loc=T, maze=0
    )
    for name in ("cheese", "top_right"):
        want = float(kinks.sel(vector=name))  # float64 walk; the scan runs in float32
        if np.isfinite(want):
            got = float(exact.sel(vector=name))
            assert got == pytest.approx(want, rel=1e-4, abs=1e-5)
