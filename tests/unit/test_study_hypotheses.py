"""Hypotheses from a run's claims, and their test on other data (hookdiff.study.hypotheses).

On the hand-built study dataset: each hypothesis reads the same per-maze quantity its claim was
about (its mean is the claim's estimate), a confirmation on the same data confirms what the
answer found, a dataset with the effects reversed refutes the signs, and the confirmatory run's
config keeps every analysis choice of the discovery.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _study_synthetic import synthetic_study

from hookdiff.errors import ConfigError
from hookdiff.stats import holm
from hookdiff.study.answer import claims
from hookdiff.study.hypotheses import (
    QUANTITIES,
    VERDICTS,
    check_fresh,
    confirm,
    confirm_config,
    hypotheses_of,
    read_hypotheses,
    write_hypotheses,
)


@pytest.fixture(scope="module")
def ds():
    return synthetic_study()


@pytest.fixture(scope="module")
def found(ds):
    per_vector = claims(ds)
    return per_vector, hypotheses_of(per_vector, 0.2)


def test_each_hypothesis_reads_the_quantity_its_claim_was_about(ds, found):
    per_vector, hyps = found
    assert {h.kind for h in hyps} >= {"asymmetry", "published", "made", "created", "knockout"}
    assert len({h.id for h in hyps}) == len(hyps)
    by_id = {
        "/".join(str(x) for x in (v, c.kind, c.readout, c.where) if x is not None): c
        for v, cs in per_vector.items()
        for c in cs
    }
    for h in hyps:
        c = by_id[h.id]
        x = h.values(ds)
        assert np.nanmean(x) == pytest.approx(c.estimate, rel=1e-9, abs=1e-12), h.id
        assert h.prediction == ("equivalent" if c.verdict == "equivalent" else c.verdict)
        assert h.where == c.where and h.t == c.t and h.readout == c.readout
    # a claim without a directional or equivalence verdict makes no hypothesis, nor one that is
    # 0 within its numerical tolerance (0 by construction: nothing could refute it)
    made = {h.id for h in hyps}
    assert all(
        (k in made) == (not c.within_tolerance)
        for k, c in by_id.items()
        if c.kind in QUANTITIES
        and c.verdict in ("positive", "negative", "equivalent")
        and not (c.kind == "created" and c.detail.get("variant") == "linearize")
    )


def test_a_zero_by_construction_is_no_hypothesis():
    ds = synthetic_study()
    sel = dict(control="untrained", vector="cheese")
    ds["loc_even"].loc[sel] = 1e-9 * np.sign(np.arange(40) - 19.5)[None, None, :]
    hyps = {h.id for h in hypotheses_of(claims(ds), 0.2)}
    assert "cheese/controls/logodds/untrained" not in hyps
    assert "top_right/controls/logodds/untrained" in hyps  # noise of sd 0.02: measured, not 0


def test_on_the_same_data_the_answer_is_confirmed_with_holm_over_the_family(ds, found):
    _, hyps = found
    rows = confirm(ds, hyps)
    assert [r["id"] for r in rows] == [h.id for h in hyps]
    assert all(r["verdict"] in VERDICTS for r in rows)
    assert [r["p_adjusted"] for r in rows] == pytest.approx(holm(np.array([r["p"] for r in rows])))
    directional = [r for r in rows if r["prediction"] != "equivalent"]
    assert directional and all(r["verdict"] == "confirmed" for r in directional)
    for r in rows:
        assert r["estimate"] == pytest.approx(r["discovery"]["estimate"], rel=1e-9, abs=1e-12)


def test_reversed_effects_refute_the_predicted_signs(ds, found):
    _, hyps = found
    flipped = ds.copy(deep=True)
    for name in ("p_toward_cheese", "p_toward_top_right"):
        if name in flipped:
            flipped[name] = 1.0 - flipped[name]  # every log-odds and P effect changes sign
    asym = [h for h in hyps if h.kind in ("asymmetry", "published")]
    assert asym
    rows = confirm(flipped, asym)
    assert all(r["verdict"] == "refuted" for r in rows), [(r["id"], r["ci95"]) for r in rows]


def test_a_predicted_equivalence_is_refuted_when_the_effect_comes_back(ds, found):
    _, hyps = found
    eq = [h for h in hyps if h.prediction == "equivalent" and h.kind == "controls"]
    assert eq
    back = ds.copy(deep=True)
    for h in eq:
        sel = dict(control=h.where, vector=h.vector)
        back["loc_even"].loc[sel] = back["loc_even"].sel(control="vector", vector=h.vector).values
    rows = confirm(back, eq)
    assert all(r["verdict"] == "refuted" for r in rows)


def test_the_hypotheses_file_round_trips_and_fixes_the_analysis(ds, found, tmp_path):
    _, hyps = found
    path = tmp_path / "run" / "hypotheses.json"
    path.parent.mkdir()
    write_hypotheses(path, hyps, ds)
    back, record = read_hypotheses(path)
    assert back == hyps and record["level_seeds"] == [int(s) for s in ds["level_seed"].values]
    config = confirm_config(path, {"seed": 3, "levels": None})
    assert config.seed == 3 and config.confirm == str(path.resolve())
    assert config.out_dir.endswith("run-confirm")
    with pytest.raises(ConfigError, match="threshold, ts fixed by the hypotheses"):
        confirm_config(path, {"ts": (-1.0, 0.0, 1.0), "threshold": 0.2})
    with pytest.raises(ConfigError, match="2 of the 3 mazes were studied"):
        check_fresh([40500, 40501, 99999], record, str(path))
    check_fresh([99998, 99999], record, str(path))
    path.write_text(json.dumps({"nothing": 1}))
    with pytest.raises(ConfigError, match="not a hypotheses file"):
        read_hypotheses(path)


def test_at_chance_is_a_hypothesis_that_a_rule_right_everywhere_refutes(ds):
    from hookdiff.study.hypotheses import Hypothesis

    # cheese, own vector: built so that the interpolation rule is always wrong (accuracy 0)
    at_chance = Hypothesis(
        "cheese/prediction/own", "prediction", "cheese", "equivalent", None, 1.0, "own",
        margin_fraction=0.2,
    )  # fmt: skip
    (row,) = confirm(ds, [at_chance])
    assert row["margin"] == pytest.approx(0.1) and row["estimate"] == -0.5
    assert row["verdict"] == "refuted"  # accuracy 0 lies wholly outside 0.5 ± 0.1
