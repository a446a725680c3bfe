"""The report's answer section and the answer's figures, on the hand-built study dataset.

The report answers first (every claim of :func:`hookdiff.study.answer.answer`, with its interval),
says once what was not measured and that the later layer is the steering layer when it is; the
answer's figures are drawn from the dataset alone, one per claim whose variables are present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _study_synthetic import synthetic_study

from hookdiff.study import report
from hookdiff.study.answer import answer
from hookdiff.study.figures import answer_figure_names, draw_answer_figures, figure_sites

STEERING = "embedder.block2.res1.resadd_out"


def _answer_md(ds) -> str:
    return report._md(report._answer(ds, answer(ds)), Path("."))


def test_answer_section_gives_every_claim_per_vector_with_its_interval():
    ds = synthetic_study()
    md = _answer_md(ds)
    assert md.startswith("## Answer")
    assert md.index("### cheese vector") < md.index("### top-right vector")
    for claims in answer(ds).values():
        for c in claims:
            assert c["claim"] in md
    assert "**Where is the logits' asymmetry created?** Symmetrised at `embedder.fc_out`" in md
    assert "Not measured" not in md and "linear radius" not in md
    assert "is the steering layer" not in md


def test_answer_section_says_once_what_is_missing_and_when_the_later_layer_is_the_steering_one():
    ds = synthetic_study(localised=False, later_hook=STEERING)
    md = _answer_md(ds)
    assert md.count("Not measured in this run") == 1 and "loc_even_cut" in md
    assert md.count("the later layer is the steering layer") == 1
    assert "**At the later layer.**" not in md
    assert figure_sites(ds) == ["steering"]
    assert figure_sites(synthetic_study()) == ["steering", "later"]


@pytest.mark.parametrize("localised", [True, False])
def test_answer_figures_are_drawn_from_the_dataset(tmp_path, localised):
    ds = synthetic_study(localised=localised)
    paths = draw_answer_figures(ds, tmp_path)
    assert [p.name for p in paths] == answer_figure_names(ds)
    expected = 9 if localised else 2  # without loc_*: the asymmetry and the controls/rollouts
    assert len(paths) == expected
    for p in paths:
        assert p.stat().st_size > 5000, p


def test_no_later_layer_steering_is_said_once():
    from hookdiff.study.answer import no_later_layer_steers

    ds = synthetic_study()
    assert not no_later_layer_steers(ds)
    ds["later_scan_layer"] = ("vector", np.array(["", ""]))
    assert no_later_layer_steers(ds)
    md = _answer_md(ds)
    assert md.count("No later layer still steers") == 1
    assert "No later layer still steers either vector" in md
