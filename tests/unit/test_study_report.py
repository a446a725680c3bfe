"""The report's answer section and the answer's figures, on the hand-built study dataset.

The report opens its answer with the glance (four questions, each answered from a claim) and
one verdict table per vector (a row per claim: its estimate
with the interval, n, t and verdict, read from the claim's fields), then one line per claim and
the details; it says once what was not measured. Each answer figure plots the numbers of its
claims: the tests recompute them from the dataset (plain numpy) and find them in the figure's
plotted data, as tests/integration/test_maze_plot.py reads a quiver's arrows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from _study_synthetic import CUT_ROLL, CUT_ROLL_MAZES, REACH_CHEESE, ROLLOUT_MAZES, synthetic_study

from hookdiff.claim import Claim
from hookdiff.stats import Interval
from hookdiff.study import report
from hookdiff.study.answer import claims
from hookdiff.study.figures import (
    FIGURE_SPECS,
    answer_figure_names,
    draw,
    draw_answer_figures,
    figure_sites,
)
from hookdiff.study.glance import glance_rows
from hookdiff.study.schema import VECTOR_SOURCES
from hookdiff.study.wording import number, sentence, short

STEERING = "embedder.block2.res1.resadd_out"


def _answer_md(ds) -> str:
    return report._md(report._answer(ds, claims(ds)), Path("."))


def _tables(md: str) -> list[list[list[str]]]:
    """The Markdown tables of ``md``, each as rows of cells (header first, rule dropped)."""
    tables, rows = [], []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def test_answer_opens_with_one_verdict_table_per_vector_read_from_the_claims():
    ds = synthetic_study()
    per_vector = claims(ds)
    md = _answer_md(ds)
    assert md.startswith("## Answer")
    tables = _tables(md)
    assert len(tables) == 2 * len(per_vector)  # per vector: the glance, then the verdict table
    glances, tables = tables[0::2], tables[1::2]
    assert all(g[0] == ["question", "answer", "verdict of its claim"] for g in glances)
    before_details = md.index("### In detail")
    for table, cs in zip(tables, per_vector.values()):
        header, *rows = table
        assert header == ["claim", "estimate [95 % CI]", "n", "t", "verdict"]
        assert len(rows) == len(cs)
        for row, c in zip(rows, cs):
            assert row[1] == number(c) and row[2] == str(c.n)
            assert row[4].split(" (")[0] == c.verdict
            assert row[4].endswith("(0 within tolerance)") == c.within_tolerance
        assert md.index("| " + " | ".join(header)) < before_details
    verdicts = [r[4] for t in tables for r in t[1:]]
    assert {"positive", "negative", "inconclusive", "inconclusive (0 within tolerance)"} <= set(
        verdicts
    )
    for cs in per_vector.values():
        for c in cs:
            assert sentence(c) in md[before_details:]  # each claim in full, in the details
            assert md.index(short(c)) < before_details


def test_answer_section_says_once_what_is_missing_and_when_the_later_layer_is_the_steering_one():
    ds = synthetic_study(localised=False, later_hook=STEERING)
    md = _answer_md(ds)
    assert md.count("Not measured in this run") == 1 and "loc_even_cut" in md
    assert md.count("the later layer is the steering layer") == 1
    assert not [c for cs in claims(ds).values() for c in cs if c.kind == "later"]
    assert figure_sites(ds) == ["steering"]
    assert figure_sites(synthetic_study()) == ["steering", "later"]
    assert "Not measured" not in _answer_md(synthetic_study())


def test_no_later_layer_steering_is_said_once():
    from hookdiff.study.answer import no_later_layer_steers

    ds = synthetic_study()
    assert not no_later_layer_steers(ds)
    ds["later_scan_layer"] = ("vector", np.array(["", ""]))
    assert no_later_layer_steers(ds)
    assert _answer_md(ds).count("No later layer still steers") == 1


# --- the figures' data ------------------------------------------------------------------------


def _plotted(fig) -> np.ndarray:
    """Every y value a figure plots: lines and error-bar points, and bar heights."""
    ys = []
    for ax in fig.axes:
        for line in ax.lines:
            ys.append(np.asarray(line.get_ydata(), dtype=float).ravel())
        for patch in ax.patches:
            if hasattr(patch, "get_height"):
                ys.append(np.array([patch.get_height()], dtype=float))
    return np.concatenate(ys) if ys else np.array([])


def _at1(ds, name, vector, readout="logodds", **sel):
    return float(ds[name].sel(vector=vector, readout=readout, t_loc=1.0, **sel).mean())


def _asymmetry(ds):
    out = []
    for vector, var in (("cheese", "p_toward_cheese"), ("top_right", "p_toward_top_right")):
        p = ds[var].sel(site="steering", vector=vector)
        out += [float((p.sel(t=t) + p.sel(t=-t) - 2 * p.sel(t=0.0)).mean()) for t in (0.5, 1.0)]
        out += [float((p.sel(t=1.0) - p.sel(t=0.0)).mean())]
    return out


def _cuts(ds):
    return [
        _at1(ds, "loc_even_cut", v, r, variant=var, cut=c)
        for v in ("cheese", "top_right")
        for r in ("p", "margin")
        for var in ("symmetrize", "linearize")
        for c in ds["cut"].values
    ]


def _softmax(ds):
    return [
        x
        for v in ("cheese", "top_right")
        for r in ("p", "logodds", "margin")
        for x in (
            _at1(ds, "loc_even", v, r, control="vector"),
            _at1(ds, "loc_even_cut", v, r, variant="symmetrize", cut="fc_policy_out"),
        )
    ]


def _layers(ds):
    return [
        _at1(ds, name, v, frozen_layer=layer)
        for name in ("loc_even_knockout", "loc_even_knockin")
        for v in ("cheese", "top_right")
        for layer in ds["frozen_layer"].values
    ]


def _kinks(ds):
    return [
        float(ds["kink_even"].sel(vector="cheese", t_loc=1.0, frozen_layer=x).mean())
        for x in ds["frozen_layer"].values
    ]


def _base_swap(ds):
    lines = [line for two in VECTOR_SOURCES.values() for line in two]
    out = [_at1(ds, "loc_even", v, control=c) for c in lines for v in ("cheese", "top_right")]
    return out + [
        float(ds["base_swap_distance"].sel(source=src, vector="cheese", sign=s).mean())
        for src in VECTOR_SOURCES
        for s in ("+t", "-t")
    ]


def _controls(ds):
    out = [_at1(ds, "loc_even", "cheese", control=c) for c in ("vector", "other_maze")]
    return out + [k / ROLLOUT_MAZES for k in REACH_CHEESE.values()]


def _cut_rollouts(ds):
    return [k / CUT_ROLL_MAZES for by in CUT_ROLL.values() for pair in by.values() for k in pair]


def _later(ds):
    e = ds["later_even_cut"].sel(vector="cheese", variant="symmetrize", readout="margin")
    return [2.5, 4.0, 3.0] + [float(e.sel(later_cut=c).mean()) for c in ds["later_cut"].values]


#: What each answer figure must plot, recomputed from the dataset.
EXPECTED = {
    "answer_asymmetry": _asymmetry,
    "answer_cuts": _cuts,
    "answer_softmax": _softmax,
    "answer_layers": _layers,
    "answer_kinks": _kinks,
    "answer_base_swap": _base_swap,
    "answer_controls": _controls,
    "answer_cut_rollouts": _cut_rollouts,
    "answer_later": _later,
}


def test_every_answer_figure_has_its_data_check():
    assert {f.stem for f in FIGURE_SPECS if f.stem.startswith("answer_")} == set(EXPECTED)


@pytest.mark.parametrize("stem", list(EXPECTED))
def test_answer_figures_plot_the_numbers_of_their_claims(stem):
    ds = synthetic_study()
    plotted = _plotted(draw(ds, stem))
    for want in EXPECTED[stem](ds):
        assert np.isclose(plotted, want, atol=1e-9).any(), (stem, want)


@pytest.mark.parametrize("localised", [True, False])
def test_answer_figures_are_written_for_the_claims_the_dataset_has(tmp_path, localised):
    ds = synthetic_study(localised=localised)
    paths = draw_answer_figures(ds, tmp_path)
    assert [p.name for p in paths] == answer_figure_names(ds)
    expected = 9 if localised else 2  # without loc_*: the asymmetry and the controls/rollouts
    assert len(paths) == expected
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p


def _claim(kind, estimate, lo, hi, readout="logodds", odd=None, **detail):
    iv = Interval(estimate, lo, hi, 104)
    return Claim.of(kind, "cheese", iv, readout=readout, t=1.0, odd=odd, detail=detail)


def test_the_glance_answers_four_questions_from_the_claims_verdicts():
    own, big = Interval(-3.5, -4.5, -2.7, 104), Interval(-14.3, -18.0, -11.0, 104)
    flipped = Interval(+6.8, +5.0, +9.0, 104)
    made = _claim("made", -1.4, -1.7, -1.1, readout="margin")
    made = dataclasses.replace(made, where="a → b")
    cases = [
        # (claims, the answer's first word per question, in GLANCE order)
        (
            [
                _claim("asymmetry", -3.5, -4.5, -2.7, odd=+5.8),
                _claim("random_matched", 10.8, 7.7, 14.8, own=own, matched=big),
                made,
                _claim("rollouts", -0.16, -0.39, 0.02, readout=None),
            ],
            ["yes", "no", "most", "not at this n"],
        ),
        (
            [
                _claim("asymmetry", 0.1, -0.2, 0.4),
                _claim("random_matched", -10.3, -12.0, -8.0, own=own, matched=flipped),
                _claim("rollouts", 0.3, 0.1, 0.5, readout=None),
            ],
            ["cannot tell", "yes, in sign", "cannot tell", "yes"],  # no "made" claim
        ),
    ]
    for cs, first_words in cases:
        rows = glance_rows(cs)
        assert rows[0] == ["question", "answer", "verdict of its claim"]
        assert len(rows) - 1 == len(first_words)
        for row, word in zip(rows[1:], first_words):
            assert row[1].startswith(word + ":") or row[1].startswith(word + " "), row
    assert glance_rows(cases[1][0])[3][2] == "—"  # the missing claim has no verdict
    first = glance_rows(cases[0][0])[1]
    assert "subtracting" in first[1] and first[2] == "negative"  # E < 0 < O: −v moves it more


def test_the_header_names_the_given_levels_and_the_skipped_ones():
    ds = synthetic_study()
    ds.attrs["skipped_levels"] = json.dumps([[52001, "no decision square"]])
    spec = report._mazes_text(ds, {"maze_spec": "eval-decision-square"}, {"mazes": 3})
    assert spec.startswith(f"{ds.sizes['maze']} mazes from spec `eval-decision-square` (seed 3)")
    given = report._mazes_text(ds, {"maze_spec": "x", "levels": "@levels.txt"}, {"mazes": 3})
    assert "levels given by `--levels @levels.txt`" in given and "spec" not in given
    assert "1 skipped: 52001 (no decision square)" in given
