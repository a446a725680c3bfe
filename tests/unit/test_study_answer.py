"""The study's answer on a hand-built dataset with known answers (hookdiff.study.answer).

Each test recomputes its claim's numbers independently (plain numpy on the built arrays) and
checks the claim's fields: ``estimate``, ``ci95``, ``n``, ``where``, ``verdict`` and the
kind-specific ``detail``. No test here reads a claim's sentence (test_study_wording.py checks that
the sentences carry the fields' numbers).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from _study_synthetic import CUTS, DISTANCES, REACH_CHEESE, ROLLOUT_MAZES, synthetic_study

from hookdiff.claim import verdict_of
from hookdiff.stats import wilson
from hookdiff.study.answer import KINDS, VERDICTS, answer, missing
from hookdiff.study.schema import VECTOR_SOURCES

VECTORS = ("cheese", "top_right")


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


def _mean(x) -> float:
    return float(np.nanmean(np.asarray(x, dtype=float)))


def _loc(ds, vector, control="vector", readout="logodds", name="loc_even"):
    return ds[name].sel(control=control, vector=vector, readout=readout, t_loc=1.0).values


def test_every_claim_is_data_with_an_interval_a_sample_size_and_its_verdict(claims):
    for vector in VECTORS:
        kinds = [c["kind"] for c in claims[vector]]
        assert kinds == sorted(kinds, key=KINDS.index)
        for c in claims[vector]:
            assert c["vector"] == vector and c["verdict"] in VERDICTS
            assert c["tolerance"] > 0
            # only creation cuts, controls, saturation state an equivalence margin (a zero is shown by
            # an equivalence test, not by a failure to reject)
            stated = c["kind"] in (
                "created",
                "later_created",
                "controls",
                "saturation",
                "prediction",
            )
            assert c["margin"] is None or (stated and c["margin"] > 0)
            fields = (c["tolerance"], c["margin"], c["p_equivalent"], c["p_zero"])
            assert c["verdict"] == verdict_of(c["estimate"], c["ci95"], c["n"], *fields)
            if c["kind"] == "matched" and c["estimate"] is None:  # no later layer steers
                assert c["n"] == 0 and c["where"] is None and c["ci95"] == [None, None]
                assert c["verdict"] == "inconclusive"
                continue
            lo, hi = c["ci95"]
            assert lo <= c["estimate"] <= hi, c
            assert c["n"] > 0 and isinstance(c["claim"], str)
    json.dumps(claims, allow_nan=False)  # run.json stays valid JSON


def test_even_part_built_to_be_zero_is_inconclusive_and_the_odd_part_is_beside_it(ds, claims):
    (c,) = _one(claims, "top_right", "asymmetry", "p")
    p = ds["p_toward_top_right"].sel(site="steering", vector="top_right")
    e = (p.sel(t=1.0) + p.sel(t=-1.0) - 2 * p.sel(t=0.0)).values
    assert c["estimate"] == pytest.approx(e.mean(), abs=1e-12) and c["t"] == 1.0
    assert c["ci95"][0] < 0 < c["ci95"][1] and c["verdict"] == "inconclusive"
    assert c["odd"] == pytest.approx(_mean(p.sel(t=1.0) - p.sel(t=-1.0)))  # 0.2
    (c,) = _one(claims, "cheese", "asymmetry", "p")
    assert c["estimate"] == pytest.approx(-0.25) and c["ci95"][1] < 0
    assert c["verdict"] == "negative" and c["odd"] == pytest.approx(0.35)


def test_published_sign_compared_with_the_mirrored_sign(claims):
    # cheese: r(0) = 0.6 + z, r(−1) = r(0) − 0.3, r(+1) = r(0) + 0.05. The published t = −1
    # lowers P by 0.30, t = +1 raises it by 0.05: the published sign is stronger by 0.25.
    (c,) = _one(claims, "cheese", "published", "p")
    assert c["estimate"] == pytest.approx(0.25) and c["verdict"] == "positive" and c["t"] == -1
    assert c["detail"]["published_change"]["estimate"] == pytest.approx(-0.30)
    assert c["detail"]["mirrored_change"]["estimate"] == pytest.approx(0.05)
    (c,) = _one(claims, "top_right", "published", "p")
    assert c["verdict"] == "inconclusive"


def test_the_cut_scan_locates_the_cut_where_the_even_part_reaches_zero(claims):
    found = {c["detail"]["variant"]: c for c in _one(claims, "cheese", "created")}
    sym, lin = found["symmetrize"], found["linearize"]
    assert sym["where"] == CUTS[3] and lin["where"] == CUTS[2]
    assert {sym["readout"], lin["readout"]} == {"margin"}  # read on the margin only
    assert sym["detail"]["before"] == CUTS[2] and sym["detail"]["dips"] == []
    assert sym["detail"]["before_e"]["estimate"] == pytest.approx(-0.4)  # 4 × −0.1
    # E there is 0 ± noise: shown equivalent to 0 (Holm-adjusted TOST) within 0.2 × |exact E|
    # (exact E of the margin: 4 × −0.25 = −1), no longer read as "not distinguishable from 0"
    assert sym["ci95"][0] < 0 < sym["ci95"][1] and sym["verdict"] == "equivalent"
    assert sym["margin"] == pytest.approx(0.2) and sym["p_equivalent"] < 0.05
    # top-right: the logits carry no asymmetry (margin E is noise), so no cut is named, although
    # the log-odds' symmetrised E stays 0.3 at every cut (the softmax's own curvature)
    (c,) = _one(claims, "top_right", "created")
    assert c["where"] is None and c["detail"]["variant"] is None and c["readout"] == "margin"
    assert c["verdict"] == "inconclusive"


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
    assert c["detail"]["share"] == pytest.approx(drops[k] / exact)
    assert c["readout"] == "margin" and c["ci95"][0] <= c["estimate"] <= c["ci95"][1]
    # move the whole asymmetry into the step before the last cut: the claim follows
    built = ds.copy(deep=True)
    cut = built["loc_even_cut"]
    for name in CUTS[:-1]:
        sel = dict(vector="cheese", variant="symmetrize", readout="margin", cut=name)
        cut.loc[sel] = built["loc_even"].sel(control="vector", vector="cheese", readout="margin")
    (moved,) = _one(answer(built), "cheese", "made")
    assert moved["where"] == f"{CUTS[-2]} → {CUTS[-1]}"
    assert moved["detail"]["share"] == pytest.approx(1.0)
    # the top-right logits carry no asymmetry: no claim of where it is made
    assert not [c for c in claims["top_right"] if c["kind"] == "made"]


def test_softmax_only_test(ds, claims):
    for readout in ("p", "logodds"):
        scale = 1.0 if readout == "p" else 4.0
        (c,) = _one(claims, "top_right", "softmax", readout)  # symmetrised logits give all of E
        assert c["estimate"] == pytest.approx(0.0, abs=1e-12) and c["verdict"] == "inconclusive"
        assert c["detail"]["reading"] == "softmax_explains"
        assert c["detail"]["softmax_only"]["estimate"] == pytest.approx(0.3 * scale)
        assert c["detail"]["logits_e"]["estimate"] == pytest.approx(0.0, abs=1e-12)
        (c,) = _one(claims, "cheese", "softmax", readout)  # … none of it
        assert c["estimate"] == pytest.approx(-0.25 * scale) and c["verdict"] == "negative"
        assert c["detail"]["reading"] == "logits_add"


def test_softmax_only_test_when_both_the_softmax_and_the_logits_make_part_of_it(ds):
    # half of the cheese E with the logits symmetrised: the softmax-only E and the difference
    # are both below 0, so the logits' own even part adds to what the softmax makes
    built = ds.copy(deep=True)
    for readout in ("p", "logodds"):
        exact = built["loc_even"].sel(control="vector", vector="cheese", readout=readout)
        sel = dict(vector="cheese", variant="symmetrize", cut="fc_policy_out", readout=readout)
        built["loc_even_cut"].loc[sel] = exact / 2
    for c in _one(answer(built), "cheese", "softmax"):
        scale = 1.0 if c["readout"] == "p" else 4.0
        assert c["detail"]["softmax_only"]["ci95"][1] < 0
        assert c["estimate"] == pytest.approx(-0.125 * scale) and c["verdict"] == "negative"
        assert c["detail"]["reading"] == "logits_add"


def test_layers_knockout_knockin_and_kinks(ds, claims):
    (c,) = _one(claims, "cheese", "knockout")
    # freezing L2 leaves 0.2 of E = −1 (log-odds): the asymmetry shrinks by 0.8
    assert c["where"] == "L2" and c["estimate"] == pytest.approx(0.8)
    assert c["detail"]["exact"]["estimate"] == pytest.approx(_mean(_loc(ds, "cheese")))
    for vector, exact in (("cheese", -1.0), ("top_right", 1.2)):
        # L1 keeps 1.2 × |E| with the opposite sign: the most in size, not the most of E
        (c,) = _one(claims, vector, "knockin")
        assert c["where"] == "L3" and c["estimate"] == pytest.approx(0.9 * exact)
        assert c["detail"]["share"] == pytest.approx(0.9)
    (c,) = _one(claims, "cheese", "kinks")
    assert c["where"] == "L2" and c["n"] == 4 and c["estimate"] == pytest.approx(-0.5)
    assert c["detail"]["walked"] == 4 and c["detail"]["share"] == pytest.approx(0.5 / 0.35)
    assert c["detail"]["direct_gap"] == pytest.approx(1e-12, rel=1e-3)


def test_base_swap_per_vector_source_is_swapped_minus_own_paired_on_the_maze(ds, claims):
    for vector in VECTORS:
        for source, (mine_line, swap_line) in VECTOR_SOURCES.items():
            (c,) = _one(claims, vector, "base_swap", where=source)
            swap, own = _loc(ds, vector, swap_line), _loc(ds, vector, mine_line)
            assert c["estimate"] == pytest.approx(swap.mean())
            assert c["detail"]["own"]["estimate"] == pytest.approx(own.mean())
            assert c["detail"]["change"]["estimate"] == pytest.approx(_mean(swap - own))
            assert c["detail"]["source"] == source
    (c,) = _one(claims, "cheese", "base_swap", where="own")
    assert c["estimate"] == pytest.approx(0.8) and c["detail"]["sign"] == "flips"
    assert c["detail"]["change"]["estimate"] == pytest.approx(1.8)
    # built: cheese flips with its own and the leave-one-out vector, keeps with another maze's;
    # top-right keeps with both its own and the leave-one-out vector, and another maze's is 0
    signs = {
        (v, src): _one(claims, v, "base_swap", where=src)[0]["detail"]["sign"]
        for v in VECTORS
        for src in VECTOR_SOURCES
    }
    assert signs == {
        ("cheese", "own"): "flips",
        ("cheese", "leave_one_out"): "flips",
        ("cheese", "other_maze"): "keeps",
        ("top_right", "own"): "keeps",
        ("top_right", "leave_one_out"): "keeps",
        ("top_right", "other_maze"): "inconclusive",
    }


def test_distance_per_vector_source(claims):
    verdicts = {}
    for source, (plus, minus) in DISTANCES.items():
        (c,) = _one(claims, "cheese", "distance", where=source)
        assert c["estimate"] == pytest.approx(plus - minus, abs=0.02)
        assert c["detail"]["plus"]["estimate"] == pytest.approx(plus, abs=0.02)
        verdicts[source] = c["verdict"]
    assert verdicts == {
        "own": "negative",
        "leave_one_out": "negative",
        "other_maze": "inconclusive",
    }


def test_controls_beside_the_own_vector_minus_each_control(ds, claims):
    for vector in VECTORS:
        controls = {c["where"]: c for c in _one(claims, vector, "controls")}
        assert set(controls) == {"random", "other_maze", "leave_one_out", "untrained"}
        for name, c in controls.items():
            e = _loc(ds, vector, name)
            assert c["estimate"] == pytest.approx(e.mean(), abs=1e-12)
            diff = c["detail"]["own_minus_control"]
            assert diff["estimate"] == pytest.approx(_mean(_loc(ds, vector) - e))
            assert diff["n"] == c["n"] == 40
    cheese = {c["where"]: c for c in _one(claims, "cheese", "controls")}
    # a control is read against the vector's own size: margin = 0.2 × |mean own E| (TOST)
    assert cheese["random"]["margin"] == pytest.approx(0.2 * abs(_loc(ds, "cheese").mean()))
    assert cheese["random"]["verdict"] == "equivalent"  # noise of sd 0.02 around 0
    assert cheese["random"]["p_equivalent"] < 0.05 <= cheese["random"]["p_zero"]
    assert cheese["other_maze"]["verdict"] == "negative"  # −0.4: twice the margin
    assert cheese["other_maze"]["estimate"] == pytest.approx(-0.4)
    assert cheese["other_maze"]["detail"]["own_minus_control"]["estimate"] == pytest.approx(-0.6)


def _maze_rates(x: np.ndarray) -> np.ndarray:
    """Per maze (first axis), the mean over episodes (last axis), by hand."""
    return np.array([np.nan if np.isnan(row).all() else np.nanmean(row) for row in x])


def test_rollouts(ds, claims):
    from _study_synthetic import EPISODES

    from hookdiff.stats import bootstrap_mean

    (c,) = _one(claims, "cheese", "rollouts")
    reach = ds["reached_cheese"].sel(site="steering", vector="cheese")
    per = {t: _maze_rates(reach.sel(t=t).values) for t in (-1.0, 0.0, 1.0)}
    e = per[1.0] + per[-1.0] - 2 * per[0.0]  # the paired E of reach rates, per maze
    assert c["estimate"] == pytest.approx(np.nanmean(e)) and c["n"] == ROLLOUT_MAZES
    iv = bootstrap_mean(e, seed=0, method="bca")  # the claims' intervals are BCa
    assert c["ci95"] == pytest.approx([iv.lo, iv.hi]) and c["t"] == 1.0
    assert c["odd"] == pytest.approx(np.nanmean(per[1.0] - per[-1.0]))
    assert c["episodes_per_maze"] == c["detail"]["episodes_per_maze"] == EPISODES == 2
    d = c["detail"]
    assert d["median"] == pytest.approx(np.nanmedian(e))
    assert (d["n_positive"], d["n_negative"]) == (np.sum(e > 0), np.sum(e < 0))
    # the plain rates stay Wilson's, every episode counted
    w = wilson(EPISODES * REACH_CHEESE[-1.0], EPISODES * ROLLOUT_MAZES)
    assert _rate(d["rates"]["-1"]) == pytest.approx([w.estimate, w.lo, w.hi])
    assert d["rates"]["0"]["estimate"] == pytest.approx(REACH_CHEESE[0.0] / 30)
    diff = d["published_minus_unsteered"]  # paired per maze, published t = −1
    assert diff["estimate"] == pytest.approx((REACH_CHEESE[-1.0] - REACH_CHEESE[0.0]) / 30)
    assert diff["n"] == ROLLOUT_MAZES


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
        "leave_one_out",
    }


def test_the_answer_is_reproducible_and_follows_the_seed(ds, claims):
    assert answer(ds) == claims == answer(ds, seed=0)  # the dataset's analysis seed is 0
    other = answer(ds, seed=1)
    for vector in VECTORS:
        assert [c["estimate"] for c in other[vector]] == [c["estimate"] for c in claims[vector]]
    bounds = [c["ci95"] for v in VECTORS for c in claims[v] if c["kind"] != "rollouts"]
    other_bounds = [c["ci95"] for v in VECTORS for c in other[v] if c["kind"] != "rollouts"]
    assert bounds != other_bounds  # another bootstrap seed draws other resamples


def test_without_an_asymmetry_no_cut_is_named_and_the_softmax_has_nothing_to_explain():
    ds = synthetic_study()
    own = dict(control="vector", vector="cheese")
    ds["loc_even"].loc[own] = ds["loc_even"].sel(control="random", vector="cheese").values
    claims = answer(ds)
    (c,) = _one(claims, "cheese", "created")
    assert c["where"] is None and c["detail"]["variant"] is None
    assert c["ci95"][0] < 0 < c["ci95"][1] and c["verdict"] == "inconclusive"
    for c in _one(claims, "cheese", "softmax"):
        assert c["detail"]["reading"] == "no_asymmetry"
    (c,) = _one(claims, "cheese", "base_swap", where="own")
    assert c["detail"]["sign"] == "inconclusive" and c["detail"]["zero_on"] == ["own"]
    (c,) = _one(claims, "cheese", "knockin")
    assert c["detail"]["share"] is None  # no share of an E indistinguishable from 0


def test_a_rounding_residue_is_zero_within_tolerance_not_an_effect():
    # a float32 residue: −3e−08 with a tight interval below 0 is no effect, whatever its interval
    ds = synthetic_study()
    sel = dict(control="random", vector="cheese")
    residue = -3e-8 + np.concatenate([np.full(20, 1e-8), np.full(20, -1e-8)])
    ds["loc_even"].loc[sel] = residue[None, None, :]
    (c,) = _one(answer(ds), "cheese", "controls", where="random")
    assert c["ci95"][1] < 0 and c["estimate"] == pytest.approx(-3e-8)
    assert max(map(abs, [c["estimate"], *c["ci95"]])) <= c["tolerance"]
    # within the control's margin it is equivalent to 0; without a margin, inconclusive
    assert c["verdict"] == "equivalent"
    assert verdict_of(c["estimate"], c["ci95"], c["n"], c["tolerance"]) == "inconclusive"


def test_a_non_monotone_scan_names_the_cut_after_which_every_cut_is_zero():
    # cheese, symmetrised: E = −0.25, −0.2, −0.1, 0, 0 (+ symmetric noise) along CUTS; set E at
    # CUTS[1] to the noise alone, so the scan dips to 0 there and comes back at CUTS[2]
    ds = synthetic_study()
    cut = ds["loc_even_cut"].copy()
    sel = dict(vector="cheese", variant="symmetrize")
    at = cut.loc[dict(**sel, cut=CUTS[1])]
    cut.loc[dict(**sel, cut=CUTS[1])] = at - at.mean("maze")  # mean exactly 0, same noise
    ds["loc_even_cut"] = cut
    found = {c["detail"]["variant"]: c for c in _one(answer(ds), "cheese", "created")}
    assert found["symmetrize"]["where"] == CUTS[3]  # not CUTS[1], the first zero
    assert found["symmetrize"]["detail"]["dips"] == [CUTS[1]]
    assert found["symmetrize"]["detail"]["before"] == CUTS[2]
    assert found["linearize"]["where"] == CUTS[2] and found["linearize"]["detail"]["dips"] == []


def _rate(iv):
    return [iv["estimate"], *iv["ci95"]]


def test_cut_rollouts_report_the_paired_e_at_each_chosen_cut_beside_the_exact_network(ds, claims):
    from _study_synthetic import CUT_ROLL, CUT_ROLL_BASE, CUT_ROLL_MAZES, EPISODES

    for vector, published in (("cheese", 1), ("top_right", 0)):  # cheese: −t, top-right: +t
        found = _one(claims, vector, "cut_rollouts")
        assert [c["where"] for c in found] == list(CUT_ROLL[vector])  # forward order
        var = {"cheese": "reached_cheese", "top_right": "reached_top_right"}[vector]
        for c in found:
            at = dict(vector=vector, variant="symmetrize", cut=c["where"])
            roll = ds[f"loc_roll_{var}"].sel(**at)
            per = {s: _maze_rates(roll.sel(sign=s).values) for s in ("+t", "-t")}
            per["0"] = _maze_rates(ds[f"loc_roll_base_{var}"].sel(**at).values)
            e = per["+t"] + per["-t"] - 2 * per["0"]
            plus, minus = CUT_ROLL[vector][c["where"]]
            want = (plus + minus - 2 * CUT_ROLL_BASE[vector]) / CUT_ROLL_MAZES
            assert c["estimate"] == pytest.approx(np.nanmean(e)) == pytest.approx(want)
            assert c["n"] == CUT_ROLL_MAZES and c["t"] == 1.0
            assert c["odd"] == pytest.approx((plus - minus) / CUT_ROLL_MAZES)
            assert c["episodes_per_maze"] == EPISODES
            assert c["detail"]["variant"] == "symmetrize"
            assert c["detail"]["sign"] == ("-t" if published else "+t")
            # the Wilson rates: the published sign's, and the t = 0 arm's, every episode counted
            count = CUT_ROLL[vector][c["where"]][published]
            w = wilson(EPISODES * count, EPISODES * CUT_ROLL_MAZES)
            own = c["detail"]["rates"][vector][c["detail"]["sign"]]
            assert _rate(own) == pytest.approx([w.estimate, w.lo, w.hi])
            zero = c["detail"]["rates"][vector]["0"]
            assert zero["estimate"] == pytest.approx(CUT_ROLL_BASE[vector] / CUT_ROLL_MAZES)
            pub = c["detail"]["published_minus_unsteered"]
            assert pub["estimate"] == pytest.approx((count - CUT_ROLL_BASE[vector]) / 20)
    # the exact network on the same 20 mazes (their episodes), counted by hand
    (c, *_) = _one(claims, "cheese", "cut_rollouts")
    exact = c["detail"]["exact"]
    steer = ds.sel(site="steering", vector="cheese", maze=slice(0, CUT_ROLL_MAZES - 1))
    for (target, sign), t in {
        ("cheese", "+t"): 1.0,
        ("cheese", "-t"): -1.0,
        ("top_right", "+t"): 1.0,
    }.items():
        k = int(steer[f"reached_{target}"].sel(t=t).sum())
        w = wilson(k, EPISODES * CUT_ROLL_MAZES)
        assert _rate(exact[target][sign]) == pytest.approx([w.estimate, w.lo, w.hi])
    per = {t: _maze_rates(steer["reached_cheese"].sel(t=t).values) for t in (-1.0, 0.0, 1.0)}
    e = per[1.0] + per[-1.0] - 2 * per[0.0]  # its paired E on the same mazes
    assert c["detail"]["exact_e"]["estimate"] == pytest.approx(e.mean())
    assert c["detail"]["exact_e"]["n"] == CUT_ROLL_MAZES


def test_later_layers_matched_name_the_latest_that_still_steers_and_scan_there(ds, claims):
    from _study_synthetic import LATER_CUTS, MATCHED_LAYERS

    (c,) = _one(claims, "cheese", "matched")
    assert c["where"] == MATCHED_LAYERS[2] and c["t"] == 2.5
    assert c["detail"]["position"] == "decision_square"
    e = ds["matched_effect"].sel(
        matched_layer=MATCHED_LAYERS[2], pair_position="decision_square", vector="cheese"
    )
    assert c["estimate"] == pytest.approx(float(e.mean())) and c["verdict"] == "positive"
    # its test is the search's, adjusted over the whole matching, not the answer's family again
    assert c["p_zero"] == 0.004 and c["p_zero_unadjusted"] is None
    assert c["detail"]["layers"][MATCHED_LAYERS[1]]["start"] == {"t": -4.0, "steers": False}
    (c,) = _one(claims, "cheese", "later_created")
    assert c["where"] == LATER_CUTS[1] and c["detail"]["layer"] == MATCHED_LAYERS[2]
    assert c["detail"]["exact"]["estimate"] == pytest.approx(-0.3)
    (c,) = _one(claims, "top_right", "matched")
    assert c["where"] is None and c["estimate"] is None
    assert "empty" in c["detail"] and c["detail"]["layers"]  # measured, none steers
    from hookdiff.study.answer import claims as claim_objects
    from hookdiff.study.wording import short

    (obj,) = [x for x in claim_objects(ds)["top_right"] if x.kind == "matched"]
    assert "not measured" not in short(obj)  # its table line says why it has no estimate
    assert not [c for c in claims["top_right"] if c["kind"] == "later_created"]


def test_verdicts_from_the_fields():
    assert verdict_of(0.3, (0.1, 0.5), 9) == "positive"
    assert verdict_of(-0.3, (-0.5, -0.1), 9) == "negative"
    assert verdict_of(0.3, (-0.1, 0.5), 9) == "inconclusive"
    assert verdict_of(0.3, (0.1, 0.5), 1) == "inconclusive"  # n < 2: no test against 0
    assert verdict_of(0.3, (None, None), 9) == "inconclusive"
    assert verdict_of(-3e-8, (-6e-8, -1e-9), 40, 1e-6) == "inconclusive"
    assert verdict_of(-3e-8, (-6e-8, -1e-9), 40, 0.0) == "negative"  # the tolerance decides
    assert verdict_of(0.01, (-0.02, 0.03), 9, margin=0.05) == "equivalent"
    assert verdict_of(0.01, (-0.02, 0.08), 9, margin=0.05) == "inconclusive"


def test_claims_follow_every_vector_of_the_dataset(ds, monkeypatch):
    # a third vector (a copy of the cheese vector's data): its claims, table and figures come
    # from its VectorSpec alone, with no branch naming it
    import xarray as xr

    from hookdiff.study import report
    from hookdiff.study.answer import claims as claim_records
    from hookdiff.study.figures import draw
    from hookdiff.study.targets import VECTOR_SPECS

    spec = dataclasses.replace(VECTOR_SPECS["cheese"], name="third", label="third")
    monkeypatch.setitem(VECTOR_SPECS, "third", spec)
    third = ds.sel(vector=["cheese"]).assign_coords(vector=["third"])
    three = xr.concat([ds, third], dim="vector", data_vars="minimal", coords="minimal")
    three.attrs["effect_t"] = json.dumps({"cheese": -1.0, "top_right": 1.0, "third": -1.0})
    got = answer(three)
    assert list(got) == ["cheese", "top_right", "third"]
    strip = [{k: v for k, v in c.items() if k not in ("claim", "vector")} for c in got["third"]]
    want = [{k: v for k, v in c.items() if k not in ("claim", "vector")} for c in got["cheese"]]
    assert strip == want
    md = report._md(report._answer(three, claim_records(three)), Path("."))
    assert md.count("| claim | estimate [95 % CI] | n | t | verdict |") == 3
    assert len(draw(three, "answer_controls").axes) == 2


def test_a_claim_of_a_mean_carries_median_sign_counts_bca_and_baseline_terciles(ds, claims):
    from hookdiff.stats import bootstrap_mean, log_odds

    (c,) = _one(claims, "cheese", "asymmetry", readout="logodds")
    p = ds["p_toward_cheese"].sel(site="steering", vector="cheese")
    r = log_odds(p.values)  # (t, maze)
    ti = {t: list(p["t"].values).index(t) for t in (-1.0, 0.0, 1.0)}
    e = r[ti[1.0]] + r[ti[-1.0]] - 2 * r[ti[0.0]]
    d = c["detail"]
    assert d["median"] == pytest.approx(np.median(e))
    assert (d["n_positive"], d["n_negative"]) == (np.sum(e > 0), np.sum(e < 0))
    bca = bootstrap_mean(e, seed=0, method="bca")
    assert c["ci95"] == pytest.approx([bca.lo, bca.hi])
    pct = bootstrap_mean(e, seed=0, method="percentile")
    assert c["ci95"] != pytest.approx([pct.lo, pct.hi])  # the switch is on
    # E per tercile of the baseline log-odds r(0), lowest first, each with its own interval
    order = np.argsort(r[ti[0.0]], kind="stable")
    strata = d["by_baseline"]
    assert len(strata) == 3 and sum(g["e"]["n"] for g in strata) == len(e)
    for g, idx in zip(strata, np.array_split(order, 3)):
        assert g["r0"] == pytest.approx([r[ti[0.0]][idx].min(), r[ti[0.0]][idx].max()])
        assert g["e"]["estimate"] == pytest.approx(e[idx].mean())
        assert g["e"]["ci95"][0] <= g["e"]["estimate"] <= g["e"]["ci95"][1]
    # a rate claim is no mean: no median there
    (w,) = [x for x in _one(claims, "cheese", "rollouts")]
    assert "median" not in w["detail"]["rates"]["0"]


def test_baseline_terciles_group_mazes_by_r0_not_by_e():
    from hookdiff.study.claims_behaviour import by_baseline

    base = np.array([0.5, -2.0, 3.0, 1.0, -1.0, 2.0, np.nan])  # r(0); the last maze: unknown
    e = np.array([10.0, 1.0, -5.0, 2.0, 4.0, 0.0, 7.0])
    got = by_baseline(e, base, seed=0)
    # r(0) order: -2 (1), -1 (4) | 0.5 (0), 1 (3) | 2 (5), 3 (2)
    assert [g["r0"] for g in got] == [[-2.0, -1.0], [0.5, 1.0], [2.0, 3.0]]
    assert [g["e"].estimate for g in got] == [2.5, 6.0, -2.5]
    assert [g["e"].n for g in got] == [2, 2, 2] and by_baseline(e[:2], base[:2], seed=0) == []


def _holm_by_hand(p: list[float]) -> list[float]:
    """Holm's adjusted p-values, written out: the i-th smallest times (m − i), running max."""
    m, order, out, running = len(p), sorted(range(len(p)), key=lambda i: p[i]), [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_the_answers_tests_against_zero_are_one_holm_family_across_vectors(claims):
    flat = [c for v in VECTORS for c in claims[v] if c["p_zero_unadjusted"] is not None]
    assert {"asymmetry", "published", "controls", "rollouts"} <= {c["kind"] for c in flat}
    expected = _holm_by_hand([c["p_zero_unadjusted"] for c in flat])
    for c, p in zip(flat, expected):
        assert c["p_zero"] == pytest.approx(p, rel=1e-12, abs=1e-300)
        assert str(len(flat)) in c["detail"]["family"]
        if c["verdict"] in ("positive", "negative"):
            assert c["p_zero"] < 0.05 and (c["ci95"][0] > 0 or c["ci95"][1] < 0)
    # the scan's own claims keep their scan family (not adjusted twice)
    scan = [c for v in VECTORS for c in claims[v] if c["kind"] == "created"]
    assert scan and all(c["p_zero_unadjusted"] is None for c in scan)


def test_an_interval_that_excludes_zero_is_not_an_effect_when_the_family_does_not_reject():
    ds = synthetic_study()
    sel = dict(control="vector", vector="cheese")
    e = ds["loc_even"].sel(sel).values  # the cheese vector's own E, as a control's: weak now
    z = np.random.default_rng(3).normal(size=e.shape[-1])
    z = (z - z.mean()) / z.std()  # exactly mean 0, sd 1 over the mazes
    scale = np.abs(e).mean()
    weak = scale * (2.3 / np.sqrt(z.size) + z)  # mean 2.3 standard errors above 0: p ≈ 0.02
    ds["loc_even"].loc[dict(control="other_maze", vector="cheese")] = weak
    (c,) = _one(answer(ds), "cheese", "controls", where="other_maze")
    single = verdict_of(c["estimate"], c["ci95"], c["n"], c["tolerance"])
    assert c["p_zero_unadjusted"] < 0.05 <= c["p_zero"], c
    assert single == "positive" and c["verdict"] == "inconclusive"


def test_the_interpolation_rule_is_scored_per_vector_source_beside_the_trivial_rules(ds, claims):
    # by hand: the sign that acts more is sign(E·O); interpolation predicts the sign whose
    # a + s·v is nearer the paired state; the published sign; the sign of O
    for vector, published in (("cheese", -1.0), ("top_right", 1.0)):
        for source, (line, _) in VECTOR_SOURCES.items():
            (c,) = _one(claims, vector, "prediction", where=source)
            e, o = _loc(ds, vector, line), _loc(ds, vector, line, name="loc_odd")
            seen = np.sign(e * o)
            d = ds["base_swap_distance"].sel(source=source, vector=vector)
            guess = np.sign((d.sel(sign="-t") - d.sel(sign="+t")).values)
            hits = (guess == seen).astype(float)
            assert c["estimate"] == pytest.approx(hits.mean() - 0.5)
            assert c["margin"] == pytest.approx(0.1)  # at chance: accuracy within 0.5 ± 0.1
            acc = c["detail"]["accuracy"]
            assert acc["interpolation"]["estimate"] == pytest.approx(hits.mean())
            assert acc["published_sign"]["estimate"] == pytest.approx((seen == published).mean())
            assert acc["raises_target"]["estimate"] == pytest.approx((seen == np.sign(o)).mean())
    # built: cheese's own vector lands nearer the paired state when added, yet subtracting acts
    # more, so interpolation is always wrong there and the published sign always right
    (c,) = _one(claims, "cheese", "prediction", where="own")
    assert c["estimate"] == -0.5 and c["verdict"] == "negative"
    assert c["detail"]["advantage"]["published_sign"]["estimate"] == -1.0


def test_saturation_reads_how_far_the_line_goes_past_the_paired_state(claims):
    got = {
        (v, src): _one(claims, v, "saturation", where=src)[0]
        for v in VECTORS
        for src in VECTOR_SOURCES
    }
    own = got[("cheese", "own")]  # built to stop just past the paired state's readout
    assert own["estimate"] == pytest.approx(0.05, abs=0.01) and own["verdict"] == "equivalent"
    assert own["detail"]["u_star_median"] == pytest.approx(1.0, abs=0.01)
    assert own["detail"]["reached"]["estimate"] == 1.0 and own["n"] == 40
    for key in [("cheese", "leave_one_out"), ("top_right", "own"), ("top_right", "leave_one_out")]:
        c = got[key]  # straight lines: past u* they go on as far again
        assert c["estimate"] == pytest.approx(1.0, abs=0.01) and c["verdict"] == "positive", key


@pytest.mark.parametrize("k", [-0.5, 0.0, 0.3, 1.0, 2.5])
def test_continuation_past_the_crossing_is_the_slope_ratio(k):
    from hookdiff.study.claims_predict import continuation

    ts = np.linspace(-4.0, 4.0, 33)  # a kink at the paired readout 1.0, reached at u* = 0.5
    r = np.where(-ts <= 0.5, 2.0 * -ts, 1.0 + 2.0 * k * (-ts - 0.5))
    u_star, c = continuation(r, ts, paired=1.0, sign=-1.0)
    assert u_star == pytest.approx(0.5) and c == pytest.approx(k)
    assert np.isnan(continuation(r, ts, paired=-5.0, sign=-1.0)[0])  # never reached that way


def test_the_consoles_later_layer_line_is_the_answers_matched_claim(claims):
    """The line `hookdiff study` prints names, per vector, the matched claim's layer (the
    report's answer), "none" where no leave-one-out vector still steers."""
    from _study_synthetic import MATCHED_LAYERS

    from hookdiff.cli import _later_line

    line = _later_line({"answer": claims, "later_hook": "not this"})
    assert line.endswith(f"cheese: {MATCHED_LAYERS[2]}; top_right: none")
    assert "not this" not in line
    many = _later_line({"answer": {"a": claims, "b": {}}, "agents": ["a", "b"]})
    assert many.endswith(f"a (cheese: {MATCHED_LAYERS[2]}; top_right: none); b (not run)")
