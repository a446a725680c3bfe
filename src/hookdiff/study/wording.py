"""The answer's sentences, generated from the claims' fields (the one place claims are worded).

Every number in a sentence is formatted here from a :class:`~hookdiff.claim.Claim`'s
fields (its estimate and interval, n, t, where, verdict and ``detail``), so a sentence cannot say
what its fields do not: a verdict of ``"inconclusive"`` is never worded as an effect, and a claim
whose numbers are 0 within its numerical tolerance says so. :func:`sentence` words a claim in
full, :func:`label` names it in a verdict table's row, :func:`short` is its one-line summary.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from hookdiff.claim import Claim
from hookdiff.stats import Interval
from hookdiff.study.targets import VECTOR_SPECS
from hookdiff.study.wording_base import (
    base_swap_text,
    distance_text,
    prediction_text,
    saturation_text,
)
from hookdiff.study.words import count_text as _count
from hookdiff.study.words import interval_text, readout_text, t_text, verdict_text
from hookdiff.study.words import iv_verdict as _iv_verdict
from hookdiff.study.words import main_text as _main

__all__ = [
    "interval_text",
    "label",
    "number",
    "readout_text",
    "sentence",
    "short",
    "t_text",
    "verdict_text",
]

_CONTROL_TEXT = {
    "random": "a random direction (same norm per position)",
    "other_maze": "another maze's vector",
    "leave_one_out": "the leave-one-out vector (the mean of every other maze's)",
    "untrained": "a random-init agent (its own vectors)",
}
_VARIANT = {"symmetrize": "symmetrised", "linearize": "linearised"}


def _asymmetry(c: Claim) -> str:
    at = "" if c.where is None else f" steered at the later layer `{c.where}`"
    return (
        f"Add/subtract asymmetry of the {VECTOR_SPECS[c.vector].label} vector{at} at |t| = "
        f"{c.t:g}: E = r(+{c.t:g}) + r(−{c.t:g}) − 2r(0) of {readout_text(c.vector, c.readout)} = "
        f"{_main(c)} (n = {c.n} mazes), {verdict_text(c)}."
    )


def _published(c: Claim) -> str:
    d = c.detail
    stronger = {
        "positive": "the published sign is the stronger",
        "negative": "the mirrored sign is the stronger",
    }.get(c.verdict, "the two signs are not distinguishable in size")
    return (
        f"The published t = {t_text(c.t)} changes {readout_text(c.vector, c.readout)} by "
        f"{interval_text(d['published_change'])}, t = {t_text(-c.t)} by "
        f"{interval_text(d['mirrored_change'])}; along the published direction the published "
        f"sign moves it more by {_main(c)} (paired, n = {c.n}): {stronger}."
    )


def _scan_text(c: Claim, variant: str) -> str:
    """The sentence of one cut scan (steering layer or later layer)."""
    d, verb = c.detail, _VARIANT[variant]
    what = f"the even part E({c.t:.3g}) of {readout_text(c.vector, c.readout)}"
    if c.where is None:
        text = (
            f"{verb.capitalize()} at the last cut `{d['last_cut']}`, {what} is {_main(c)} "
            f"(n = {c.n}), {verdict_text(c)}"
        )
        if c.verdict in ("positive", "negative"):
            return text + f": part of the asymmetry in the logits is made after `{d['last_cut']}`."
        shown = (
            "not shown" if c.margin is None else f"not shown equivalent to 0 within ±{c.margin:.3g}"
        )
        return text + f", {shown}: the scan names no cut where the asymmetry is complete."
    before = (
        "between the steering layer and it"
        if d["before"] is None
        else f"between `{d['before']}` (where {verb} it is still "
        f"{interval_text(d['before_e'])}) and `{c.where}`"
    )
    text = (
        f"{verb.capitalize()} at `{c.where}`, {what} is {_main(c)} (n = {c.n}), "
        f"{verdict_text(c)}, and so at every later cut: the asymmetry in the logits is complete "
        f"at `{c.where}`, its last part made {before}."
    )
    if d["dips"]:
        zero = "equivalent to 0" if c.margin is not None else "not distinguishable from 0"
        text += (
            f" Not monotone: at {', '.join(f'`{x}`' for x in d['dips'])} it is also {zero}, "
            f"yet not at a later cut, so "
            f"{'that cut does' if len(d['dips']) == 1 else 'those cuts do'} not mark where it "
            f"is made."
        )
    return text


def _created(c: Claim) -> str:
    if c.detail["variant"] is None:
        return (
            f"The exact even part E({c.t:g}) of {readout_text(c.vector, c.readout)} is "
            f"{_main(c)} (n = {c.n}), {verdict_text(c)}: no asymmetry in the logits is shown "
            f"at this n, so neither scan names a cut."
        ) + (f" Tests: {c.detail['family']}." if "family" in c.detail else "")
    exact = interval_text(c.detail["exact"])
    text = _scan_text(c, c.detail["variant"]) + f" (The exact network's E is {exact}.)"
    return text + _kept_text(c, "This cut") + _per_t_text(c)


def _per_t_text(c: Claim) -> str:
    """The creation cut at every t and the family its tests are adjusted over."""
    d = c.detail
    if "per_t" not in d:
        return ""
    at = "; ".join(f"t = {t}: {f'`{x}`' if x else 'none'}" for t, x in d["per_t"].items())
    return f" Creation cut by t: {at}. Tests: {d['family']}, p < 0.05."


def _made(c: Claim) -> str:
    d = c.detail
    return (
        f"Most of the asymmetry in the logits is made between "
        f"`{c.where.replace(' → ', '` and `')}`: the paired drop of the symmetrised E({c.t:g}) "
        f"of the margin there is {_main(c)} (n = {c.n}), {d['share']:.0%} of the exact "
        f"{interval_text(d['exact'])} ({verdict_text(c)}); the steps between consecutive cuts "
        f"add up to the exact E."
    )


_SOFTMAX_READING = {
    "no_asymmetry": "there is no asymmetry distinguishable from 0 to explain at this n",
    "logits_add": "the softmax alone does not explain it; the logits' own even part adds to it",
    "softmax_explains": "a logit response without even part plus the softmax already explains it",
    "cannot_tell": "neither part is distinguishable from 0, so this n cannot tell",
}


def _softmax(c: Claim) -> str:
    d = c.detail
    return (
        f"Softmax-only test ({readout_text(c.vector, c.readout)}, t = {c.t:g}): with the logits' "
        f"response symmetrised at `{c.where}`, the softmax alone makes E = "
        f"{interval_text(d['softmax_only'])}; the exact network's E = "
        f"{interval_text(d['exact'])}; the difference exact − softmax-only = {_main(c)} "
        f"(paired, n = {c.n}) is {verdict_text(c)}: {_SOFTMAX_READING[d['reading']]}. The "
        f"logits' own asymmetry, read on the margin, is E = {interval_text(d['logits_e'])}."
    )


def _kept_text(c: Claim, what: str) -> str:
    """The odd part an intervention keeps, and whether it removes the steering ('' unrecorded)."""
    d = c.detail
    if "steering_kept" not in d:
        return ""
    exact = "" if d.get("exact_odd") is None else f" (exact {d['exact_odd']:+.3f})"
    text = (
        f" The odd part (the steering) with it is O = {c.odd:+.3f}{exact}: "
        f"{interval_text(d['steering_kept'])} of the exact O kept."
        if c.odd is not None
        else ""
    )
    if "index_change" in d:
        text += (
            f" Its asymmetry index E / max(|E|, |O|) changes by "
            f"{interval_text(d['index_change'])} (paired)."
        )
    if d.get("kills_steering"):
        text += (
            f" {what} keeps less than {d['kill_below']:.0%} of the steering: it removes the "
            f"steering itself, so its change of E does not locate the asymmetry."
        )
    return text


def _knockout(c: Claim) -> str:
    return (
        f"Knock-out ({readout_text(c.vector, c.readout)}, t = {c.t:g}): freezing `{c.where}` "
        f"alone at its t = 0 pattern shrinks the asymmetry (toward 0) by {_main(c)} (paired, "
        f"n = {c.n}), {verdict_text(c)}; the largest drop of the {c.detail['layers']} layers "
        f"(exact E = {interval_text(c.detail['exact'])})."
    ) + _kept_text(c, "This knock-out")


def _knockin(c: Claim) -> str:
    share = c.detail["share"]
    of = "against" if share is None else f"{share:.0%} of"
    return (
        f"Knock-in ({readout_text(c.vector, c.readout)}, t = {c.t:g}): with only `{c.where}` free "
        f"(every other relu / maxpool layer frozen at t = 0), E = {_main(c)} (n = {c.n}), "
        f"{verdict_text(c)}; {of} the exact E {interval_text(c.detail['exact'])}, the most of "
        f"any single layer."
    ) + _kept_text(c, "This knock-in")


def _kinks(c: Claim) -> str:
    d = c.detail
    gap = (
        ""
        if d["direct_gap"] is None
        else (f"; the sum matches the directly evaluated even part within {d['direct_gap']:.1e}")
    )
    return (
        f"Exact kink attribution ({VECTOR_SPECS[c.vector].label} vector, even part at t = "
        f"{c.t:g} of the margin, the log-odds readout linearised in the logits, on {_count(d['walked'], 'walked maze')}): `{c.where}` "
        f"carries {_main(c)} of the total {interval_text(d['total'])}, {d['share']:.0%} of it, "
        f"the most of any layer{gap}."
    ) + _kink_signs_text(d)


def _kink_signs_text(d: dict) -> str:
    """The layers' contributions by sign, where they cancel ('' when they do not)."""
    if not d.get("cancels"):
        return ""
    return (
        f" The layers' contributions cancel: those of positive sign sum to {d['positive']:+.3f} "
        f"({d['positive_share']:.0%} of the net), those of negative sign to {d['negative']:+.3f} "
        f"({d['negative_share']:.0%}); a share above 100 % is bookkeeping of cancelling terms, "
        f"not a layer making more than all of it."
    )


def _controls(c: Claim) -> str:
    diff = c.detail["own_minus_control"]
    text = (
        f"Control, {_CONTROL_TEXT.get(c.where, c.where)} ({readout_text(c.vector, c.readout)}, "
        f"t = {c.t:g}): E = {_main(c)} (n = {c.n}), {verdict_text(c)}; the maze's own vector "
        f"minus the control = {interval_text(diff)} (paired, n = {diff.n}), "
        f"{_iv_verdict(diff, c)}."
    )
    if c.odd is not None:
        text += f" Its odd part O = {c.odd:+.3f} (matched in norm, not in effect)."
    if "index" in c.detail:
        text += (
            f" Asymmetry index E / max(|E|, |O|): {interval_text(c.detail['index'])} against "
            f"the vector's {interval_text(c.detail['own_index'])}."
        )
    return text


def _random_matched(c: Claim) -> str:
    d = c.detail
    t = "" if d["t_median"] is None else f", median |t*| = {d['t_median']:.3g}"
    draws = ", ".join(interval_text(x) for x in d["draw_e"])
    return (
        f"Control matched in effect ({readout_text(c.vector, c.readout)}): {d['draws']} random "
        f"directions of the vector's norm per position, each pushed per maze to t* where its "
        f"|odd part| equals the vector's at t = {c.t:g} (reached on {d['reached']:.0%} of "
        f"maze-draws{t}), give E = {interval_text(d['matched'])} (per draw: {draws}) against "
        f"the vector's {interval_text(d['own'])}; the vector minus the matched push = "
        f"{_main(c)} (paired, n = {c.n}), {verdict_text(c)}. Asymmetry index "
        f"E / max(|E|, |O|): vector {interval_text(d['own_index'])}, matched random "
        f"{interval_text(d['matched_index'])}, difference {interval_text(d['index_diff'])} "
        f"({_iv_verdict(d['index_diff'], c)}): {_MATCHED_READING[d['reading']]}."
    )


_MATCHED_READING = {
    "larger": "the vector's asymmetry is larger than a generic push of the same size makes",
    "smaller": "a generic push of the same size makes a larger asymmetry, so the vector's is "
    "not specific to it",
    "larger_opposite": "the vector's asymmetry is larger than, and opposite in sign to, a "
    "generic push's of the same size",
    "smaller_opposite": "a generic push of the same size makes a larger asymmetry, of the "
    "opposite sign, so the vector's size of asymmetry is not specific to it",
    "same": "the vector's asymmetry is not distinguishable from a generic push's of the same size",
}


def _random_matched_made(c: Claim) -> str:
    d = c.detail
    same = (
        "the same span"
        if d["same_span"]
        else f"`{d['matched_span'].replace(' → ', '` → `')}` instead"
    )
    return (
        f"Where a push matched in effect makes its asymmetry (the margin, symmetrised scan): of "
        f"the exact E, the vector's top span `{c.where.replace(' → ', '` → `')}` makes "
        f"{interval_text(d['own_share'])} for the vector and {interval_text(d['matched_share'])} "
        f"for the matched random directions; difference {_main(c)} (paired, n = {c.n}), "
        f"{verdict_text(c)}. The random directions' own largest span is {same}."
    )


def _rollouts(c: Claim) -> str:
    d = c.detail
    parts = [
        f"t = {t_text(float(t))}: {interval_text(w, 2, False)} (n = {w.n} episodes)"
        for t, w in d["rates"].items()
    ]
    text = (
        f"Rollouts ({d['episodes_per_maze']} seeded episodes per maze, the same seeds at every "
        f"t): the paired asymmetry of the rate of reaching {VECTOR_SPECS[c.vector].target}, "
        f"E = rate(+{c.t:g}) + rate(−{c.t:g}) − 2·rate(0) per maze, is {_main(c, 2)} (n = {c.n} "
        f"mazes), {verdict_text(c)}; rates (Wilson 95 %) " + "; ".join(parts)
    )
    diff = d["published_minus_unsteered"]
    if diff is not None:
        text += (
            f"; published minus unsteered {interval_text(diff, 2)} (paired, n = {diff.n}), "
            f"{_iv_verdict(diff, c)}"
        )
    return text + "."


def _rates_text(rates: dict[str, dict[str, Interval]]) -> str:
    """``"cheese +t 0.50 [0.09, 0.91], −t …; top-right +t …"`` (Wilson 95 %)."""
    return "; ".join(
        target.replace("_", "-")
        + " "
        + ", ".join(
            f"{sign.replace('-', '−')} {interval_text(iv, 2, False)}" for sign, iv in by.items()
        )
        for target, by in rates.items()
    )


def _cut_rollouts(c: Claim) -> str:
    d = c.detail
    pub = d["published_minus_unsteered"]
    text = (
        f"Rollouts of the {VECTOR_SPECS[c.vector].label} vector at t = ±{c.t:g} and 0 with the "
        f"network {_VARIANT[d['variant']]} at `{c.where}` ({d['episodes_per_maze']} seeded "
        f"episodes per maze): the paired E of the rate of reaching "
        f"{VECTOR_SPECS[c.vector].target} is {_main(c, 2)} (n = {c.n} mazes), {verdict_text(c)}; "
        f"the published sign {d['sign'].replace('-', '−')} minus t = 0 "
        f"{interval_text(pub, 2)}; reach rates {_rates_text(d['rates'])}"
    )
    if d.get("exact_e") is not None:
        text += f"; the exact network's paired E on the same mazes {interval_text(d['exact_e'], 2)}"
    if d["exact"] is not None:
        text += f"; its rates {_rates_text(d['exact'])}"
    return text + "."


def _by_baseline(c: Claim) -> str:
    """One sentence: E per tercile of the baseline log-odds r(0) (empty without strata)."""
    strata = c.detail.get("by_baseline") or []
    if not strata:
        return ""
    parts = [f"[{g['r0'][0]:.2f}, {g['r0'][1]:.2f}]: {interval_text(g['e'])}" for g in strata]
    return " E by tercile of the baseline log-odds r(0) (its range): " + "; ".join(parts) + "."


def _spread(c: Claim) -> str:
    """The per-maze median and sign counts beside a claim's mean (empty where it is no mean)."""
    d = c.detail
    if d.get("median") is None or c.n < 2:
        return ""
    return (
        f" Per maze: median {d['median']:+.3g}; {d['n_positive']} above 0, {d['n_negative']} below."
    )


def _t_or_none(t: float) -> str:
    return f"{t:+.3g}".replace("-", "−") if np.isfinite(t) else "not reached"


def _matched(c: Claim) -> str:
    d = c.detail
    parts = [
        f"`{layer}`: "
        + ", ".join(
            f"{pos.replace('_', '-')} pairs t = {_t_or_none(x['t'])}"
            + ("" if x["steers"] else " (does not steer)")
            for pos, x in by.items()
        )
        for layer, by in d["layers"].items()
    ]
    lead = (
        f"Later layers, each coefficient matched to the steering layer's mean |effect| on "
        f"P(toward {VECTOR_SPECS[c.vector].target}) at t = {t_text(d['published_t'])} "
        f"({d['goal']:.3f}): {'; '.join(parts) or 'no later candidate'}. A layer still steers "
        f"when the match is reached within |t| ≤ {d['t_max']:g} and the effect toward the "
        f"published direction has its 95 % interval above 0."
    )
    own_steer = [
        layer for layer, by in d["layers"].items() if by.get("decision_square", {}).get("steers")
    ]
    by_construction = (
        f" The mazes' own decision-square pairs steer at {len(own_steer)} of them, by "
        "construction: at |t| = 1 they patch in the paired real state's activation."
        if own_steer
        else ""
    )
    if c.where is None:
        return (
            lead + " No vector the mazes were not built from (leave-one-out) still steers after "
            "the steering layer, so there is no later layer to ask again." + by_construction
        )
    return (
        f"{lead} The latest that a leave-one-out vector still steers is `{c.where}` "
        f"({d['position'].replace('_', '-')} pairs, |t| = {c.t:.3g}): effect toward the "
        f"published direction {_main(c)} (n = {c.n}), {verdict_text(c)}." + by_construction
    )


def _later_created(c: Claim) -> str:
    d = c.detail
    at = (
        f"At the later layer `{d['layer']}` (t = ±{c.t:.3g}): the exact E = "
        f"{interval_text(d['exact'])}, "
    )
    if not d["located"]:
        return at + f"{verdict_text(c)}, so there is no asymmetry to locate there."
    text = _scan_text(c, d["variant"])
    return at + text[0].lower() + text[1:]


#: The sentence of each claim kind.
_SENTENCES: dict[str, Callable[[Claim], str]] = {
    "asymmetry": _asymmetry,
    "published": _published,
    "created": _created,
    "made": _made,
    "softmax": _softmax,
    "knockout": _knockout,
    "knockin": _knockin,
    "kinks": _kinks,
    "base_swap": base_swap_text,
    "distance": distance_text,
    "controls": _controls,
    "prediction": prediction_text,
    "saturation": saturation_text,
    "random_matched": _random_matched,
    "random_matched_made": _random_matched_made,
    "rollouts": _rollouts,
    "cut_rollouts": _cut_rollouts,
    "later": _asymmetry,
    "matched": _matched,
    "later_created": _later_created,
}

#: What each kind's estimate is, in a verdict table's row.
_LABELS = {
    "asymmetry": "asymmetry E",
    "published": "published − mirrored effect",
    "created": "E at the creation cut",
    "made": "E made between cuts",
    "softmax": "exact − softmax-only E",
    "knockout": "knock-out: drop of E",
    "knockin": "knock-in: E kept",
    "kinks": "E carried by one layer's kinks",
    "base_swap": "E on the swapped base",
    "distance": "distance (+v) − (−v)",
    "controls": "E of a control",
    "prediction": "interpolation rule's accuracy − 0.5",
    "saturation": "past the paired state, share of the way again",
    "random_matched": "vector − matched-effect random E",
    "random_matched_made": "share made in the vector's top span, vector − matched random",
    "rollouts": "paired E of reach rates",
    "cut_rollouts": "paired E of reach rates, network cut",
    "later": "asymmetry E at the later layer",
    "matched": "effect at the latest layer that steers",
    "later_created": "E at the later creation cut",
}


#: Kinds whose estimate is a paired E of rates (two decimals, signed).
_RATES = ("rollouts", "cut_rollouts")


def number(c: Claim) -> str:
    """The claim's estimate with its interval, as its table row and short line give it."""
    return _main(c, 2) if c.kind in _RATES else _main(c)


def sentence(c: Claim) -> str:
    """The claim in full, every number formatted from its fields."""
    text = _SENTENCES[c.kind](c) + _spread(c)
    return text + (_by_baseline(c) if c.kind in ("asymmetry", "later") else "")


def label(c: Claim) -> str:
    """The claim's row label: what its estimate is, on which readout, where."""
    nothing = c.kind == "created" and c.detail.get("variant") is None
    parts = ["exact E, no cut to name" if nothing else _LABELS[c.kind]]
    if c.readout is not None:
        parts.append(f"({c.readout})")
    variant = c.detail.get("variant") if c.kind in ("created", "cut_rollouts") else None
    if variant:
        parts.append(_VARIANT[variant])
    if c.where is not None:
        parts.append(f"at `{c.where}`")
    return " ".join(parts)


def short(c: Claim) -> str:
    """One line: the label, the estimate with its interval, n and the verdict in words."""
    t = "" if c.t is None or not math.isfinite(c.t) else f", t = {t_text(c.t)}"
    head = label(c)
    return f"{head[0].upper() + head[1:]}: {number(c)} (n = {c.n}{t}), {verdict_text(c)}."
