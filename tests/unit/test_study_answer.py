"""The study's answer on a hand-built dataset with known answers (hookdiff.study.answer).

Each test recomputes its claim's number independently (plain numpy on the built arrays) and checks
that the wording follows it: an even part built to be 0 is "not distinguishable from 0", a scan
built to reach 0 at one cut names that cut, swapping +t and −t changes the answer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _study_synthetic import CUTS, REACH_CHEESE, ROLLOUT_MAZES, synthetic_study

from hookdiff.stats import wilson
from hookdiff.study.answer import KINDS, answer, missing


@pytest.fixture(scope="module")
def ds():
    return synthetic_study()


@pytest.fixture(scope="module")
def claims(ds):
    return answer(ds)


def _one(claims, vector, kind, readout=None, where=...):
    found = [
        c
        for c in claims[vector]
        if c["kind"] == kind
        and (readout is None or c["readout"] == readout)
        and (where is ... or c["where"] == where)
    ]
    assert found, (vector, kind, readout)
    return found


def test_every_claim_has_an_interval_around_its_estimate_and_a_sample_size(claims):
    for vector in ("cheese", "top_right"):
        kinds = [c["kind"] for c in claims[vector]]
        assert kinds == sorted(kinds, key=KINDS.index)
        for c in claims[vector]:
            if c["kind"] == "matched" and c["estimate"] is None:  # no later layer steers
                assert c["n"] == 0 and c["where"] is None and c["ci95"] == [None, None]
                continue
            lo, hi = c["ci95"]
            assert lo <= c["estimate"] <= hi, c
            assert c["n"] > 0 and isinstance(c["claim"], str) and c["claim"].endswith(".")
            assert "[" in c["claim"]  # the text carries the interval
    json.dumps(claims, allow_nan=False)  # run.json stays valid JSON


def test_even_part_built_to_be_zero_is_not_distinguishable_from_zero(ds, claims):
    (c,) = _one(claims, "top_right", "asymmetry", "p")
    p = ds["p_toward_top_right"].sel(site="steering", vector="top_right")
    e = (p.sel(t=1.0) + p.sel(t=-1.0) - 2 * p.sel(t=0.0)).values
    assert c["estimate"] == pytest.approx(e.mean(), abs=1e-12)
    assert c["ci95"][0] < 0 < c["ci95"][1]
    assert "not distinguishable from 0" in c["claim"]
    (c,) = _one(claims, "cheese", "asymmetry", "p")
    assert c["estimate"] == pytest.approx(-0.25) and c["ci95"][1] < 0
    assert "below 0" in c["claim"] and "not distinguishable" not in c["claim"]


def test_published_sign_compared_with_the_mirrored_sign(claims):
    # cheese: r(0) = 0.6 + z, r(−1) = r(0) − 0.3, r(+1) = r(0) + 0.05. The published t = −1
    # lowers P by 0.30, t = +1 raises it by 0.05: the published sign is stronger by 0.25.
    # Swapping +t and −t would give −0.25 (and the mirrored sign "stronger").
    (c,) = _one(claims, "cheese", "published", "p")
    assert c["estimate"] == pytest.approx(0.25)
    assert "published t = −1 changes P(toward cheese) by -0.300" in c["claim"]
    assert "the published sign is the stronger" in c["claim"]
    (c,) = _one(claims, "top_right", "published", "p")
    assert "not distinguishable in size" in c["claim"]


def test_the_cut_scan_locates_the_cut_where_the_even_part_reaches_zero(claims):
    sym = [c for c in _one(claims, "cheese", "created") if "Symmetrised" in c["claim"]]
    lin = [c for c in _one(claims, "cheese", "created") if "Linearised" in c["claim"]]
    assert [c["where"] for c in sym] == [CUTS[3]]  # read on the margin only
    assert [c["where"] for c in lin] == [CUTS[2]]
    assert {c["readout"] for c in sym + lin} == {"margin"}
    assert f"its last part made between `{CUTS[2]}`" in sym[0]["claim"]
    assert sym[0]["ci95"][0] < 0 < sym[0]["ci95"][1]
    # top-right: the logits carry no asymmetry (margin E is noise), so no cut is named, although
    # the log-odds' symmetrised E stays 0.3 at every cut (the softmax's own curvature)
    (c,) = _one(claims, "top_right", "created")
    assert c["where"] is None and "the logits carry no asymmetry to locate" in c["claim"]
    assert c["readout"] == "margin"


def _margin_means(ds, vector):
    """Exact and per-cut symmetrised mean E(1) of the margin, by plain numpy (no bootstrap)."""
    at = dict(vector=vector, t_loc=1.0, readout="margin")
    exact = float(ds["loc_even"].sel(control="vector", **at).mean())
    cuts = ds["loc_even_cut"].sel(variant="symmetrize", **at).mean("maze").values
    return exact, [float(x) for x in cuts]


def test_most_of_the_asymmetry_is_made_where_the_symmetrised_even_part_drops_most(ds, claims):
    from hookdiff.study.answer import made_between

    exact, cuts = _margin_means(ds, "cheese")
    drops = np.subtract([exact, *cuts[:-1]], cuts)
    steps = made_between(ds, "cheese", 1.0, seed=0)
    np.testing.assert_allclose([iv.estimate for _, iv in steps], drops, atol=1e-12)
    np.testing.assert_allclose(sum(iv.estimate for _, iv in steps), exact - cuts[-1], atol=1e-12)
    (c,) = _one(claims, "cheese", "made")
    k = int(np.argmax(np.sign(exact) * drops))
    assert c["where"] == steps[k][0] and c["estimate"] == pytest.approx(drops[k])
    assert c["readout"] == "margin" and c["ci95"][0] <= c["estimate"] <= c["ci95"][1]
    # move the whole asymmetry into the step before the last cut: the claim follows
    built = ds.copy(deep=True)
    cut = built["loc_even_cut"]
    for name in CUTS[:-1]:
        sel = dict(vector="cheese", variant="symmetrize", readout="margin", cut=name)
        cut.loc[sel] = built["loc_even"].sel(control="vector", vector="cheese", readout="margin")
    (moved,) = _one(answer(built), "cheese", "made")
    assert moved["where"] == f"{CUTS[-2]} → {CUTS[-1]}"
    assert "100%" in moved["claim"]
    # the top-right logits carry no asymmetry: no claim of where it is made
    assert not [c for c in claims["top_right"] if c["kind"] == "made"]


def test_softmax_only_test(claims):
    for readout in ("p", "logodds"):
        (c,) = _one(claims, "top_right", "softmax", readout)  # symmetrised logits give all of E
        assert c["estimate"] == pytest.approx(0.0, abs=1e-12)
        assert "plus the softmax already explains it" in c["claim"]
        assert "The logits' own asymmetry, read on the margin, is E = +0.000" in c["claim"]
        (c,) = _one(claims, "cheese", "softmax", readout)  # … none of it
        scale = 1.0 if readout == "p" else 4.0
        assert c["estimate"] == pytest.approx(-0.25 * scale)
        assert "does not explain it" in c["claim"]


def test_layers_knockout_knockin_and_kinks(claims):
    (c,) = _one(claims, "cheese", "knockout")
    # freezing L2 leaves 0.2 of E = −1 (log-odds): the asymmetry shrinks by 0.8
    assert c["where"] == "L2" and c["estimate"] == pytest.approx(0.8)
    (c,) = _one(claims, "cheese", "knockin")
    assert c["where"] == "L3" and c["estimate"] == pytest.approx(-0.9) and "90%" in c["claim"]
    (c,) = _one(claims, "cheese", "kinks")
    assert c["where"] == "L2" and c["n"] == 4 and c["estimate"] == pytest.approx(-0.5)
    assert "on 4 walked mazes" in c["claim"] and "143%" in c["claim"]


def test_base_swap_and_distance(claims):
    (c,) = _one(claims, "cheese", "base_swap")
    assert c["estimate"] == pytest.approx(0.8) and "flips sign" in c["claim"]
    (c,) = _one(claims, "top_right", "base_swap")
    assert "keeps its sign" in c["claim"]
    (c,) = _one(claims, "cheese", "distance")
    assert c["estimate"] == pytest.approx(-1.2)
    assert "+v moves toward the paired real state (interpolates)" in c["claim"]


def test_controls_and_rollouts(claims):
    controls = {c["where"]: c for c in _one(claims, "cheese", "controls")}
    assert set(controls) == {"random", "other_maze", "untrained"}
    assert (
        "E = -0.000" in controls["random"]["claim"] or "E = +0.000" in controls["random"]["claim"]
    )
    assert "not distinguishable from 0; the maze's own vector minus" in controls["random"]["claim"]
    assert controls["other_maze"]["estimate"] == pytest.approx(-0.4)
    (c,) = _one(claims, "cheese", "rollouts")
    w = wilson(REACH_CHEESE[-1.0], ROLLOUT_MAZES)
    assert c["estimate"] == pytest.approx(w.estimate) and c["ci95"] == pytest.approx([w.lo, w.hi])
    assert c["n"] == ROLLOUT_MAZES and "published minus unsteered -0.50" in c["claim"]


def test_later_layer_only_when_it_differs_from_the_steering_layer(claims):
    assert _one(claims, "cheese", "later")[0]["where"] == "embedder.block3.res2.resadd_out"
    same = synthetic_study(later_hook="embedder.block2.res1.resadd_out")
    assert not [c for c in answer(same)["cheese"] if c["kind"] == "later"]


def test_absent_variables_skip_their_claims_and_are_named_once():
    ds = synthetic_study(localised=False)
    kinds = {c["kind"] for c in answer(ds)["cheese"]}
    assert kinds == {"asymmetry", "published", "rollouts", "later"}
    said = missing(ds)
    assert any("loc_even_cut" in s for s in said) and len(said) == len(set(said))
    assert missing(synthetic_study()) == []
    no_untrained = synthetic_study().drop_sel(control="untrained")
    assert missing(no_untrained) == ["controls untrained (not measured)"]
    assert {c["where"] for c in answer(no_untrained)["cheese"] if c["kind"] == "controls"} == {
        "random",
        "other_maze",
    }


def test_the_answer_is_reproducible_and_follows_the_seed(ds, claims):
    assert answer(ds) == claims
    other = answer(ds, seed=1)["cheese"]
    assert [c["estimate"] for c in other] == [c["estimate"] for c in claims["cheese"]]


def test_without_an_asymmetry_no_cut_is_named_and_the_softmax_has_nothing_to_explain():
    ds = synthetic_study()
    own = dict(control="vector", vector="cheese")
    ds["loc_even"].loc[own] = ds["loc_even"].sel(control="random", vector="cheese").values
    claims = answer(ds)
    (c,) = _one(claims, "cheese", "created")
    assert c["where"] is None and "no asymmetry to locate" in c["claim"]
    assert c["ci95"][0] < 0 < c["ci95"][1]
    for c in _one(claims, "cheese", "softmax"):
        assert "no asymmetry distinguishable from 0 to explain" in c["claim"]
    (c,) = _one(claims, "cheese", "base_swap")
    assert "not distinguishable from 0 on its own base" in c["claim"]
    (c,) = _one(claims, "cheese", "knockin")
    assert "%" not in c["claim"]  # no share of an E indistinguishable from 0


def test_numbers_too_small_for_three_decimals_show_their_size():
    from hookdiff.stats import Interval
    from hookdiff.study.answer import interval_text

    assert interval_text(Interval(-2e-5, -3e-5, -1e-5, 4)) == "-2.0e-05 [-3.0e-05, -1.0e-05]"
    assert interval_text(Interval(0.25, 0.0, 0.5, 4)) == "+0.250 [+0.000, +0.500]"


def test_a_non_monotone_scan_names_the_cut_after_which_every_cut_is_zero():
    # cheese, symmetrised: E = −0.25, −0.2, −0.1, 0, 0 (+ symmetric noise) along CUTS; set E at
    # CUTS[1] to the noise alone, so the scan dips to 0 there and comes back at CUTS[2]
    ds = synthetic_study()
    cut = ds["loc_even_cut"].copy()
    sel = dict(vector="cheese", variant="symmetrize")
    at = cut.loc[dict(**sel, cut=CUTS[1])]
    cut.loc[dict(**sel, cut=CUTS[1])] = at - at.mean("maze")  # mean exactly 0, same noise
    ds["loc_even_cut"] = cut
    for c in _one(answer(ds), "cheese", "created"):
        if "Symmetrised" in c["claim"]:
            assert c["where"] == CUTS[3], c["claim"]  # not CUTS[1], the first zero
            assert f"Not monotone: at `{CUTS[1]}`" in c["claim"]
            assert f"its last part made between `{CUTS[2]}`" in c["claim"]
        else:
            assert c["where"] == CUTS[2] and "Not monotone" not in c["claim"]


def test_created_cut_on_built_scans():
    from hookdiff.stats import Interval
    from hookdiff.study.answer import created_cut

    zero, some, none = Interval(0.0, -1, 1, 9), Interval(2.0, 1, 3, 9), Interval(0, 0, 0, 0)
    assert created_cut([("a", some), ("b", zero), ("c", some), ("d", zero)]) == (3, ["b"])
    assert created_cut([("a", zero), ("b", zero)]) == (0, [])
    assert created_cut([("a", zero), ("b", some)]) == (None, [])
    assert created_cut([("a", some), ("b", zero), ("c", none)]) == (1, [])  # unmeasured: skipped


def test_cut_rollouts_report_wilson_rates_at_each_chosen_cut_beside_the_exact_network(claims):
    from _study_synthetic import CUT_ROLL, CUT_ROLL_MAZES

    for vector, published in (("cheese", 1), ("top_right", 0)):  # cheese: −t, top-right: +t
        found = _one(claims, vector, "cut_rollouts")
        assert [c["where"] for c in found] == list(CUT_ROLL[vector])  # forward order
        for c in found:
            want = wilson(CUT_ROLL[vector][c["where"]][published], CUT_ROLL_MAZES)
            assert c["estimate"] == pytest.approx(want.estimate)
            assert c["ci95"] == pytest.approx([want.lo, want.hi]) and c["n"] == CUT_ROLL_MAZES
            assert "symmetrised" in c["claim"]
    # the exact network on the same 20 mazes: t = −1 reaches cheese on 10, t = +1 on all 20
    (c, *_) = _one(claims, "cheese", "cut_rollouts")
    exact = c["claim"].split("the exact network on the same mazes: ")[1]
    lo, hi = wilson(10, CUT_ROLL_MAZES).lo, wilson(10, CUT_ROLL_MAZES).hi
    assert exact.startswith(f"cheese +t 1.00 [{wilson(20, 20).lo:.2f}, 1.00], −t 0.50 [{lo:.2f}, ")
    assert f"{hi:.2f}]; top-right +t 0.00" in exact


def test_later_layers_matched_name_the_latest_that_still_steers_and_scan_there(ds, claims):
    from _study_synthetic import LATER_CUTS, MATCHED_LAYERS

    (c,) = _one(claims, "cheese", "matched")
    assert c["where"] == MATCHED_LAYERS[2] and "decision-square pairs, |t| = 2.5" in c["claim"]
    e = ds["matched_effect"].sel(matched_layer=MATCHED_LAYERS[2], pair_position="decision_square",
                                 vector="cheese")  # fmt: skip
    assert c["estimate"] == pytest.approx(float(e.mean())) and c["ci95"][0] > 0
    assert f"`{MATCHED_LAYERS[1]}`: start pairs t = −4 (does not steer)" in c["claim"]
    (c,) = _one(claims, "cheese", "later_created")
    assert c["where"] == LATER_CUTS[1] and f"At the later layer `{MATCHED_LAYERS[2]}`" in c["claim"]
    (c,) = _one(claims, "top_right", "matched")
    assert c["where"] is None and c["claim"].endswith("No later layer still steers.")
    assert not [c for c in claims["top_right"] if c["kind"] == "later_created"]
