"""line_response on the shipped agent in float64: the JVP, full freezing, cuts that are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff.agent import direction_log_probs, load_default, obs_to_tensor
from hookdiff.analysis import (
    cut_scan,
    even_from_kinks,
    freezable,
    kink_attribution,
    line_response,
    valid_cuts,
)
from hookdiff.errors import InterventionError
from hookdiff.maze import render, sample_mazes

HOOK = "embedder.block2.res1.resadd_out"
TS = [-1.0, -0.25, 0.0, 0.25, 1.0]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup():
    policy = load_default().double()
    obs = obs_to_tensor(render(sample_mazes("vanilla-hard", 2, seed=0))).double()
    _, cache = policy.run_with_cache(obs)
    a = cache[HOOK]
    v = (
        0.3
        * a.norm()
        / a[0].numel() ** 0.5
        * torch.randn(a.shape[1:], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    )
    return policy, a, v


def test_linearize_at_the_logits_is_the_jvp(setup) -> None:
    policy, a, v = setup
    lin = line_response(
        policy, a, HOOK, v, TS, depth="fc_policy_out", cut="fc_policy_out", variant="linearize"
    )
    f = lambda x: policy.run_segment(x, HOOK, "fc_policy_out")  # noqa: E731
    base, jv = torch.func.jvp(f, (a,), (v.expand_as(a),))
    for t in TS:
        want = (base + t * jv).detach().numpy()
        np.testing.assert_allclose(lin.sel(t=t).values, want, rtol=1e-9, atol=1e-9)


def test_freezing_every_layer_makes_the_logits_affine_and_equal_to_linearizing(setup) -> None:
    policy, a, v = setup
    every = freezable(policy, HOOK, "fc_policy_out")
    assert len(every) == 9  # 2 relus in block2.res2, maxpool + 4 relus in block3, relu3, relufc
    fro = line_response(policy, a, HOOK, v, TS, depth="fc_policy_out", freeze=every).values
    lin = line_response(
        policy, a, HOOK, v, TS, depth="fc_policy_out", cut="fc_policy_out", variant="linearize"
    ).values
    np.testing.assert_allclose(fro, lin, rtol=1e-9, atol=1e-9)
    exact = line_response(policy, a, HOOK, v, TS, depth="fc_policy_out").values
    assert np.abs(exact - fro).max() > 1e-3  # the agent is not linear along this line


def test_symmetrize_at_the_logits_removes_the_even_part_of_the_directions(setup) -> None:
    policy, a, v = setup
    sym = line_response(
        policy, a, HOOK, v, TS, depth="fc_policy_out", cut="fc_policy_out", variant="symmetrize"
    ).values
    exact = line_response(policy, a, HOOK, v, TS, depth="fc_policy_out").values
    base = exact[TS.index(0.0)]
    for i, t in enumerate(TS):
        j = TS.index(-t)
        np.testing.assert_allclose(sym[i], base + 0.5 * (exact[i] - exact[j]), atol=1e-12)


def test_cuts_inside_a_residual_branch_or_upstream_are_refused(setup) -> None:
    policy, a, v = setup
    cuts = valid_cuts(policy, HOOK, "directions")
    assert "embedder.block2.res2.resadd_out" in cuts and "fc_policy_out" in cuts
    assert not any(".conv1_out" in c or ".relu1_out" in c for c in cuts)
    for bad in ("embedder.block2.res2.conv1_out", "embedder.block2.maxpool_out"):
        with pytest.raises(InterventionError, match="closest|valid"):
            line_response(policy, a, HOOK, v, TS, depth="directions", cut=bad, variant="linearize")
    with pytest.raises(InterventionError, match="relu1_out"):
        line_response(
            policy, a, HOOK, v, TS, depth="directions", freeze=["embedder.block3.res1.relu_out"]
        )


def test_even_part_of_a_log_prob_readout_splits_exactly_over_kinks(setup) -> None:
    policy, a, v = setup
    a1 = a[:1]
    with torch.enable_grad():
        logits = policy.run_segment(a1, HOOK, "fc_policy_out").detach().requires_grad_(True)
        (w,) = torch.autograd.grad(direction_log_probs(logits)[0, 3], logits)  # log P(right)
    attribution = kink_attribution(policy, a1, HOOK, v, 1.0, weights=w[0])
    assert len(attribution["t"]) > 20  # a trained agent has many kinks on [-1, 1]
    ts = [0.1, 0.4, 1.0]
    grid = sorted({0.0, *ts, *(-t for t in ts)})
    logit_line = line_response(policy, a1, HOOK, v, grid, depth="fc_policy_out")
    r = logit_line.values[:, 0] @ w[0].numpy()
    direct = [r[grid.index(t)] + r[grid.index(-t)] - 2 * r[grid.index(0.0)] for t in ts]
    np.testing.assert_allclose(
        even_from_kinks(attribution, ts).values[0], direct, rtol=1e-7, atol=1e-9
    )
    per_layer = even_from_kinks(attribution, [1.0], by="layer")
    assert per_layer.sizes["layer"] >= 3


def test_cut_scan_of_the_directions_readout_equals_line_response(setup) -> None:
    policy, a, v = setup
    cuts = ["embedder.block3.res2.resadd_out", "fc_policy_out"]
    scan = cut_scan(policy, a, HOOK, v, TS, depth="directions", cuts=cuts)
    assert scan.dims[-1] == "direction" and scan.sizes["direction"] == 5
    for cut in cuts:
        for variant in ("linearize", "symmetrize"):
            one = line_response(
                policy, a, HOOK, v, TS, depth="directions", cut=cut, variant=variant
            )
            np.testing.assert_allclose(
                scan.sel(cut=cut, variant=variant).values, one.values, rtol=1e-9, atol=1e-12
            )
