"""The control matched in effect and the odd part beside every intervention.

Pure parts on hand-built numbers (the asymmetry index, the ratio of means, the kinks split by
sign), the claims on the synthetic study (``_study_synthetic``: known answers), and the
measuring step on the shipped agent (3 mazes): the matched t* reaches the vector's |O| with O's
sign, and the results do not depend on how the mazes are split into blocks.
"""

from __future__ import annotations

import numpy as np
import pytest
from _study_synthetic import KI_KEEPS, KO_KEEPS, ODD, RME_DRAWS, N, synthetic_study

from hookdiff.study.answer import answer, claims
from hookdiff.study.claims_controls import (
    KILLS_STEERING,
    asymmetry_index,
    random_matched,
    random_matched_made,
    ratio_of_means,
)
from hookdiff.study.claims_localise import kink_signs
from hookdiff.study.schema import RANDOM_MATCHED


@pytest.fixture(scope="module")
def ds():
    return synthetic_study()


@pytest.fixture(scope="module")
def by_kind(ds):
    out = {}
    for vector, cs in claims(ds).items():
        for c in cs:
            out.setdefault((vector, c.kind), []).append(c)
    return out


# --- pure parts ------------------------------------------------------------------------------


def test_the_asymmetry_index_is_the_sum_of_the_two_moves_over_their_sizes():
    rng = np.random.default_rng(0)
    plus, minus = rng.normal(size=50), rng.normal(size=50)  # Δ± = r(±t) − r(0)
    want = (plus + minus) / (np.abs(plus) + np.abs(minus))
    got = asymmetry_index(plus + minus, plus - minus)  # from E and O
    assert got == pytest.approx(want)
    assert np.isnan(asymmetry_index(np.array([0.0]), np.array([0.0])))[0]


def test_the_ratio_of_means_resamples_mazes_with_their_pair():
    num, den = np.array([1.0, 3.0, np.nan, 2.0]), np.array([2.0, 2.0, 5.0, 4.0])
    iv = ratio_of_means(num, den, seed=0)
    assert iv.n == 3 and iv.estimate == pytest.approx(6.0 / 8.0)
    assert iv.lo < iv.estimate < iv.hi
    # a fixed ratio per maze: the interval has no width (mean of ratios would differ, too)
    flat = ratio_of_means(np.array([1.0, 4.0]), np.array([2.0, 8.0]), seed=0)
    assert (flat.lo, flat.hi) == pytest.approx((0.5, 0.5))
    # one maze with a large O that is mostly lost: the ratio of the means (0.135), not the mean
    # of the per-maze ratios (0.82, whose resamples lie above 0.6), in the estimate and in every resample
    skew = ratio_of_means(np.array([1.0] * 4 + [10.0]), np.array([1.0] * 4 + [100.0]), seed=0)
    assert skew.estimate == pytest.approx(14 / 104) and skew.lo < 0.2 < skew.hi


def test_kinks_that_cancel_are_reported_by_sign():
    d = kink_signs([3.0, -2.0, 0.5, float("nan")], 1.5)
    assert (d["positive"], d["negative"]) == (3.5, -2.0)
    assert d["positive_share"] == pytest.approx(3.5 / 1.5) and d["cancels"]
    assert not kink_signs([1.0, 0.5], 1.5)["cancels"]


# --- claims on the synthetic study -----------------------------------------------------------


def test_the_matched_control_compares_the_vectors_e_with_a_push_of_the_same_size(by_kind):
    (c,) = by_kind[("cheese", "random_matched")]
    assert c.where == RANDOM_MATCHED and c.detail["control"] == RANDOM_MATCHED
    assert c.detail["draws"] == RME_DRAWS and c.n == N  # mazes are the units, draws averaged
    # vector E −1.0, matched random −2.0 (log-odds): the vector minus the matched push is +1
    assert c.estimate == pytest.approx(1.0) and c.verdict == "positive"
    assert c.detail["matched"].estimate == pytest.approx(-2.0)
    assert c.detail["reading"] == "smaller"  # a generic push makes more of it: not specific
    assert c.detail["own_index"].estimate == pytest.approx(-0.25, abs=1e-3)
    assert c.detail["matched_index"].estimate == pytest.approx(-0.5, abs=1e-3)
    assert c.odd == pytest.approx(4.0 * ODD)
    (tr,) = by_kind[("top_right", "random_matched")]
    assert tr.verdict == "inconclusive" and tr.detail["reading"] == "same"


def test_a_draw_that_did_not_reach_the_goal_is_left_out(ds):
    base = random_matched(ds, "cheese", 0)[0]
    broken = ds.copy(deep=True)
    broken["rme_even"].loc[{"vector": "cheese", "control_draw": 2, "maze": 0}] = 1e6
    assert random_matched(broken, "cheese", 0)[0].estimate == pytest.approx(base.estimate)
    assert base.detail["reached"] == pytest.approx(1 - 1 / (RME_DRAWS * N))


def test_the_matched_push_makes_its_asymmetry_in_another_span(ds, by_kind):
    (made,) = by_kind[("cheese", "made")]
    (c,) = by_kind[("cheese", "random_matched_made")]
    assert c.where == made.where  # read in the vector's own top span
    assert c.detail["own_share"].estimate == pytest.approx(made.detail["share"])
    assert c.detail["matched_share"].estimate == pytest.approx(0.0, abs=1e-12)
    assert c.estimate == pytest.approx(made.detail["share"]) and c.verdict == "positive"
    assert not c.detail["same_span"] and c.detail["matched_span"].endswith("block2.res2.resadd_out")
    assert random_matched_made(ds, "top_right", 0) == []  # no logit asymmetry to locate


def test_an_answer_has_a_control_claim_matched_in_effect_with_its_odd_part(ds):
    got = [c for c in answer(ds)["cheese"] if c["kind"] == "random_matched"]
    assert got and got[0]["detail"]["control"] == RANDOM_MATCHED and got[0]["odd"] is not None
    assert got[0]["control"] == RANDOM_MATCHED  # a top-level field, as outside checks read it
    others = [c for c in answer(ds)["cheese"] if c["kind"] == "controls"]
    assert {c["control"] for c in others} == {"random", "other_maze", "leave_one_out", "untrained"}
    assert all(
        c["odd"] is not None
        for c in answer(ds)["cheese"]
        if c["kind"] in ("created", "knockout", "knockin", "controls", "random_matched")
    )


def test_a_knockout_that_kills_the_steering_is_flagged_and_worded(by_kind):
    (ko,) = by_kind[("cheese", "knockout")]
    assert ko.where == "L2" and KO_KEEPS[1] < KILLS_STEERING
    assert ko.detail["steering_kept"].estimate == pytest.approx(KO_KEEPS[1])
    assert ko.detail["kills_steering"] and ko.verdict == "positive"  # the verdict stays data
    assert ko.odd == pytest.approx(KO_KEEPS[1] * 4.0 * ODD, rel=0.05)  # O with the knock-out
    assert "does not locate the asymmetry" in answer_sentence(ko)
    # read on the index: E × 0.2 over O × 0.3 (from E −1, O 4 → −0.25): −0.1667 + 0.25
    assert ko.detail["index_change"].estimate == pytest.approx(-0.2 / 1.2 + 0.25, abs=2e-3)
    (ki,) = by_kind[("cheese", "knockin")]
    assert ki.detail["steering_kept"].estimate == pytest.approx(KI_KEEPS[2])
    assert not ki.detail["kills_steering"]
    assert "does not locate" not in answer_sentence(ki)


def test_cut_claims_carry_the_odd_part_at_their_cut(by_kind):
    for c in by_kind[("cheese", "created")]:
        assert c.odd is not None and c.detail["steering_kept"].estimate == pytest.approx(1.0)


def test_every_control_has_its_asymmetry_index(by_kind):
    for c in by_kind[("cheese", "controls")]:
        assert c.detail["control"] == c.where
        assert c.detail["own_index"].estimate == pytest.approx(-0.25, abs=1e-3)
    other = next(c for c in by_kind[("cheese", "controls")] if c.where == "other_maze")
    assert other.detail["index"].estimate == pytest.approx(-0.1, abs=1e-3)  # E −0.4 over O 4.0


def test_the_kinks_claim_says_which_contributions_cancel(by_kind):
    (k,) = by_kind[("cheese", "kinks")]
    assert (k.detail["positive"], k.detail["negative"]) == pytest.approx((0.15, -0.5))
    assert k.detail["cancels"] and "cancelling terms" in answer_sentence(k)


def answer_sentence(c):
    from hookdiff.study.wording import sentence

    return sentence(c)


def test_the_reading_compares_sizes_and_signs_not_only_the_difference():
    from hookdiff.stats import Interval
    from hookdiff.study.claims_controls import matched_reading

    diff = Interval(20.7, 5.6, 37.3, 4)  # vector − matched: above 0 ...
    own, matched = Interval(0.69, 0.2, 1.2, 4), Interval(-20.0, -34.0, -6.0, 4)
    assert matched_reading(diff, own, matched, 1e-6) == "smaller_opposite"  # ... yet smaller
    # the vector's own E not distinguishable from 0: no sign to oppose
    own = Interval(0.69, -1.1, 2.5, 4)
    assert matched_reading(diff, own, matched, 1e-6) == "smaller"
    assert (
        matched_reading(
            Interval(-3.0, -5.0, -1.0, 4),
            Interval(-6.0, -8.0, -4.0, 4),
            Interval(-3.0, -4.0, -2.0, 4),
            1e-6,
        )
        == "larger"
    )
    assert matched_reading(Interval(0.1, -1.0, 1.2, 4), own, matched, 1e-6) == "same"
