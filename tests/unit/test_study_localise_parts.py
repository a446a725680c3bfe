"""The localisation's small parts on hand-built inputs (fast, no procgen).

Which cuts are rolled out (from a built scan whose creation cut is known), the knock-out and
knock-in scans recomputed with one ``line_response`` each on a random-init agent, and the random
control drawn per block as the share of one draw over the whole study.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

from hookdiff.agent import ImpalaPolicy
from hookdiff.analysis import freezable, line_response
from hookdiff.study.config import StudyConfig
from hookdiff.study.cut_rollouts import rollout_cuts
from hookdiff.study.localise import _frozen_even, _line_ts, matched_random
from hookdiff.study.readouts import readouts
from hookdiff.study.schema import CUT_READOUT, READOUTS

HOOK = "embedder.block2.res1.resadd_out"
CUTS = ["c0", "c1", "c2", "c3", "logits"]


def _scan() -> xr.Dataset:
    """A joined scan over 6 mazes at t_loc = 1 with known answers.

    ``made``: E clearly nonzero on the exact network and at cuts c0, c1, indistinguishable from 0
    from c2 on (the creation cut is c2, the cut before it c1). ``none``: E indistinguishable
    from 0 already on the exact network (only the logits are rolled out).
    """
    m = 6
    clear = np.array([1.0, 1.1, 0.9, 1.05, 0.95, 1.0])
    zero = np.array([0.1, -0.1, 0.05, -0.05, 0.02, -0.02])
    exact = {"made": clear, "none": zero}
    by_cut = {"made": [clear, clear, zero, zero, zero], "none": [zero] * 5}
    vectors = list(exact)
    loc_even = np.zeros((1, 2, len(READOUTS), 1, m))
    loc_even_cut = np.zeros((2, 1, len(CUTS), len(READOUTS), 1, m))
    for vi, v in enumerate(vectors):
        loc_even[0, vi, :, 0] = exact[v]
        for ci, e in enumerate(by_cut[v]):
            loc_even_cut[vi, 0, ci, :, 0] = e
    return xr.Dataset(
        {
            "loc_even": (("control", "vector", "readout", "t_loc", "maze"), loc_even),
            "loc_even_cut": (
                ("vector", "variant", "cut", "readout", "t_loc", "maze"),
                loc_even_cut,
            ),
        },
        coords={
            "control": ["vector"],
            "vector": vectors,
            "readout": list(READOUTS),
            "t_loc": [1.0],
            "maze": np.arange(m),
            "variant": ["symmetrize"],
            "cut": CUTS,
        },
    )


def test_rollout_cuts_are_the_creation_cut_the_one_before_and_the_logits():
    assert CUT_READOUT in READOUTS
    cuts = rollout_cuts(_scan(), seed=0)
    assert cuts == {"made": ["c1", "c2", "logits"], "none": ["logits"]}


def test_rollout_cuts_without_a_creation_cut_roll_the_first_cut_and_the_logits():
    scan = _scan()
    scan["loc_even_cut"].loc[{"vector": "made"}] = (
        scan["loc_even"].sel(control="vector").sel(vector="made").values[None, None]
    )
    assert rollout_cuts(scan, seed=0)["made"] == ["c0", "logits"]


@pytest.fixture(scope="module")
def agent():
    torch.manual_seed(0)
    policy = ImpalaPolicy(scale=1).eval()
    g = torch.Generator().manual_seed(1)
    acts = torch.randn((2, 32, 16, 16), generator=g)
    v = torch.randn((2, 32, 16, 16), generator=g)
    return policy, acts, v, np.array([0, 3])


def test_knockout_freezes_one_layer_and_knockin_every_other(agent):
    """Each frozen layer's E recomputed with one line_response: the knock-out holds that layer
    at its t = 0 pattern, the knock-in holds every other one."""
    policy, acts, v, target = agent
    config = dataclasses.replace(StudyConfig(), localise_ts=(1.0,))
    ds = _frozen_even(policy, acts, v, target, config)
    layers = freezable(policy, HOOK, policy.output_hook)
    ts = _line_ts(config.localise_ts)
    picked = [layers[0], layers[len(layers) // 2]]
    for layer in picked:
        for name, freeze in (
            ("loc_even_knockout", [layer]),
            ("loc_even_knockin", [o for o in layers if o != layer]),
        ):
            logits = line_response(
                policy, acts, HOOK, v, ts, depth=policy.output_hook, freeze=freeze
            ).values
            r = readouts(logits, target, ts)  # (readout, t, maze)
            want = r[:, 2] + r[:, 0] - 2 * r[:, 1]
            got = ds[name].sel(frozen_layer=layer, t_loc=1.0).values
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} {layer}")
    out, into = (ds[n].sel(t_loc=1.0).values for n in ("loc_even_knockout", "loc_even_knockin"))
    assert not np.allclose(out, into)  # the two scans differ on this agent


def test_each_block_gets_its_share_of_one_random_draw():
    """The random control of mazes first:first+N is rows first:first+N of the whole draw, so
    blocks together give what one task over every maze gives (and block 1 is not block 0's)."""
    g = torch.Generator().manual_seed(3)
    v = torch.randn((5, 4, 3, 3), generator=g)
    v[:, :, 0, 0] = 0.0  # a position where v is 0 stays 0
    whole = matched_random(v, torch.Generator().manual_seed(7))
    blocks = [
        matched_random(v[a:b], torch.Generator().manual_seed(7), rows=(a, 5))
        for a, b in ((0, 2), (2, 4), (4, 5))
    ]
    torch.testing.assert_close(torch.cat(blocks), whole)
    assert not torch.allclose(blocks[1], whole[:2])
    torch.testing.assert_close(whole.norm(dim=1), v.norm(dim=1))
    assert torch.all(whole[:, :, 0, 0] == 0)


# --- the creation cut by equivalence (Holm-adjusted TOST) on a built 104-maze scan ---------------


def _scan104(late: np.ndarray, fraction: float | None = None) -> xr.Dataset:
    """A scan of one vector over 104 mazes: the exact E ≈ −3.4 (every readout), E at c0, c1 like
    it, and ``late`` (104 values) at c2, c3 and the logits, both variants, t_loc = 1."""
    rng = np.random.default_rng(2)
    n, clear = 104, -3.4 + rng.normal(0, 1.0, 104)
    cut = np.stack([clear, clear, late, late, late])  # (cut, maze)
    loc_even_cut = np.broadcast_to(cut[None, None, :, None, None], (1, 2, 5, len(READOUTS), 1, n))
    loc_even = np.broadcast_to(clear, (1, 1, len(READOUTS), 1, n))
    attrs = {} if fraction is None else {"config": f'{{"equivalence_margin": {fraction}}}'}
    return xr.Dataset(
        {
            "loc_even": (("control", "vector", "readout", "t_loc", "maze"), loc_even.copy()),
            "loc_even_cut": (
                ("vector", "variant", "cut", "readout", "t_loc", "maze"),
                loc_even_cut.copy(),
            ),
        },
        coords={
            "control": ["vector"],
            "vector": ["cheese"],
            "readout": list(READOUTS),
            "t_loc": [1.0],
            "maze": np.arange(n),
            "variant": ["linearize", "symmetrize"],
            "cut": CUTS,
        },
        attrs=attrs,
    )


def _residue() -> np.ndarray:
    """A float32 residue like the held-out run's: −3.0e−08 [−6.2e−08, −1.2e−09], n = 104."""
    r = np.random.default_rng(3).normal(0.0, 1.45e-7, 104)
    return r - r.mean() - 3.0e-8


def _created(ds: xr.Dataset) -> dict:
    from hookdiff.study.claims_localise import created

    return {c.detail["variant"]: c for c in created(ds, "cheese", seed=0)}


def test_a_residue_at_the_last_cut_is_zero_within_tolerance_never_an_effect():
    from hookdiff.stats import bootstrap_mean
    from hookdiff.study.wording import sentence

    iv = bootstrap_mean(_residue(), seed=0)
    assert iv.hi < 0 and iv.estimate == pytest.approx(-3e-8)  # "distinguishable" by its interval
    c = _created(_scan104(_residue()))["symmetrize"]
    assert c.where == "c2" and c.verdict == "equivalent" and c.p_equivalent == 0.0
    assert c.margin == pytest.approx(0.2 * 3.4, rel=0.1)
    # no margin to be equivalent within: the last cut is 0 within numerical tolerance, no effect
    c = _created(_scan104(_residue(), fraction=0.0))["symmetrize"]
    assert c.where is None and c.within_tolerance and c.verdict == "inconclusive"
    text = sentence(c)
    assert "0 within numerical tolerance" in text and "made after" not in text


def test_a_scan_that_reaches_zero_is_equivalent_there_and_rolled_out_there():
    ds = _scan104(np.zeros(104))
    for c in _created(ds).values():
        assert c.where == "c2" and c.verdict == "equivalent" and c.p_equivalent == 0.0
        assert c.detail["before"] == "c1" and c.detail["per_t"] == {"1": "c2"}
        assert "30 scan points" in c.detail["family"] and "Holm" in c.detail["family"]
    assert rollout_cuts(ds, seed=0) == {"cheese": ["c1", "c2", "logits"]}


def test_a_scan_merely_noisy_around_zero_is_not_equivalent():
    """Failing to reject is not zero: E at c2 on is noise around 0 with a wide interval."""
    from hookdiff.study.select import cut_intervals

    noisy = np.random.default_rng(4).normal(0.0, 8.0, 104)
    noisy -= noisy.mean()
    ds = _scan104(noisy)
    scan = cut_intervals(ds, "cheese", "symmetrize", CUT_READOUT, 1.0, 0)
    # from c2 on no interval excludes 0: a "not distinguishable from 0" reading would name c2
    assert [not iv.excludes(0.0) for _, iv in scan[2:]] == [True] * len(scan[2:])
    for c in _created(ds).values():
        assert c.where is None and c.verdict == "inconclusive" and c.p_equivalent > 0.05
        assert c.ci95[0] < -c.margin and c.margin < c.ci95[1]  # wider than the margin
    assert rollout_cuts(ds, seed=0) == {"cheese": ["c0", "logits"]}


def test_a_difference_from_zero_is_holm_adjusted_over_the_scan():
    from hookdiff.stats import zero_p

    noise = np.random.default_rng(5).normal(0.0, 1.8, 104)
    late = -0.4 + noise - noise.mean()  # raw p 0.008, in 18 of the family's 33 tests
    c = _created(_scan104(late))["symmetrize"]
    raw = zero_p(late, seed=0)
    assert c.where is None and raw < 0.05 and c.ci95[1] < 0
    assert c.p_zero > 0.05 and c.verdict == "inconclusive"  # not below 0 after adjustment
