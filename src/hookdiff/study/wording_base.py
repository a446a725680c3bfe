"""The sentences of the claims that ask whether the asymmetry follows the base: the base swap,
the distances to the paired real state and the interpolation rule's prediction score, for each
vector source (the maze's own vector, the leave-one-out vector, another maze's)."""

from __future__ import annotations

from hookdiff.claim import Claim
from hookdiff.study.targets import VECTOR_SPECS
from hookdiff.study.words import interval_text, iv_verdict, main_text, readout_text, verdict_text

__all__ = ["base_swap_text", "distance_text", "prediction_text", "saturation_text"]

#: Each vector source (:data:`~hookdiff.study.schema.VECTOR_SOURCES`) in a sentence.
_SOURCE_TEXT = {
    "own": "the maze's own vector (built from its pair: the swap re-reads nearly the same line)",
    "leave_one_out": "the leave-one-out vector (the mean of every other maze's)",
    "other_maze": "another maze's vector",
}


def base_swap_text(c: Claim) -> str:
    """The base-swap claim in full: E on the paired base beside E on the maze's own, per source."""
    d = c.detail
    fate = {"flips": "flips sign", "keeps": "keeps its sign"}.get(d["sign"])
    if fate is None:
        bases = {"own": "its own", "swapped": "the swapped"}
        fate = (
            f"is not distinguishable from 0 on {' and '.join(bases[b] for b in d['zero_on'])} base"
        )
    return (
        f"Base swap, {_SOURCE_TEXT[d['source']]} ({readout_text(c.vector, c.readout)}, "
        f"t = {c.t:g}): added to {VECTOR_SPECS[c.vector].swapped_base}, it gives "
        f"E = {main_text(c)} against {interval_text(d['own'])} on its own maze (n = {c.n}); paired "
        f"change swapped − own {interval_text(d['change'])}, {iv_verdict(d['change'], c)}; "
        f"the asymmetry {fate}."
    )


def distance_text(c: Claim) -> str:
    """The distance claim in full: how far a ± v lands from the paired real state, per source."""
    reading = {
        "negative": "+v moves toward the paired real state (interpolates), −v away (extrapolates)",
        "positive": "−v moves toward the paired real state (interpolates), +v away (extrapolates)",
    }.get(c.verdict, "neither sign is closer to the paired real state")
    return (
        f"Distance of {_SOURCE_TEXT[c.detail['source']]} added to its maze from the paired real "
        f"activation at the decision square, relative to ‖a_paired − a‖: "
        f"{interval_text(c.detail['plus'])} for "
        f"a + v, {interval_text(c.detail['minus'])} for a − v; paired difference {main_text(c)} "
        f"(n = {c.n}), {verdict_text(c)}: {reading}."
    )


def prediction_text(c: Claim) -> str:
    """The prediction claim in full: the interpolation rule's accuracy beside the trivial rules'."""
    d = c.detail
    acc = d["accuracy"]
    rival = ", ".join(
        f"{_RULE_TEXT[k]} {interval_text(acc[k], signed=False)} (the rule's advantage "
        f"{interval_text(d['advantage'][k])})"
        for k in d["advantage"]
    )
    return (
        f'Prediction, {_SOURCE_TEXT[d["source"]]} (t = {c.t:g}): the rule "the sign whose a + s·v '
        f'lies nearer the paired real state acts more" is right on '
        f"{interval_text(acc['interpolation'], signed=False)} of mazes (accuracy − 0.5 = "
        f"{main_text(c)}, n = {c.n}, {verdict_text(c)}); the trivial rules: {rival}."
    )


#: The prediction rules (:data:`hookdiff.study.claims_predict.RULES`) in a sentence.
_RULE_TEXT = {
    "interpolation": "interpolation",
    "published_sign": "the published sign always",
    "raises_target": "the sign that raises the target readout",
}


def saturation_text(c: Claim) -> str:
    """The saturation claim in full: how far the line goes on past the paired state's readout."""
    d = c.detail
    where = "" if d["u_star_median"] is None else f" at median |t| = {d['u_star_median']:.3g}"
    return (
        f"Saturation, {_SOURCE_TEXT[d['source']]} ({readout_text(c.vector, c.readout)}): the line "
        f"reaches the paired real state's readout on {interval_text(d['reached'], signed=False)} "
        f"of mazes{where}; past it, from u* to 2u*, the response goes on by {main_text(c)} of "
        f"the way it came (0: it stops at the paired state, 1: a straight line; n = {c.n}, "
        f"{d['beyond_sweep']} more reach it too late to tell), {verdict_text(c)}."
    )
