"""The study's answer: claims as data, with verdicts, read from the saved dataset alone.

:func:`answer` turns the study Dataset into claims per vector: each a
:class:`~hookdiff.claim.Claim` (kind, vector, readout, t, estimate, ci95, n, where,
verdict, odd, tolerance, margin, detail) serialised with its sentence, which
:mod:`hookdiff.study.wording` generates from those fields. The claims, in order (:data:`CLAIMS`,
one row per kind: its builder and the dataset variables it needs): the add/subtract asymmetry of
behaviour, the published sign against the mirrored one, where the logits' asymmetry is created
(the cut scan of the margin) and made, how much the softmax adds (the softmax-only test), which
layers carry it (knock-out, knock-in, exact kinks), whether the base swap flips it and which sign
interpolates, the controls, the rollouts (exact and with the network cut at the cuts that
matter), and the later layers. Means over mazes use the bootstrap over mazes, comparisons are
paired on the same maze, rates use Wilson intervals (:mod:`hookdiff.stats`). A claim whose
dataset variables are absent is skipped; :func:`missing` says which, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xarray as xr

from hookdiff.claim import VERDICTS, Claim, adjust_family
from hookdiff.errors import UnknownNameError, unknown_name_message
from hookdiff.stats import Interval, rate
from hookdiff.study import claims_behaviour as behaviour
from hookdiff.study import claims_controls as matched_controls
from hookdiff.study import claims_localise as localise
from hookdiff.study import claims_predict as predict
from hookdiff.study.claims_localise import LOGITS
from hookdiff.study.schema import (
    CONTROLS,
    CUT_READOUT,
    PRIMARY,
    READOUT_TEXT,
    READOUTS,
    SOFTMAX_READOUTS,
)
from hookdiff.study.select import (
    bootstrap_seed,
    cut_intervals,
    cut_rollout_rates,
    even_of_target,
    exact_rollout_rates,
    later_steers,
    layer_scan,
    loc_values,
    made_between,
    no_later_layer_steers,
    published_t,
    scaled,
    t_loc_one,
    target_readout,
    vectors_of,
)
from hookdiff.study.targets import VECTOR_SPECS
from hookdiff.study.wording import interval_text, sentence

__all__ = [
    "CLAIMS",
    "CONTROLS",
    "CUT_READOUT",
    "KINDS",
    "LOGITS",
    "NEEDS",
    "PRIMARY",
    "READOUTS",
    "READOUT_TEXT",
    "SOFTMAX_READOUTS",
    "VERDICTS",
    "Claim",
    "ClaimKind",
    "answer",
    "answer_data",
    "bootstrap_seed",
    "claims",
    "cut_intervals",
    "cut_rollout_rates",
    "even_of_target",
    "exact_rollout_rates",
    "interval_text",
    "later_steers",
    "layer_scan",
    "loc_values",
    "made_between",
    "missing",
    "no_later_layer_steers",
    "published_t",
    "rate",
    "scaled",
    "t_loc_one",
    "target_readout",
    "verdict",
]

Builder = Callable[[xr.Dataset, str, int], list[Claim]]


@dataclass(frozen=True)
class ClaimKind:
    """One kind of claim: its name, the builder ``(ds, vector, seed) -> [Claim]``, the dataset
    variables it reads (absent: the kind is skipped and :func:`missing` names them), and the
    question of the report it answers."""

    kind: str
    build: Builder
    needs: tuple[str, ...]
    question: str


# fmt: skip (below): one row per entry reads as a table
#: The claims in the order the answer gives them (the one registry of claim kinds).
CLAIMS: tuple[ClaimKind, ...] = (
    ClaimKind("asymmetry", behaviour.asymmetry, (), "Is there an asymmetry?"),
    ClaimKind("published", behaviour.published, (), "Is there an asymmetry?"),
    ClaimKind("created", localise.created, ("loc_even_cut", "loc_even"),
              "Where is the logits' asymmetry created?"),
    ClaimKind("made", localise.made, ("loc_even_cut", "loc_even"),
              "Where is the logits' asymmetry created?"),
    ClaimKind("softmax", localise.softmax, ("loc_even_cut", "loc_even"),
              "How much does the softmax add?"),
    ClaimKind("knockout", localise.knockout, ("loc_even_knockout", "loc_even"),
              "Which layers carry it?"),
    ClaimKind("knockin", localise.knockin, ("loc_even_knockin", "loc_even"),
              "Which layers carry it?"),
    ClaimKind("kinks", localise.kinks, ("kink_even", "kink_even_total"),
              "Which layers carry it?"),
    ClaimKind("base_swap", localise.base_swap, ("loc_even",), "Does it follow the base?"),
    ClaimKind("distance", localise.distance, ("base_swap_distance",),
              "Does it follow the base?"),
    ClaimKind("prediction", predict.prediction, ("base_swap_distance", "loc_odd"),
              "Does it follow the base?"),
    ClaimKind("saturation", predict.saturation, ("sweep_r", "loc_base", "base_swap_distance"),
              "Does it follow the base?"),
    ClaimKind("controls", localise.controls, ("loc_even",), "Against controls."),
    ClaimKind("random_matched", matched_controls.random_matched,
              ("rme_even", "rme_odd", "rme_reached", "rme_t", "rme_goal", "loc_even", "loc_odd"),
              "Against controls."),
    ClaimKind("random_matched_made", matched_controls.random_matched_made,
              ("rme_even_cut", "rme_even", "rme_reached", "loc_even_cut", "loc_even"),
              "Against controls."),
    ClaimKind("rollouts", behaviour.rollouts, (), "In rollouts."),
    ClaimKind("cut_rollouts", behaviour.cut_rollouts,
              ("loc_roll_cut_chosen",),
              "In rollouts with the network cut."),
    ClaimKind("later", behaviour.later, (), "At the later layer."),
    ClaimKind("matched", behaviour.matched,
              ("matched_t", "matched_effect", "still_steers", "matched_goal"),
              "At later layers, matched to a common effect."),
    ClaimKind("later_created", localise.later_created,
              ("later_even_cut", "later_even", "later_scan_layer", "later_scan_t"),
              "At later layers, matched to a common effect."),
)  # fmt: skip
#: The claim kinds in the order the answer gives them.
KINDS = tuple(k.kind for k in CLAIMS)
#: Dataset variables each claim kind reads (only the kinds that read any).
NEEDS = {k.kind: k.needs for k in CLAIMS if k.needs}


def verdict(iv: Interval) -> str:
    """Where the interval lies against 0, in words (as a claim of it would say)."""
    from hookdiff.study.wording import verdict_text

    return verdict_text(Claim.of("asymmetry", "", iv))


def _absent(ds: xr.Dataset) -> set[str]:
    return {k.kind for k in CLAIMS if any(v not in ds for v in k.needs)}


def claims(ds: xr.Dataset, *, seed: int | None = None) -> dict[str, list[Claim]]:
    """The study's claims per vector as :class:`~hookdiff.claim.Claim` records.

    ``seed`` is the bootstrap seed (default: the study's analysis seed). Every vector of the
    dataset's ``vector`` coordinate must have a :data:`~hookdiff.study.targets.VECTOR_SPECS`
    entry (its target and labels are read from there).
    """
    seed = bootstrap_seed(ds) if seed is None else int(seed)
    absent = _absent(ds)
    out: dict[str, list[Claim]] = {}
    for vector in vectors_of(ds):
        if vector not in VECTOR_SPECS:
            raise UnknownNameError(unknown_name_message("study vector", vector, list(VECTOR_SPECS)))
        out[vector] = [c for k in CLAIMS if k.kind not in absent for c in k.build(ds, vector, seed)]
    return adjust_family(out)


def answer(ds: xr.Dataset, *, seed: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The study's claims per vector, as data: each number with its 95 % interval, n and verdict.

    Args:
        ds: the study dataset (as saved in ``study.nc``).
        seed: bootstrap seed (default: the study's analysis seed), so the answer is reproducible.

    Returns:
        ``{vector: [claim, ...]}`` for each vector of the dataset, claims in the order of
        :data:`KINDS`; each claim is :meth:`Claim.to_dict <hookdiff.claim.Claim.to_dict>`:
        ``{"claim" (the sentence), "kind", "vector", "readout", "t", "estimate", "ci95", "n",
        "where", "verdict", "odd", "tolerance", "margin", "detail"}`` (NaN as None). Claims whose
        variables are absent are left out (:func:`missing`).

    Usage: ``answer(load_dataset("runs/study"))["cheese"][0]["verdict"]`` after
    ``hookdiff study`` gives e.g. ``'negative'`` (the asymmetry E of P(toward cheese)).
    """
    return answer_data(claims(ds, seed=seed))


def answer_data(per_vector: dict[str, list[Claim]]) -> dict[str, list[dict[str, Any]]]:
    """Claims per vector (from :func:`claims`) as :func:`answer` returns them: data with their
    sentences, so the answer computed once can be both worded in the report and saved."""
    return {v: [c.to_dict(sentence(c)) for c in cs] for v, cs in per_vector.items()}


def missing(ds: xr.Dataset) -> list[str]:
    """What the answer cannot say for this dataset, in a phrase or two (the report says it once)."""
    kinds = [k.kind for k in CLAIMS if k.needs and any(v not in ds for v in k.needs)]
    absent = sorted({v for k in CLAIMS if k.kind in kinds for v in k.needs if v not in ds})
    out = [f"{', '.join(kinds)} (the dataset has no {', '.join(absent)})"] if kinds else []
    if "loc_even" in ds:
        have = set(ds["control"].values.tolist())
        gone = [
            c
            for c in ("base_swap", *CONTROLS)
            if c not in have or ds["loc_even"].sel(control=c).isnull().all()
        ]
        if gone:
            out.append(f"controls {', '.join(gone)} (not measured)")
    return out
