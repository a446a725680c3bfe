"""The answer's sentences carry their claims' numbers, formatted from the fields (study.wording).

The one test module that reads sentences: it checks that every number a sentence gives is the
claim's own field as :mod:`hookdiff.study.wording` formats it, and that a verdict is worded as the
field says (never an effect for an inconclusive claim).
"""

from __future__ import annotations

import numpy as np
import pytest
from _study_synthetic import synthetic_study

from hookdiff.claim import Claim, interval_dict
from hookdiff.stats import Interval
from hookdiff.study.answer import claims
from hookdiff.study.wording import interval_text, number, sentence, short, verdict_text


@pytest.fixture(scope="module")
def per_vector():
    return claims(synthetic_study())


def _intervals(detail):
    """Every interval held in a claim's detail (nested dicts included)."""
    for v in detail.values():
        if isinstance(v, Interval):
            yield v
        elif isinstance(v, dict):
            yield from _intervals(v)


def test_every_sentence_gives_the_claims_numbers_as_formatted_from_its_fields(per_vector):
    for cs in per_vector.values():
        for c in cs:
            text, line = sentence(c), short(c)
            assert verdict_text(c) in line and number(c) in line, line
            if c.n == 0:  # nothing measured: no number to give
                continue
            assert number(c) in text, (c.kind, text)
            for iv in _intervals(c.detail):
                if c.kind in ("rollouts", "cut_rollouts"):
                    assert interval_text(iv, 2, False) in text or interval_text(iv, 2) in text
                elif c.kind in ("prediction", "saturation"):  # rates, unsigned
                    assert interval_text(iv, 3, False) in text or interval_text(iv) in text
                else:
                    assert interval_text(iv) in text, (c.kind, iv, text)


def test_an_inconclusive_claim_is_never_worded_as_an_effect(per_vector):
    for cs in per_vector.values():
        for c in cs:
            if c.verdict == "inconclusive" and c.n >= 2:
                said = verdict_text(c)
                assert "above 0" not in said and "below 0" not in said
    residue = Claim.of(
        "controls",
        "cheese",
        Interval(-3e-8, -6e-8, -1e-9, 40),
        readout="logodds",
        t=1.0,
        where="random",
        detail={"own_minus_control": Interval(-1.0, -1.1, -0.9, 40)},
    )
    assert residue.within_tolerance and residue.verdict == "inconclusive"
    assert verdict_text(residue) in sentence(residue)
    assert "below 0" not in verdict_text(residue) and "tolerance" in verdict_text(residue)
    assert "-3.0e-08 [-6.0e-08, -1.0e-09]" in sentence(residue)


def test_numbers_too_small_for_three_decimals_show_their_size():
    assert interval_text(Interval(-2e-5, -3e-5, -1e-5, 4)) == "-2.0e-05 [-3.0e-05, -1.0e-05]"
    assert interval_text(Interval(0.25, 0.0, 0.5, 4)) == "+0.250 [+0.000, +0.500]"
    assert interval_text(Interval(3.0, np.nan, np.nan, 1)) == "+3.000 (no interval from n = 1)"


def test_a_claim_serialises_its_fields_and_detail(per_vector):
    c = per_vector["cheese"][0]
    d = c.to_dict("text")
    assert d["claim"] == "text" and d["verdict"] == c.verdict and d["ci95"] == list(c.ci95)
    assert interval_dict(Interval(1.0, np.nan, np.nan, 1)) == {
        "estimate": 1.0,
        "ci95": [None, None],
        "n": 1,
    }
